import { Link } from "react-router";
import { ApiError } from "@/lib/api-error";
import { useCollectionOptions } from "../api/get-collection-options";

/** Tick the knowledge collections the agent answers from (its replies cite them). */
export function CollectionPicker({ value, onChange }: { value: string[]; onChange: (ids: string[]) => void }) {
  const options = useCollectionOptions();
  if (options.isPending) return null;
  const notInPlan = options.error instanceof ApiError && options.error.status === 403;
  return (
    <fieldset className="field">
      <legend className="field__label">Knowledge</legend>
      {notInPlan ? (
        <p className="field__hint">
          Your plan does not include knowledge collections. <Link to="/settings#plans">See plans</Link>
        </p>
      ) : options.error ? (
        <p className="field__hint">Collections cannot be listed right now.</p>
      ) : options.data.items.length === 0 ? (
        <p className="field__hint">
          No collections yet: <Link to="/knowledge">add documents</Link> for the agent to answer from.
        </p>
      ) : (
        <>
          {options.data.items.map((collection) => (
            <label key={collection.id} className="checkbox">
              <input
                type="checkbox"
                name="knowledge_collection_ids"
                value={collection.id}
                checked={value.includes(collection.id)}
                onChange={(e) => onChange(e.target.checked ? [...value, collection.id] : value.filter((id) => id !== collection.id))}
              />
              {collection.name}
            </label>
          ))}
          <p className="field__hint">Each reply searches these and cites the passages it was given.</p>
        </>
      )}
    </fieldset>
  );
}
