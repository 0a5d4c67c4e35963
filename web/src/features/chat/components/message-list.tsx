import { useEffect, useLayoutEffect, useRef } from "react";
import { Button } from "@/components/ui/button";
import { type MessageActions, MessageBubble, type ShownMessage } from "./message-bubble";

// Within this many pixels of the bottom, new text keeps the view pinned to the end.
const STICK_THRESHOLD_PX = 120;

/** The scrolling conversation: pinned to the newest text, loading older pages at the top. */
export function MessageList({
  messages,
  agentName,
  hasOlder,
  loadingOlder,
  onLoadOlder,
  actions,
}: {
  messages: ShownMessage[];
  agentName: string;
  hasOlder: boolean;
  loadingOlder: boolean;
  onLoadOlder: () => void;
  actions?: MessageActions;
}) {
  const scrollRef = useRef<HTMLDivElement>(null);
  const topRef = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const anchor = useRef<{ height: number; top: number } | null>(null);
  const firstId = messages[0]?.id;

  const loadOlder = () => {
    const el = scrollRef.current;
    if (!el || !hasOlder || loadingOlder) return;
    anchor.current = { height: el.scrollHeight, top: el.scrollTop };
    onLoadOlder();
  };
  const loadOlderRef = useRef(loadOlder);
  useEffect(() => {
    loadOlderRef.current = loadOlder;
  });

  // Older messages were prepended: keep the reader's place instead of jumping.
  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (el && anchor.current) {
      el.scrollTop = el.scrollHeight - anchor.current.height + anchor.current.top;
      anchor.current = null;
    }
  }, [firstId]);

  useLayoutEffect(() => {
    const el = scrollRef.current;
    if (el && stick.current && !anchor.current) el.scrollTop = el.scrollHeight;
  }, [messages]);

  useEffect(() => {
    const root = scrollRef.current;
    const target = topRef.current;
    if (!root || !target) return;
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting) && !stick.current) loadOlderRef.current();
      },
      { root, rootMargin: "200px 0px 0px 0px" },
    );
    observer.observe(target);
    return () => observer.disconnect();
  }, []);

  return (
    <div
      className="messages"
      ref={scrollRef}
      onScroll={(event) => {
        const el = event.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < STICK_THRESHOLD_PX;
      }}
      role="log"
      aria-live="polite"
      aria-relevant="additions"
      data-testid="message-list"
    >
      <div ref={topRef} className="messages__top">
        {hasOlder ? (
          <Button variant="ghost" size="sm" loading={loadingOlder} onClick={loadOlder}>
            Load older messages
          </Button>
        ) : messages.length > 0 ? (
          <p className="messages__start muted small">This is the start of the conversation.</p>
        ) : null}
      </div>
      <div className="messages__inner">
        {messages.map((message) => (
          <MessageBubble key={message.id} message={message} agentName={agentName} actions={actions} />
        ))}
      </div>
    </div>
  );
}
