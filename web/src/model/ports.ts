// What the model needs from outside, kept narrow so that it runs without a browser: chat.ts
// passes the WebSocket, window timers and sessionStorage; the unit tests (web/test/) pass fakes.
// Nothing under src/model/ may touch the DOM, the network or storage except through these.

/** Puts a frame on the wire; false when no connection is open (the caller keeps the frame). */
export type Transport = (frame: object) => boolean;

export interface Timers {
  set(fn: () => void, ms: number): unknown;
  clear(handle: unknown): void;
}

/** The part of Web Storage the outbox uses. */
export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}
