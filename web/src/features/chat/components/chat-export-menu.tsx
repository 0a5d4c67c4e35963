import { useRef } from "react";
import { ErrorAlert } from "@/components/ui/alert";
import { type ExportFormat, useExportChat } from "../api/export-chat";

const FORMATS: { format: ExportFormat; label: string }[] = [
  { format: "markdown", label: "Markdown (.md)" },
  { format: "json", label: "JSON (.json)" },
];

/** "Export" in the chat header: the conversation as a Markdown or JSON file. */
export function ChatExportMenu({ chatId }: { chatId: string }) {
  const menu = useRef<HTMLDetailsElement>(null);
  const download = useExportChat();
  return (
    <details className="chat-export" ref={menu}>
      <summary className="btn btn--ghost btn--sm" aria-label="Export chat">
        {download.isPending ? "Exporting…" : "Export"}
      </summary>
      <div className="chat-export__menu" role="menu">
        {FORMATS.map(({ format, label }) => (
          <button
            key={format}
            type="button"
            role="menuitem"
            onClick={() => {
              download.mutate({ chatId, format });
              if (menu.current) menu.current.open = false;
            }}
          >
            {label}
          </button>
        ))}
        {download.error ? <ErrorAlert error={download.error} /> : null}
      </div>
    </details>
  );
}
