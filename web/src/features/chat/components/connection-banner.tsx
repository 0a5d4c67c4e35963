import { Spinner } from "@/components/ui/spinner";
import { useOnlineStatus } from "@/lib/online-status";
import type { Connection } from "../stores/live-chats";

/** Tells the reader when the live reply is interrupted and being resumed (offline has its own banner). */
export function ConnectionBanner({ connection }: { connection: Connection }) {
  const online = useOnlineStatus();
  if (online && (connection === "reconnecting" || connection === "offline")) {
    return (
      <div className="banner banner--info" role="status">
        <Spinner size="sm" /> Reconnecting to the live reply…
      </div>
    );
  }
  return null;
}
