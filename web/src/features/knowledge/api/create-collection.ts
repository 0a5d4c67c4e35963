import { useMutation, useQueryClient } from "@tanstack/react-query";
import { apiRequest } from "@/lib/api-client";
import { type Collection, type CollectionInput, collectionsQueryKey } from "./types";

/** POST /knowledge/collections. */
export function createCollection(input: CollectionInput): Promise<Collection> {
  return apiRequest<Collection>("/knowledge/collections", { method: "POST", body: input });
}

export function useCreateCollection() {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: createCollection,
    onSuccess: () => queryClient.invalidateQueries({ queryKey: collectionsQueryKey }),
  });
}
