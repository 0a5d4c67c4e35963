/**
 * The browser session. The access token lives in memory only (never storage, never a URL); the
 * refresh token is an httpOnly SameSite=Strict cookie the auth service sets for web clients
 * (`X-Kibitz-Client: web`), so script can neither read nor leak it (OWASP session guidance).
 */
import { ApiError, networkError, problemFromResponse } from "./api-error";
import type { components } from "./api-schema/auth";

export type SessionStatus = "restoring" | "authenticated" | "anonymous";

export interface AccessClaims {
  sub: string;
  tid: string;
  role: "owner" | "admin" | "member" | string;
  exp: number;
}

export interface SessionState {
  status: SessionStatus;
  accessToken: string | null;
  claims: AccessClaims | null;
  /** Why the session ended: a deliberate logout sends people to a plain login page. */
  endedBy?: "logout" | "expiry";
}

/** What the session needs of a login, register or refresh answer (the auth service's `AuthenticatedSession`). */
export type TokenAnswer = Pick<components["schemas"]["AuthenticatedSession"], "access_token" | "expires_in">;

/** Headers every auth call carries so the auth service answers with the refresh cookie. */
export const WEB_CLIENT_HEADERS = { "X-Kibitz-Client": "web" } as const;

// Renew a minute before expiry: early enough to survive a slow network, late enough to be rare.
const RENEW_BEFORE_EXPIRY_MS = 60_000;
const RETRY_AFTER_NETWORK_FAILURE_MS = 15_000;

// A flag (no secret) that this browser holds a refresh cookie: script cannot see the httpOnly
// cookie itself, and without the flag a page load asks for no refresh that could only fail.
const SESSION_MARKER_KEY = "kibitz-has-session";

function markSession(present: boolean): void {
  try {
    if (present) window.localStorage.setItem(SESSION_MARKER_KEY, "1");
    else window.localStorage.removeItem(SESSION_MARKER_KEY);
  } catch {
    // Storage disabled: page loads then always try a refresh, as before.
  }
}

// Set by the server after a single sign-on, whose redirect carries no script to set the flag.
function takeSignOnCookie(): boolean {
  const present = document.cookie.split("; ").includes(`${SESSION_MARKER_KEY}=1`);
  if (present) document.cookie = `${SESSION_MARKER_KEY}=; Max-Age=0; path=/`;
  return present;
}

function hasSessionMarker(): boolean {
  if (takeSignOnCookie()) {
    // Keep the flag at once, not only when the first refresh answers: a navigation while that
    // refresh is in flight (a click, or a slow machine) would otherwise load a page that no
    // longer knows of the cookie and shows the login page to someone signed in.
    markSession(true);
    return true;
  }
  try {
    return window.localStorage.getItem(SESSION_MARKER_KEY) === "1";
  } catch {
    return true;
  }
}

let state: SessionState = { status: "restoring", accessToken: null, claims: null };
const listeners = new Set<() => void>();
let renewTimer: ReturnType<typeof setTimeout> | undefined;
let inflightRefresh: Promise<boolean> | null = null;

const channel = typeof BroadcastChannel === "undefined" ? null : new BroadcastChannel("kibitz-session");
channel?.addEventListener("message", (event: MessageEvent) => {
  // Another tab logged out: the cookie is gone for us too.
  if (event.data === "logout") endSession("logout");
});

function setState(next: SessionState): void {
  state = next;
  for (const listener of listeners) listener();
}

export function getSession(): SessionState {
  return state;
}

export function subscribeSession(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function getAccessToken(): string | null {
  return state.accessToken;
}

/** Read (not verify: the server does that) the claims the UI needs, e.g. the role. */
export function decodeClaims(token: string): AccessClaims | null {
  const payload = token.split(".")[1];
  if (!payload) return null;
  try {
    const base64 = payload.replace(/-/g, "+").replace(/_/g, "/");
    const json = decodeURIComponent(
      Array.from(atob(base64), (char) => "%" + char.charCodeAt(0).toString(16).padStart(2, "0")).join(""),
    );
    return JSON.parse(json) as AccessClaims;
  } catch {
    return null;
  }
}

function scheduleRenewal(expiresInSeconds: number): void {
  clearTimeout(renewTimer);
  const delay = Math.max(5_000, expiresInSeconds * 1000 - RENEW_BEFORE_EXPIRY_MS);
  renewTimer = setTimeout(() => {
    void refreshSession().then((ok) => {
      if (!ok && state.status === "authenticated" && !navigator.onLine) {
        scheduleRenewal(RETRY_AFTER_NETWORK_FAILURE_MS / 1000 + RENEW_BEFORE_EXPIRY_MS / 1000);
      }
    });
  }, delay);
}

/** Start (or renew) the session from a login/register/refresh answer. */
export function startSession(answer: TokenAnswer): void {
  setState({ status: "authenticated", accessToken: answer.access_token, claims: decodeClaims(answer.access_token) });
  markSession(true);
  scheduleRenewal(answer.expires_in);
}

/** Forget the session in this tab (the server side is revoked by logout()). */
export function endSession(endedBy: "logout" | "expiry" = "expiry"): void {
  clearTimeout(renewTimer);
  markSession(false);
  if (state.status !== "anonymous") setState({ status: "anonymous", accessToken: null, claims: null, endedBy });
}

async function requestRefresh(): Promise<boolean> {
  let response: Response;
  try {
    response = await fetch("/auth/refresh", {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json", ...WEB_CLIENT_HEADERS },
      // Empty body: the refresh token travels in the httpOnly cookie.
      body: "{}",
    });
  } catch (cause) {
    throw networkError(cause);
  }
  if (!response.ok) {
    const error = await problemFromResponse(response);
    if (error.status >= 500 || error.status === 429) throw error;
    endSession();
    return false;
  }
  startSession((await response.json()) as TokenAnswer);
  return true;
}

/**
 * Trade the refresh cookie for a new access token. One request at a time per tab, and one at a
 * time across tabs (Web Locks), because the refresh token rotates and reusing a spent one revokes
 * the whole family.
 */
export function refreshSession(): Promise<boolean> {
  if (inflightRefresh) return inflightRefresh;
  const run = async (): Promise<boolean> => {
    try {
      if (typeof navigator !== "undefined" && "locks" in navigator && navigator.locks) {
        return await navigator.locks.request("kibitz-refresh", requestRefresh);
      }
      return await requestRefresh();
    } catch (error) {
      // Network trouble or a 5xx: keep the current state; callers decide whether to retry.
      if (state.status === "restoring") setState({ status: "anonymous", accessToken: null, claims: null });
      if (error instanceof ApiError) return false;
      return false;
    }
  };
  inflightRefresh = run().finally(() => {
    inflightRefresh = null;
  });
  return inflightRefresh;
}

/** At start-up: restore the session from the refresh cookie, if there is one. */
export async function restoreSession(): Promise<void> {
  if (state.status !== "restoring") return;
  if (!hasSessionMarker()) {
    setState({ status: "anonymous", accessToken: null, claims: null });
    return;
  }
  await refreshSession();
}

/** Revoke the refresh token family on the server, then forget everything here and in other tabs. */
export async function logout(): Promise<void> {
  try {
    await fetch("/auth/logout", {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        ...WEB_CLIENT_HEADERS,
        ...(state.accessToken ? { Authorization: `Bearer ${state.accessToken}` } : {}),
      },
      body: "{}",
    });
  } catch {
    // Offline: the cookie still expires on its own; forget the session locally anyway.
  }
  endSession("logout");
  channel?.postMessage("logout");
}
