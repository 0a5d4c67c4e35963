import { Link } from "react-router";
import { EmptyState } from "@/components/ui/empty-state";
import { SearchIcon } from "@/components/ui/icons";
import { PageHeader } from "./page-header";

export function NotFoundRoute() {
  return (
    <div className="page">
      <PageHeader title="Page not found" />
      <EmptyState title="Nothing here" icon={<SearchIcon size={22} />} action={<Link className="btn btn--primary" to="/dashboard">Back to the dashboard</Link>}>
        The page you asked for does not exist.
      </EmptyState>
    </div>
  );
}
