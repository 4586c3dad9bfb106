// What the user was typing, per conversation, kept across reloads in Web Storage (one entry per
// user: a JSON object conversation -> text). Bounded: a draft longer than MAX_DRAFT_CHARS is cut,
// and past MAX_DRAFTS conversations the least recently edited draft goes. Logout forgets them.

import type { KeyValueStore } from './ports';

export const MAX_DRAFTS = 100;
export const MAX_DRAFT_CHARS = 20_000;

export class Drafts {
  private key: string | null = null;
  private map = new Map<string, string>(); // insertion order = edit order, oldest first

  constructor(private readonly store: KeyValueStore) {}

  /** Loads the drafts of `userId` (a stored value that does not parse is dropped). */
  open(userId: string): void {
    this.key = `imd.drafts.${userId}`;
    this.map = new Map();
    try {
      const raw = JSON.parse(this.store.getItem(this.key) ?? '{}') as unknown;
      if (raw && typeof raw === 'object') {
        for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') this.map.set(k, v);
      }
    } catch {
      this.store.removeItem(this.key);
    }
  }

  close(): void {
    this.key = null;
    this.map = new Map();
  }

  /** Drops every stored draft of the user (logout). */
  forget(): void {
    if (this.key) this.store.removeItem(this.key);
    this.map = new Map();
  }

  get(conv: string): string {
    return this.map.get(conv) ?? '';
  }

  set(conv: string, text: string): void {
    this.map.delete(conv);
    if (text) this.map.set(conv, text.slice(0, MAX_DRAFT_CHARS));
    while (this.map.size > MAX_DRAFTS) this.map.delete(this.map.keys().next().value as string);
    if (!this.key) return;
    try {
      if (this.map.size) this.store.setItem(this.key, JSON.stringify(Object.fromEntries(this.map)));
      else this.store.removeItem(this.key);
    } catch {
      // Storage full or blocked: the draft lives in this page only.
    }
  }
}
