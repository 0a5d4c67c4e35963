/** A tiny, spec-following Server-Sent Events parser for fetch() response bodies. */
export interface SseEvent {
  event: string;
  data: string;
  id: string | null;
  retry: number | null;
}

/**
 * Yield each event of an SSE body. Comments (heartbeats) are skipped; `id` carries the last id seen,
 * as EventSource does, so a reconnect can send it back as Last-Event-ID.
 */
export async function* readSseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  let lastId: string | null = null;
  let eventName = "";
  let data: string[] = [];
  let retry: number | null = null;
  let finished = false;

  const dispatch = (): SseEvent | null => {
    if (data.length === 0) {
      eventName = "";
      return null;
    }
    const event: SseEvent = { event: eventName || "message", data: data.join("\n"), id: lastId, retry };
    eventName = "";
    data = [];
    retry = null;
    return event;
  };

  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        break;
      }
      buffer += decoder.decode(value, { stream: true });
      // Lines end with \n, \r\n or \r; keep a trailing \r in the buffer in case \n follows.
      let match: RegExpExecArray | null;
      const lineEnd = /\r\n|\n|\r(?!$)/g;
      let consumed = 0;
      while ((match = lineEnd.exec(buffer)) !== null) {
        const line = buffer.slice(consumed, match.index);
        consumed = match.index + match[0].length;
        if (line === "") {
          const event = dispatch();
          if (event) yield event;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let fieldValue = colon === -1 ? "" : line.slice(colon + 1);
        if (fieldValue.startsWith(" ")) fieldValue = fieldValue.slice(1);
        if (field === "event") eventName = fieldValue;
        else if (field === "data") data.push(fieldValue);
        else if (field === "id" && !fieldValue.includes("\0")) lastId = fieldValue;
        else if (field === "retry" && /^\d+$/.test(fieldValue)) retry = Number(fieldValue);
      }
      buffer = buffer.slice(consumed);
    }
  } finally {
    // The consumer stopped early (navigation, abort): drop the connection instead of draining it.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** Parse an event's JSON data, or null when it is not JSON. */
export function parseEventData(event: SseEvent): unknown {
  try {
    return JSON.parse(event.data) as unknown;
  } catch {
    return null;
  }
}
