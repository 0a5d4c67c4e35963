import type { Message } from "../api/types";

/** The sources an agent's reply was given, numbered as the reply cites them; a click shows the passage. */
export function Citations({ citations }: { citations: NonNullable<Message["citations"]> }) {
  if (citations.length === 0) return null;
  return (
    <section className="citations" aria-label="Sources">
      <p className="citations__label">Sources</p>
      <ol className="citations__list">
        {citations.map((citation, index) => (
          <li key={`${citation.document_id}-${index}`}>
            <details className="citation" data-testid="citation">
              <summary>
                <span className="citation__number">[{index + 1}]</span> {citation.title}
              </summary>
              <p className="citation__text">{citation.text}</p>
            </details>
          </li>
        ))}
      </ol>
    </section>
  );
}
