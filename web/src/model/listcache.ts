// The sidebar as last fetched (the spaces, the selected space's channels and the conversation
// list, as the server answered at start, at a reconnect, for a message of a conversation this
// tab did not know, or when a space was selected), per user, kept in Web Storage so that a returning user sees it in the first frame:
// chat.ts applies it at start, before the server's answers, which then replace it. Applying an
// older list first changes nothing the fresh one sets: the Directory merges list entries by
// maxima and un-joins the channels a list no longer names; spaces and channels are replaced
// whole. Bounded: a snapshot over MAX_SNAPSHOT_CHARS is not stored (the start waits for the
// server then). Logout forgets it.

import type { Channel, ConversationList, Space } from '../types';
import type { KeyValueStore } from './ports';

export const MAX_SNAPSHOT_CHARS = 512 * 1024;

export interface ListSnapshot {
  spaces: Space[];
  /** The space whose channels are kept, and those channels. */
  spaceId: string | null;
  channels: Channel[];
  list: ConversationList;
}

const key = (userId: string) => `imd.list.${userId}`;

function isSnapshot(v: unknown): v is ListSnapshot {
  const s = v as ListSnapshot | null;
  return (
    !!s &&
    Array.isArray(s.spaces) &&
    s.spaces.every((x) => typeof x?.id === 'string' && typeof x.name === 'string') &&
    (s.spaceId === null || typeof s.spaceId === 'string') &&
    Array.isArray(s.channels) &&
    s.channels.every((x) => typeof x?.id === 'string' && typeof x.name === 'string') &&
    Array.isArray(s.list?.conversations) &&
    s.list.conversations.every((c) => typeof c?.conversation === 'string' && typeof c.last_seq === 'number') &&
    Array.isArray(s.list.spaces)
  );
}

export class ListCache {
  constructor(private readonly store: KeyValueStore) {}

  /** The user's stored snapshot; one that does not parse or has another shape is dropped. */
  read(userId: string): ListSnapshot | null {
    try {
      const v = JSON.parse(this.store.getItem(key(userId)) ?? 'null') as unknown;
      if (v === null) return null;
      if (isSnapshot(v)) return v;
    } catch {
      // dropped below
    }
    this.store.removeItem(key(userId));
    return null;
  }

  write(userId: string, snapshot: ListSnapshot): void {
    const text = JSON.stringify(snapshot);
    try {
      if (text.length > MAX_SNAPSHOT_CHARS) this.store.removeItem(key(userId));
      else this.store.setItem(key(userId), text);
    } catch {
      // Storage full or blocked: the next start waits for the server.
    }
  }

  forget(userId: string): void {
    this.store.removeItem(key(userId));
  }
}
