// The login session: tokens kept in localStorage so they survive a reload and are shared by
// the tabs of this origin. Refresh tokens are one-time (each refresh returns a new one), so a
// refresh runs under a cross-tab lock (navigator.locks) and, where locks are missing, a failed
// refresh first checks whether another tab already rotated the token.

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

function read(): Session | null {
  try {
    const raw = localStorage.getItem(KEY);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

function write(s: Session | null): void {
  if (s) localStorage.setItem(KEY, JSON.stringify(s));
  else localStorage.removeItem(KEY);
}

export function fromLogin(r: LoginResponse): Session {
  return {
    access: r.access_token,
    refresh: r.refresh_token,
    accessExpiresAt: Date.now() + r.expires_in * 1000,
    user: r.user,
  };
}

type Listener = (s: Session | null) => void;

export class SessionStore {
  private current: Session | null = read();
  private inflight: Promise<Session> | null = null;
  private listeners = new Set<Listener>();

  constructor() {
    // Another tab logged in, refreshed or logged out.
    window.addEventListener('storage', (e) => {
      if (e.key !== KEY && e.key !== null) return;
      const next = read();
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

  set(s: Session | null): void {
    this.current = s;
    write(s);
    this.emit();
  }

  /** Updates the stored user (e.g. after a profile change) without other effects. */
  setUser(u: User): void {
    if (!this.current) return;
    this.current = { ...this.current, user: u };
    write(this.current);
  }

  /** A valid access token, refreshed first when it is about to expire. */
  async accessToken(): Promise<string> {
    const s = this.current ?? read();
    if (!s) throw new LoggedOut();
    if (s.accessExpiresAt - Date.now() > EARLY_MS) return s.access;
    return (await this.refresh(s.access)).access;
  }

  /**
   * Replaces the access token `stale` (expired, or refused with 401). Concurrent callers in
   * this tab share one request; other tabs wait on the lock and then adopt the new tokens.
   */
  refresh(stale: string): Promise<Session> {
    if (this.current && this.current.access !== stale) return Promise.resolve(this.current);
    if (!this.inflight) {
      const run = () => this.refreshLocked(stale);
      const locks = (navigator as Navigator & { locks?: LockManager }).locks;
      const p = locks ? locks.request(LOCK, run) : run();
      this.inflight = p.finally(() => {
        this.inflight = null;
      });
    }
    return this.inflight;
  }

  private async refreshLocked(stale: string): Promise<Session> {
    const stored = read();
    if (!stored) {
      this.dropLocal();
      throw new LoggedOut();
    }
    if (stored.access !== stale && stored.accessExpiresAt - Date.now() > EARLY_MS) {
      this.current = stored; // another tab refreshed while we waited for the lock
      return stored;
    }
    const res = await fetch('/api/v1/auth/refresh', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ refresh_token: stored.refresh }),
    });
    if (res.status === 401 || res.status === 400) {
      // Without locks another tab may have won the race: its token is in storage by now.
      const again = read();
      if (again && again.refresh !== stored.refresh) {
        this.current = again;
        return again;
      }
      this.dropLocal();
      throw new LoggedOut();
    }
    if (!res.ok) throw new Error(`refresh failed: HTTP ${res.status}`);
    const next = fromLogin((await res.json()) as LoginResponse);
    this.current = next;
    write(next);
    return next;
  }

  private dropLocal(): void {
    this.set(null);
  }

  private emit(): void {
    for (const l of this.listeners) l(this.current);
  }
}
