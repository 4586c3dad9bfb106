// Who may do what in a space (docs/security.md, the role matrix), as the views need to know it
// to show or hide a control; the server decides (and its refusal is shown). Also the
// invitation settings the space settings offer, and how an invitation is described.

import type { Role } from '../types';

const RANK: Record<Role, number> = { member: 0, admin: 1, owner: 2 };

/** Admins and the owner: invitations, bans, renaming the space, deleting channels. */
export function manages(role: string | null | undefined): boolean {
  return role === 'admin' || role === 'owner';
}

/**
 * Whether `mine` may remove or ban someone whose role is `theirs` (never oneself here: leaving
 * is another action): an admin removes members, the owner admins too, nobody the owner.
 */
export function mayRemove(mine: string | null | undefined, theirs: string | undefined, self: boolean): boolean {
  if (self || !manages(mine)) return false;
  return RANK[(theirs ?? 'member') as Role] < RANK[mine as Role];
}

/**
 * Whether this user may rename a channel, archive it and set its history_from_join: its
 * creator, and the space's admins and owner.
 */
export function mayChangeChannel(role: string | null | undefined, creator: string, me: string | undefined): boolean {
  return manages(role) || (!!me && creator === me);
}

/**
 * How this user may delete a message, or null when they may not: their own, or any in a
 * channel of a space they run (`delete` over the WebSocket, both); a server admin any
 * message they see (DELETE /api/v1/admin/messages/{id}).
 */
export function deleteRoute(
  m: { from: string; deleted?: boolean },
  who: { me: string | undefined; moderator: boolean; serverAdmin: boolean },
): 'own' | 'moderator' | 'admin' | null {
  if (m.deleted || !who.me) return null;
  if (m.from === who.me) return 'own';
  if (who.moderator) return 'moderator';
  if (who.serverAdmin) return 'admin';
  return null;
}

/** Expiries offered for a new invitation (the server takes 60 s .. 30 days). */
export const INVITE_EXPIRIES: readonly { label: string; seconds: number }[] = [
  { label: '1 hour', seconds: 3600 },
  { label: '1 day', seconds: 86_400 },
  { label: '7 days', seconds: 604_800 },
  { label: '30 days', seconds: 2_592_000 },
];

export const MAX_INVITE_USES = 10_000;

/**
 * The body of POST /spaces/{id}/invites from what the form holds, or an error text: uses
 * 1..10,000 (whole), an expiry of 60 s .. 30 days.
 */
export function inviteRequest(
  uses: string,
  expiresInS: number,
): { max_uses: number; expires_in_s: number } | { error: string } {
  const n = Number(uses.trim());
  if (!/^\d+$/.test(uses.trim()) || n < 1 || n > MAX_INVITE_USES) {
    return { error: `Uses: a whole number from 1 to ${MAX_INVITE_USES.toLocaleString('en')}.` };
  }
  if (!Number.isInteger(expiresInS) || expiresInS < 60 || expiresInS > 2_592_000) {
    return { error: 'Expiry: from a minute to 30 days.' };
  }
  return { max_uses: n, expires_in_s: expiresInS };
}

/** "expires in 3 days · 97 of 100 uses left", for an invitation at `now` (ms). */
export function describeInvite(inv: { expires_at: number; max_uses: number; uses: number }, now: number): string {
  const left = Math.max(0, inv.max_uses - inv.uses);
  return `${expiresIn(inv.expires_at - now)} · ${left} of ${inv.max_uses} ${inv.max_uses === 1 ? 'use' : 'uses'} left`;
}

function expiresIn(ms: number): string {
  if (ms <= 0) return 'expired';
  const units: [number, string][] = [[86_400_000, 'day'], [3_600_000, 'hour'], [60_000, 'minute']];
  for (const [size, name] of units) {
    if (ms >= size) {
      const n = Math.floor(ms / size);
      return `expires in ${n} ${name}${n === 1 ? '' : 's'}`;
    }
  }
  return 'expires in less than a minute';
}

/** Blocked users (the Account panel's list; Block/Unblock beside a DM and a member). */
export class Blocks {
  private list: { user_id: string; name: string }[] = [];
  /** False until the server's list came. */
  loaded = false;

  set(list: { user_id: string; name: string }[]): void {
    this.list = list.map((b) => ({ user_id: b.user_id, name: b.name }));
    this.loaded = true;
  }

  has(userId: string): boolean {
    return this.list.some((b) => b.user_id === userId);
  }

  /** After the server accepted a block (idempotent) or an unblock. */
  put(userId: string, name: string, blocked: boolean): void {
    this.list = this.list.filter((b) => b.user_id !== userId);
    if (blocked) this.list.push({ user_id: userId, name });
  }

  all(): readonly { user_id: string; name: string }[] {
    return this.list;
  }

  clear(): void {
    this.list = [];
    this.loaded = false;
  }
}
