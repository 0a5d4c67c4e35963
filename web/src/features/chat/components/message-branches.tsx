/** `‹ 2/3 ›`: which of a message's versions (its siblings) is on screen, and arrows to the others. */
export function MessageBranches({ messageId, siblingIds, onSwitch }: { messageId: string; siblingIds: string[]; onSwitch: (messageId: string) => void }) {
  const index = siblingIds.indexOf(messageId);
  if (siblingIds.length < 2 || index === -1) return null;
  return (
    <nav className="message__branches" aria-label="Versions of this message">
      <button type="button" className="copy-btn" aria-label="Previous version" disabled={index === 0} onClick={() => onSwitch(siblingIds[index - 1] ?? messageId)}>
        ‹
      </button>
      <span className="message__branch-position" data-testid="branch-position">
        {index + 1}/{siblingIds.length}
      </span>
      <button type="button" className="copy-btn" aria-label="Next version" disabled={index === siblingIds.length - 1} onClick={() => onSwitch(siblingIds[index + 1] ?? messageId)}>
        ›
      </button>
    </nav>
  );
}
