import { useCallback, useEffect, useLayoutEffect, useMemo, useRef } from "react";
import { Button } from "@/components/ui/button";
import { type Message, isInFlight } from "../api/types";
import { splitDelegated } from "../delegation";
import type { ChatAgent } from "../participants";
import { DelegatedAnswers } from "./delegated-answers";
import { type MessageActions, MessageBubble, type ShownMessage } from "./message-bubble";

// Within this many pixels of the bottom, new text keeps the view pinned to the end.
const STICK_THRESHOLD_PX = 120;

/**
 * The scrolling conversation: pinned to the newest text, loading older pages at the top. Each
 * reply is labelled with its agent (`agents`; a reply without one is the default agent's), and
 * an orchestrator's delegated answers are nested under its reply.
 */
export function MessageList({
  messages,
  agents,
  hasOlder,
  loadingOlder,
  onLoadOlder,
  actions,
}: {
  messages: ShownMessage[];
  /** The agents replies may come from, the chat's default agent first. */
  agents: ChatAgent[];
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
  const { conversation, delegated } = useMemo(() => splitDelegated(messages), [messages]);
  // A panel's later replies wait for the ones before them (they run one after another).
  const answering = conversation.find((message) => message.sender === "agent" && isInFlight(message))?.id;
  const agentFor = useCallback(
    (message: Message): Pick<ChatAgent, "id" | "name"> => {
      const id = message.agent_id ?? agents[0]?.id;
      return agents.find((agent) => agent.id === id) ?? { id: id ?? "agent", name: "Agent" };
    },
    [agents],
  );

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
        {conversation.map((message) => {
          const answers = delegated.get(message.id);
          return answers ? (
            <div key={message.id} className="message-group">
              <MessageBubble message={message} agent={agentFor(message)} queued={isInFlight(message) && message.id !== answering} actions={actions} />
              <DelegatedAnswers messages={answers} agentFor={agentFor} />
            </div>
          ) : (
            <MessageBubble key={message.id} message={message} agent={agentFor(message)} queued={message.sender === "agent" && isInFlight(message) && message.id !== answering} actions={actions} />
          );
        })}
      </div>
    </div>
  );
}
