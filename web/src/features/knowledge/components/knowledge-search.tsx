import { type FormEvent, useState } from "react";
import { ErrorAlert } from "@/components/ui/alert";
import { Button } from "@/components/ui/button";
import { Card, CardHeader } from "@/components/ui/card";
import { TextField } from "@/components/ui/field";
import { SearchIcon } from "@/components/ui/icons";
import { useSearchKnowledge } from "../api/search";

/** Try retrieval: the chunks an agent would be given for this question. */
export function KnowledgeSearch({ collectionId }: { collectionId: string }) {
  const search = useSearchKnowledge();
  const [query, setQuery] = useState("");
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    search.mutate({ query: query.trim(), collection_ids: [collectionId], top_k: 5 });
  };
  return (
    <Card>
      <CardHeader title="Try a search" description="The passages an agent with this collection would be given." />
      <form className="form knowledge__search" onSubmit={onSubmit} role="search">
        <TextField label="Question" name="query" required maxLength={4000} value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Ask something your documents answer" />
        <Button type="submit" icon={<SearchIcon />} loading={search.isPending} disabled={!query.trim()}>
          Search
        </Button>
      </form>
      {search.error ? <ErrorAlert error={search.error} /> : null}
      {search.data ? (
        search.data.items.length === 0 ? (
          <p className="muted">Nothing found (documents still indexing?).</p>
        ) : (
          <ol className="knowledge__hits" aria-label="Search results">
            {search.data.items.map((hit) => (
              <li key={hit.chunk_id} data-testid="search-hit">
                <p className="knowledge__hit-title">
                  {hit.title} <span className="muted">score {hit.score.toFixed(2)}</span>
                </p>
                <p className="knowledge__hit-text">{hit.text}</p>
              </li>
            ))}
          </ol>
        )
      ) : null}
    </Card>
  );
}
