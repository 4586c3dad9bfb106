// How a run of messages reads: a day separator where the local day changes, the "new
// messages" line before the first unread, and the author's name and avatar only where a group
// starts (another author, more than GROUP_GAP_MS since the previous message, or a line above).

import type { Msg } from '../model/conversation';
import { dayKey } from './time';

export const GROUP_GAP_MS = 5 * 60_000;

export interface Row {
  m: Msg;
  /** Starts a group: shows author, avatar and time. */
  head: boolean;
  /** A day separator goes above (the message's time). */
  day: boolean;
  /** The "new messages" line goes above. */
  unread: boolean;
}

/** Rows for msgs[from, to); `prev` is the message before `from`, if any. */
export function layout(msgs: readonly Msg[], from: number, to: number, firstUnread: number): Row[] {
  const rows: Row[] = [];
  let prev: Msg | undefined = from > 0 ? msgs[from - 1] : undefined;
  for (let i = from; i < to; i++) {
    const m = msgs[i];
    const day = !prev || dayKey(prev.createdAt) !== dayKey(m.createdAt);
    const unread = firstUnread > 0 && m.seq >= firstUnread && (!prev || prev.seq < firstUnread);
    const head = day || unread || !prev || prev.from !== m.from || m.createdAt - prev.createdAt > GROUP_GAP_MS;
    rows.push({ m, head, day, unread });
    prev = m;
  }
  return rows;
}
