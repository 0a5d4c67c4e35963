import { useMutation } from "@tanstack/react-query";
import { apiResponse } from "@/lib/api-client";

export type ExportFormat = "markdown" | "json";

/** The filename a Content-Disposition header gives (RFC 6266: `filename*` first). */
export function filenameFrom(disposition: string | null, fallback: string): string {
  if (!disposition) return fallback;
  const exact = /filename\*=UTF-8''([^;]+)/i.exec(disposition);
  if (exact?.[1]) {
    try {
      return decodeURIComponent(exact[1]);
    } catch {
      // fall through to the ASCII name
    }
  }
  const plain = /filename="([^"]+)"/i.exec(disposition);
  return plain?.[1] ?? fallback;
}

/** GET /chat/chats/{id}/export, saved as a file (the token goes in a header, not the URL). */
export async function exportChat(chatId: string, format: ExportFormat): Promise<void> {
  const response = await apiResponse(`/chat/chats/${chatId}/export`, { query: { format } }, "*/*");
  const blob = await response.blob();
  const name = filenameFrom(response.headers.get("Content-Disposition"), format === "json" ? "chat.json" : "chat.md");
  const url = URL.createObjectURL(blob);
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.appendChild(link);
  link.click();
  link.remove();
  // Let the download start before the object URL goes.
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function useExportChat() {
  return useMutation({ mutationFn: ({ chatId, format }: { chatId: string; format: ExportFormat }) => exportChat(chatId, format) });
}
