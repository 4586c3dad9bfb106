// A search hit's excerpt (GET /api/v1/search: `snippet` and `marks`, [start, length] in UTF-16
// code units, in order) as plain-text pieces, the matched ones flagged. Rendering the pieces as
// text nodes (and <mark> for hits) never interprets the message as markup.

export interface Piece {
  text: string;
  hit: boolean;
}

export function highlight(snippet: string, marks: readonly (readonly [number, number])[]): Piece[] {
  const out: Piece[] = [];
  let at = 0;
  for (const [start, length] of marks) {
    // Marks out of order, overlapping or out of range are ignored rather than trusted.
    if (start < at || length <= 0 || start + length > snippet.length) continue;
    if (start > at) out.push({ text: snippet.slice(at, start), hit: false });
    out.push({ text: snippet.slice(start, start + length), hit: true });
    at = start + length;
  }
  if (at < snippet.length) out.push({ text: snippet.slice(at), hit: false });
  return out;
}
