import { useState } from "react";
import { Button } from "@/components/ui/button";

/** The user's message, editable in place: saving sends the new wording as a new branch. */
export function MessageEditor({ initial, onSave, onCancel }: { initial: string; onSave: (content: string) => void; onCancel: () => void }) {
  const [value, setValue] = useState(initial);
  const changed = value.trim() !== "" && value !== initial;
  return (
    <form
      className="message__editor"
      onSubmit={(event) => {
        event.preventDefault();
        if (changed) onSave(value);
      }}
    >
      <textarea
        className="input message__editor-input"
        aria-label="Edit message"
        value={value}
        rows={Math.min(10, Math.max(2, value.split("\n").length))}
        onChange={(event) => setValue(event.target.value)}
        onKeyDown={(event) => {
          if (event.key === "Escape") onCancel();
          if (event.key === "Enter" && !event.shiftKey && changed) {
            event.preventDefault();
            onSave(value);
          }
        }}
        autoFocus
      />
      <div className="message__editor-actions">
        <Button variant="secondary" size="sm" onClick={onCancel}>
          Cancel
        </Button>
        <Button type="submit" size="sm" disabled={!changed}>
          Save and send
        </Button>
      </div>
    </form>
  );
}
