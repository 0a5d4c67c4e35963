import { Navigate, Outlet, useLocation } from "react-router";
import { LoadingState } from "@/components/ui/spinner";
import { useSession } from "@/lib/session-hooks";

/** Protected pages: wait for the session to be restored, else go to /login?next=… */
export function RequireAuth() {
  const session = useSession();
  const location = useLocation();
  if (session.status === "restoring") {
    return (
      <div className="page-center page-center--full">
        <LoadingState label="Signing you in…" />
      </div>
    );
  }
  if (session.status === "anonymous") {
    if (session.endedBy === "logout") return <Navigate to="/login" replace />;
    const next = location.pathname + location.search;
    return <Navigate to={`/login?next=${encodeURIComponent(next)}`} replace />;
  }
  return <Outlet />;
}

/** Login and register: a signed-in person goes straight to the dashboard. */
export function PublicOnly() {
  const session = useSession();
  if (session.status === "restoring") {
    return (
      <div className="page-center page-center--full">
        <LoadingState label="Loading…" />
      </div>
    );
  }
  if (session.status === "authenticated") return <Navigate to="/dashboard" replace />;
  return <Outlet />;
}
