// The originals of replies that this tab does not hold in their conversation (an older message
// than the loaded history): fetched once by id (GET /api/v1/messages/{id}) and kept for a
// minute, so an edit or a delete shows up the next time the quote is drawn. A message the
// user may not read (or that is gone) is remembered as unavailable for the same minute.

import type { WireMessage } from '../types';
import { toMsg, type Msg } from './conversation';

const KEEP_MS = 60_000;
const MAX_HELD = 500;

interface Held {
  msg: Msg | null; // null: unavailable
  at: number;
}

export class Quotes {
  private held = new Map<string, Held>();
  private fetching = new Set<string>();

  constructor(
    private readonly fetch: (id: string) => Promise<WireMessage>,
    private readonly changed: () => void,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The message with this id: undefined while it is being fetched (the fetch starts on the
   * first ask), null when the user may not read it or it does not exist.
   */
  get(id: string): Msg | null | undefined {
    const h = this.held.get(id);
    const fresh = h !== undefined && this.now() - h.at < KEEP_MS;
    if (!fresh && !this.fetching.has(id)) this.load(id);
    return h?.msg;
  }

  private load(id: string): void {
    this.fetching.add(id);
    const keep = (msg: Msg | null) => {
      this.fetching.delete(id);
      if (this.held.size >= MAX_HELD) this.held.clear();
      this.held.set(id, { msg, at: this.now() });
      this.changed();
    };
    this.fetch(id).then(
      (m) => keep(toMsg(m)),
      () => keep(null),
    );
  }
}
