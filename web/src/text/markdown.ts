// A small markdown subset for message bodies, parsed into a tree that views turn into DOM nodes
// (text always as text: nothing here is ever HTML). Blocks: paragraphs, ``` fenced code,
// > quotes, - / * / 1. lists. Inline: **bold**, *italic* or _italic_, ~~strike~~, `code`, and
// http(s) URLs as links. Anything that does not parse as one of these stays literal text.
// Linear-ish on hostile input: closers are found by binary search over positions computed
// once per text, nesting is bounded (MAX_DEPTH), and bodies are at most 16 KiB.

export type Inline =
  | string
  | { t: 'b' | 'i' | 's'; c: Inline[] }
  | { t: 'code'; text: string }
  | { t: 'a'; href: string; text: string };

export type Block =
  | { t: 'p'; c: Inline[] }
  | { t: 'pre'; text: string }
  | { t: 'quote'; c: Block[] }
  | { t: 'ul'; items: Inline[][] }
  | { t: 'ol'; start: number; items: Inline[][] };

const MAX_DEPTH = 4;
const FENCE = /^\s{0,3}```/;
const QUOTE = /^\s{0,3}> ?/;
const BULLET = /^\s{0,3}[-*+]\s+/;
const ORDERED = /^\s{0,3}(\d{1,9})[.)]\s+/;

export function parse(text: string, depth = 0): Block[] {
  const lines = text.split('\n');
  const out: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (FENCE.test(line)) {
      const body: string[] = [];
      i++;
      while (i < lines.length && !/^\s{0,3}```\s*$/.test(lines[i])) body.push(lines[i++]);
      i++; // the closing fence (or the end)
      out.push({ t: 'pre', text: body.join('\n') });
    } else if (QUOTE.test(line) && depth < MAX_DEPTH) {
      const body: string[] = [];
      while (i < lines.length && QUOTE.test(lines[i])) body.push(lines[i++].replace(QUOTE, ''));
      out.push({ t: 'quote', c: parse(body.join('\n'), depth + 1) });
    } else if (BULLET.test(line)) {
      const items: Inline[][] = [];
      while (i < lines.length && BULLET.test(lines[i])) items.push(inline(lines[i++].replace(BULLET, '')));
      out.push({ t: 'ul', items });
    } else if (ORDERED.test(line)) {
      const start = Number(ORDERED.exec(line)![1]);
      const items: Inline[][] = [];
      while (i < lines.length && ORDERED.test(lines[i])) items.push(inline(lines[i++].replace(ORDERED, '')));
      out.push({ t: 'ol', start, items });
    } else if (line.trim() === '') {
      i++;
    } else {
      const body: string[] = [];
      while (i < lines.length && lines[i].trim() !== '' && !startsBlock(lines[i], depth)) body.push(lines[i++]);
      out.push({ t: 'p', c: inline(body.join('\n')) });
    }
  }
  return out;
}

function startsBlock(line: string, depth: number): boolean {
  return FENCE.test(line) || (QUOTE.test(line) && depth < MAX_DEPTH) || BULLET.test(line) || ORDERED.test(line);
}

interface Delim {
  mark: string;
  t: 'b' | 'i' | 's';
}
// Longest first: "**" before "*".
const DELIMS: Delim[] = [
  { mark: '**', t: 'b' },
  { mark: '__', t: 'b' },
  { mark: '~~', t: 's' },
  { mark: '*', t: 'i' },
  { mark: '_', t: 'i' },
];

const URL_START = /^https?:\/\//i;
const WORD = /[\p{L}\p{N}]/u;
const SPACE = /\s/;

/**
 * Positions where `mark` may close a span: not after whitespace, at the end of a run of its
 * character ("***" closes "**" at its last two); `_` not inside a word.
 */
function closers(s: string, mark: string): number[] {
  const out: number[] = [];
  for (let at = s.indexOf(mark); at >= 0; at = s.indexOf(mark, at + 1)) {
    if (at === 0 || SPACE.test(s[at - 1])) continue;
    if (s[at + mark.length] === mark[0]) continue;
    if (mark[0] === '_' && WORD.test(s[at + mark.length] ?? '')) continue;
    out.push(at);
  }
  return out;
}

function firstAtOrAfter(list: number[], pos: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (list[mid] < pos) lo = mid + 1;
    else hi = mid;
  }
  return lo < list.length ? list[lo] : -1;
}

/** A URL from `at`: up to whitespace or '<', without trailing punctuation. */
function urlAt(s: string, at: number): string | null {
  if (!URL_START.test(s.slice(at, at + 8))) return null;
  if (at > 0 && WORD.test(s[at - 1])) return null;
  let end = at;
  while (end < s.length && !SPACE.test(s[end]) && !'<>"`'.includes(s[end])) end++;
  let url = s.slice(at, end);
  for (;;) {
    const last = url[url.length - 1];
    if ('.,;:!?\'"*_~'.includes(last)) url = url.slice(0, -1);
    else if (last === ')' && url.split('(').length < url.split(')').length) url = url.slice(0, -1);
    else break;
  }
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
    if (!/^[\p{L}\p{N}.-]+$/u.test(u.hostname)) return null;
  } catch {
    return null;
  }
  return /^https?:\/\/./i.test(url) ? url : null;
}

export function inline(s: string, depth = 0): Inline[] {
  const out: Inline[] = [];
  const close = new Map<string, number[]>();
  const closersOf = (mark: string) => {
    let list = close.get(mark);
    if (!list) close.set(mark, (list = closers(s, mark)));
    return list;
  };
  let text = '';
  const flush = () => {
    if (text) out.push(text);
    text = '';
  };
  let i = 0;
  while (i < s.length) {
    const ch = s[i];
    if (ch === '`') {
      const end = s.indexOf('`', i + 1);
      if (end > i + 1) {
        flush();
        out.push({ t: 'code', text: s.slice(i + 1, end) });
        i = end + 1;
        continue;
      }
    } else if (ch === 'h' || ch === 'H') {
      const url = urlAt(s, i);
      if (url) {
        flush();
        out.push({ t: 'a', href: url, text: url });
        i += url.length;
        continue;
      }
    } else if (ch === '*' || ch === '_' || ch === '~') {
      let run = 1;
      while (s[i + run] === ch) run++;
      if (run > 3 || depth >= MAX_DEPTH) {
        // A long run of marks is text, as is everything past the nesting bound.
        text += s.slice(i, i + run);
        i += run;
        continue;
      }
      const d = DELIMS.find((x) => s.startsWith(x.mark, i));
      const from = d ? i + d.mark.length : 0;
      const opens =
        d !== undefined &&
        from < s.length &&
        !SPACE.test(s[from]) &&
        !(d.mark[0] === '_' && i > 0 && WORD.test(s[i - 1]));
      if (opens) {
        const end = firstAtOrAfter(closersOf(d.mark), from + 1);
        if (end > 0) {
          flush();
          out.push({ t: d.t, c: inline(s.slice(from, end), depth + 1) });
          i = end + d.mark.length;
          continue;
        }
      }
      // Not a span: the whole run of the mark stays text (so "***" is not retried char by char).
      if (d) {
        text += d.mark;
        i += d.mark.length;
        continue;
      }
    }
    text += ch;
    i++;
  }
  flush();
  return out;
}
