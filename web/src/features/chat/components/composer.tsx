import { type FormEvent, type KeyboardEvent, useEffect, useRef, useState } from "react";
import { Button } from "@/components/ui/button";

// Mirrors the chat service's cap; the server still checks (413 beyond it).
const MAX_LENGTH = 32_000;

/** The message box: Enter sends, Shift+Enter adds a line; Stop while a reply streams. */
export function Composer({
  onSend,
  onStop,
  streaming,
  disabled,
  placeholder = "Message your agent…",
}: {
  onSend: (content: string) => Promise<boolean>;
  onStop?: () => void;
  streaming: boolean;
  disabled?: boolean;
  placeholder?: string;
}) {
  const [value, setValue] = useState("");
  const [sending, setSending] = useState(false);
  const ref = useRef<HTMLTextAreaElement>(null);

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
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void submit();
    }
  };

  return (
    <form className="composer" onSubmit={onSubmit}>
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
        onChange={(e) => setValue(e.target.value)}
        onKeyDown={onKeyDown}
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
