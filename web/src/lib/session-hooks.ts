import { useSyncExternalStore } from "react";
import { type SessionState, getSession, subscribeSession } from "./auth-session";

/** The current session, re-rendering when it changes (login, refresh, logout). */
export function useSession(): SessionState {
  return useSyncExternalStore(subscribeSession, getSession, getSession);
}

/** Owners and admins manage the plan, members and invites. */
export function useCanManageTenant(): boolean {
  const { claims } = useSession();
  return claims?.role === "owner" || claims?.role === "admin";
}
