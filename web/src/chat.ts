// The chat state the components read and the actions they call: a facade over the model in
// src/model/ (directory, conversations, history paging, outbox, receipts, frame dispatch) that
// wires it to the REST Api, the Socket, window timers and Web Storage, and owns what is about
// the page: the open conversation and its URL, the selected space, the notice, visibility.
// Components read the public fields and call the methods; `subscribe` tells them to re-render.

import { Api, ApiError } from './api';
import type { Conv } from './model/conversation';
import { onFrame, onHello, type Target } from './model/dispatch';
import { Directory, convTitle } from './model/directory';
import { History } from './model/history';
import { Outbox, type Pending } from './model/outbox';
import type { Timers } from './model/ports';
import { Receipts } from './model/receipts';
import { Users } from './model/users';
import { LoggedOut, SessionStore } from './session';
import { Socket, type ConnState } from './socket';
import type { Channel, HelloFrame, Space, User } from './types';

export type { Conv, Msg } from './model/conversation';
export { topSeq } from './model/conversation';
export { unread } from './model/directory';
export { HISTORY_PAGE } from './model/history';
export type { Pending, PendingStatus } from './model/outbox';

const windowTimers: Timers = {
  set: (fn, ms) => window.setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as number | undefined),
};

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
  selectedSpace: string | null = null;
  open: string | null = null;
  notice: string | null = null;

  private readonly dir = new Directory();
  private readonly users: Users;
  private readonly paging: History;
  private readonly outbox: Outbox;
  private readonly receipts: Receipts;
  private readonly target: Target;
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
      frame: (f) => onFrame(this.target, f),
      state: (s) => {
        this.conn = s;
        this.emit();
      },
      lost: () => this.outbox.lost(),
      trouble: () => void this.api.me().catch(() => undefined), // refreshes a refused token
      loggedOut: () => session.set(null),
    });
    const send = (frame: object) => this.socket.send(frame);
    const changed = () => this.emit();
    this.users = new Users((id) => this.api.user(id), changed);
    this.receipts = new Receipts({ send, timers: windowTimers, convs: () => this.dir.convs.values() });
    this.paging = new History({
      fetch: (key, q) => this.api.history(key, q),
      merged: (c) => this.receipts.ackLater(c),
      changed,
      fail: (e) => this.fail(e),
    });
    this.outbox = new Outbox({
      send,
      timers: windowTimers,
      // Looked up on use: reading `sessionStorage` throws where the browser blocks storage.
      store: {
        getItem: (k) => sessionStorage.getItem(k),
        setItem: (k, v) => sessionStorage.setItem(k, v),
        removeItem: (k) => sessionStorage.removeItem(k),
      },
      changed,
    });
    this.target = {
      dir: this.dir,
      outbox: this.outbox,
      receipts: this.receipts,
      send,
      me: () => this.me?.id,
      fillGaps: (c) => void this.paging.fillGaps(c),
      refreshConversationsSoon: () => this.refreshConversationsSoon(),
      refreshAll: () => void this.refreshAll().catch(() => undefined),
      notice: (text) => this.setNotice(text),
      changed,
    };
    document.addEventListener('visibilitychange', () => this.emit());
  }

  /** Conversations by key (see model/directory.ts). */
  get convs(): Map<string, Conv> {
    return this.dir.convs;
  }

  /** Sends waiting for their `sent`, oldest first (see model/outbox.ts). */
  get pending(): Pending[] {
    return this.outbox.list;
  }

  // ---- lifecycle ------------------------------------------------------------------------

  subscribe(l: () => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Starts for the logged-in user: lists over REST, then the WebSocket. */
  start(me: User, openKey: string | null): void {
    this.me = me;
    this.users.put(me);
    this.selectedSpace = localStorage.getItem(this.spaceKey());
    this.outbox.open(me.id);
    this.socket.start();
    void this.refreshAll().then(() => {
      if (openKey && this.open === null) this.openConv(openKey);
    });
    this.emit();
  }

  stop(): void {
    this.generation++;
    this.socket.stop();
    this.outbox.close();
    this.receipts.cancel();
    clearTimeout(this.convRefreshTimer);
    this.me = null;
    this.spaces = [];
    this.channels = {};
    this.dir.reset();
    this.selectedSpace = null;
    this.open = null;
    this.notice = null;
    this.users.clear();
    this.emit();
  }

  async logout(): Promise<void> {
    const s = this.session.get();
    this.outbox.forget();
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
    for (const peer of this.dir.applyList(list.conversations)) this.users.remember(peer);
    this.emit();
    for (const c of this.dir.convs.values()) if (c.loaded) void this.paging.fillGaps(c);
  }

  /** Refetches the conversation list soon (a message arrived for one we do not know). */
  private refreshConversationsSoon(): void {
    clearTimeout(this.convRefreshTimer);
    this.convRefreshTimer = window.setTimeout(() => {
      this.loadConversations().catch((e) => this.fail(e));
    }, 200);
  }

  ensureConv(key: string): Conv {
    return this.dir.ensure(key);
  }

  spaceUnread(spaceId: string): number {
    return this.dir.spaceUnread(spaceId);
  }

  dms(): Conv[] {
    return this.dir.dms((c) => this.convTitle(c));
  }

  convTitle(c: Conv): string {
    return convTitle(c, (id) => this.userName(id), this.channels);
  }

  // ---- users ----------------------------------------------------------------------------

  /** The user's name, or a placeholder while it is being fetched (cached afterwards). */
  userName(id: string): string {
    return this.users.name(id);
  }

  /** Finds users by exact id or by name (case-insensitive); never the caller. */
  async findUsers(query: string): Promise<User[]> {
    const q = query.trim();
    if (!q) return [];
    const users = /^\d+$/.test(q) ? [await this.api.user(q)] : (await this.api.findUsers(q)).users;
    for (const u of users) this.users.put(u);
    return users.filter((u) => u.id !== this.me?.id);
  }

  openDm(user: User): void {
    this.users.put(user);
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

  private spaceKey(): string {
    return `imd.space.${this.me?.id ?? ''}`;
  }

  // ---- conversations and history --------------------------------------------------------

  openConv(key: string | null): void {
    this.open = key;
    if (key) {
      const c = this.dir.ensure(key);
      if (c.spaceId && c.spaceId !== this.selectedSpace) this.selectSpace(c.spaceId);
      if (!c.loaded && c.joined) void this.paging.latest(c);
    }
    const path = key ? `/c/${key}` : '/';
    if (location.pathname !== path) history.replaceState(null, '', path);
    this.emit();
  }

  async loadOlder(key: string): Promise<void> {
    const c = this.dir.get(key);
    if (c) await this.paging.older(c);
  }

  /** The user sees the conversation up to its newest message: move the read marker. */
  markRead(key: string): void {
    const c = this.dir.get(key);
    if (!c || !c.joined || document.visibilityState === 'hidden') return;
    if (this.receipts.read(c)) this.emit();
  }

  // ---- sending --------------------------------------------------------------------------

  /** Queues a message; it shows as pending until the server's `sent`. Returns an error text. */
  send(key: string, body: string): string | null {
    return this.outbox.add(key, body);
  }

  /** Sends a failed message again with the same cid (the server deduplicates). */
  retry(cid: string): void {
    this.outbox.retry(cid);
  }

  /** Drops a message the server refused (one that timed out may be stored: retry it). */
  discard(cid: string): void {
    this.outbox.discard(cid);
  }

  pendingOf(key: string): Pending[] {
    return this.outbox.of(key);
  }

  // ---- WebSocket events (model/dispatch.ts) --------------------------------------------

  private onHello(_h: HelloFrame, reconnect: boolean): void {
    onHello(this.target, reconnect);
  }
}
