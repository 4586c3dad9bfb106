// The composer's @-autocomplete (docs/protocol.md "Mentions"): the `@word` being typed at the
// caret, the people and broadcast words it may complete to, and the text once one is picked
// (`<@USER_ID>`, `<!channel>`, `<!here>`, then a space).

import { matchRank } from './finder';

/** An `@` query at the caret: where its `@` is, and what follows it. */
export interface MentionQuery {
  start: number;
  prefix: string;
}

export type Suggestion = { kind: 'user'; id: string; name: string } | { kind: 'all'; word: 'channel' | 'here' };

/** At most this many suggestions show. */
export const MAX_SUGGESTIONS = 8;

/** The `@word` ending at `caret`, if the `@` starts the text or follows a space; else null. */
export function mentionQuery(text: string, caret: number): MentionQuery | null {
  const before = text.slice(0, caret);
  const m = /(^|\s)@([^\s@<>]{0,32})$/.exec(before);
  if (!m) return null;
  return { start: caret - m[2].length - 1, prefix: m[2] };
}

/**
 * What `prefix` may complete to: members by name (best match first), then `@channel` and
 * `@here` when `broadcast` (a channel whose sender may use them); never oneself.
 */
export function suggestions(
  members: readonly { id: string; name: string }[],
  prefix: string,
  me: string | undefined,
  broadcast: boolean,
): Suggestion[] {
  const q = prefix.toLowerCase();
  const people = members
    .filter((u) => u.id !== me)
    .map((u) => ({ u, r: q ? matchRank(u.name, q) : 1 }))
    .filter((h) => h.r >= 0)
    .sort((a, b) => a.r - b.r || a.u.name.localeCompare(b.u.name))
    .map((h): Suggestion => ({ kind: 'user', id: h.u.id, name: h.u.name }));
  const words: Suggestion[] = broadcast
    ? (['channel', 'here'] as const).filter((w) => w.startsWith(q)).map((word) => ({ kind: 'all', word }))
    : [];
  return [...people, ...words].slice(0, MAX_SUGGESTIONS);
}

/** The text with the query replaced by the pick's token and a space; the caret after it. */
export function complete(text: string, q: MentionQuery, caret: number, pick: Suggestion): { text: string; caret: number } {
  const token = pick.kind === 'user' ? `<@${pick.id}> ` : `<!${pick.word}> `;
  const out = text.slice(0, q.start) + token + text.slice(caret);
  return { text: out, caret: q.start + token.length };
}
