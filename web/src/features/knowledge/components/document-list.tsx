import { ErrorAlert } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { LoadingState } from "@/components/ui/spinner";
import { formatBytes } from "../document-size";
import { useDeleteDocument } from "../api/delete-document";
import { useDocuments } from "../api/get-documents";
import type { KnowledgeDocument } from "../api/types";

const STATUS_TONE = { pending: "neutral", indexing: "warning", indexed: "success", failed: "danger" } as const;

/** The collection's documents and their indexing status (polled while any is in progress). */
export function DocumentList({ collectionId }: { collectionId: string }) {
  const documents = useDocuments(collectionId);
  const remove = useDeleteDocument(collectionId);
  if (documents.isPending) return <LoadingState label="Loading documents…" />;
  if (documents.error) return <ErrorAlert error={documents.error} onRetry={() => void documents.refetch()} />;
  if (documents.data.items.length === 0) return <p className="muted">No documents yet.</p>;
  return (
    <ul className="list" aria-label="Documents">
      {documents.data.items.map((document: KnowledgeDocument) => (
        <li key={document.id} className="list__item" data-testid="document" data-status={document.status}>
          <span className="list__main">
            <span className="list__title">{document.title}</span>
            <span className="muted">
              {formatBytes(document.size_bytes)}
              {document.status === "indexed" ? ` · ${document.chunks} chunk${document.chunks === 1 ? "" : "s"}` : ""}
              {document.status === "failed" && document.error ? ` · ${document.error}` : ""}
            </span>
          </span>
          <Badge tone={STATUS_TONE[document.status]}>{document.status}</Badge>
          <button type="button" className="btn btn--ghost btn--sm" aria-label={`Delete ${document.title}`} onClick={() => remove.mutate(document.id)}>
            Delete
          </button>
        </li>
      ))}
    </ul>
  );
}
