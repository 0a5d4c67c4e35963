import { type FormEvent, type KeyboardEvent, useEffect, useLayoutEffect, useRef, useState } from "react";
import { Button } from "@/components/ui/button";
import { useMentionCompletion } from "../hooks/use-mention-completion";
import type { ChatAgent } from "../participants";
import { MENTION_MENU_ID, MentionMenu, mentionOptionId } from "./mention-menu";

// Mirrors the chat service's cap; the server still checks (413 beyond it).
const MAX_LENGTH = 32_000;

/**
 * The message box: Enter sends, Shift+Enter adds a line; Stop while a reply streams. With
 * `mentionables` (a chat's participants), `@` offers their handles.
 */
export function Composer({
  onSend,
  onStop,
  streaming,
  disabled,
  placeholder = "Message your agent…",
  mentionables = [],
}: {
  onSend: (content: string) => Promise<boolean>;
  onStop?: () => void;
  streaming: boolean;
  disabled?: boolean;
  placeholder?: string;
  mentionables?: ChatAgent[];
}) {
  const [value, setValue] = useState("");
  const [caret, setCaret] = useState(0);
  const [sending, setSending] = useState(false);
  const ref = useRef<HTMLTextAreaElement>(null);
  // Where the caret goes once a completed mention is in the text.
  const pendingCaret = useRef<number | null>(null);
  const mentions = useMentionCompletion({
    agents: mentionables,
    value,
    caret,
    setValue: (next, at) => {
      setValue(next);
      setCaret(at);
      pendingCaret.current = at;
    },
  });

  const activeOption = mentions.open ? mentions.options[mentions.active] : undefined;

  useLayoutEffect(() => {
    const el = ref.current;
    if (el && pendingCaret.current !== null) {
      el.setSelectionRange(pendingCaret.current, pendingCaret.current);
      pendingCaret.current = null;
    }
  }, [value]);

  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, 240)}px`;
  }, [value]);

  const submit = async () => {
    const content = value.trim();
    if (!content || sending || streaming || disabled) return;
    setSending(true);
    setValue("");
    const stored = await onSend(content);
    setSending(false);
    // Keep what the person wrote when nothing was stored (limit reached, offline).
    if (!stored) setValue(content);
    ref.current?.focus();
  };

  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    void submit();
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (mentions.onKeyDown(event)) return;
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void submit();
    }
  };

  return (
    <form className="composer" onSubmit={onSubmit}>
      {mentions.open ? <MentionMenu options={mentions.options} active={mentions.active} onChoose={mentions.choose} onHover={mentions.setActive} /> : null}
      <label className="visually-hidden" htmlFor="composer-input">
        Message
      </label>
      <textarea
        id="composer-input"
        ref={ref}
        className="composer__input"
        rows={1}
        maxLength={MAX_LENGTH}
        placeholder={placeholder}
        value={value}
        onChange={(e) => {
          setValue(e.target.value);
          setCaret(e.target.selectionStart);
        }}
        onSelect={(e) => setCaret(e.currentTarget.selectionStart)}
        onKeyDown={onKeyDown}
        aria-autocomplete={mentionables.length > 0 ? "list" : undefined}
        aria-controls={mentions.open ? MENTION_MENU_ID : undefined}
        aria-activedescendant={activeOption ? mentionOptionId(activeOption.id) : undefined}
        disabled={disabled}
      />
      {streaming && onStop ? (
        <Button variant="secondary" onClick={onStop} className="composer__button" aria-label="Stop generating">
          <span className="stop-icon" aria-hidden="true" /> Stop
        </Button>
      ) : (
        <Button type="submit" className="composer__button" loading={sending} disabled={!value.trim() || disabled} aria-label="Send message">
          Send
        </Button>
      )}
    </form>
  );
}
