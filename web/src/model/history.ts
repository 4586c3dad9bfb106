// Paging a conversation's history in over REST: the newest page when it is first opened,
// older pages as the user scrolls up, and whatever is missing between held messages and the
// conversation's lastSeq (a hole left by a reconnect, or our own message ACKed by `sent`
// before the ones sent just ahead of it arrived). Pages merge with live messages by seq, so
// a page and a frame may bring the same message in either order.

import type { WireMessage } from '../types';
import { insert, nextGap, toMsg, trim, type Conv } from './conversation';
import { unread } from './directory';

export const HISTORY_PAGE = 50;
/** Messages fetched before a message jumped to (a search hit); the rest of a page is after it. */
export const AROUND_BEFORE = 10;
/** Read messages shown above the "new messages" line when a conversation opens unread. */
export const UNREAD_CONTEXT = 5;
const GAP_PAGE = 100;
const GAP_ROUNDS = 20; // bounds one fill; the next message or list refresh resumes it

export interface PageQuery {
  before_seq?: number;
  after_seq?: number;
  limit?: number;
}

export interface HistoryHooks {
  /** One page of the conversation `key`, oldest first (GET .../messages). */
  fetch(key: string, q: PageQuery): Promise<{ messages: WireMessage[] }>;
  /** New messages were merged into `c`: they are to be ACKed. */
  merged(c: Conv): void;
  changed(): void;
  fail(e: unknown): void;
}

export class History {
  constructor(private readonly h: HistoryHooks) {}

  /**
   * The first page to show, then whatever is missing up to lastSeq. That page is the newest
   * one, or, when more than a page is unread, the one where the unread part starts (so the
   * user reads from there, under a few read messages).
   */
  latest(c: Conv): Promise<void> {
    return this.first(
      c,
      unread(c) > HISTORY_PAGE
        ? { after_seq: Math.max(0, c.readSeq - UNREAD_CONTEXT), limit: HISTORY_PAGE }
        : { limit: HISTORY_PAGE },
    );
  }

  /**
   * The page around message `seq` (a search hit: a few messages before it, the rest after),
   * unless it is held already; then whatever is missing up to lastSeq.
   */
  async around(c: Conv, seq: number): Promise<void> {
    if (c.msgs.some((m) => m.seq === seq)) return;
    await this.first(c, { after_seq: Math.max(0, seq - AROUND_BEFORE - 1), limit: HISTORY_PAGE });
  }

  /** The first page shown of a conversation (`q`), then whatever is missing up to lastSeq. */
  private async first(c: Conv, q: PageQuery): Promise<void> {
    try {
      const { messages } = await this.h.fetch(c.key, q);
      insert(c, messages.map(toMsg));
      c.loaded = true;
      c.hasOlder = c.msgs.length > 0 && c.msgs[0].seq > 1;
      this.h.merged(c);
      this.h.changed();
      await this.fillGaps(c);
    } catch (e) {
      this.h.fail(e);
    }
  }

  /** The page before the oldest held message; one at a time. */
  async older(c: Conv): Promise<void> {
    if (!c.loaded || !c.hasOlder || c.loadingOlder) return;
    c.loadingOlder = true;
    this.h.changed();
    try {
      const before = c.msgs[0].seq;
      const { messages } = await this.h.fetch(c.key, { before_seq: before, limit: HISTORY_PAGE });
      insert(c, messages.map(toMsg));
      c.hasOlder = messages.length > 0 && c.msgs[0].seq > 1;
    } catch (e) {
      this.h.fail(e);
    } finally {
      c.loadingOlder = false;
      this.h.changed();
    }
  }

  /** Pages in whatever is missing between held messages and up to lastSeq; one fill at a time. */
  async fillGaps(c: Conv): Promise<void> {
    if (c.filling || !c.loaded) return;
    c.filling = true;
    try {
      for (let round = 0; round < GAP_ROUNDS; round++) {
        const after = nextGap(c);
        if (after < 0) break;
        const { messages } = await this.h.fetch(c.key, { after_seq: after, limit: GAP_PAGE });
        if (!messages.length) break;
        insert(c, messages.map(toMsg));
        trim(c);
        this.h.merged(c);
        this.h.changed();
      }
    } catch (e) {
      this.h.fail(e);
    } finally {
      c.filling = false;
    }
  }
}
