// The two cursors this tab reports per conversation (docs/protocol.md, `ack` and `read`).
// Delivery ACK: cumulative and batched, at most one frame per conversation every ACK_DELAY_MS,
// and only up to contiguousTop, never past a message still missing. Read marker: moves forward
// only, up to the newest message the user has seen; at most one `read` frame per conversation
// every READ_MIN_INTERVAL_MS (a move within it goes out when it ends, carrying the newest
// marker); what the server or another device reported counts as sent (readSent). A frame that
// cannot go out now stays owed and goes with the next flush or hello.

import { contiguousTop, topSeq, type Conv } from './conversation';
import type { Timers, Transport } from './ports';

export const ACK_DELAY_MS = 100;
export const READ_MIN_INTERVAL_MS = 1000;

export interface ReceiptsDeps {
  send: Transport;
  timers: Timers;
  /** Every conversation held (a flush looks at all of them). */
  convs(): Iterable<Conv>;
}

export class Receipts {
  private timer: unknown; // undefined when no flush is scheduled
  private readTimers = new Map<Conv, unknown>(); // conversations whose read frame is held

  constructor(private readonly d: ReceiptsDeps) {}

  /** Messages of `c` are held now: ACK them with the next flush. */
  ackLater(c: Conv): void {
    c.ackDirty = true;
    if (this.timer === undefined) {
      this.timer = this.d.timers.set(() => this.flush(), ACK_DELAY_MS);
    }
  }

  flush(): void {
    this.timer = undefined;
    for (const c of this.d.convs()) {
      if (!c.ackDirty || !c.joined) continue;
      const seq = contiguousTop(c);
      if (seq <= c.ackSent) c.ackDirty = false;
      else if (this.d.send({ op: 'ack', conversation: c.key, seq })) {
        c.ackSent = seq;
        c.ackDirty = false;
      }
    }
  }

  cancel(): void {
    this.d.timers.clear(this.timer);
    this.timer = undefined;
    for (const [c, t] of this.readTimers) {
      this.d.timers.clear(t);
      c.readHeld = false;
    }
    this.readTimers.clear();
  }

  /**
   * The user has seen `c` up to the message `seq` (its newest when omitted). True if the read
   * marker moved.
   */
  read(c: Conv, seq = topSeq(c)): boolean {
    const upTo = Math.min(seq, topSeq(c));
    const moved = upTo > c.readSeq;
    if (moved) c.readSeq = upTo;
    this.sendRead(c);
    return moved;
  }

  /** Reports the read marker if it moved past what the server knows, at most once a second. */
  sendRead(c: Conv): void {
    if (c.readHeld || c.readSeq <= c.readSent) return;
    if (!this.d.send({ op: 'read', conversation: c.key, seq: c.readSeq })) return;
    c.readSent = c.readSeq;
    c.readHeld = true;
    this.readTimers.set(
      c,
      this.d.timers.set(() => {
        this.readTimers.delete(c);
        c.readHeld = false;
        this.sendRead(c);
      }, READ_MIN_INTERVAL_MS),
    );
  }
}
