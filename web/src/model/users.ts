// Profiles of the users this tab shows (message authors, DM peers), each fetched once on first
// sight. A profile that cannot be fetched is named by its id, so it is not asked for again.

import type { User } from '../types';

export class Users {
  private byId = new Map<string, User>();
  private fetching = new Map<string, Promise<void>>();
  /** Profiles from a list stored on an earlier visit (model/listcache.ts): any other replaces them. */
  private stale = new Set<string>();

  constructor(
    private readonly fetch: (id: string) => Promise<User>,
    private readonly changed: () => void,
  ) {}

  /** The user's name; '…' until the first fetch of their profile answers (then cached). */
  name(id: string): string {
    const u = this.byId.get(id);
    if (u) return u.name;
    if (!this.fetching.has(id)) {
      const done = this.fetch(id)
        .then((user) => {
          this.put(user);
          this.changed();
        })
        .catch(() => {
          this.byId.set(id, { id, name: `user ${id}`, avatar: '', created_at: 0 });
          this.changed();
        });
      this.fetching.set(id, done);
    }
    return '…';
  }

  /** The user's name once known: at once when held, else after the fetch (a notification's title). */
  async nameWhenKnown(id: string): Promise<string> {
    if (!this.byId.has(id)) {
      this.name(id);
      await this.fetching.get(id);
    }
    return this.name(id);
  }

  /** The user's avatar field ('' when none or not fetched yet; name() fetches). */
  avatar(id: string): string {
    return this.byId.get(id)?.avatar ?? '';
  }

  put(u: User): void {
    this.byId.set(u.id, u);
    this.stale.delete(u.id);
  }

  /** Keeps `u` unless a profile of that user is already held (a fuller one, maybe), not a stale one. */
  remember(u: User): void {
    if (!this.byId.has(u.id) || this.stale.has(u.id)) this.put(u);
  }

  /** Keeps `u`, from a list stored on an earlier visit, until any other profile of the user comes. */
  rememberStale(u: User): void {
    if (this.byId.has(u.id)) return;
    this.byId.set(u.id, u);
    this.stale.add(u.id);
  }

  /** Every profile held (the people the DM finder searches). */
  known(): Iterable<User> {
    return this.byId.values();
  }

  /** Forgets every profile (logout); the next sight fetches again. */
  clear(): void {
    this.byId.clear();
    this.fetching.clear();
    this.stale.clear();
  }
}
