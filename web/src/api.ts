// REST client for /api/v1: JSON in and out, bearer auth with one refresh-and-retry on 401,
// errors as ApiError carrying the server's error code.

import { LoggedOut, SessionStore, fromLogin } from './session';
import type {
  AdminUser,
  Channel,
  ConversationList,
  FileMeta,
  Invite,
  InvitePreview,
  LoginResponse,
  LoginSession,
  Member,
  PageOf,
  SearchResult,
  Space,
  User,
  WireMessage,
} from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Page {
  before_seq?: number;
  after_seq?: number;
  limit?: number;
}

export class Api {
  constructor(private readonly session: SessionStore) {}

  /** A Blob body goes out as its raw bytes (an avatar), anything else as JSON. */
  private async request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const raw = body instanceof Blob;
    const type = raw ? body.type || 'application/octet-stream' : 'application/json';
    const send = (token?: string) =>
      fetch(`/api/v1${path}`, {
        method,
        headers: {
          ...(body !== undefined ? { 'content-type': type } : {}),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
      });
    let res: Response;
    if (auth) {
      const token = await this.session.accessToken();
      res = await send(token);
      if (res.status === 401) res = await send((await this.session.refresh(token)).access);
      if (res.status === 401) {
        this.session.set(null);
        throw new LoggedOut();
      }
    } else {
      res = await send();
    }
    if (res.status === 204) return undefined as T;
    let data: unknown = null;
    try {
      data = await res.json();
    } catch {
      // non-JSON body (e.g. a proxy error page)
    }
    if (!res.ok) {
      const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(res.status, err?.code ?? 'internal', err?.message ?? `HTTP ${res.status}`);
    }
    return data as T;
  }

  /** Sets a new password; the answer is a new session (every other one ended). */
  async changePassword(oldPassword: string, newPassword: string) {
    const r = await this.request<LoginResponse>('POST', '/users/me/password', {
      old_password: oldPassword,
      new_password: newPassword,
    });
    return fromLogin(r);
  }

  /** The user's live sessions, most recently used first (at most 32: not paged). */
  sessions() {
    return this.request<{ sessions: LoginSession[] }>('GET', '/users/me/sessions');
  }

  /** Ends one session (its tokens are refused, its WebSockets closed). */
  endSession(id: string) {
    return this.request<void>('DELETE', `/users/me/sessions/${encodeURIComponent(id)}`);
  }

  /** Log out everywhere: every refresh token of the user is revoked. */
  endAllSessions() {
    return this.request<void>('DELETE', '/users/me/sessions');
  }

  /** A one-time ticket for /ws?ticket= (30 s). */
  async wsTicket(): Promise<string> {
    return (await this.request<{ ticket: string }>('POST', '/ws/ticket', {})).ticket;
  }

  register(name: string, phone: string, password: string) {
    return this.request<{ user: User }>('POST', '/auth/register', { name, phone, password }, false);
  }
  async login(phone: string, password: string) {
    const r = await this.request<LoginResponse>('POST', '/auth/login', { phone, password }, false);
    return fromLogin(r);
  }
  logout(refreshToken: string) {
    return this.request<void>('POST', '/auth/logout', { refresh_token: refreshToken }, false);
  }

  /** PATCH /users/me: the fields given change (docs/api.md). */
  updateMe(fields: { name?: string; avatar?: string; read_receipts?: boolean }) {
    return this.request<User>('PATCH', '/users/me', fields);
  }

  me() {
    return this.request<User>('GET', '/users/me');
  }

  // ---- server administration (a server admin only: 403 otherwise)
  adminUsers(query: string, after = '0', limit = 50) {
    return this.request<PageOf<'users', AdminUser>>(
      'GET', `/admin/users?q=${encodeURIComponent(query)}&after=${encodeURIComponent(after)}&limit=${limit}`);
  }
  adminSetDeactivated(userId: string, deactivated: boolean) {
    return this.request<void>('POST', `/admin/users/${encodeURIComponent(userId)}/${deactivated ? 'deactivate' : 'reactivate'}`, {});
  }
  /** Sets a generated password (every session of the user ends); returns it, to hand over once. */
  adminResetPassword(userId: string) {
    return this.request<{ password: string }>('POST', `/admin/users/${encodeURIComponent(userId)}/password`, {});
  }
  /** Removes the user from the space whatever their role (not its owner). */
  adminRemoveMember(spaceId: string, userId: string) {
    return this.request<void>('DELETE', `/admin/spaces/${encodeURIComponent(spaceId)}/members/${encodeURIComponent(userId)}`);
  }
  /** Deletes any message (the `deleted` frame follows). */
  adminDeleteMessage(messageId: string) {
    return this.request<void>('DELETE', `/admin/messages/${encodeURIComponent(messageId)}`);
  }
  adminSpaces(after = '0', limit = 50) {
    return this.request<PageOf<'spaces', Space>>('GET', `/admin/spaces?after=${encodeURIComponent(after)}&limit=${limit}`);
  }
  user(id: string) {
    return this.request<User>('GET', `/users/${encodeURIComponent(id)}`);
  }
  /**
   * The user directory: the people this user may DM whose name starts with `q` (any case), by
   * name, a page at a time (docs/api.md, GET /users?q=).
   */
  directory(q: string, after = '', limit = 20) {
    const from = after ? `&after=${encodeURIComponent(after)}` : '';
    return this.request<PageOf<'users', User>>('GET', `/users?q=${encodeURIComponent(q)}&limit=${limit}${from}`);
  }
  /** One page of the server's discoverable spaces. */
  discoverableSpaces(after = '') {
    const from = after ? `&after=${encodeURIComponent(after)}` : '';
    return this.request<PageOf<'spaces', Space>>('GET', `/spaces?discoverable=1&limit=100${from}`);
  }

  /** One page of a channel's members (docs/api.md, "Paging of member lists"). */
  channelMembers(channelId: string, after = '0', limit = 100) {
    return this.request<{ members: Member[]; next_after: string | null }>(
      'GET',
      `/channels/${encodeURIComponent(channelId)}/members?after=${encodeURIComponent(after)}&limit=${limit}`,
    );
  }

  /** One page of a space's members (docs/api.md, "Paging of member lists"). */
  spaceMembers(spaceId: string, after = '0', limit = 100) {
    return this.request<{ members: Member[]; next_after: string | null }>(
      'GET',
      `/spaces/${encodeURIComponent(spaceId)}/members?after=${encodeURIComponent(after)}&limit=${limit}`,
    );
  }

  /** Every space of the user, following the pages (`next_after`) of the list. */
  async spaces(): Promise<{ spaces: Space[] }> {
    return { spaces: await this.allPages<Space>('/spaces', 'spaces') };
  }
  createSpace(name: string) {
    return this.request<Space>('POST', '/spaces', { name });
  }
  joinSpace(id: string) {
    return this.request<Space>('POST', `/spaces/${encodeURIComponent(id)}/join`);
  }
  setDiscoverable(spaceId: string, discoverable: boolean) {
    return this.request<Space>('PATCH', `/spaces/${encodeURIComponent(spaceId)}`, { discoverable });
  }
  /** A new invitation; without settings the server's defaults (100 uses, 7 days). */
  createInvite(spaceId: string, settings: { max_uses?: number; expires_in_s?: number } = {}) {
    return this.request<Invite>('POST', `/spaces/${encodeURIComponent(spaceId)}/invites`, settings);
  }
  /** The space's usable invitations, newest first (admins and the owner). */
  invites(spaceId: string) {
    return this.request<{ invites: Invite[] }>('GET', `/spaces/${encodeURIComponent(spaceId)}/invites`);
  }
  revokeInvite(spaceId: string, code: string) {
    return this.request<void>('DELETE', `/spaces/${encodeURIComponent(spaceId)}/invites/${encodeURIComponent(code)}`);
  }
  /** The first page of the space's bans (`joined_at`: when banned). */
  bans(spaceId: string) {
    return this.request<PageOf<'bans', Member>>('GET', `/spaces/${encodeURIComponent(spaceId)}/bans?limit=100`);
  }
  unban(spaceId: string, userId: string) {
    return this.request<void>('DELETE', `/spaces/${encodeURIComponent(spaceId)}/bans/${encodeURIComponent(userId)}`);
  }
  /** The owner hands the space over; they become an admin. */
  transferSpace(spaceId: string, userId: string) {
    return this.request<Space>('POST', `/spaces/${encodeURIComponent(spaceId)}/transfer`, { user_id: userId });
  }
  renameSpace(spaceId: string, name: string) {
    return this.request<Space>('PATCH', `/spaces/${encodeURIComponent(spaceId)}`, { name });
  }
  /** The first page of this user's blocks. */
  blocks() {
    return this.request<PageOf<'blocks', { user_id: string; name: string; blocked_at: number }>>('GET', '/users/me/blocks?limit=100');
  }
  setBlocked(userId: string, blocked: boolean) {
    return blocked
      ? this.request<void>('POST', '/users/me/blocks', { user_id: userId })
      : this.request<void>('DELETE', `/users/me/blocks/${encodeURIComponent(userId)}`);
  }
  previewInvite(code: string) {
    return this.request<InvitePreview>('GET', `/invites/${encodeURIComponent(code)}`);
  }
  acceptInvite(code: string) {
    return this.request<Space>('POST', `/invites/${encodeURIComponent(code)}/accept`);
  }
  removeMember(spaceId: string, userId: string) {
    return this.request<void>('DELETE', `/spaces/${encodeURIComponent(spaceId)}/members/${encodeURIComponent(userId)}`);
  }
  setRole(spaceId: string, userId: string, role: 'admin' | 'member') {
    return this.request<Space>('PATCH', `/spaces/${encodeURIComponent(spaceId)}/members/${encodeURIComponent(userId)}`, { role });
  }
  addToChannel(spaceId: string, channelId: string, userId: string) {
    return this.request<Channel>('POST', `/spaces/${encodeURIComponent(spaceId)}/channels/${encodeURIComponent(channelId)}/members`, { user_id: userId });
  }
  /** Renames, archives (read-only) or unarchives a channel, or sets its history_from_join. */
  updateChannel(channelId: string, settings: { name?: string; archived?: boolean; history_from_join?: boolean }) {
    return this.request<Channel>('PATCH', `/channels/${encodeURIComponent(channelId)}`, settings);
  }
  deleteChannel(channelId: string) {
    return this.request<void>('DELETE', `/channels/${encodeURIComponent(channelId)}`);
  }
  removeFromChannel(channelId: string, userId: string) {
    return this.request<void>('DELETE', `/channels/${encodeURIComponent(channelId)}/members/${encodeURIComponent(userId)}`);
  }
  banMember(spaceId: string, userId: string) {
    return this.request<void>('POST', `/spaces/${encodeURIComponent(spaceId)}/bans`, { user_id: userId });
  }
  async channels(spaceId: string): Promise<{ channels: Channel[] }> {
    return { channels: await this.allPages<Channel>(`/spaces/${spaceId}/channels`, 'channels') };
  }

  /** A keyset-paged list, page after page (100 items each) until `next_after` is null. */
  private async allPages<T>(path: string, key: string): Promise<T[]> {
    const out: T[] = [];
    await this.eachPage(path, (page) => out.push(...((page[key] as T[] | undefined) ?? [])));
    return out;
  }
  /** Calls `take` with each page of a paged list (100 a page), following next_after. */
  private async eachPage(path: string, take: (page: Record<string, unknown>) => void): Promise<void> {
    let after = '';
    for (let pages = 0; pages < 100; pages++) {
      const q = after ? `?limit=100&after=${encodeURIComponent(after)}` : '?limit=100';
      const page = await this.request<Record<string, unknown>>('GET', path + q);
      take(page);
      const next = page.next_after;
      if (typeof next !== 'string' || !next) break;
      after = next;
    }
  }
  createChannel(spaceId: string, name: string, isPrivate = false) {
    return this.request<Channel>('POST', `/spaces/${spaceId}/channels`, { name, private: isPrivate });
  }
  joinChannel(id: string) {
    return this.request<Channel>('POST', `/channels/${id}/join`);
  }

  /** Every conversation, page by page (the server sends at most 100 a page); the space
   *  roll-up of unread counts comes with each page, the last one's is kept. */
  async conversations(): Promise<ConversationList> {
    const all: ConversationList = { conversations: [], spaces: [] };
    await this.eachPage('/conversations', (page) => {
      all.conversations.push(...(page as unknown as ConversationList).conversations);
      all.spaces = (page as unknown as ConversationList).spaces;
    });
    return all;
  }

  /**
   * Uploads a file (POST /api/v1/files, the raw bytes as the body) with XHR, which reports the
   * upload's progress (fetch does not): `progress` gets the fraction sent, 0..1.
   */
  async upload(file: Blob, name: string, progress?: (fraction: number) => void): Promise<FileMeta> {
    const once = (token: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const xhr = new XMLHttpRequest();
        xhr.open('POST', `/api/v1/files?name=${encodeURIComponent(name)}`);
        xhr.setRequestHeader('authorization', `Bearer ${token}`);
        xhr.upload.onprogress = (e) => {
          if (e.lengthComputable && progress) progress(e.loaded / e.total);
        };
        xhr.onload = () => resolve({ status: xhr.status, body: xhr.responseText });
        xhr.onerror = () => reject(new ApiError(0, 'unavailable', 'The upload failed: no connection.'));
        xhr.send(file);
      });
    const token = await this.session.accessToken();
    let res = await once(token);
    if (res.status === 401) res = await once((await this.session.refresh(token)).access);
    let data: unknown = null;
    try {
      data = JSON.parse(res.body);
    } catch {
      // not JSON
    }
    if (res.status !== 201) {
      const err = (data as { error?: { code?: string; message?: string } } | null)?.error;
      throw new ApiError(res.status, err?.code ?? 'internal', err?.message ?? `HTTP ${res.status}`);
    }
    return data as FileMeta;
  }

  /**
   * A file's bytes as a Blob, fetched with the Bearer header: `<img src>` and download links
   * cannot send it, and the token never goes into a URL (docs/api.md), so views show object
   * URLs of these.
   */
  async fileBlob(url: string): Promise<Blob> {
    if (!url.startsWith('/api/v1/files/') && !isAvatarUrl(url)) {
      throw new ApiError(400, 'invalid_argument', 'not a file URL');
    }
    const get = (token: string) => fetch(url, { headers: { authorization: `Bearer ${token}` } });
    const token = await this.session.accessToken();
    let res = await get(token);
    if (res.status === 401) res = await get((await this.session.refresh(token)).access);
    if (!res.ok) throw new ApiError(res.status, res.status === 404 ? 'not_found' : 'internal', `HTTP ${res.status}`);
    return res.blob();
  }

  /**
   * Sets an avatar from an image (PUT .../avatar, the raw bytes): the server stores a square
   * and answers the user, space or channel, whose `avatar` is now that square's URL.
   */
  setMyAvatar(image: Blob) {
    return this.request<User>('PUT', '/users/me/avatar', image);
  }
  setSpaceAvatar(spaceId: string, image: Blob) {
    return this.request<Space>('PUT', `/spaces/${spaceId}/avatar`, image);
  }

  /** Full-text search over what the user may read, newest first (docs/api.md). */
  search(q: string, opts: { in?: string; cursor?: string; limit?: number } = {}) {
    const p = new URLSearchParams({ q });
    for (const [k, v] of Object.entries(opts)) if (v !== undefined) p.set(k, String(v));
    return this.request<SearchResult>('GET', `/search?${p}`);
  }
  /** One message by id, as history shows it (a reply's original that is not loaded). */
  message(id: string) {
    return this.request<WireMessage>('GET', `/messages/${id}`);
  }
  /** History of a conversation ("channel:<id>" or "dm:<user id>"), oldest first. */
  history(conversation: string, page: Page) {
    const [kind, id] = conversation.split(':');
    const base = kind === 'channel' ? `/channels/${id}/messages` : `/dms/${id}/messages`;
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(page)) if (v !== undefined) q.set(k, String(v));
    return this.request<{ messages: WireMessage[] }>('GET', `${base}?${q}`);
  }
}

/**
 * An avatar uploaded to this server (docs/api.md "PUT /api/v1/users/me/avatar"): the only
 * `avatar` values the client fetches. Anything else in that field is someone's free text.
 */
export function isAvatarUrl(url: string | undefined): url is string {
  return !!url && /^\/api\/v1\/(users|spaces|channels)\/[0-9]+\/avatar(\?v=[0-9a-f]{1,64})?$/.test(url);
}
