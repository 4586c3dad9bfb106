// The chat state the components read and the actions they call: a facade over the model in
// src/model/ (directory, conversations, history paging, outbox, receipts, frame dispatch) that
// wires it to the REST Api, the Socket, window timers and Web Storage, and owns what is about
// the page: the open conversation and its URL, the selected space, the notice, visibility.
// Components read the public fields and call the methods; `subscribe` tells them to re-render.

import { Api, ApiError } from './api';
import { attention, notify } from './attention';
import { chime } from './sound';
import type { Conv, Msg } from './model/conversation';
import { mentions, onFrame, onHello, typingNow, type Target } from './model/dispatch';
import { MAX_BODY_BYTES } from './model/outbox';

/** files.max_bytes of a default server (docs/operations.md "Files"); the server decides. */
export const MAX_FILE_BYTES = 25 * 1024 * 1024;
import { Directory, convTitle, unread } from './model/directory';
import { Drafts } from './model/drafts';
import { findPeople } from './model/finder';
import { History } from './model/history';
import { ListCache } from './model/listcache';
import { Outbox, type Pending } from './model/outbox';
import { Presence, type PresenceStatus } from './model/presence';
import { Prefs, alertFor, spaceMuteKey } from './model/prefs';
import { Blocks, deleteRoute, manages } from './model/moderation';
import type { Timers } from './model/ports';
import { Receipts } from './model/receipts';
import { Users } from './model/users';
import { Quotes } from './model/quotes';
import { LoggedOut, SessionStore } from './session';
import { Socket, type ConnState } from './socket';
import type { Channel, ConversationList, HelloFrame, Member, Space, User } from './types';

const NETWORK_ERROR = 'The server cannot be reached.';
const EMIT_FALLBACK_MS = 200;
/** `typing` frames go out at most this often while the user types. */
const TYPING_EVERY_MS = 2000;
/** Members listed per space for the DM finder at most, and how long such a list is reused. */
const PEOPLE_PER_SPACE = 1000;
const PEOPLE_TTL_MS = 60_000;
/** No key, pointer or touch input for this long (or a hidden page): this device is idle. */
const IDLE_AFTER_MS = 5 * 60_000;
const IDLE_CHECK_MS = 15_000;

/** localStorage through the model's port, looked up on use (it throws where storage is blocked). */
const local = {
  getItem: (k: string) => localStorage.getItem(k),
  setItem: (k: string, v: string) => localStorage.setItem(k, v),
  removeItem: (k: string) => localStorage.removeItem(k),
};

export type { Conv, Msg } from './model/conversation';
export { topSeq } from './model/conversation';
export { mentionCount, unread } from './model/directory';
export { findById } from './model/conversation';
export { HISTORY_PAGE } from './model/history';
export type { Pending, PendingStatus } from './model/outbox';

const windowTimers: Timers = {
  set: (fn, ms) => window.setTimeout(fn, ms),
  clear: (h) => clearTimeout(h as number | undefined),
};

function describe(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  if (e instanceof TypeError) return NETWORK_ERROR;
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
  /** A message to bring into view and mark (a search hit); `token` tells two jumps apart. */
  focus: { key: string; seq: number; token: number } | null = null;
  notice: string | null = null;
  /** What the user types, per conversation, kept across reloads. */
  readonly drafts = new Drafts(local);
  /** Muted conversations, sound and desktop notifications: this device's settings per user. */
  readonly prefs = new Prefs(local);
  /** Whom this user blocked (loaded once per start; kept as the server answers). */
  readonly blocks = new Blocks();

  private readonly dir = new Directory();
  /** The sidebar as last fetched, shown at the next start until the server answers. */
  private readonly listCache = new ListCache(local);
  private lastList: ConversationList | null = null;
  private restoredFor: string | null = null;
  private readonly users: Users;
  private readonly quotes: Quotes;
  private readonly paging: History;
  private readonly outbox: Outbox;
  private readonly receipts: Receipts;
  private readonly presence: Presence;
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
      ticket: () => this.api.wsTicket(),
      hello: (h, reconnect) => this.onHello(h, reconnect),
      frame: (f) => onFrame(this.target, f),
      state: (s) => {
        this.conn = s;
        if (s === 'online' && this.notice === NETWORK_ERROR) this.notice = null; // the cause is gone
        this.emit();
      },
      lost: () => this.outbox.lost(),
      trouble: () => void this.api.me().catch(() => undefined), // refreshes a refused token
      loggedOut: () => session.set(null),
    });
    const send = (frame: object) => this.socket.send(frame);
    const changed = () => this.emit();
    this.users = new Users((id) => this.api.user(id), changed);
    this.quotes = new Quotes((id) => this.api.message(id), changed);
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
    this.presence = new Presence({ send, timers: windowTimers, changed });
    this.target = {
      dir: this.dir,
      outbox: this.outbox,
      receipts: this.receipts,
      presence: this.presence,
      send,
      me: () => this.me?.id,
      fillGaps: (c) => void this.paging.fillGaps(c),
      refreshConversationsSoon: () => this.refreshConversationsSoon(),
      refreshAll: () => void this.refreshAll().catch(() => undefined),
      notice: (text) => this.setNotice(text),
      incoming: (c, m) => this.incoming(c, m),
      changed,
      now: () => Date.now(),
      expireTyping: (_c, ms) => window.setTimeout(changed, ms + 50),
      channelRefused: (key) => {
        const spaceId = this.dir.get(key)?.spaceId;
        if (spaceId) this.loadChannels(spaceId).catch((e) => this.fail(e));
      },
      removedFrom: (spaceId, reason, conversation) =>
        conversation ? this.removedFromChannel(spaceId, conversation, reason) : this.removedFrom(spaceId, reason),
    };
    // Read markers move only while the user can see the page: visible and focused.
    document.addEventListener('visibilitychange', () => {
      this.checkIdle();
      this.emit();
    });
    for (const ev of ['keydown', 'pointerdown', 'pointermove', 'touchstart']) {
      window.addEventListener(ev, () => this.active(), { passive: true });
    }
    window.setInterval(() => this.checkIdle(), IDLE_CHECK_MS);
    window.addEventListener('focus', () => this.emit());
    window.addEventListener('blur', () => this.emit());
    this.subscribe(() => attention(this.dir.totalUnread((c) => !this.isMuted(c)), this.openTitle()));
  }

  /** The user can see the page: the tab is visible and its window has the focus. */
  get seeing(): boolean {
    return document.visibilityState === 'visible' && document.hasFocus();
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
    this.selectedSpace = localStorage.getItem(this.spaceKey()) ?? this.selectedSpace;
    this.outbox.open(me.id);
    this.drafts.open(me.id);
    this.prefs.open(me.id);
    this.restoreList(me.id);
    this.socket.start();
    // The stored session holds the profile of the login; the name as changed since, and the
    // settings, come with GET /users/me.
    void this.api.me().then((u) => {
      if (this.me?.id !== u.id) return;
      this.me = { ...this.me, name: u.name, avatar: u.avatar, read_receipts: u.read_receipts, admin: !!u.admin };
      this.users.put(this.me);
      this.emit();
    }, () => undefined);
    void this.loadBlocks().catch(() => undefined);
    // No conversation in the URL: the one open when this user last used the app.
    const reopen = openKey ?? localStorage.getItem(this.openKey());
    void this.refreshAll().then(() => {
      if (reopen && this.open === null && (openKey || this.dir.get(reopen)?.joined)) this.openConv(reopen);
    });
    this.emit();
  }

  /**
   * The sidebar as this device last saw it for `userId` (model/listcache.ts), until the server's
   * answers replace it. main.tsx calls it before the first render, so that a returning user's
   * first frame has it; start() does when main.tsx did not (a login).
   */
  restoreList(userId: string): void {
    if (this.restoredFor === userId) return;
    this.restoredFor = userId;
    const snapshot = this.listCache.read(userId);
    if (!snapshot) return;
    this.spaces = snapshot.spaces;
    if (snapshot.spaceId) this.channels = { [snapshot.spaceId]: snapshot.channels };
    if (!this.spaces.some((s) => s.id === this.selectedSpace)) this.selectedSpace = snapshot.spaceId;
    this.applyList(snapshot.list, true);
  }

  stop(): void {
    this.generation++;
    this.socket.stop();
    this.outbox.close();
    this.receipts.cancel();
    this.drafts.close();
    this.prefs.close();
    clearTimeout(this.convRefreshTimer);
    this.lastList = null;
    this.restoredFor = null;
    this.me = null;
    this.spaces = [];
    this.channels = {};
    this.dir.reset();
    this.presence.reset();
    this.selectedSpace = null;
    this.open = null;
    this.notice = null;
    this.users.clear();
    this.blocks.clear();
    this.roles.clear();
    this.convPeople.clear();
    this.emit();
  }

  /** Every other session of the user ends; this tab goes on with the session the server returns. */
  async changePassword(oldPassword: string, newPassword: string): Promise<void> {
    this.session.set(await this.api.changePassword(oldPassword, newPassword));
  }

  /**
   * Turns DM read receipts on or off (both ways: ours are not sent, theirs not shown). The
   * "Seen" marks go at once; the conversation list brings the server's view.
   */
  async setReadReceipts(on: boolean): Promise<void> {
    const me = await this.api.updateMe({ read_receipts: on });
    if (this.me?.id !== me.id) return;
    this.me = { ...this.me, read_receipts: me.read_receipts };
    if (!on) for (const c of this.dir.convs.values()) c.peerReadSeq = 0;
    this.emit();
    await this.loadConversations();
  }

  /** Changes the user's display name (PATCH /users/me); the server's refusal is thrown. */
  async setName(name: string): Promise<void> {
    const me = await this.api.updateMe({ name: name.trim() });
    if (this.me?.id !== me.id) return;
    this.me = { ...this.me, name: me.name };
    this.users.put(this.me);
    this.emit();
  }

  /** Every session of the user ends, this tab's too. */
  async logoutEverywhere(): Promise<void> {
    await this.api.endAllSessions();
    this.outbox.forget();
    this.drafts.forget();
    if (this.me) this.listCache.forget(this.me.id);
    this.socket.stop();
    this.session.set(null);
  }

  async logout(): Promise<void> {
    const s = this.session.get();
    this.outbox.forget();
    this.drafts.forget();
    if (this.me) this.listCache.forget(this.me.id);
    this.socket.stop();
    if (s) await this.api.logout(s.refresh).catch(() => undefined);
    this.session.set(null);
  }

  /**
   * Tells the listeners (the views) once per animation frame at most: a burst of frames from
   * the server renders once. A hidden page gets no animation frames: a timer instead (and as a
   * fallback when the page hides before the frame comes).
   */
  private emit(): void {
    if (this.emitQueued) return;
    this.emitQueued = true;
    const run = () => {
      if (!this.emitQueued) return;
      this.emitQueued = false;
      for (const l of this.listeners) l();
    };
    if (document.visibilityState === 'visible') requestAnimationFrame(run);
    // A page hidden before its next frame gets none: the timer runs it (title, favicon).
    setTimeout(run, document.visibilityState === 'visible' ? EMIT_FALLBACK_MS : 0);
  }

  /**
   * A message from someone else. A DM or a mention in a conversation not muted: a desktop
   * notification while the user cannot see the page, a sound while the tab is hidden or another
   * conversation is open (model/prefs.ts, alertFor).
   */
  private incoming(c: Conv, m: Msg): void {
    const a = alertFor({
      direct: c.kind === 'dm' || mentions(m.body, this.me?.id, true),
      muted: this.isMuted(c),
      visible: document.visibilityState === 'visible',
      seeing: this.seeing,
      open: this.open === c.key,
      sound: this.prefs.sound,
      desktop: this.prefs.desktop,
    });
    if (a.sound) chime();
    if (!a.notify) return;
    // A channel's author may not be known yet: the title waits for the name (not "…").
    void this.users.nameWhenKnown(m.from).then((from) => {
      notify(c.kind === 'dm' ? from : `${from} in # ${this.convTitle(c)}`, m.body, c.key, () => {
        window.focus();
        this.openConv(c.key);
      });
    });
  }

  /** The conversation is muted, itself or through its space (model/prefs.ts). */
  isMuted(c: Conv): boolean {
    return this.prefs.mutedIn(c.key, c.spaceId);
  }

  spaceMuted(spaceId: string): boolean {
    return this.prefs.muted(spaceMuteKey(spaceId));
  }

  /** Mutes a whole space on this device: every channel of it as if muted one by one. */
  setSpaceMuted(spaceId: string, on: boolean): void {
    this.setMuted(spaceMuteKey(spaceId), on);
  }

  /** Mutes a conversation on this device: its unread count stays, greyed, with no alert. */
  setMuted(key: string, on: boolean): void {
    this.prefs.setMuted(key, on);
    this.emit();
  }

  /** Sound or desktop notifications on or off (this device, this user). */
  setAlert(what: 'sound' | 'desktop', on: boolean): void {
    this.prefs.set(what, on);
    this.emit();
  }

  private openTitle(): string | null {
    const c = this.open ? this.dir.get(this.open) : undefined;
    if (!c) return null;
    return c.kind === 'channel' ? `# ${this.convTitle(c)}` : this.convTitle(c);
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
    this.storeList();
  }

  async loadConversations(): Promise<void> {
    const g = this.generation;
    const list = await this.api.conversations();
    if (g !== this.generation) return;
    this.lastList = list;
    this.applyList(list);
    this.storeList();
    for (const c of this.dir.convs.values()) if (c.loaded) void this.paging.fillGaps(c);
  }

  /** `stored`: the list of an earlier visit, whose DM peers' profiles the server's list replaces. */
  private applyList(list: ConversationList, stored = false): void {
    for (const peer of this.dir.applyList(list.conversations)) {
      if (stored) this.users.rememberStale(peer);
      else this.users.remember(peer);
    }
    this.emit();
  }

  /** What the next start shows before the server answers: the selected space's channels. */
  private storeList(): void {
    const spaceId = this.selectedSpace;
    if (!this.me || !this.lastList) return;
    this.listCache.write(this.me.id, {
      spaces: this.spaces,
      spaceId,
      channels: (spaceId && this.channels[spaceId]) || [],
      list: this.lastList,
    });
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

  /**
   * Unread over the space's joined channels that are not muted (muted ones show their own count
   * greyed); a muted space counts all of them (its badge is grey).
   */
  spaceUnread(spaceId: string): number {
    const all = this.spaceMuted(spaceId);
    return this.dir.spaceUnread(spaceId, (c) => all || !this.isMuted(c));
  }

  dms(): Conv[] {
    return this.dir.dms((c) => this.convTitle(c));
  }

  convTitle(c: Conv): string {
    return convTitle(c, (id) => this.userName(id), this.channels);
  }

  // ---- users ----------------------------------------------------------------------------

  /**
   * A reply's original that `conv` does not hold (older than its loaded history): undefined
   * while it is fetched, null when it cannot be read (deleted history, not visible).
   */
  quotedMessage(id: string): Msg | null | undefined {
    return this.quotes.get(id);
  }

  /** The user's name, or a placeholder while it is being fetched (cached afterwards). */
  userName(id: string): string {
    return this.users.name(id);
  }

  /**
   * Finds users by id, or by name: the server's directory (a name prefix over the people this
   * user may DM) plus a part of the name among everyone seen; best match first, never the caller.
   */
  async findUsers(query: string): Promise<User[]> {
    const q = query.trim();
    if (!q) return [];
    if (/^\d+$/.test(q)) {
      const u = await this.api.user(q);
      this.users.put(u);
      return u.id === this.me?.id ? [] : [u];
    }
    const { users } = await this.api.directory(q);
    for (const u of users) this.users.remember(u);
    const found = findPeople([...users, ...this.users.known()], q);
    return found.filter((u) => u.id !== this.me?.id);
  }

  /** This user's role per space: fetched once per page load (null: being fetched). */
  private roles = new Map<string, string | null>();

  /**
   * Whether this user may delete others' messages in the conversation: an owner or admin of the
   * channel's space (docs/security.md). Unknown at first: the role is fetched, then re-rendered.
   */
  moderates(c: Conv): boolean {
    if (c.kind !== 'channel' || !c.spaceId) return false;
    return manages(this.spaceRole(c.spaceId));
  }

  /**
   * Deletes a message: over the WebSocket (one's own, or as the space's owner or admin), or
   * as a server admin over REST (DELETE /admin/messages/{id}); the `deleted` frame follows.
   */
  deleteMessage(c: Conv, m: Msg): void {
    const route = deleteRoute(m, { me: this.me?.id, moderator: this.moderates(c), serverAdmin: !!this.me?.admin });
    if (route === 'admin') void this.api.adminDeleteMessage(m.id).catch((e) => this.fail(e));
    else if (route) this.remove(m.id);
  }

  // ---- blocks ---------------------------------------------------------------------------

  async loadBlocks(): Promise<void> {
    const g = this.generation;
    const page = await this.api.blocks();
    if (g !== this.generation) return;
    this.blocks.set(page.blocks);
    this.emit();
  }

  /** Blocks (DMs refused both ways) or unblocks a user. */
  async setBlocked(userId: string, blocked: boolean): Promise<void> {
    await this.api.setBlocked(userId, blocked);
    this.blocks.put(userId, this.userName(userId), blocked);
    this.emit();
  }

  /**
   * This user's role in a space ('owner', 'admin', 'member'); null while it is being fetched
   * (once per page load, then re-rendered).
   */
  spaceRole(spaceId: string): string | null {
    const me = this.me?.id;
    if (!me) return null;
    if (this.spaces.find((s) => s.id === spaceId)?.owner_id === me) return 'owner';
    const role = this.roles.get(spaceId);
    if (role === undefined) {
      this.roles.set(spaceId, null);
      // Members are listed by id: the page after the id just below ours starts with us.
      const after = (BigInt(me) - 1n).toString();
      this.api.spaceMembers(spaceId, after, 1).then((page) => {
        const mine = page.members.find((m) => m.user_id === me);
        this.roles.set(spaceId, mine?.role ?? 'member');
        this.emit();
      }, () => this.roles.delete(spaceId));
    }
    return role ?? null;
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

  /**
   * Joins by what the user pasted: an invite link (`…/invite/<code>`) or code, or the id of a
   * discoverable space.
   */
  async joinSpace(input: string): Promise<void> {
    const text = input.trim();
    const code = inviteCode(text);
    if (code) return this.acceptInvite(code);
    const s = await this.api.joinSpace(text);
    await this.loadSpaces();
    this.selectSpace(s.id);
  }

  /** Sets the user's own avatar from an image; the square the server made is shown at once. */
  async setMyAvatar(image: Blob): Promise<void> {
    const me = await this.api.setMyAvatar(image);
    this.me = { ...me, admin: this.me?.admin, read_receipts: me.read_receipts ?? this.me?.read_receipts };
    this.users.put(me);
    this.emit();
  }

  /** An admin or the owner sets the space's avatar. */
  async setSpaceAvatar(spaceId: string, image: Blob): Promise<void> {
    const s = await this.api.setSpaceAvatar(spaceId, image);
    this.spaces = this.spaces.map((x) => (x.id === s.id ? s : x));
    this.emit();
  }

  /** The avatar field of a user, '' until their profile is known (users.ts). */
  userAvatar(id: string): string {
    return id === this.me?.id ? this.me.avatar : this.users.avatar(id);
  }

  /** An admin or the owner renames the space. */
  async renameSpace(spaceId: string, name: string): Promise<void> {
    const s = await this.api.renameSpace(spaceId, name.trim());
    this.spaces = this.spaces.map((x) => (x.id === s.id ? s : x));
    this.emit();
  }

  /** The owner hands the space to another member and becomes an admin. */
  async transferSpace(spaceId: string, userId: string): Promise<void> {
    const s = await this.api.transferSpace(spaceId, userId);
    this.spaces = this.spaces.map((x) => (x.id === s.id ? s : x));
    this.roles.set(spaceId, 'admin');
    this.emit();
  }

  /** The owner lists the space for everyone (or stops). */
  async setDiscoverable(spaceId: string, discoverable: boolean): Promise<void> {
    const s = await this.api.setDiscoverable(spaceId, discoverable);
    this.spaces = this.spaces.map((x) => (x.id === s.id ? s : x));
    this.emit();
  }

  /** A page of the spaces anyone may join, less those this user is in; `next` for the next page. */
  async discoverable(after = ''): Promise<{ spaces: Space[]; next: string | null }> {
    const page = await this.api.discoverableSpaces(after);
    return { spaces: page.spaces.filter((s) => !this.spaces.some((mine) => mine.id === s.id)), next: page.next_after };
  }

  async acceptInvite(code: string): Promise<void> {
    const s = await this.api.acceptInvite(code);
    await this.loadSpaces();
    this.selectSpace(s.id);
  }

  /** A new invitation to the space, as a link this app opens (`/invite/<code>`). */
  async inviteLink(spaceId: string): Promise<string> {
    const inv = await this.api.createInvite(spaceId);
    return `${location.origin}/invite/${inv.code}`;
  }

  private convPeople = new Map<string, { at: number; list: Promise<{ id: string; name: string }[]> }>();

  /**
   * Who a mention in the conversation may name (the composer's @-autocomplete): a channel's
   * members (at most PEOPLE_PER_SPACE, reused for a minute), a DM's two people.
   */
  conversationPeople(c: Conv): Promise<{ id: string; name: string }[]> {
    if (c.kind === 'dm') {
      const me = this.me;
      return Promise.resolve([
        ...(me ? [{ id: me.id, name: me.name }] : []),
        { id: c.peerOrChannel, name: this.userName(c.peerOrChannel) },
      ]);
    }
    const held = this.convPeople.get(c.key);
    if (held && Date.now() - held.at < PEOPLE_TTL_MS) return held.list;
    const list = (async () => {
      const out: { id: string; name: string }[] = [];
      for (let after = '0'; out.length < PEOPLE_PER_SPACE; ) {
        const page = await this.api.channelMembers(c.peerOrChannel, after);
        for (const m of page.members) {
          out.push({ id: m.user_id, name: m.name });
          this.users.remember({ id: m.user_id, name: m.name, avatar: m.avatar, created_at: 0 });
        }
        if (!page.next_after) break;
        after = page.next_after;
      }
      return out;
    })();
    list.catch(() => this.convPeople.delete(c.key));
    this.convPeople.set(c.key, { at: Date.now(), list });
    return list;
  }

  /** The first members of a space, with their roles (the member panel). */
  async members(spaceId: string): Promise<Member[]> {
    const page = await this.api.spaceMembers(spaceId, '0', 100);
    for (const m of page.members) this.users.remember({ id: m.user_id, name: m.name, avatar: m.avatar, created_at: 0 });
    return page.members;
  }

  async setRole(spaceId: string, userId: string, role: 'admin' | 'member'): Promise<void> {
    await this.api.setRole(spaceId, userId, role);
  }

  /** Adds someone of the space (found by name or id among its members) to a channel one is in. */
  async addToChannel(spaceId: string, channelId: string, who: string): Promise<void> {
    const q = who.trim().toLowerCase();
    const members = await this.members(spaceId);
    const found = members.filter((m) => m.user_id === q || m.name.toLowerCase() === q);
    if (found.length === 0) throw new Error(`Nobody in this space is called “${who}”.`);
    if (found.length > 1) throw new Error('Several members have that name: use their id.');
    await this.api.addToChannel(spaceId, channelId, found[0].user_id);
  }

  async removeMember(spaceId: string, userId: string, ban: boolean): Promise<void> {
    if (ban) await this.api.banMember(spaceId, userId);
    else await this.api.removeMember(spaceId, userId);
  }

  /** The server removed this user from a space: its channels are gone, on every device. */
  private removedFrom(spaceId: string, reason: string): void {
    const name = this.spaces.find((s) => s.id === spaceId)?.name ?? 'a space';
    for (const c of this.dir.convs.values()) {
      if (c.spaceId === spaceId) c.joined = false;
    }
    const openConv = this.open ? this.dir.get(this.open) : undefined;
    if (openConv?.spaceId === spaceId) this.openConv(null);
    this.spaces = this.spaces.filter((s) => s.id !== spaceId);
    const { [spaceId]: _gone, ...rest } = this.channels;
    this.channels = rest;
    if (this.selectedSpace === spaceId) this.selectedSpace = this.spaces[0]?.id ?? null;
    this.setNotice(reason === 'banned' ? `You were banned from ${name}.` : `You were removed from ${name}.`);
    void this.refreshAll();
  }

  /** The server removed this user from a channel, or deleted it: gone, on every device. */
  private removedFromChannel(spaceId: string, key: string, reason: string): void {
    const c = this.dir.get(key);
    const name = c ? this.convTitle(c) : 'a channel';
    if (c) c.joined = false;
    if (this.open === key) this.openConv(null);
    this.setNotice(reason === 'deleted' ? `The channel ${name} was deleted.` : `You were removed from the channel ${name}.`);
    Promise.all([this.loadChannels(spaceId), this.loadConversations()]).catch((e) => this.fail(e));
  }

  /** The channel as listed in its space (the sidebar's copy), if loaded. */
  channel(channelId: string): Channel | undefined {
    for (const list of Object.values(this.channels)) {
      const found = list?.find((ch) => ch.id === channelId);
      if (found) return found;
    }
    return undefined;
  }

  /** Renames a channel, archives it, or sets its history_from_join; the list shows the result. */
  async updateChannel(channelId: string, settings: { name?: string; archived?: boolean; history_from_join?: boolean }): Promise<void> {
    const ch = await this.api.updateChannel(channelId, settings);
    if (settings.name !== undefined) {
      const c = this.dir.get(`channel:${ch.id}`);
      if (c) c.title = ch.name;
    }
    await this.loadChannels(ch.space_id);
  }

  async deleteChannel(channelId: string): Promise<void> {
    const spaceId = this.channel(channelId)?.space_id;
    await this.api.deleteChannel(channelId);
    const key = `channel:${channelId}`;
    const c = this.dir.get(key);
    if (c) c.joined = false;
    if (this.open === key) this.openConv(null);
    await Promise.all([spaceId ? this.loadChannels(spaceId) : Promise.resolve(), this.loadConversations()]);
  }

  /** The first members of a channel (the channel settings panel). */
  async channelMembers(channelId: string): Promise<Member[]> {
    const page = await this.api.channelMembers(channelId, '0', 100);
    for (const m of page.members) this.users.remember({ id: m.user_id, name: m.name, avatar: m.avatar, created_at: 0 });
    return page.members;
  }

  async removeFromChannel(channelId: string, userId: string): Promise<void> {
    await this.api.removeFromChannel(channelId, userId);
  }

  async createChannel(spaceId: string, name: string, isPrivate = false): Promise<void> {
    const ch = await this.api.createChannel(spaceId, name, isPrivate);
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
    if (key !== this.open) this.editing = null; // an edit belongs to the conversation it began in
    if (key !== this.focus?.key) this.focus = null;
    this.open = key;
    if (key) {
      const c = this.dir.ensure(key);
      if (c.spaceId && c.spaceId !== this.selectedSpace) this.selectSpace(c.spaceId);
      // A jump (jumpTo) loads the page around its message instead of the newest one.
      if (!c.loaded && c.joined && !this.focus) void this.paging.latest(c);
    }
    const path = key ? `/c/${key}` : '/';
    if (location.pathname !== path) history.replaceState(null, '', path);
    try {
      if (key) localStorage.setItem(this.openKey(), key);
      else localStorage.removeItem(this.openKey());
    } catch {
      // storage blocked: the URL still names it
    }
    this.emit();
  }

  /** Opens the conversation of message `seq` and brings that message into view (search). */
  jumpTo(key: string, seq: number): void {
    this.focus = { key, seq, token: (this.focus?.token ?? 0) + 1 };
    const c = this.dir.ensure(key);
    if (c.joined) void this.paging.around(c, seq);
    this.openConv(key);
  }

  /** The title of a conversation by key, as the sidebar shows it ("# general", a name). */
  titleOf(key: string): string {
    const c = this.dir.get(key);
    if (!c) return key;
    return c.kind === 'channel' ? `# ${this.convTitle(c)}` : this.convTitle(c);
  }

  /** Opens the conversation `step` places away in the sidebar's order (Alt+Up/Down). */
  openNext(step: number, onlyUnread = false): void {
    const order = this.sidebarOrder().filter((c) => !onlyUnread || unread(c) > 0 || c.key === this.open);
    if (!order.length) return;
    const at = order.findIndex((c) => c.key === this.open);
    const next = at < 0 ? (step > 0 ? 0 : order.length - 1) : (at + step + order.length) % order.length;
    if (order[next].key !== this.open) this.openConv(order[next].key);
  }

  /** Joined conversations as the sidebar lists them: the selected space's channels, then DMs. */
  sidebarOrder(): Conv[] {
    const out: Conv[] = [];
    for (const ch of (this.selectedSpace && this.channels[this.selectedSpace]) || []) {
      const c = this.dir.get(`channel:${ch.id}`);
      if (c?.joined) out.push(c);
    }
    return out.concat(this.dms());
  }

  /** Every joined conversation (the quick switcher). */
  allConvs(): Conv[] {
    return [...this.dir.convs.values()].filter((c) => c.joined);
  }

  private openKey(): string {
    return `imd.open.${this.me?.id ?? ''}`;
  }

  async loadOlder(key: string): Promise<void> {
    const c = this.dir.get(key);
    if (c) await this.paging.older(c);
  }

  /**
   * The user sees the conversation up to the message `seq` (its newest when omitted): move the
   * read marker, only while the page is visible and focused (or `force`d by the user, Esc).
   */
  markRead(key: string, seq?: number, force = false): void {
    const c = this.dir.get(key);
    if (!c || !c.joined || (!force && !this.seeing)) return;
    if (this.receipts.read(c, seq)) this.emit();
  }

  // ---- sending --------------------------------------------------------------------------

  /** Queues a message; it shows as pending until the server's `sent`. Returns an error text. */
  send(key: string, body: string, replyTo?: string): string | null {
    return this.outbox.add(key, body, replyTo);
  }

  /** Uploads in progress, per conversation: name and fraction sent (for the composer). */
  uploads: Record<string, { name: string; progress: number }[]> = {};

  /**
   * Uploads `file`, then sends it in a file message with `caption`. Resolves to an error text,
   * or null once the message is queued (it shows as pending until `sent`).
   */
  async sendFile(key: string, file: File, caption = ''): Promise<string | null> {
    if (file.size > MAX_FILE_BYTES) return `A file can be at most ${MAX_FILE_BYTES / (1024 * 1024)} MiB.`;
    const entry = { name: file.name || 'file', progress: 0 };
    const track = (list: { name: string; progress: number }[]) => {
      this.uploads = { ...this.uploads, [key]: list };
      this.emit();
    };
    track([...(this.uploads[key] ?? []), entry]);
    try {
      const meta = await this.api.upload(file, entry.name, (f) => {
        entry.progress = f;
        track([...(this.uploads[key] ?? [])]);
      });
      return this.outbox.add(key, caption, undefined, meta);
    } catch (e) {
      return e instanceof Error ? e.message : 'The upload failed.';
    } finally {
      track((this.uploads[key] ?? []).filter((u) => u !== entry));
    }
  }

  private fileUrls = new Map<string, Promise<string>>();

  /** An object URL of a file's bytes (fetched once per page load, with the Bearer header). */
  fileUrl(url: string): Promise<string> {
    let p = this.fileUrls.get(url);
    if (!p) {
      p = this.api.fileBlob(url).then((b) => URL.createObjectURL(b));
      p.catch(() => this.fileUrls.delete(url));
      this.fileUrls.set(url, p);
    }
    return p;
  }

  /** The message being edited inline (its seq in the open conversation), or null. */
  editing: number | null = null;
  /** The message the composer answers, per conversation. */
  replyTo: Record<string, Msg | undefined> = {};
  private typingSentAt = 0;

  setEditing(seq: number | null): void {
    this.editing = seq;
    this.emit();
  }

  setReply(key: string, m: Msg | undefined): void {
    this.replyTo = { ...this.replyTo, [key]: m };
    this.emit();
  }

  /** Edits our message; the `edited` frame brings the new state (an `error` a notice). */
  edit(id: string, body: string): string | null {
    if (new TextEncoder().encode(body).length > MAX_BODY_BYTES) {
      const text = `A message can be at most ${MAX_BODY_BYTES / 1024} KiB.`;
      this.setNotice(text);
      return text;
    }
    return this.change({ op: 'edit', id, body });
  }

  remove(id: string): string | null {
    return this.change({ op: 'delete', id });
  }

  react(id: string, emoji: string, on: boolean): string | null {
    return this.change({ op: 'react', id, emoji, on });
  }

  private change(frame: object): string | null {
    if (this.socket.send(frame)) return null;
    const text = 'Not connected: try again when back online.';
    this.setNotice(text);
    return text;
  }

  /** The user types in the conversation: a `typing` frame at most every TYPING_EVERY_MS. */
  typing(key: string): void {
    const now = Date.now();
    if (now - this.typingSentAt < TYPING_EVERY_MS) return;
    this.typingSentAt = now;
    this.socket.send({ op: 'typing', conversation: key });
  }

  /** Who types in the conversation now, by name. */
  typers(c: Conv): string[] {
    return typingNow(c, Date.now()).map((u) => this.userName(u));
  }

  spaceMentions(spaceId: string): number {
    const all = this.spaceMuted(spaceId);
    return this.dir.spaceMentions(spaceId, (c) => all || !this.isMuted(c));
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

  // ---- presence (model/presence.ts) -----------------------------------------------------

  /** A view shows these users now (`source` names it; an empty list: it shows none). */
  showPresence(source: string, ids: readonly string[]): void {
    this.presence.show(source, ids);
  }

  presenceOf(user: string): PresenceStatus {
    return user === this.me?.id && this.conn === 'online' ? (this.idle ? 'away' : 'online') : this.presence.of(user);
  }

  private lastInput = Date.now();
  private idle = false;

  private active(): void {
    this.lastInput = Date.now();
    if (this.idle) this.checkIdle();
  }

  /** Tells the server when this device turns idle or active (it folds all devices). */
  private checkIdle(): void {
    const idle = document.visibilityState === 'hidden' || Date.now() - this.lastInput >= IDLE_AFTER_MS;
    if (idle === this.idle) return;
    if (this.socket.send({ op: 'idle', idle })) this.idle = idle;
  }

  // ---- WebSocket events (model/dispatch.ts) --------------------------------------------

  private onHello(_h: HelloFrame, reconnect: boolean): void {
    // A new connection starts active on the server.
    this.idle = false;
    this.checkIdle();
    onHello(this.target, reconnect);
  }
}

/** The invitation code in a pasted link (`…/invite/<code>`) or a bare code; null for an id. */
export function inviteCode(text: string): string | null {
  const link = /\/invite\/([A-Za-z0-9_-]{1,64})\/?$/.exec(text);
  if (link) return link[1];
  return /^[A-Za-z0-9_-]{16,64}$/.test(text) && !/^\d+$/.test(text) ? text : null;
}
