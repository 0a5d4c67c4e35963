import { ApiError, networkError } from "@/lib/api-error";
import { getAccessToken, refreshSession } from "@/lib/auth-session";
import type { KnowledgeDocument } from "./types";

/**
 * POST /knowledge/collections/{id}/documents as multipart, with upload progress (0..1). fetch
 * cannot report upload progress, so this one call uses XMLHttpRequest; 401 renews the session once.
 */
export async function uploadDocument(collectionId: string, file: File, onProgress: (fraction: number) => void): Promise<KnowledgeDocument> {
  const send = () =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const request = new XMLHttpRequest();
      request.open("POST", `/knowledge/collections/${encodeURIComponent(collectionId)}/documents`);
      request.setRequestHeader("Accept", "application/json");
      const token = getAccessToken();
      if (token) request.setRequestHeader("Authorization", `Bearer ${token}`);
      request.upload.onprogress = (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      };
      request.onload = () => resolve({ status: request.status, body: request.responseText });
      request.onerror = () => reject(networkError(new Error("upload failed")));
      const form = new FormData();
      form.append("file", file);
      request.send(form);
    });
  let answer = await send();
  if (answer.status === 401 && (await refreshSession())) answer = await send();
  let parsed: unknown = null;
  try {
    parsed = answer.body ? JSON.parse(answer.body) : null;
  } catch {
    parsed = null;
  }
  if (answer.status !== 202) {
    const problem = parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : { title: "Upload failed" };
    throw new ApiError(answer.status, problem);
  }
  onProgress(1);
  return parsed as KnowledgeDocument;
}
