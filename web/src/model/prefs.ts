// This device's attention settings for one user, kept in Web Storage (one JSON entry per user):
// the muted conversations and spaces (a space by `spaceMuteKey`, beside the conversation keys), and whether a new DM or mention makes a sound and a desktop
// notification (both on by default). `alertFor` decides what one incoming message does.

import type { KeyValueStore } from './ports';

/** Muted conversations and spaces kept per user at most (the oldest mute goes first past it). */
export const MAX_MUTED = 1000;

/** The key a muted space is kept under (never a conversation key: those are channel:/dm:). */
export function spaceMuteKey(spaceId: string): string {
  return `space:${spaceId}`;
}

interface Stored {
  muted?: string[];
  sound?: boolean;
  desktop?: boolean;
}

export class Prefs {
  private key: string | null = null;
  private mutedSet = new Set<string>();
  sound = true;
  desktop = true;

  constructor(private readonly store: KeyValueStore) {}

  /** Loads the settings of `userId` (a stored value that does not parse is dropped). */
  open(userId: string): void {
    this.key = `imd.prefs.${userId}`;
    this.mutedSet = new Set();
    this.sound = true;
    this.desktop = true;
    try {
      const raw = JSON.parse(this.store.getItem(this.key) ?? '{}') as Stored;
      if (Array.isArray(raw.muted)) for (const k of raw.muted) if (typeof k === 'string') this.mutedSet.add(k);
      if (raw.sound === false) this.sound = false;
      if (raw.desktop === false) this.desktop = false;
    } catch {
      this.store.removeItem(this.key);
    }
  }

  close(): void {
    this.key = null;
    this.mutedSet = new Set();
    this.sound = true;
    this.desktop = true;
  }

  /** Whether `key` (a conversation, or a space by spaceMuteKey) itself is muted. */
  muted(key: string): boolean {
    return this.mutedSet.has(key);
  }

  /** Whether the conversation is muted, itself or through its space (a channel's). */
  mutedIn(conv: string, spaceId?: string): boolean {
    return this.mutedSet.has(conv) || (!!spaceId && this.mutedSet.has(spaceMuteKey(spaceId)));
  }

  setMuted(key: string, on: boolean): void {
    this.mutedSet.delete(key);
    if (on) this.mutedSet.add(key);
    while (this.mutedSet.size > MAX_MUTED) this.mutedSet.delete(this.mutedSet.values().next().value as string);
    this.save();
  }

  set(what: 'sound' | 'desktop', on: boolean): void {
    this[what] = on;
    this.save();
  }

  private save(): void {
    if (!this.key) return;
    const v: Stored = {};
    if (this.mutedSet.size) v.muted = [...this.mutedSet];
    if (!this.sound) v.sound = false;
    if (!this.desktop) v.desktop = false;
    try {
      if (Object.keys(v).length) this.store.setItem(this.key, JSON.stringify(v));
      else this.store.removeItem(this.key);
    } catch {
      // Storage full or blocked: the setting holds for this page only.
    }
  }
}

/** What the page knows when a message from someone else arrives. */
export interface AlertContext {
  /** A DM, or a channel message that mentions the user. */
  direct: boolean;
  muted: boolean;
  /** The tab is visible. */
  visible: boolean;
  /** The tab is visible and its window has the focus. */
  seeing: boolean;
  /** The message's conversation is the open one. */
  open: boolean;
  sound: boolean;
  desktop: boolean;
}

/**
 * A muted conversation, or a message neither a DM nor a mention: nothing. Otherwise a desktop
 * notification while the user cannot see the page, and a sound while the tab is hidden or
 * another conversation is open.
 */
export function alertFor(a: AlertContext): { notify: boolean; sound: boolean } {
  if (a.muted || !a.direct) return { notify: false, sound: false };
  return { notify: a.desktop && !a.seeing, sound: a.sound && (!a.visible || !a.open) };
}
