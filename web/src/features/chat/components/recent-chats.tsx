import { Link } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";
import { Card, CardHeader } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { ChatIcon } from "@/components/ui/icons";
import { LoadingState } from "@/components/ui/spinner";
import { formatRelativeTime } from "@/lib/format";
import { useChats } from "../api/get-chats";

/** The dashboard's recent chats card. */
export function RecentChats({ agentName }: { agentName: (agentId: string) => string | undefined }) {
  const chats = useChats();
  return (
    <Card>
      <CardHeader
        title="Recent chats"
        action={
          <Link className="btn btn--primary btn--sm" to="/chat">
            New chat
          </Link>
        }
      />
      {chats.isPending ? <LoadingState /> : null}
      {chats.error ? <ErrorAlert error={chats.error} onRetry={() => void chats.refetch()} /> : null}
      {chats.data && chats.data.items.length === 0 ? (
        <EmptyState title="No chats yet" action={<Link className="btn btn--secondary btn--sm" to="/chat">Start a chat</Link>}>
          Pick an agent and say hello. Replies stream in as they are written.
        </EmptyState>
      ) : null}
      {chats.data && chats.data.items.length > 0 ? (
        <ul className="list" data-testid="recent-chats">
          {chats.data.items.slice(0, 6).map((chat) => (
            <li key={chat.id}>
              <Link to={`/chat/${chat.id}`} className="list__item list__item--link">
                <span className="list__glyph" aria-hidden="true">
                  <ChatIcon size={16} />
                </span>
                <div className="list__main">
                  <span className="list__title">{chat.title || "Untitled chat"}</span>
                  <span className="muted small">{agentName(chat.agent_id) ?? "Agent"}</span>
                </div>
                <span className="muted small">{formatRelativeTime(chat.updated_at)}</span>
              </Link>
            </li>
          ))}
        </ul>
      ) : null}
    </Card>
  );
}
