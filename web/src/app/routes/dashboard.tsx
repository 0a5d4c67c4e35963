import { Link } from "react-router";
import { AgentSummary } from "@/features/agents/components/agent-summary";
import { useMyAgents } from "@/features/agents/api/get-my-agents";
import { RecentChats } from "@/features/chat/components/recent-chats";
import { UsageOverview } from "@/features/tenants/components/usage-overview";
import { useMe } from "@/features/users/api/get-me";
import { PageHeader } from "./page-header";

function greeting(): string {
  const hour = new Date().getHours();
  return hour < 12 ? "Good morning" : hour < 18 ? "Good afternoon" : "Good evening";
}

export function DashboardRoute() {
  const me = useMe();
  const agents = useMyAgents();
  const firstName = me.data?.full_name?.split(" ")[0];
  const agentName = (id: string) => agents.data?.items.find((agent) => agent.id === id)?.name;
  return (
    <div className="page">
      <PageHeader
        title="Dashboard"
        description={`${greeting()}${firstName ? `, ${firstName}` : ""}. Here is what is happening in your workspace.`}
        action={
          <Link className="btn btn--primary" to="/chat">
            New chat
          </Link>
        }
      />
      <UsageOverview agentCount={agents.data?.items.length ?? null} />
      <div className="grid-2">
        <RecentChats agentName={agentName} />
        <AgentSummary />
      </div>
    </div>
  );
}
