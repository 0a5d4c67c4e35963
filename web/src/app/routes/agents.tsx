import { AgentsManager } from "@/features/agents/components/agents-manager";
import { AllowedModels } from "@/features/agents/components/allowed-models";
import { PageHeader } from "./page-header";

export function AgentsRoute() {
  return (
    <div className="page">
      <PageHeader title="Agents" description="Configure the assistants you chat with: a provider, a model, instructions and a temperature." />
      <AgentsManager />
      <AllowedModels />
    </div>
  );
}
