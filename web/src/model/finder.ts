// The "new message" finder: which people a query names. The server's directory finds a name
// prefix among the people this user may DM (docs/api.md, GET /users?q=); the client adds the
// people it has seen whose name holds the query elsewhere (a later word, a substring). Ranked:
// equal name, then name prefix, then word prefix, then substring; ties by name.

import type { User } from '../types';

/** How well `name` matches the lower-cased query `q`: 0 best, -1 no match. */
export function matchRank(name: string, q: string): number {
  const n = name.toLowerCase();
  if (!q) return -1;
  if (n === q) return 0;
  if (n.startsWith(q)) return 1;
  const at = n.indexOf(q);
  if (at < 0) return -1;
  return /[\s._-]/.test(n[at - 1]) ? 2 : 3;
}

/** The users among `people` whose name matches `query`, best first, at most `limit`. */
export function findPeople(people: Iterable<User>, query: string, limit = 20): User[] {
  const q = query.trim().toLowerCase();
  const hits: { u: User; r: number }[] = [];
  const seen = new Set<string>();
  for (const u of people) {
    if (seen.has(u.id)) continue;
    seen.add(u.id);
    const r = matchRank(u.name, q);
    if (r >= 0) hits.push({ u, r });
  }
  hits.sort((a, b) => a.r - b.r || a.u.name.localeCompare(b.u.name) || a.u.id.localeCompare(b.u.id));
  return hits.slice(0, limit).map((h) => h.u);
}
