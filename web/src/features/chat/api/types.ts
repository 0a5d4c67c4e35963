/** Chat API shapes (mirroring the chat service's schemas; to be generated from its OpenAPI). */
export type MessageStatus = "pending" | "streaming" | "complete" | "failed" | "stopped";

export interface Message {
  id: string;
  chat_id: string;
  sender: "user" | "agent";
  content: string;
  status: MessageStatus;
  input_tokens?: number;
  output_tokens?: number;
  model?: string | null;
  finish_reason?: string | null;
  error?: string | null;
  created_at: string;
  updated_at?: string;
}

export interface Chat {
  id: string;
  agent_id: string;
  title: string;
  created_at: string;
  updated_at: string;
}

export function isInFlight(message: Pick<Message, "status">): boolean {
  return message.status === "pending" || message.status === "streaming";
}
