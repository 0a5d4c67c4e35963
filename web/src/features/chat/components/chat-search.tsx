import { type ReactNode, useEffect, useState } from "react";
import { Link } from "react-router";
import { RateLimitNotice } from "@/components/ui/alert";
import { ApiError } from "@/lib/api-error";
import { formatRelativeTime } from "@/lib/format";
import { SEARCH_MAX_CHARS, useSearchMessages } from "../api/search-messages";
import type { SearchHit } from "../api/types";

// 250 ms: a query per pause in typing, not per key.
const DEBOUNCE_MS = 250;

/** The snippet as text, its matched words as <mark> (never HTML from the server). */
function Snippet({ hit }: { hit: SearchHit }) {
  const parts: ReactNode[] = [];
  let at = 0;
  hit.highlights.forEach((range, index) => {
    if (range.start < at) return;
    parts.push(hit.snippet.slice(at, range.start));
    parts.push(<mark key={index}>{hit.snippet.slice(range.start, range.end)}</mark>);
    at = range.end;
  });
  parts.push(hit.snippet.slice(at));
  return <span className="search-hit__snippet">{parts}</span>;
}

function SearchResults({ q, onNavigate }: { q: string; onNavigate?: () => void }) {
  const results = useSearchMessages(q);
  if (results.error instanceof ApiError && results.error.isRateLimited) {
    return <RateLimitNotice error={results.error} onRetry={() => void results.refetch()} />;
  }
  if (results.error) return <p className="sidebar__hint">Search is unavailable right now.</p>;
  if (!results.data) return <p className="sidebar__hint">Searching…</p>;
  if (results.data.items.length === 0) return <p className="sidebar__hint">No messages match “{q.trim()}”.</p>;
  return (
    <ul className="chat-list search-results" aria-label="Search results">
      {results.data.items.map((hit) => (
        <li key={hit.message_id}>
          <Link to={`/chat/${hit.chat_id}#message-${hit.message_id}`} className="chat-list__item search-hit" onClick={onNavigate} data-testid="search-hit">
            <span className="chat-list__title">{hit.chat_title || "Untitled chat"}</span>
            <Snippet hit={hit} />
            <span className="chat-list__time">
              {hit.sender === "user" ? "You" : "Agent"} · {formatRelativeTime(hit.created_at)}
            </span>
          </Link>
        </li>
      ))}
    </ul>
  );
}

/** A search box over my messages; while it holds a query, its results take the list's place. */
export function ChatSearch({ children, onNavigate }: { children: ReactNode; onNavigate?: () => void }) {
  const [text, setText] = useState("");
  const [q, setQ] = useState("");
  useEffect(() => {
    const timer = setTimeout(() => setQ(text), DEBOUNCE_MS);
    return () => clearTimeout(timer);
  }, [text]);
  const searching = text.trim().length > 0;
  return (
    <>
      <div className="sidebar__search" role="search">
        <input
          type="search"
          className="input input--sm"
          placeholder="Search messages"
          aria-label="Search messages"
          value={text}
          maxLength={SEARCH_MAX_CHARS}
          onChange={(event) => setText(event.target.value)}
          onKeyDown={(event) => event.key === "Escape" && setText("")}
        />
      </div>
      {searching ? q.trim() ? <SearchResults q={q} onNavigate={onNavigate} /> : <p className="sidebar__hint">Searching…</p> : children}
    </>
  );
}
