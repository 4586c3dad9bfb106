// One WebSocket to /ws with automatic reconnect (exponential backoff with full jitter) and the
// protocol heartbeat. It knows nothing of chat state: it reports `hello`, every other frame
// and its state to its owner, and sends frames only while a connection is open and greeted.
// A dead link is noticed within seconds: the browser's `offline` event drops the connection at
// once (state 'offline' until `online`), and a ping unanswered for PONG_TIMEOUT_MS does too.

import { LoggedOut } from './session';
import type { HelloFrame, ServerFrame } from './types';

export type ConnState = 'connecting' | 'online' | 'reconnecting' | 'offline';

export interface SocketHandlers {
  /** A valid access token (for the in-band `auth` renewal). */
  token(): Promise<string>;
  /** A one-time ticket that opens /ws (the access token stays out of the URL). */
  ticket(): Promise<string>;
  hello(h: HelloFrame, reconnect: boolean): void;
  frame(f: ServerFrame): void;
  state(s: ConnState): void;
  /** The connection is gone; frames not answered yet may never be. */
  lost(): void;
  /** Several attempts in a row failed before `hello`: the token may be bad. */
  trouble(): void;
  loggedOut(): void;
}

const BACKOFF_BASE_MS = 500;
const BACKOFF_MAX_MS = 10_000;
// The server closes a connection whose access token ended (4001) unless a fresh one came with
// `auth`: renew this long before the end (the session refreshes tokens 30 s before theirs).
const RENEW_EARLY_MS = 20_000;
const CLOSE_TOKEN_EXPIRED = 4001;
const CLOSE_SESSION_ENDED = 4003;
/** Pings at least this often, whatever the server's heartbeat (its answer proves the link). */
const PING_MAX_PERIOD_MS = 10_000;
const PONG_TIMEOUT_MS = 5_000;

export class Socket {
  private ws: WebSocket | null = null;
  private stopped = true;
  private greeted = false;
  private everGreeted = false;
  private failures = 0; // attempts in a row that did not reach `hello`
  private retryTimer: number | undefined;
  private beatTimer: number | undefined;
  private renewTimer: number | undefined;
  private pongTimer: number | undefined;
  private browserOffline = typeof navigator !== 'undefined' && navigator.onLine === false;
  private lastFrameAt = 0;
  private state: ConnState = 'offline';

  constructor(private readonly h: SocketHandlers) {
    window.addEventListener('online', () => {
      this.browserOffline = false;
      this.failures = 0;
      this.retryNow();
    });
    window.addEventListener('offline', () => {
      this.browserOffline = true;
      if (this.ws) this.closed(this.ws);
      else if (!this.stopped) this.setState('offline');
    });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.everGreeted = false;
    this.failures = 0;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.teardown();
    this.setState('offline');
  }

  get online(): boolean {
    return this.greeted && this.ws?.readyState === WebSocket.OPEN;
  }

  /** Sends a frame if the connection is up; false if it is not (the caller keeps it). */
  send(frame: object): boolean {
    if (!this.online) return false;
    this.ws!.send(JSON.stringify(frame));
    return true;
  }

  /** Skips the rest of the backoff wait (e.g. the browser came back online). */
  retryNow(): void {
    if (this.stopped || this.ws) return;
    clearTimeout(this.retryTimer);
    void this.connect();
  }

  private setState(s: ConnState): void {
    if (s === this.state) return;
    this.state = s;
    this.h.state(s);
  }

  private async connect(): Promise<void> {
    if (this.browserOffline) this.setState('offline');
    else this.setState(this.everGreeted || this.failures > 0 ? 'reconnecting' : 'connecting');
    let ticket: string;
    try {
      ticket = await this.h.ticket();
    } catch (e) {
      if (e instanceof LoggedOut) {
        this.stop();
        this.h.loggedOut();
        return;
      }
      this.failures++;
      this.scheduleRetry();
      return;
    }
    if (this.stopped) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
    this.ws = ws;
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      this.lastFrameAt = Date.now();
      let f: ServerFrame;
      try {
        f = JSON.parse(String(ev.data)) as ServerFrame;
      } catch {
        return;
      }
      if (f.op === 'hello') {
        const reconnect = this.everGreeted;
        this.greeted = true;
        this.everGreeted = true;
        this.failures = 0;
        this.startHeartbeat(f.heartbeat_s);
        this.scheduleRenewal(f.token_expires_at);
        this.setState('online');
        this.h.hello(f, reconnect);
      } else if (f.op === 'auth') {
        this.scheduleRenewal(f.expires_at);
      } else if (f.op !== 'pong') {
        this.h.frame(f);
      }
    };
    ws.onclose = (ev) => this.closed(ws, ev.code);
  }

  private closed(ws: WebSocket, code = 0): void {
    if (this.ws !== ws) return;
    const wasGreeted = this.greeted;
    this.teardown();
    if (wasGreeted) this.h.lost();
    if (this.stopped) return;
    // Sessions ended elsewhere (password change, logout everywhere): the token check tells
    // whether this device is still signed in.
    if (code === CLOSE_SESSION_ENDED) this.h.trouble();
    if (code === CLOSE_TOKEN_EXPIRED) {
      void this.connect(); // the next token() is a fresh one
      return;
    }
    if (!wasGreeted) {
      this.failures++;
      if (this.failures % 3 === 0) this.h.trouble();
    }
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    if (this.stopped) return;
    // The browser knows it has no network: say so; the `online` event retries at once.
    this.setState(this.browserOffline ? 'offline' : 'reconnecting');
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** Math.min(this.failures, 10));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    clearTimeout(this.retryTimer);
    this.retryTimer = window.setTimeout(() => void this.connect(), delay);
  }

  private scheduleRenewal(expiresAt: number | undefined): void {
    clearTimeout(this.renewTimer);
    if (!expiresAt) return;
    const delay = Math.max(1000, expiresAt - Date.now() - RENEW_EARLY_MS);
    this.renewTimer = window.setTimeout(() => void this.renew(), delay);
  }

  private async renew(): Promise<void> {
    if (!this.online) return;
    try {
      this.send({ op: 'auth', token: await this.h.token() });
    } catch (e) {
      if (e instanceof LoggedOut) {
        this.stop();
        this.h.loggedOut();
      }
    }
  }

  private startHeartbeat(seconds: number): void {
    const period = Math.min(Math.max(1, seconds) * 1000, PING_MAX_PERIOD_MS);
    clearInterval(this.beatTimer);
    this.beatTimer = window.setInterval(() => {
      const ws = this.ws;
      if (!ws || !this.send({ op: 'ping' })) return;
      // The server answers every ping: no frame at all within PONG_TIMEOUT_MS is a dead link.
      // One watch at a time (pings may come faster than the timeout): not re-armed per ping.
      if (this.pongTimer !== undefined) return;
      const sentAt = Date.now();
      this.pongTimer = window.setTimeout(() => {
        this.pongTimer = undefined;
        if (this.ws === ws && this.lastFrameAt < sentAt) this.closed(ws);
      }, PONG_TIMEOUT_MS);
    }, period);
  }

  private teardown(): void {
    clearInterval(this.beatTimer);
    clearTimeout(this.renewTimer);
    clearTimeout(this.pongTimer);
    this.pongTimer = undefined;
    const ws = this.ws;
    this.ws = null;
    this.greeted = false;
    if (!ws) return;
    ws.onclose = null;
    ws.onmessage = null;
    // Closing a socket still connecting makes the browser log an error: close it once open.
    if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000);
    else if (ws.readyState === WebSocket.OPEN) ws.close(1000);
  }
}
