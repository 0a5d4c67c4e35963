/**
 * A stable colour per agent, derived from its id: the same agent has the same avatar on every
 * page and every reload, and agents side by side in a panel are told apart at a glance.
 */

// FNV-1a (32 bit): cheap, and spreads ids that differ only in their last characters (UUIDv7
// made in the same millisecond share their start).
function hash(text: string): number {
  let value = 0x811c9dc5;
  for (let index = 0; index < text.length; index += 1) {
    value ^= text.charCodeAt(index);
    value = Math.imul(value, 0x01000193);
  }
  return value >>> 0;
}

/** The avatar background for an agent: a hue from its id; saturation and lightness keep white text readable (≥ 4.5:1). */
export function agentColour(agentId: string): string {
  return `hsl(${hash(agentId) % 360} 62% 36%)`;
}
