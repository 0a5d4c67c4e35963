import { NavLink } from "react-router";
import { RateLimitNotice } from "@/components/ui/alert";
import { ApiError } from "@/lib/api-error";
import { formatRelativeTime } from "@/lib/format";
import { useChats } from "../api/get-chats";

/** The conversation list in the sidebar, newest first. */
export function ChatList({ onNavigate }: { onNavigate?: () => void }) {
  const chats = useChats();
  if (chats.isPending) return <p className="sidebar__hint">Loading chats…</p>;
  if (chats.error instanceof ApiError && chats.error.isRateLimited) {
    return <RateLimitNotice error={chats.error} onRetry={() => void chats.refetch()} />;
  }
  if (chats.error) {
    return (
      <p className="sidebar__hint">
        Chats unavailable.{" "}
        <button type="button" className="link-btn" onClick={() => void chats.refetch()}>
          Retry
        </button>
      </p>
    );
  }
  if (chats.data.items.length === 0) return <p className="sidebar__hint">No chats yet. Start one with an agent.</p>;
  return (
    <ul className="chat-list" aria-label="Chats">
      {chats.data.items.map((chat) => (
        <li key={chat.id}>
          <NavLink to={`/chat/${chat.id}`} className={({ isActive }) => `chat-list__item ${isActive ? "is-active" : ""}`} onClick={onNavigate} title={chat.title}>
            <span className="chat-list__title">{chat.title || "Untitled chat"}</span>
            <span className="chat-list__time">{formatRelativeTime(chat.updated_at)}</span>
          </NavLink>
        </li>
      ))}
    </ul>
  );
}
