// One conversation as this tab holds it: its messages, where history paging stands, and its
// delivery and read cursors. Invariant: `msgs` is in ascending seq with no duplicates, and is
// replaced (never mutated) when it changes, so views may compare it by identity. The directory
// owns the Conv objects; history.ts, receipts.ts and dispatch.ts edit them in place.

import type { FileMeta, WireMessage } from '../types';

export interface Msg {
  id: string;
  seq: number;
  from: string;
  type: string;
  body: string;
  createdAt: number;
  cid?: string;
  /** The rev of its last change (0: never changed); a copy is replaced only by a higher one. */
  rev: number;
  editedAt?: number;
  deleted?: boolean;
  replyTo?: string;
  reactions?: Reaction[];
  file?: FileMeta;
}

export interface Reaction {
  emoji: string;
  count: number;
  users: string[];
}

export interface Conv {
  key: string; // "channel:<id>" | "dm:<user id>"
  kind: 'channel' | 'dm';
  peerOrChannel: string; // the id after the colon
  title: string;
  spaceId?: string;
  joined: boolean;
  lastSeq: number;
  readSeq: number;
  /** When the newest message known was written (ms): DMs are listed by it, newest first. */
  lastAt: number;
  msgs: Msg[]; // ascending seq, unique; replaced (not mutated) on change
  loaded: boolean; // the newest history page was fetched
  hasOlder: boolean;
  loadingOlder: boolean;
  readSent: number;
  /** A read frame went out less than READ_MIN_INTERVAL_MS ago (receipts.ts). */
  readHeld: boolean;
  ackDirty: boolean;
  ackSent: number;
  filling: boolean;
  /** The change cursor: the highest rev of a change frame applied (sync `changes`). */
  rev: number;
  /** Messages after the read marker that mention us (the server's count). */
  mentions: number;
  /** DMs: the peer's read marker (the "Seen" mark). */
  peerReadSeq: number;
  /** Who types here, by user id: when their indicator expires (ms since the epoch). */
  typing: Record<string, number>;
}

/** A conversation nothing is known of yet; a DM is ours by definition, a channel once listed. */
export function newConv(key: string): Conv {
  const [kind, id] = key.split(':') as ['channel' | 'dm', string];
  return {
    key,
    kind,
    peerOrChannel: id,
    title: '',
    joined: kind === 'dm',
    lastSeq: 0,
    readSeq: 0,
    lastAt: 0,
    msgs: [],
    loaded: false,
    hasOlder: false,
    loadingOlder: false,
    readSent: 0,
    readHeld: false,
    ackDirty: false,
    ackSent: 0,
    filling: false,
    rev: 0,
    mentions: 0,
    peerReadSeq: 0,
    typing: {},
  };
}

export function toMsg(m: WireMessage): Msg {
  const out: Msg = {
    id: m.id,
    seq: m.seq,
    from: m.from,
    type: m.type,
    body: m.body ?? '',
    createdAt: m.created_at,
    cid: m.cid,
    rev: m.rev ?? 0,
  };
  if (m.edited_at) out.editedAt = m.edited_at;
  if (m.deleted) out.deleted = true;
  if (m.reply_to) out.replyTo = m.reply_to;
  if (m.reactions?.length) out.reactions = m.reactions;
  if (m.file && !m.deleted) out.file = m.file;
  return out;
}

export function topSeq(c: Conv): number {
  return c.msgs.length ? c.msgs[c.msgs.length - 1].seq : 0;
}

/**
 * The end of the unbroken run of held messages that starts at the oldest one: what this tab
 * surely has. ACKs and sync cursors use it, so a message still missing below a newer one
 * (e.g. our own, ACKed by `sent` first) is not skipped.
 */
export function contiguousTop(c: Conv): number {
  const m = c.msgs;
  let i = 0;
  while (i + 1 < m.length && m[i + 1].seq === m[i].seq + 1) i++;
  return m.length ? m[i].seq : 0;
}

/**
 * Merges messages into the conversation by seq: a new one is inserted, a held one is replaced
 * only by a copy with a higher rev (a newer state: edited, deleted, reacted to), else dropped.
 * True if any was new.
 */
export function insert(c: Conv, list: Msg[]): boolean {
  let msgs = c.msgs;
  let copied = false;
  let fresh = false;
  for (const m of list) {
    const lo = lowerBound(msgs, m.seq);
    const held = msgs[lo]?.seq === m.seq ? msgs[lo] : undefined;
    if (held && held.rev >= m.rev) continue;
    if (!copied) msgs = msgs.slice();
    copied = true;
    if (held) {
      msgs[lo] = held.cid && !m.cid ? { ...m, cid: held.cid } : m;
      continue;
    }
    msgs.splice(lo, 0, m);
    fresh = true;
    if (m.seq > c.lastSeq) c.lastSeq = m.seq;
    if (m.createdAt > c.lastAt) c.lastAt = m.createdAt;
  }
  if (copied) c.msgs = msgs;
  return fresh;
}

/** The held message with this id (a reply's original), newest first. */
export function findById(c: Conv, id: string): Msg | undefined {
  for (let i = c.msgs.length - 1; i >= 0; i--) if (c.msgs[i].id === id) return c.msgs[i];
  return undefined;
}

/** Messages held per conversation at most: past MAX_HELD + TRIM_SLACK the oldest go. */
export const MAX_HELD = 10_000;
const TRIM_SLACK = 1_000;

/**
 * Bounds what a conversation holds: once it holds more than MAX_HELD + TRIM_SLACK messages the
 * oldest are dropped down to MAX_HELD (paging brings them back). True if any were dropped.
 */
export function trim(c: Conv): boolean {
  if (c.msgs.length <= MAX_HELD + TRIM_SLACK) return false;
  c.msgs = c.msgs.slice(c.msgs.length - MAX_HELD);
  c.hasOlder = c.msgs[0].seq > 1;
  return true;
}

/** The index of the first message in `msgs` (ascending seq) with seq >= `seq`, or its length. */
export function lowerBound(msgs: readonly Msg[], seq: number): number {
  let lo = 0;
  let hi = msgs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (msgs[mid].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The seq to page forward from to fill the first hole: below the first missing message, or
 * the newest held one when the conversation goes further (lastSeq); -1 when nothing is missing.
 */
export function nextGap(c: Conv): number {
  for (let i = 0; i + 1 < c.msgs.length; i++) {
    if (c.msgs[i + 1].seq !== c.msgs[i].seq + 1) return c.msgs[i].seq;
  }
  return c.lastSeq > topSeq(c) ? topSeq(c) : -1;
}

/**
 * The conversations this tab holds messages of, with the last seq it surely has (`cursors` of
 * `sync`) and the last rev of a change it applied (`changes`).
 */
export function syncCursors(convs: Iterable<Conv>): { cursors: Record<string, number>; changes: Record<string, number> } {
  const cursors: Record<string, number> = {};
  const changes: Record<string, number> = {};
  for (const c of convs) {
    if (c.joined && c.msgs.length) {
      cursors[c.key] = contiguousTop(c);
      changes[c.key] = c.rev;
    }
  }
  return { cursors, changes };
}
