import { type FormEvent, useState } from "react";
import { Link } from "react-router";
import { ErrorAlert } from "@/components/ui/alert";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { SelectField, TextField } from "@/components/ui/field";
import { PlusIcon } from "@/components/ui/icons";
import { LoadingState } from "@/components/ui/spinner";
import { useCreateCollection } from "../api/create-collection";
import { useDeleteCollection } from "../api/delete-collection";
import { useCollections } from "../api/get-collections";
import type { Collection } from "../api/types";
import { DocumentList } from "./document-list";
import { DocumentUpload } from "./document-upload";
import { KnowledgeSearch } from "./knowledge-search";

/** The knowledge page body: collections on the left, the chosen one's documents, upload and search. */
export function KnowledgeManager() {
  const collections = useCollections();
  const [selectedId, setSelectedId] = useState<string | null>(null);
  const items = collections.data?.items ?? [];
  const selected = items.find((c) => c.id === selectedId) ?? items[0] ?? null;

  if (collections.isPending) return <LoadingState label="Loading collections…" />;
  if (collections.error) {
    return (
      <ErrorAlert
        error={collections.error}
        onRetry={() => void collections.refetch()}
        upgradeAction={
          <Link className="btn btn--primary btn--sm" to="/settings#plans">
            See plans
          </Link>
        }
      />
    );
  }
  return (
    <div className="knowledge">
      <Card className="knowledge__collections">
        <CardHeader title="Collections" description="Private to you, or shared with your organisation." />
        {items.length === 0 ? <EmptyState title="No collections yet">Create one, then drop documents into it.</EmptyState> : null}
        <ul className="list" aria-label="Collections">
          {items.map((collection) => (
            <li key={collection.id}>
              <button
                type="button"
                className={`list__item knowledge__collection ${selected?.id === collection.id ? "is-active" : ""}`}
                onClick={() => setSelectedId(collection.id)}
                aria-current={selected?.id === collection.id || undefined}
              >
                <span className="list__main">
                  <span className="list__title">{collection.name}</span>
                  <span className="muted">
                    {collection.documents} document{collection.documents === 1 ? "" : "s"}
                  </span>
                </span>
                {collection.scope === "tenant" ? <Badge tone="accent">Shared</Badge> : null}
              </button>
            </li>
          ))}
        </ul>
        <NewCollection onCreated={(c) => setSelectedId(c.id)} />
      </Card>
      {selected ? <CollectionPanel key={selected.id} collection={selected} onDeleted={() => setSelectedId(null)} /> : null}
    </div>
  );
}

function NewCollection({ onCreated }: { onCreated: (collection: Collection) => void }) {
  const create = useCreateCollection();
  const [name, setName] = useState("");
  const [scope, setScope] = useState<"private" | "tenant">("private");
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate(
      { name: name.trim(), scope },
      {
        onSuccess: (collection) => {
          setName("");
          onCreated(collection);
        },
      },
    );
  };
  return (
    <form className="form knowledge__new" onSubmit={onSubmit} aria-label="Create a collection">
      {create.error ? <ErrorAlert error={create.error} /> : null}
      <TextField label="New collection" name="collection_name" required maxLength={200} value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. Company handbook" />
      <SelectField label="Who sees it" name="scope" value={scope} onChange={(e) => setScope(e.target.value === "tenant" ? "tenant" : "private")}>
        <option value="private">Only me</option>
        <option value="tenant">Everyone in my organisation</option>
      </SelectField>
      <Button type="submit" icon={<PlusIcon />} loading={create.isPending} disabled={!name.trim()}>
        Create collection
      </Button>
    </form>
  );
}

function CollectionPanel({ collection, onDeleted }: { collection: Collection; onDeleted: () => void }) {
  const remove = useDeleteCollection();
  return (
    <div className="knowledge__panel">
      <Card>
        <CardHeader
          title={collection.name}
          description={collection.description || "Upload text, Markdown, HTML or PDF files. They are indexed in the background."}
          action={
            <Button variant="secondary" size="sm" loading={remove.isPending} onClick={() => remove.mutate(collection.id, { onSuccess: onDeleted })}>
              Delete collection
            </Button>
          }
        />
        {remove.error ? <ErrorAlert error={remove.error} /> : null}
        <DocumentUpload collectionId={collection.id} />
        <DocumentList collectionId={collection.id} />
      </Card>
      <KnowledgeSearch collectionId={collection.id} />
    </div>
  );
}
