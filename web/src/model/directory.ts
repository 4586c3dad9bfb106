// The conversations this tab knows, by key, with the unread arithmetic the sidebar shows.
// A conversation enters on first sight (the REST list, a message, the user opening it) and
// stays until logout; a channel left elsewhere stays with joined = false. Counters only move
// forward: the list, live frames and this tab may report the same cursor in any order.

import type { Channel, ConversationState, User } from '../types';
import { newConv, type Conv } from './conversation';

export function unread(c: Conv): number {
  return Math.max(0, c.lastSeq - c.readSeq);
}

/** A DM peer's profile as far as the conversation list tells it (for names before a fetch). */
function listedPeer(cs: ConversationState): User | undefined {
  if (cs.kind !== 'dm' || !cs.user_id) return undefined;
  return { id: cs.user_id, name: cs.name, avatar: cs.avatar, created_at: 0 };
}

/** Mentions after the read marker: none once this tab read past everything. */
export function mentionCount(c: Conv): number {
  return unread(c) > 0 ? c.mentions : 0;
}

export class Directory {
  convs = new Map<string, Conv>();

  get(key: string): Conv | undefined {
    return this.convs.get(key);
  }

  ensure(key: string): Conv {
    let c = this.convs.get(key);
    if (c) return c;
    c = newConv(key);
    this.convs.set(key, c);
    return c;
  }

  /** Forgets everything (logout). Conv objects still held elsewhere are left alone. */
  reset(): void {
    this.convs = new Map();
  }

  /** One entry of GET /conversations: a conversation of ours, with its cursors. */
  applyState(cs: ConversationState): void {
    const c = this.ensure(cs.conversation);
    c.title = cs.name;
    c.joined = true;
    if (cs.space_id) c.spaceId = cs.space_id;
    // The server's mention count (it falls with read markers too), unless a live mention
    // arrived after the list was read (the list is older than the messages held).
    const listed = cs.mentions ?? 0;
    c.mentions = cs.last_seq >= c.lastSeq ? listed : Math.max(c.mentions, listed);
    c.lastSeq = Math.max(c.lastSeq, cs.last_seq);
    c.readSeq = Math.max(c.readSeq, cs.read_seq);
    c.readSent = Math.max(c.readSent, cs.read_seq);
    c.peerReadSeq = Math.max(c.peerReadSeq, cs.peer_read_seq ?? 0);
    // The change cursor starts at last_rev only before any message is held: the changes of
    // held messages must come through `sync` (a later list must not skip them).
    if (!c.msgs.length) c.rev = Math.max(c.rev, cs.last_rev ?? 0);
    if (cs.last_message) c.lastAt = Math.max(c.lastAt, cs.last_message.created_at);
  }

  /**
   * The whole conversation list: every conversation of ours. Returns the DM peers it names so
   * the caller can show their names without fetching each profile.
   */
  applyList(list: ConversationState[]): User[] {
    const seen = new Set<string>();
    const peers: User[] = [];
    for (const cs of list) {
      seen.add(cs.conversation);
      this.applyState(cs);
      const peer = listedPeer(cs);
      if (peer) peers.push(peer);
    }
    // Channels left on another device are no longer conversations of ours.
    for (const c of this.convs.values()) {
      if (c.kind === 'channel' && c.joined && !seen.has(c.key)) c.joined = false;
    }
    return peers;
  }

  /** The red dot of a space: unread messages over the joined channels in it (those `counts` keeps). */
  spaceUnread(spaceId: string, counts: (c: Conv) => boolean = () => true): number {
    let n = 0;
    for (const c of this.convs.values()) {
      if (c.kind === 'channel' && c.joined && c.spaceId === spaceId && counts(c)) n += unread(c);
    }
    return n;
  }

  /** Mentions of us over the joined channels in a space (the sidebar's @ badge). */
  spaceMentions(spaceId: string, counts: (c: Conv) => boolean = () => true): number {
    let n = 0;
    for (const c of this.convs.values()) {
      if (c.kind === 'channel' && c.joined && c.spaceId === spaceId && counts(c)) n += mentionCount(c);
    }
    return n;
  }

  /** The DMs, the most recently active first (then by title). */
  dms(title: (c: Conv) => string): Conv[] {
    return [...this.convs.values()]
      .filter((c) => c.kind === 'dm')
      .sort((a, b) => b.lastAt - a.lastAt || title(a).localeCompare(title(b)));
  }

  /** Unread messages over every conversation of ours that `counts` keeps (the title and favicon). */
  totalUnread(counts: (c: Conv) => boolean = () => true): number {
    let n = 0;
    for (const c of this.convs.values()) if (c.joined && counts(c)) n += unread(c);
    return n;
  }
}

/** A DM is named after the peer; a channel by the list, else by its space's channel list. */
export function convTitle(
  c: Conv,
  userName: (id: string) => string,
  channels: Record<string, Channel[] | undefined>,
): string {
  if (c.kind === 'dm') return userName(c.peerOrChannel);
  if (c.title) return c.title;
  for (const list of Object.values(channels)) {
    const ch = list?.find((x) => x.id === c.peerOrChannel);
    if (ch) return ch.name;
  }
  return 'channel';
}
