import { ApiError } from "@/lib/api-error";

/** The 422 `mention-not-resolved` (an @Name nobody or several in the chat answer to), when that is what `error` is. */
export function mentionRefusal(error: unknown): { mention: string; reason: string; choices: string[] } | null {
  if (!(error instanceof ApiError) || error.status !== 422) return null;
  const { type, mention, reason, choices } = error.problem;
  if (typeof type !== "string" || !type.endsWith("mention-not-resolved")) return null;
  return {
    mention: typeof mention === "string" ? mention : "",
    reason: typeof reason === "string" ? reason : "unknown",
    choices: Array.isArray(choices) ? choices.filter((choice): choice is string => typeof choice === "string") : [],
  };
}

/** Under the composer: which @mention did not resolve, and the names that would. */
export function MentionError({ error }: { error: unknown }) {
  const refusal = mentionRefusal(error);
  if (!refusal) return null;
  const problem = refusal.reason === "ambiguous" ? "names more than one agent in this chat" : "is not an agent in this chat";
  return (
    <p className="mention-error" role="alert" data-testid="mention-error">
      <code>@{refusal.mention}</code> {problem}. Mention one of{" "}
      {refusal.choices.map((choice, index) => (
        <span key={choice}>
          {index > 0 ? ", " : ""}
          <code>@{choice}</code>
        </span>
      ))}
      .
    </p>
  );
}
