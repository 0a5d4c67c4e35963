import { useEffect, useMemo } from "react";
import { useParams } from "react-router";
import { useMyAgents } from "@/features/agents/api/get-my-agents";
import { ChatView } from "@/features/chat/components/chat-view";
import { NewChat } from "@/features/chat/components/new-chat";
import { useMe } from "@/features/users/api/get-me";

export function ChatRoute() {
  const { chatId } = useParams();
  const agents = useMyAgents();
  const me = useMe();
  const options = useMemo(() => (agents.data?.items ?? []).map(({ id, name, model }) => ({ id, name, model })), [agents.data]);
  useEffect(() => {
    document.title = chatId ? "Chat · kibitz" : "New chat · kibitz";
  }, [chatId]);
  if (chatId) return <ChatView key={chatId} chatId={chatId} agents={options} />;
  return (
    <NewChat
      agents={options}
      loading={agents.isPending}
      defaultAgentId={me.data?.preferences.default_agent_id}
      awaitTitle={me.data?.preferences.propose_titles === true}
    />
  );
}
