import { isRouteErrorResponse, useRouteError } from "react-router";
import { EmptyState } from "@/components/ui/empty-state";

/** Shown instead of a blank page when a page fails to render. */
export function RouteError() {
  const error = useRouteError();
  const detail = isRouteErrorResponse(error) ? `${error.status} ${error.statusText}` : error instanceof Error ? error.message : "Unknown error";
  return (
    <div className="page-center page-center--full">
      <EmptyState
        title="Something went wrong"
        action={
          <button type="button" className="btn btn--primary" onClick={() => window.location.assign("/dashboard")}>
            Reload the app
          </button>
        }
      >
        This page hit an unexpected error ({detail}). Reloading usually helps.
      </EmptyState>
    </div>
  );
}
