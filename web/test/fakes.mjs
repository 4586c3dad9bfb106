// Stand-ins for what the model gets from the browser (src/model/ports.ts): a wire that records
// frames and can be taken offline, timers driven by hand, and an in-memory Web Storage.
// Also the compiled model and text helpers (scripts/web-test.sh compiles src/model/ and src/text/
// to .test-build/ first).

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const model = (name) => require(`../.test-build/model/${name}.js`);
export const text = (name) => require(`../.test-build/text/${name}.js`);

export class Wire {
  online = true;
  frames = [];
  send = (frame) => {
    if (!this.online) return false;
    this.frames.push(frame);
    return true;
  };
  /** The frames sent since the last take(), parsed as the server would see them. */
  take(op) {
    const all = this.frames.map((f) => JSON.parse(JSON.stringify(f)));
    this.frames = [];
    return op ? all.filter((f) => f.op === op) : all;
  }
}

/** Timers that fire only when the test advances the clock. */
export class Clock {
  now = 0;
  nextId = 1;
  pending = new Map();
  set = (fn, ms) => {
    const id = this.nextId++;
    this.pending.set(id, { at: this.now + ms, fn });
    return id;
  };
  clear = (id) => {
    this.pending.delete(id);
  };
  get armed() {
    return this.pending.size;
  }
  advance(ms) {
    const until = this.now + ms;
    for (;;) {
      const due = [...this.pending].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.pending.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = until;
  }
}

export class MemoryStore {
  data = new Map();
  getItem(k) {
    return this.data.has(k) ? this.data.get(k) : null;
  }
  setItem(k, v) {
    this.data.set(k, String(v));
  }
  removeItem(k) {
    this.data.delete(k);
  }
}

/** A wire message (docs/protocol.md `msg` without the op). */
export function wireMsg(conversation, seq, extra = {}) {
  return {
    id: `m${conversation}:${seq}`,
    conversation,
    seq,
    from: '7',
    type: 'text',
    body: `message ${seq}`,
    created_at: 1_700_000_000_000 + seq,
    ...extra,
  };
}

/** One entry of GET /conversations (docs/api.md). */
export function listState(conversation, extra = {}) {
  const [kind, id] = conversation.split(':');
  return {
    conversation,
    kind,
    name: `name of ${conversation}`,
    avatar: '',
    last_seq: 0,
    read_seq: 0,
    unread: 0,
    last_message: null,
    ...(kind === 'dm' ? { user_id: id } : { channel_id: id }),
    ...extra,
  };
}

export function range(from, to) {
  const out = [];
  for (let s = from; s <= to; s++) out.push(s);
  return out;
}

export const seqs = (c) => c.msgs.map((m) => m.seq);
