// Presence (docs/protocol.md, "Presence"): who this tab watches and their statuses. Views say
// which users they show, per source (the DM list, an open member list); the union, at most
// MAX_WATCHED, goes to the server as one `presence_sub` after a short pause, and again on every
// `hello` (a new connection watches nobody). The answer and `presence` frames fill `status`.
// Presence is the first thing a loaded server sheds: a subscription refused for a passing reason
// (`unavailable`, `too_many_requests`) is asked again after a pause that doubles up to a bound;
// other refusals are not repeated. Neither is news for the user.

import type { Timers, Transport } from './ports';

export type PresenceStatus = 'online' | 'away' | 'offline';

/** The server's bound of one subscription. */
export const MAX_WATCHED = 500;
/** Shown lists change in bursts (a member list opens, the DM list loads): one frame after. */
export const SUBSCRIBE_DELAY_MS = 300;
/** The first pause before a refused subscription is asked again; it doubles up to the bound. */
export const RETRY_MS = 2_000;
export const RETRY_MAX_MS = 60_000;

export interface PresenceDeps {
  send: Transport;
  timers: Timers;
  changed(): void;
}

export class Presence {
  private readonly shown = new Map<string, readonly string[]>();
  /** What the server was last asked to watch, sorted and joined (null: nothing sent yet). */
  private sent: string | null = null;
  private timer: unknown;
  private readonly status = new Map<string, PresenceStatus>();
  private retryMs = RETRY_MS;

  constructor(private readonly deps: PresenceDeps) {}

  /** `source` shows these users now (an empty list: it shows none any more). */
  show(source: string, ids: readonly string[]): void {
    if (ids.length) this.shown.set(source, ids);
    else this.shown.delete(source);
    this.schedule();
  }

  /** The server answered the subscription: a later refusal starts its pauses over. */
  answered(): void {
    this.retryMs = RETRY_MS;
  }

  /** The server refused the last `presence_sub` (its error code). */
  refused(code: string): void {
    this.sent = null;
    if (code !== 'unavailable' && code !== 'too_many_requests') return;
    this.deps.timers.clear(this.timer);
    this.timer = this.deps.timers.set(() => {
      this.timer = undefined;
      this.flush();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
  }

  /** A new connection watches nobody: subscribe again at once. */
  reconnected(): void {
    this.sent = null;
    this.deps.timers.clear(this.timer);
    this.timer = undefined;
    this.flush();
  }

  /** The users to watch: every source's, first come first kept, at most MAX_WATCHED. */
  wanted(): string[] {
    const out = new Set<string>();
    for (const ids of this.shown.values()) {
      for (const id of ids) {
        if (out.size >= MAX_WATCHED) return [...out];
        out.add(id);
      }
    }
    return [...out];
  }

  of(user: string): PresenceStatus {
    return this.status.get(user) ?? 'offline';
  }

  /** The answer to `presence_sub`, or a `presence` frame. */
  apply(statuses: Record<string, string>): void {
    for (const [user, s] of Object.entries(statuses)) {
      if (s === 'online' || s === 'away' || s === 'offline') this.status.set(user, s);
    }
    this.deps.changed();
  }

  reset(): void {
    this.deps.timers.clear(this.timer);
    this.timer = undefined;
    this.shown.clear();
    this.status.clear();
    this.sent = null;
    this.retryMs = RETRY_MS;
  }

  private schedule(): void {
    if (this.timer !== undefined) return;
    this.timer = this.deps.timers.set(() => {
      this.timer = undefined;
      this.flush();
    }, SUBSCRIBE_DELAY_MS);
  }

  private flush(): void {
    const users = this.wanted().sort();
    const key = users.join(',');
    if (key === this.sent) return;
    // Not connected: the next `hello` subscribes.
    if (this.deps.send({ op: 'presence_sub', users })) this.sent = key;
  }
}
