// The login session: tokens kept in localStorage so they survive a reload and are shared by
// the tabs of this origin. Refresh tokens rotate (each refresh returns a new one; the server
// honours a used one only for a short window, auth.refresh_reuse_s, so that a refresh whose
// answer was lost can be retried), so tabs must never refresh with the same token twice:
// - a refresh runs under a cross-tab lock (navigator.locks);
// - the lock holder records the new session in IndexedDB before releasing the lock. That
//   record is what the next holder checks: localStorage reaches other tabs only eventually
//   (Chromium caches it per process), IndexedDB transactions are seen at once;
// - without locks (insecure origins), a refused refresh looks for a newer session another tab
//   may have stored before giving up.

import type { LoginResponse, User } from './types';

const KEY = 'imd.session';
const LOCK = 'imd.session.refresh';
const EARLY_MS = 30_000; // refresh this long before the access token expires

export interface Session {
  access: string;
  refresh: string;
  accessExpiresAt: number; // ms since the epoch
  user: User;
}

/** The session is gone for good (refresh refused, or logged out in another tab). */
export class LoggedOut extends Error {
  constructor() {
    super('logged out');
  }
}

export function fromLogin(r: LoginResponse): Session {
  return {
    access: r.access_token,
    refresh: r.refresh_token,
    accessExpiresAt: Date.now() + r.expires_in * 1000,
    user: r.user,
  };
}

function fresh(s: Session): boolean {
  return s.accessExpiresAt - Date.now() > EARLY_MS;
}

function readLocal(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function writeLocal(s: Session | null): void {
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
}

// ---- the IndexedDB record: one key, the latest session any tab obtained ------------------

let dbPromise: Promise<IDBDatabase | null> | null = null;

function db(): Promise<IDBDatabase | null> {
  if (!dbPromise) {
    dbPromise = new Promise((resolve) => {
      if (typeof indexedDB === 'undefined') return resolve(null);
      const req = indexedDB.open('imd', 1);
      req.onupgradeneeded = () => req.result.createObjectStore('kv');
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(null);
      req.onblocked = () => resolve(null);
    });
  }
  return dbPromise;
}

async function readShared(): Promise<Session | null> {
  const d = await db();
  if (!d) return null;
  return new Promise((resolve) => {
    const req = d.transaction('kv', 'readonly').objectStore('kv').get(KEY);
    req.onsuccess = () => resolve((req.result as Session | undefined) ?? null);
    req.onerror = () => resolve(null);
  });
}

/** Resolves once the write is committed, so a tab that reads next sees it. */
async function writeShared(s: Session | null): Promise<void> {
  const d = await db();
  if (!d) return;
  await new Promise<void>((resolve) => {
    const tx = d.transaction('kv', 'readwrite');
    if (s) tx.objectStore('kv').put(s, KEY);
    else tx.objectStore('kv').delete(KEY);
    tx.oncomplete = () => resolve();
    tx.onerror = () => resolve();
    tx.onabort = () => resolve();
  });
}

// ---------------------------------------------------------------------------------------------

type Listener = (s: Session | null) => void;

export class SessionStore {
  private current: Session | null = readLocal();
  private inflight: Promise<Session> | null = null;
  private listeners = new Set<Listener>();

  constructor() {
    // Another tab logged in, refreshed or logged out.
    window.addEventListener('storage', (e) => {
      if (e.key !== KEY && e.key !== null) return;
      const next = readLocal();
      const changedUser = (next?.user.id ?? null) !== (this.current?.user.id ?? null);
      this.current = next;
      if (changedUser || !next) this.emit();
    });
  }

  get(): Session | null {
    return this.current;
  }

  subscribe(l: Listener): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** Logs in (a session) or out (null) in every tab. */
  set(s: Session | null): void {
    this.current = s;
    writeLocal(s);
    void writeShared(s);
    this.emit();
  }

  /** A valid access token, refreshed first when it is about to expire. */
  async accessToken(): Promise<string> {
    const s = this.current ?? readLocal();
    if (!s) throw new LoggedOut();
    if (fresh(s)) return s.access;
    return (await this.refresh(s.access)).access;
  }

  /**
   * Replaces the access token `stale` (expired, or refused with 401). Concurrent callers in
   * this tab share one request; other tabs wait on the lock and then adopt the new tokens.
   */
  refresh(stale: string): Promise<Session> {
    if (this.current && this.current.access !== stale && fresh(this.current)) {
      return Promise.resolve(this.current);
    }
    if (!this.inflight) {
      const run = (): Promise<Session> => this.refreshLocked(stale);
      const locks = (navigator as Navigator & { locks?: LockManager }).locks;
      const p = (locks ? locks.request(LOCK, run) : run()) as Promise<Session>;
      this.inflight = p.finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  /** The newest session of this user known anywhere: this tab, localStorage, IndexedDB. */
  private async newest(): Promise<Session | null> {
    const userId = this.current?.user.id;
    let best: Session | null = null;
    for (const s of [this.current, readLocal(), await readShared()]) {
      if (!s || (userId && s.user.id !== userId)) continue;
      if (!best || s.accessExpiresAt > best.accessExpiresAt) best = s;
    }
    return best;
  }

  private adopt(s: Session): Session {
    this.current = s;
    if (readLocal()?.refresh !== s.refresh) writeLocal(s);
    return s;
  }

  private async refreshLocked(stale: string): Promise<Session> {
    const known = await this.newest();
    if (!known || !readLocal()) {
      this.set(null); // logged out meanwhile, here or in another tab
      throw new LoggedOut();
    }
    // Another tab refreshed while we waited for the lock.
    if (known.access !== stale && fresh(known)) return this.adopt(known);

    const res = await fetch('/api/v1/auth/refresh', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: known.refresh }),
    });
    if (res.status === 401 || res.status === 400) {
      // Without locks another tab may have won the race and stored its new session.
      for (let i = 0; i < 5; i++) {
        const again = await this.newest();
        if (again && again.refresh !== known.refresh) return this.adopt(again);
        await new Promise((r) => setTimeout(r, 100));
      }
      this.set(null);
      throw new LoggedOut();
    }
    if (!res.ok) throw new Error(`refresh failed: HTTP ${res.status}`);
    const next = fromLogin((await res.json()) as LoginResponse);
    this.current = next;
    writeLocal(next);
    await writeShared(next); // committed before the lock is released
    return next;
  }

  private emit(): void {
    for (const l of this.listeners) l(this.current);
  }
}
