// Wire shapes of the REST API (docs/api.md) and the WebSocket protocol (docs/protocol.md).
// Ids are decimal strings; seq values and counts are numbers.

export interface User {
  id: string;
  name: string;
  avatar: string;
  created_at: number;
  phone?: string;
  /** GET /users/me only: a server admin (the admin pages). */
  admin?: boolean;
  /** Own profile only: DM read receipts sent and shown (docs/protocol.md "Read receipts"). */
  read_receipts?: boolean;
}

/** A user as the server administration lists them (GET /admin/users). */
export interface AdminUser extends User {
  deactivated: boolean;
}

/** A page of a keyset-paged list: pass next_after as `after` for the next one. */
export type PageOf<K extends string, T> = { [key in K]: T[] } & { next_after: string | null };

export type Role = 'owner' | 'admin' | 'member';

export interface Member {
  user_id: string;
  name: string;
  avatar: string;
  joined_at: number;
  /** In space member lists. */
  role?: Role;
}

export interface Invite {
  code: string;
  space_id: string;
  expires_at: number;
  max_uses: number;
  uses: number;
}

export interface InvitePreview {
  space: { id: string; name: string; avatar: string };
  members: number;
  expires_at: number;
}

export interface Space {
  id: string;
  name: string;
  avatar: string;
  owner_id: string;
  created_at: number;
  /** Listed to everyone and joinable by id; otherwise by invitation only. */
  discoverable?: boolean;
}

export interface Channel {
  id: string;
  space_id: string;
  name: string;
  avatar: string;
  owner_id: string;
  created_at: number;
  last_seq: number;
  /** Visible to its members only. */
  private?: boolean;
  /** Read-only: history readable, sends refused. */
  archived?: boolean;
  /** Members who join read history from their join on only. */
  history_from_join?: boolean;
}

/** An uploaded file (POST /api/v1/files), as a file message carries it. */
export interface FileMeta {
  id: string;
  name: string;
  size: number;
  type: string;
  width?: number;
  height?: number;
  url: string;
  /** Images: a WebP that fits 360 px (docs/api.md "GET /api/v1/files/{id}"). */
  thumb_url?: string;
}

export interface WireMessage {
  id: string;
  conversation: string;
  seq: number;
  from: string;
  channel?: string;
  to?: string;
  type: string;
  /** Absent when deleted. */
  body?: string;
  created_at: number;
  cid?: string;
  rev?: number;
  edited_at?: number;
  deleted?: boolean;
  reply_to?: string;
  reactions?: { emoji: string; count: number; users: string[] }[];
  /** type file/image: the file it carries (body is then its caption). */
  file?: FileMeta;
}

/** A hit of GET /api/v1/search: the message as it is now, with a highlighted excerpt. */
export interface SearchHit extends WireMessage {
  sender: string;
  snippet: string;
  /** Matches in `snippet`: [start, length] in UTF-16 code units. */
  marks: [number, number][];
}

export interface SearchResult {
  messages: SearchHit[];
  next_cursor: string | null;
  /** Older messages are still being indexed: some may be missing. */
  indexing: boolean;
}

export interface ConversationState {
  conversation: string;
  kind: 'channel' | 'dm';
  name: string;
  avatar: string;
  last_seq: number;
  read_seq: number;
  unread: number;
  mentions?: number;
  last_rev?: number;
  peer_read_seq?: number;
  channel_id?: string;
  space_id?: string;
  user_id?: string;
  last_message: WireMessage | null;
}

export interface ConversationList {
  conversations: ConversationState[];
  spaces: { space_id: string; unread: number; mentions?: number }[];
}

/** One login on one device (GET /users/me/sessions); `current`: this tab's. */
export interface LoginSession {
  id: string;
  created_at: number;
  last_used_at: number;
  user_agent: string;
  ip: string;
  current: boolean;
}

export interface LoginResponse {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  user: User;
}

export type ServerFrame =
  | { op: 'hello'; session: string; user: string; heartbeat_s: number; token_expires_at?: number }
  | { op: 'auth'; expires_at: number }
  | { op: 'sent'; cid: string; id: string; seq: number; conversation: string; created_at?: number }
  | ({ op: 'msg' } & WireMessage)
  | ({ op: 'edited' | 'deleted' | 'reaction' } & WireMessage)
  | { op: 'read'; conversation: string; seq: number }
  | { op: 'seen'; conversation: string; user: string; seq: number }
  | { op: 'typing'; conversation: string; user: string; expires_ms: number }
  | { op: 'synced'; messages: number; changes?: number }
  | { op: 'pong'; t?: string }
  | { op: 'removed'; space: string; conversation?: string; reason: 'removed' | 'banned' | 'deleted' }
  | { op: 'presence_sub'; presence: Record<string, string> }
  | { op: 'presence'; user: string; status: string }
  | { op: 'error'; code: string; message: string; ref?: string; cid?: string; id?: string };

export type HelloFrame = Extract<ServerFrame, { op: 'hello' }>;
