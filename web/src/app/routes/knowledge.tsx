import { KnowledgeManager } from "@/features/knowledge/components/knowledge-manager";
import { PageHeader } from "./page-header";

export function KnowledgeRoute() {
  return (
    <div className="page">
      <PageHeader title="Knowledge" description="Documents your agents answer from, with the sources cited under each reply." />
      <KnowledgeManager />
    </div>
  );
}
