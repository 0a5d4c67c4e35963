/** An RFC 9457 problem answer (or a network failure) turned into something the UI can show. */
export interface ProblemFieldError {
  field: string;
  message: string;
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  errors?: ProblemFieldError[];
  [extra: string]: unknown;
}

export class ApiError extends Error {
  readonly status: number;
  readonly problem: Problem;
  /** Seconds the server asked us to wait (Retry-After), when it said so. */
  readonly retryAfter: number | null;

  constructor(status: number, problem: Problem, retryAfter: number | null = null) {
    super(problem.detail ?? problem.title ?? `Request failed (${status})`);
    this.name = "ApiError";
    this.status = status;
    this.problem = problem;
    this.retryAfter = retryAfter;
  }

  /** A network failure (offline, connection reset) has status 0. */
  get isNetworkError(): boolean {
    return this.status === 0;
  }

  get isLimitReached(): boolean {
    return this.status === 429;
  }

  /** The gateway's requests-per-minute limit (not a plan quota such as messages per day). */
  get isRateLimited(): boolean {
    return this.status === 429 && typeof this.problem.type === "string" && this.problem.type.endsWith("/rate-limited");
  }

  get isServiceUnavailable(): boolean {
    return this.status === 503;
  }
}

export function networkError(cause: unknown): ApiError {
  const detail = navigator.onLine
    ? "Could not reach the server. Check your connection and try again."
    : "You are offline. We will retry when the connection is back.";
  const error = new ApiError(0, { title: "Network error", detail });
  error.cause = cause;
  return error;
}

/** Read a problem+json (or any JSON/text) error body without ever throwing. */
export async function problemFromResponse(response: Response): Promise<ApiError> {
  let problem: Problem = { status: response.status, title: response.statusText || "Request failed" };
  try {
    const text = await response.text();
    if (text) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed && typeof parsed === "object") {
          problem = { ...problem, ...(parsed as Problem) };
          // FastAPI's default shape: {"detail": "..."} or {"detail": [{loc, msg}]}
          if (Array.isArray(problem.detail)) {
            problem.detail = (problem.detail as { msg?: string }[]).map((item) => item.msg ?? "").join("; ");
          }
        }
      } catch {
        problem.detail = text.slice(0, 300);
      }
    }
  } catch {
    // body unreadable: keep the status line
  }
  const retryHeader = response.headers.get("Retry-After");
  const retryAfter = retryHeader && /^\d+$/.test(retryHeader) ? Number(retryHeader) : null;
  return new ApiError(response.status, problem, retryAfter);
}

/** The sentence to show a person for any error thrown by our API helpers. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) {
    if (error.problem.detail) return String(error.problem.detail);
    if (error.problem.title) return String(error.problem.title);
    return `Request failed (${error.status})`;
  }
  if (error instanceof Error) return error.message;
  return "Something went wrong.";
}

/** The problem's per-field messages (`errors`), by field name: shown next to their fields. */
export function fieldErrors(error: unknown): Record<string, string> {
  if (!(error instanceof ApiError)) return {};
  const byField: Record<string, string> = {};
  for (const item of error.problem.errors ?? []) byField[item.field] ??= item.message;
  return byField;
}
