// Sends waiting for the server's `sent`. Each carries a client id (cid) the server deduplicates
// on, so a send is repeated with the same cid until it is answered: on every (re)connect, on
// the user's Retry after a timeout, and after a reload of the tab (the list is kept in
// sessionStorage per user). `sent`, or our own `msg` carrying the cid, settles it; an `error`
// naming the cid fails it, for good when retrying cannot help. Callers: chat.ts, dispatch.ts.

import type { FileMeta } from '../types';
import type { KeyValueStore, Timers, Transport } from './ports';

/** queued: waiting for a connection; sending: on the wire, no ACK yet; failed: see error. */
export type PendingStatus = 'queued' | 'sending' | 'failed';

export interface Pending {
  cid: string;
  conv: string;
  body: string;
  createdAt: number;
  /** A reply: the id of the message it answers. */
  replyTo?: string;
  /** A file message: the uploaded file (body is its caption, possibly empty). */
  file?: FileMeta;
  status: PendingStatus;
  error?: string;
  /** The server answered with an error: it did not store the message. */
  refused?: boolean;
  /** Refused for good (e.g. too large, not a member): retrying cannot help. */
  permanent?: boolean;
}

export const MAX_BODY_BYTES = 16 * 1024;
export const SEND_TIMEOUT_MS = 10_000;
const PERMANENT_ERRORS = new Set(['invalid_argument', 'forbidden', 'not_found', 'payload_too_large']);

export function newCid(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return 'w' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

/** The `send` frame of a pending message (docs/protocol.md). */
export function sendFrame(p: Pending): object {
  const [kind, id] = p.conv.split(':');
  return {
    op: 'send',
    cid: p.cid,
    type: p.file ? 'file' : 'text',
    body: p.body,
    ...(p.file ? { file: p.file.id } : {}),
    ...(p.replyTo ? { reply_to: p.replyTo } : {}),
    ...(kind === 'channel' ? { channel: id } : { to: id }),
  };
}

export interface OutboxDeps {
  send: Transport;
  timers: Timers;
  store: KeyValueStore;
  changed(): void;
}

export class Outbox {
  /** Oldest first; replaced (not mutated) on every change, so views may compare it. */
  list: Pending[] = [];
  private storeKey: string | null = null; // set while a user is logged in
  private timeouts = new Map<string, unknown>();

  constructor(private readonly d: OutboxDeps) {}

  /** Takes over, all queued, the sends an earlier page load of this tab left for `userId`. */
  open(userId: string): void {
    this.storeKey = `imd.pending.${userId}`;
    try {
      const raw = this.d.store.getItem(this.storeKey);
      const list = raw ? (JSON.parse(raw) as Pending[]) : [];
      this.list = list.map((p) => ({ ...p, status: 'queued' as const }));
    } catch {
      this.list = [];
    }
  }

  /** Stops timing sends and forgets them; what is stored stays for the next page load. */
  close(): void {
    for (const t of this.timeouts.values()) this.d.timers.clear(t);
    this.timeouts.clear();
    this.list = [];
    this.storeKey = null;
  }

  /** Drops what is stored (logout: the sends die with the session). */
  forget(): void {
    if (this.storeKey) this.d.store.removeItem(this.storeKey);
  }

  of(conv: string): Pending[] {
    return this.list.filter((p) => p.conv === conv);
  }

  /** Queues a message and sends it if connected. Returns an error text instead when too large. */
  add(conv: string, body: string, replyTo?: string, file?: FileMeta): string | null {
    if (new TextEncoder().encode(body).length > MAX_BODY_BYTES) {
      return `A message can be at most ${MAX_BODY_BYTES / 1024} KiB.`;
    }
    const p: Pending = { cid: newCid(), conv, body, createdAt: Date.now(), status: 'queued', replyTo };
    if (file) p.file = file;
    this.list = [...this.list, p];
    this.transmit(p);
    return null;
  }

  /** Sends a failed message again with the same cid (the server deduplicates). */
  retry(cid: string): void {
    const p = this.list.find((x) => x.cid === cid);
    if (!p) return;
    p.permanent = false;
    p.refused = false;
    this.transmit(p);
  }

  /** Drops a message the server refused (one that timed out may be stored: retry it). */
  discard(cid: string): void {
    if (this.list.find((x) => x.cid === cid)?.refused) this.settle(cid);
  }

  /** A new connection: everything not refused for good goes out again, same cids. */
  resend(): void {
    for (const p of this.list) if (!p.permanent) this.transmit(p);
  }

  /** The connection dropped: sends on the wire wait for the next one instead of timing out. */
  lost(): void {
    for (const p of this.list) {
      if (p.status === 'sending') {
        this.d.timers.clear(this.timeouts.get(p.cid));
        this.timeouts.delete(p.cid);
        p.status = 'queued';
      }
    }
    this.changedList();
  }

  /** The pending message `cid` is stored or dropped: forget it. */
  settle(cid: string): Pending | undefined {
    const p = this.list.find((x) => x.cid === cid);
    if (!p) return undefined;
    this.d.timers.clear(this.timeouts.get(cid));
    this.timeouts.delete(cid);
    this.list = this.list.filter((x) => x !== p);
    this.changedList();
    return p;
  }

  /** The server refused the send `cid` (an `error` frame). False if no such send is pending. */
  refuse(cid: string | undefined, code: string, message: string): boolean {
    const p = cid ? this.list.find((x) => x.cid === cid) : undefined;
    if (!p) return false;
    this.d.timers.clear(this.timeouts.get(p.cid));
    p.status = 'failed';
    p.error = message;
    p.refused = true;
    p.permanent = PERMANENT_ERRORS.has(code);
    this.changedList();
    return true;
  }

  private transmit(p: Pending): void {
    this.d.timers.clear(this.timeouts.get(p.cid));
    p.error = undefined;
    if (this.d.send(sendFrame(p))) {
      p.status = 'sending';
      this.timeouts.set(
        p.cid,
        this.d.timers.set(() => {
          this.timeouts.delete(p.cid);
          if (p.status !== 'sending' || !this.list.includes(p)) return;
          p.status = 'failed';
          p.error = 'No answer from the server.';
          this.changedList();
        }, SEND_TIMEOUT_MS),
      );
    } else {
      p.status = 'queued';
    }
    this.changedList();
  }

  private changedList(): void {
    this.list = [...this.list];
    if (this.storeKey) {
      const keep = this.list.map(({ cid, conv, body, createdAt, replyTo, file }) => ({ cid, conv, body, createdAt, replyTo, file }));
      if (keep.length) this.d.store.setItem(this.storeKey, JSON.stringify(keep));
      else this.d.store.removeItem(this.storeKey);
    }
    this.d.changed();
  }
}
