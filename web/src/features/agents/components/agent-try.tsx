import { type FormEvent, useState } from "react";
import { MarkdownView } from "@/components/markdown";
import { ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { TextAreaField } from "@/components/ui/field";
import type { Agent } from "../api/get-my-agents";
import { useTryAgent } from "../api/try-agent";

/** Send one message to an agent outside any chat and show the whole reply. */
export function AgentTry({ agent }: { agent: Agent }) {
  const attempt = useTryAgent();
  const [prompt, setPrompt] = useState("Hello! Introduce yourself in one sentence.");
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (prompt.trim()) attempt.mutate({ agentId: agent.id, prompt: prompt.trim() });
  };
  return (
    <form className="form" onSubmit={onSubmit}>
      <TextAreaField label="Message" name="prompt" rows={3} value={prompt} onChange={(e) => setPrompt(e.target.value)} maxLength={8000} />
      <div className="form-actions">
        <Button type="submit" loading={attempt.isPending}>
          Send
        </Button>
      </div>
      {attempt.error ? <ErrorAlert error={attempt.error} /> : null}
      {attempt.data ? (
        <div className="try-reply" data-testid="try-reply">
          <MarkdownView source={attempt.data.content} />
          <p className="try-reply__meta muted">
            {attempt.data.model}
            {attempt.data.usage ? ` · ${attempt.data.usage.input_tokens} in / ${attempt.data.usage.output_tokens} out tokens` : ""}
          </p>
        </div>
      ) : null}
    </form>
  );
}
