// Client-side chat state: spaces, channels, conversations with their messages (ordered and
// deduplicated by seq), unread counts, and the sends waiting for their `sent` ACK. It drives
// the Socket (sync, resend, acks, read markers) and the REST Api (lists, history paging).
// Components read the public fields and call the methods; `subscribe` tells them to re-render.

import { Api, ApiError } from './api';
import { LoggedOut, SessionStore } from './session';
import { Socket, type ConnState } from './socket';
import type {
  Channel,
  ConversationState,
  HelloFrame,
  ServerFrame,
  Space,
  User,
  WireMessage,
} from './types';

export interface Msg {
  id: string;
  seq: number;
  from: string;
  type: string;
  body: string;
  createdAt: number;
  cid?: string;
}

/** queued: waiting for a connection; sending: on the wire, no ACK yet; failed: see error. */
export type PendingStatus = 'queued' | 'sending' | 'failed';

export interface Pending {
  cid: string;
  conv: string;
  body: string;
  createdAt: number;
  status: PendingStatus;
  error?: string;
  /** The server answered with an error: it did not store the message. */
  refused?: boolean;
  /** Refused for good (e.g. too large, not a member): retrying cannot help. */
  permanent?: boolean;
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
  msgs: Msg[]; // ascending seq, unique; replaced (not mutated) on change
  loaded: boolean; // the newest history page was fetched
  hasOlder: boolean;
  loadingOlder: boolean;
  readSent: number;
  ackDirty: boolean;
  ackSent: number;
  filling: boolean;
}

export const HISTORY_PAGE = 50;
const SEND_TIMEOUT_MS = 10_000;
const ACK_DELAY_MS = 100;
const MAX_BODY_BYTES = 16 * 1024;
const PERMANENT_ERRORS = new Set(['invalid_argument', 'forbidden', 'not_found', 'payload_too_large']);

export function unread(c: Conv): number {
  return Math.max(0, c.lastSeq - c.readSeq);
}

export function topSeq(c: Conv): number {
  return c.msgs.length ? c.msgs[c.msgs.length - 1].seq : 0;
}

/**
 * The end of the unbroken run of held messages that starts at the oldest one: what this tab
 * surely has. ACKs and sync cursors use it, so a message still missing below a newer one
 * (e.g. our own, ACKed by `sent` first) is not skipped.
 */
function contiguousTop(c: Conv): number {
  const m = c.msgs;
  let i = 0;
  while (i + 1 < m.length && m[i + 1].seq === m[i].seq + 1) i++;
  return m.length ? m[i].seq : 0;
}

function newCid(): string {
  const b = new Uint8Array(12);
  crypto.getRandomValues(b);
  return 'w' + Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

function toMsg(m: WireMessage): Msg {
  return {
    id: m.id,
    seq: m.seq,
    from: m.from,
    type: m.type,
    body: m.body,
    createdAt: m.created_at,
    cid: m.cid,
  };
}

function describe(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof TypeError) return 'The server cannot be reached.';
  return e instanceof Error ? e.message : String(e);
}

export class Chat {
  readonly api: Api;
  me: User | null = null;
  conn: ConnState = 'offline';
  spaces: Space[] = [];
  channels: Record<string, Channel[] | undefined> = {};
  convs = new Map<string, Conv>();
  pending: Pending[] = [];
  selectedSpace: string | null = null;
  open: string | null = null;
  notice: string | null = null;

  private users = new Map<string, User>();
  private fetchingUsers = new Set<string>();
  private sendTimers = new Map<string, number>();
  private ackTimer: number | undefined;
  private convRefreshTimer: number | undefined;
  private listeners = new Set<() => void>();
  private emitQueued = false;
  private generation = 0; // bumped by stop(): answers to older requests are dropped
  private readonly socket: Socket;

  constructor(private readonly session: SessionStore) {
    this.api = new Api(session);
    this.socket = new Socket({
      token: () => session.accessToken(),
      hello: (h, reconnect) => this.onHello(h, reconnect),
      frame: (f) => this.onFrame(f),
      state: (s) => {
        this.conn = s;
        this.emit();
      },
      lost: () => this.onLost(),
      trouble: () => void this.api.me().catch(() => undefined), // refreshes a refused token
      loggedOut: () => session.set(null),
    });
    document.addEventListener('visibilitychange', () => this.emit());
  }

  // ---- lifecycle ------------------------------------------------------------------------

  subscribe(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Starts for the logged-in user: lists over REST, then the WebSocket. */
  start(me: User, openKey: string | null): void {
    this.me = me;
    this.users.set(me.id, me);
    this.selectedSpace = localStorage.getItem(this.spaceKey());
    this.pending = this.loadPending();
    this.socket.start();
    void this.refreshAll().then(() => {
      if (openKey && this.open === null) this.openConv(openKey);
    });
    this.emit();
  }

  stop(): void {
    this.generation++;
    this.socket.stop();
    for (const t of this.sendTimers.values()) clearTimeout(t);
    this.sendTimers.clear();
    clearTimeout(this.ackTimer);
    clearTimeout(this.convRefreshTimer);
    this.me = null;
    this.spaces = [];
    this.channels = {};
    this.convs = new Map();
    this.pending = [];
    this.selectedSpace = null;
    this.open = null;
    this.notice = null;
    this.users.clear();
    this.emit();
  }

  async logout(): Promise<void> {
    const s = this.session.get();
    sessionStorage.removeItem(this.pendingKey());
    this.socket.stop();
    if (s) await this.api.logout(s.refresh).catch(() => undefined);
    this.session.set(null);
  }

  private emit(): void {
    if (this.emitQueued) return;
    this.emitQueued = true;
    queueMicrotask(() => {
      this.emitQueued = false;
      for (const l of this.listeners) l();
    });
  }

  setNotice(text: string | null): void {
    this.notice = text;
    this.emit();
  }

  private fail(e: unknown): void {
    if (e instanceof LoggedOut) return; // the session listener shows the login form
    this.setNotice(describe(e));
  }

  // ---- lists ----------------------------------------------------------------------------

  async refreshAll(): Promise<void> {
    try {
      await Promise.all([this.loadSpaces(), this.loadConversations()]);
    } catch (e) {
      this.fail(e);
    }
  }

  async loadSpaces(): Promise<void> {
    const g = this.generation;
    const { spaces } = await this.api.spaces();
    if (g !== this.generation) return;
    this.spaces = spaces;
    if (!spaces.some((s) => s.id === this.selectedSpace)) {
      this.selectedSpace = spaces.length ? spaces[0].id : null;
    }
    this.emit();
    if (this.selectedSpace) await this.loadChannels(this.selectedSpace);
  }

  async loadChannels(spaceId: string): Promise<void> {
    const g = this.generation;
    const { channels } = await this.api.channels(spaceId);
    if (g !== this.generation) return;
    this.channels = { ...this.channels, [spaceId]: channels };
    this.emit();
  }

  async loadConversations(): Promise<void> {
    const g = this.generation;
    const list = await this.api.conversations();
    if (g !== this.generation) return;
    const seen = new Set<string>();
    for (const cs of list.conversations) {
      seen.add(cs.conversation);
      this.applyState(cs);
    }
    // Channels left on another device are no longer conversations of ours.
    for (const c of this.convs.values()) {
      if (c.kind === 'channel' && c.joined && !seen.has(c.key)) c.joined = false;
    }
    this.emit();
    for (const c of this.convs.values()) if (c.loaded) void this.fillGaps(c);
  }

  private applyState(cs: ConversationState): void {
    const c = this.ensureConv(cs.conversation);
    c.title = cs.name;
    c.joined = true;
    if (cs.space_id) c.spaceId = cs.space_id;
    if (cs.kind === 'dm' && cs.user_id && !this.users.has(cs.user_id)) {
      this.users.set(cs.user_id, { id: cs.user_id, name: cs.name, avatar: cs.avatar, created_at: 0 });
    }
    c.lastSeq = Math.max(c.lastSeq, cs.last_seq);
    c.readSeq = Math.max(c.readSeq, cs.read_seq);
    c.readSent = Math.max(c.readSent, cs.read_seq);
  }

  /** Refetches the conversation list soon (a message arrived for one we do not know). */
  private refreshConversationsSoon(): void {
    clearTimeout(this.convRefreshTimer);
    this.convRefreshTimer = window.setTimeout(() => {
      this.loadConversations().catch((e) => this.fail(e));
    }, 200);
  }

  ensureConv(key: string): Conv {
    let c = this.convs.get(key);
    if (c) return c;
    const [kind, id] = key.split(':') as ['channel' | 'dm', string];
    c = {
      key,
      kind,
      peerOrChannel: id,
      title: '',
      joined: kind === 'dm',
      lastSeq: 0,
      readSeq: 0,
      msgs: [],
      loaded: false,
      hasOlder: false,
      loadingOlder: false,
      readSent: 0,
      ackDirty: false,
      ackSent: 0,
      filling: false,
    };
    this.convs.set(key, c);
    return c;
  }

  spaceUnread(spaceId: string): number {
    let n = 0;
    for (const c of this.convs.values()) {
      if (c.kind === 'channel' && c.joined && c.spaceId === spaceId) n += unread(c);
    }
    return n;
  }

  dms(): Conv[] {
    return [...this.convs.values()]
      .filter((c) => c.kind === 'dm')
      .sort((a, b) => this.convTitle(a).localeCompare(this.convTitle(b)));
  }

  convTitle(c: Conv): string {
    if (c.kind === 'dm') return this.userName(c.peerOrChannel);
    if (c.title) return c.title;
    for (const list of Object.values(this.channels)) {
      const ch = list?.find((x) => x.id === c.peerOrChannel);
      if (ch) return ch.name;
    }
    return 'channel';
  }

  // ---- users ----------------------------------------------------------------------------

  /** The user's name, or a placeholder while it is being fetched (cached afterwards). */
  userName(id: string): string {
    const u = this.users.get(id);
    if (u) return u.name;
    if (!this.fetchingUsers.has(id)) {
      this.fetchingUsers.add(id);
      this.api
        .user(id)
        .then((user) => {
          this.users.set(id, user);
          this.emit();
        })
        .catch(() => {
          this.users.set(id, { id, name: `user ${id}`, avatar: '', created_at: 0 });
          this.emit();
        });
    }
    return '…';
  }

  /** Finds users by exact id or by name (case-insensitive); never the caller. */
  async findUsers(query: string): Promise<User[]> {
    const q = query.trim();
    if (!q) return [];
    const users = /^\d+$/.test(q) ? [await this.api.user(q)] : (await this.api.findUsers(q)).users;
    for (const u of users) this.users.set(u.id, u);
    return users.filter((u) => u.id !== this.me?.id);
  }

  openDm(user: User): void {
    this.users.set(user.id, user);
    this.openConv(`dm:${user.id}`);
  }

  // ---- spaces and channels --------------------------------------------------------------

  selectSpace(id: string): void {
    this.selectedSpace = id;
    localStorage.setItem(this.spaceKey(), id);
    this.emit();
    this.loadChannels(id).catch((e) => this.fail(e));
  }

  async createSpace(name: string): Promise<void> {
    const s = await this.api.createSpace(name);
    await this.loadSpaces();
    this.selectSpace(s.id);
  }

  async joinSpace(id: string): Promise<void> {
    const s = await this.api.joinSpace(id);
    await this.loadSpaces();
    this.selectSpace(s.id);
  }

  async createChannel(spaceId: string, name: string): Promise<void> {
    const ch = await this.api.createChannel(spaceId, name);
    await Promise.all([this.loadChannels(spaceId), this.loadConversations()]);
    this.openConv(`channel:${ch.id}`);
  }

  async joinChannel(channelId: string): Promise<void> {
    const ch = await this.api.joinChannel(channelId);
    await Promise.all([this.loadChannels(ch.space_id), this.loadConversations()]);
    this.openConv(`channel:${ch.id}`);
  }

  // ---- conversations and history --------------------------------------------------------

  openConv(key: string | null): void {
    this.open = key;
    if (key) {
      const c = this.ensureConv(key);
      if (c.spaceId && c.spaceId !== this.selectedSpace) this.selectSpace(c.spaceId);
      if (!c.loaded && c.joined) void this.loadLatest(c);
    }
    const path = key ? `/c/${key}` : '/';
    if (location.pathname !== path) history.replaceState(null, '', path);
    this.emit();
  }

  private async loadLatest(c: Conv): Promise<void> {
    try {
      const { messages } = await this.api.history(c.key, { limit: HISTORY_PAGE });
      this.insert(c, messages.map(toMsg));
      c.loaded = true;
      c.hasOlder = c.msgs.length > 0 && c.msgs[0].seq > 1;
      this.ackLater(c);
      this.emit();
      await this.fillGaps(c);
    } catch (e) {
      this.fail(e);
    }
  }

  async loadOlder(key: string): Promise<void> {
    const c = this.convs.get(key);
    if (!c || !c.loaded || !c.hasOlder || c.loadingOlder) return;
    c.loadingOlder = true;
    this.emit();
    try {
      const before = c.msgs[0].seq;
      const { messages } = await this.api.history(c.key, { before_seq: before, limit: HISTORY_PAGE });
      this.insert(c, messages.map(toMsg));
      c.hasOlder = messages.length > 0 && c.msgs[0].seq > 1;
    } catch (e) {
      this.fail(e);
    } finally {
      c.loadingOlder = false;
      this.emit();
    }
  }

  /** Pages in over REST whatever is missing between held messages and up to lastSeq. */
  private async fillGaps(c: Conv): Promise<void> {
    if (c.filling || !c.loaded) return;
    c.filling = true;
    try {
      for (let round = 0; round < 20; round++) {
        let after = -1;
        for (let i = 0; i + 1 < c.msgs.length; i++) {
          if (c.msgs[i + 1].seq !== c.msgs[i].seq + 1) {
            after = c.msgs[i].seq;
            break;
          }
        }
        if (after < 0 && c.lastSeq > topSeq(c)) after = topSeq(c);
        if (after < 0) break;
        const { messages } = await this.api.history(c.key, { after_seq: after, limit: 100 });
        if (!messages.length) break;
        this.insert(c, messages.map(toMsg));
        this.ackLater(c);
        this.emit();
      }
    } catch (e) {
      this.fail(e);
    } finally {
      c.filling = false;
    }
  }

  /** Merges messages into the conversation by seq; duplicates are dropped. */
  private insert(c: Conv, list: Msg[]): boolean {
    let msgs = c.msgs;
    let changed = false;
    for (const m of list) {
      let lo = 0;
      let hi = msgs.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (msgs[mid].seq < m.seq) lo = mid + 1;
        else hi = mid;
      }
      if (msgs[lo]?.seq === m.seq) continue;
      if (!changed) msgs = msgs.slice();
      msgs.splice(lo, 0, m);
      changed = true;
      if (m.seq > c.lastSeq) c.lastSeq = m.seq;
    }
    if (changed) c.msgs = msgs;
    return changed;
  }

  /** The user sees the conversation up to its newest message: move the read marker. */
  markRead(key: string): void {
    const c = this.convs.get(key);
    if (!c || !c.joined || document.visibilityState === 'hidden') return;
    const top = topSeq(c);
    if (top > c.readSeq) {
      c.readSeq = top;
      this.emit();
    }
    this.sendRead(c);
  }

  private sendRead(c: Conv): void {
    if (c.readSeq > c.readSent &&
        this.socket.send({ op: 'read', conversation: c.key, seq: c.readSeq })) {
      c.readSent = c.readSeq;
    }
  }

  /** Cumulative delivery ACK, at most one frame per conversation every ACK_DELAY_MS. */
  private ackLater(c: Conv): void {
    c.ackDirty = true;
    if (this.ackTimer === undefined) {
      this.ackTimer = window.setTimeout(() => this.flushAcks(), ACK_DELAY_MS);
    }
  }

  private flushAcks(): void {
    this.ackTimer = undefined;
    for (const c of this.convs.values()) {
      if (!c.ackDirty || !c.joined) continue;
      const seq = contiguousTop(c);
      if (seq <= c.ackSent) c.ackDirty = false;
      else if (this.socket.send({ op: 'ack', conversation: c.key, seq })) {
        c.ackSent = seq;
        c.ackDirty = false;
      }
    }
  }

  // ---- sending --------------------------------------------------------------------------

  /** Queues a message; it shows as pending until the server's `sent`. Returns an error text. */
  send(key: string, body: string): string | null {
    if (new TextEncoder().encode(body).length > MAX_BODY_BYTES) {
      return `A message can be at most ${MAX_BODY_BYTES / 1024} KiB.`;
    }
    const p: Pending = { cid: newCid(), conv: key, body, createdAt: Date.now(), status: 'queued' };
    this.pending = [...this.pending, p];
    this.transmit(p);
    return null;
  }

  /** Sends a failed message again with the same cid (the server deduplicates). */
  retry(cid: string): void {
    const p = this.pending.find((x) => x.cid === cid);
    if (!p) return;
    p.permanent = false;
    p.refused = false;
    this.transmit(p);
  }

  /** Drops a message the server refused (one that timed out may be stored: retry it). */
  discard(cid: string): void {
    if (this.pending.find((x) => x.cid === cid)?.refused) this.settle(cid);
  }

  pendingOf(key: string): Pending[] {
    return this.pending.filter((p) => p.conv === key);
  }

  private transmit(p: Pending): void {
    const [kind, id] = p.conv.split(':');
    const frame = {
      op: 'send',
      cid: p.cid,
      type: 'text',
      body: p.body,
      ...(kind === 'channel' ? { channel: id } : { to: id }),
    };
    clearTimeout(this.sendTimers.get(p.cid));
    p.error = undefined;
    if (this.socket.send(frame)) {
      p.status = 'sending';
      this.sendTimers.set(
        p.cid,
        window.setTimeout(() => {
          this.sendTimers.delete(p.cid);
          if (p.status !== 'sending' || !this.pending.includes(p)) return;
          p.status = 'failed';
          p.error = 'No answer from the server.';
          this.changedPending();
        }, SEND_TIMEOUT_MS),
      );
    } else {
      p.status = 'queued';
    }
    this.changedPending();
  }

  /** The pending message `cid` is stored or dropped: forget it. */
  private settle(cid: string): Pending | undefined {
    const p = this.pending.find((x) => x.cid === cid);
    if (!p) return undefined;
    clearTimeout(this.sendTimers.get(cid));
    this.sendTimers.delete(cid);
    this.pending = this.pending.filter((x) => x !== p);
    this.changedPending();
    return p;
  }

  private changedPending(): void {
    this.pending = [...this.pending];
    if (this.me) {
      const keep = this.pending.map(({ cid, conv, body, createdAt }) => ({ cid, conv, body, createdAt }));
      if (keep.length) sessionStorage.setItem(this.pendingKey(), JSON.stringify(keep));
      else sessionStorage.removeItem(this.pendingKey());
    }
    this.emit();
  }

  /** Sends not yet acknowledged survive a reload of this tab (same cids: no doubles). */
  private loadPending(): Pending[] {
    try {
      const raw = sessionStorage.getItem(this.pendingKey());
      const list = raw ? (JSON.parse(raw) as Pending[]) : [];
      return list.map((p) => ({ ...p, status: 'queued' as const }));
    } catch {
      return [];
    }
  }

  private pendingKey(): string {
    return `imd.pending.${this.me?.id ?? ''}`;
  }

  private spaceKey(): string {
    return `imd.space.${this.me?.id ?? ''}`;
  }

  // ---- WebSocket events -----------------------------------------------------------------

  private onHello(_h: HelloFrame, reconnect: boolean): void {
    // Ask for exactly what this tab lacks in the conversations it holds.
    const cursors: Record<string, number> = {};
    for (const c of this.convs.values()) {
      if (c.joined && c.msgs.length) cursors[c.key] = contiguousTop(c);
    }
    if (Object.keys(cursors).length) this.socket.send({ op: 'sync', cursors });
    for (const p of this.pending) if (!p.permanent) this.transmit(p);
    for (const c of this.convs.values()) this.sendRead(c);
    this.flushAcks();
    if (reconnect) {
      // Read markers moved and conversations started while we were away.
      this.refreshAll().catch(() => undefined);
    }
  }

  private onLost(): void {
    for (const p of this.pending) {
      if (p.status === 'sending') {
        clearTimeout(this.sendTimers.get(p.cid));
        this.sendTimers.delete(p.cid);
        p.status = 'queued';
      }
    }
    this.changedPending();
  }

  private onFrame(f: ServerFrame): void {
    switch (f.op) {
      case 'msg': {
        const known = this.convs.get(f.conversation);
        const c = this.ensureConv(f.conversation);
        if (!known || !c.joined) {
          c.joined = true;
          this.refreshConversationsSoon(); // name and space of a conversation new to us
        }
        this.insert(c, [toMsg(f)]);
        if (f.from === this.me?.id) {
          c.readSeq = Math.max(c.readSeq, f.seq); // the server moved our marker with the send
          if (f.cid) this.settle(f.cid);
        }
        this.ackLater(c);
        if (c.loaded && c.msgs.length > 1 && c.msgs[c.msgs.length - 2].seq !== f.seq - 1) {
          void this.fillGaps(c);
        }
        this.emit();
        break;
      }
      case 'sent': {
        const p = this.settle(f.cid);
        if (!p) break;
        const c = this.ensureConv(f.conversation);
        this.insert(c, [
          { id: f.id, seq: f.seq, from: this.me!.id, type: 'text', body: p.body, createdAt: f.created_at ?? p.createdAt, cid: f.cid },
        ]);
        c.readSeq = Math.max(c.readSeq, f.seq);
        this.ackLater(c);
        if (c.loaded) void this.fillGaps(c);
        this.emit();
        break;
      }
      case 'read': {
        const c = this.convs.get(f.conversation);
        if (!c) break;
        c.readSeq = Math.max(c.readSeq, f.seq);
        c.readSent = Math.max(c.readSent, f.seq);
        this.emit();
        break;
      }
      case 'error': {
        const p = f.cid ? this.pending.find((x) => x.cid === f.cid) : undefined;
        if (p) {
          clearTimeout(this.sendTimers.get(p.cid));
          p.status = 'failed';
          p.error = f.message;
          p.refused = true;
          p.permanent = PERMANENT_ERRORS.has(f.code);
          this.changedPending();
        } else {
          this.setNotice(`The server refused ${f.ref ?? 'a request'}: ${f.message}`);
        }
        break;
      }
      default:
        break;
    }
  }
}
