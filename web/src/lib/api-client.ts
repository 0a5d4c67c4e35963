/** One fetch wrapper for every API call: same origin, bearer token, one retry after a 401. */
import { ApiError, networkError, problemFromResponse } from "./api-error";
import { WEB_CLIENT_HEADERS, endSession, getAccessToken, refreshSession } from "./auth-session";

export interface RequestOptions {
  method?: "GET" | "POST" | "PATCH" | "PUT" | "DELETE";
  body?: unknown;
  query?: Record<string, string | number | undefined | null>;
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Public routes (login, register) carry no token and are never retried. */
  anonymous?: boolean;
}

export function buildUrl(path: string, query?: RequestOptions["query"]): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const search = params.toString();
  return search ? `${path}?${search}` : path;
}

async function send(path: string, options: RequestOptions, accept: string): Promise<Response> {
  const headers: Record<string, string> = { Accept: accept, ...options.headers };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  if (path.startsWith("/auth/")) Object.assign(headers, WEB_CLIENT_HEADERS);
  const token = options.anonymous ? null : getAccessToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    return await fetch(buildUrl(path, options.query), {
      method: options.method ?? "GET",
      headers,
      credentials: "same-origin",
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
  } catch (cause) {
    if (cause instanceof DOMException && cause.name === "AbortError") throw cause;
    throw networkError(cause);
  }
}

/** Send a request and hand back the raw response (for streams); throws ApiError on a non-2xx. */
export async function apiResponse(path: string, options: RequestOptions = {}, accept = "application/json"): Promise<Response> {
  let response = await send(path, options, accept);
  if (response.status === 401 && !options.anonymous) {
    // The access token expired or was revoked: renew once and retry once.
    const renewed = await refreshSession();
    if (!renewed) {
      endSession();
      throw await problemFromResponse(response);
    }
    response = await send(path, options, accept);
  }
  if (!response.ok) throw await problemFromResponse(response);
  return response;
}

/** Send a JSON request and parse the JSON answer (undefined for 204). */
export async function apiRequest<T>(path: string, options: RequestOptions = {}): Promise<T> {
  const response = await apiResponse(path, options);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  if (!text) return undefined as T;
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ApiError(response.status, { title: "Unexpected answer", detail: "The server sent something that is not JSON." });
  }
}
