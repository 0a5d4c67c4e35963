/** Knowledge API shapes, generated from the knowledge service's OpenAPI (`make api-types`). */
import type { components } from "@/lib/api-schema/knowledge";

type Schemas = components["schemas"];

export type Collection = Schemas["CollectionRead"];
export type CollectionList = Schemas["CollectionList"];
export type CollectionInput = Schemas["CollectionCreate"];
export type KnowledgeDocument = Schemas["DocumentRead"];
export type DocumentList = Schemas["DocumentList"];
export type SearchHit = Schemas["SearchHit"];
export type SearchResult = Schemas["SearchResult"];

export const collectionsQueryKey = ["knowledge", "collections"] as const;
export const documentsQueryKey = (collectionId: string) => ["knowledge", "documents", collectionId] as const;

export function isSettled(document: Pick<KnowledgeDocument, "status">): boolean {
  return document.status === "indexed" || document.status === "failed";
}
