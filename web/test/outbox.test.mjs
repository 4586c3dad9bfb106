// src/model/outbox.ts: sends waiting for `sent`, resent with the same cid, failed by timeout
// or `error`, kept in (session) storage across reloads of the tab.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Clock, MemoryStore, Wire, model } from './fakes.mjs';

const { Outbox, MAX_BODY_BYTES, SEND_TIMEOUT_MS, newCid, sendFrame } = model('outbox');

function setup({ online = true, user = 'u1', store = new MemoryStore() } = {}) {
  const wire = new Wire();
  wire.online = online;
  const clock = new Clock();
  let changes = 0;
  const box = new Outbox({ send: wire.send, timers: clock, store, changed: () => changes++ });
  box.open(user);
  return { wire, clock, store, box, changes: () => changes };
}

const stored = (store, user = 'u1') => JSON.parse(store.getItem(`imd.pending.${user}`) ?? 'null');

test('newCid: "w" and 24 hex digits, a new one each time', () => {
  const seen = new Set();
  for (let i = 0; i < 100; i++) {
    const cid = newCid();
    assert.match(cid, /^w[0-9a-f]{24}$/);
    seen.add(cid);
  }
  assert.equal(seen.size, 100);
});

test('sendFrame addresses a channel by channel, a DM by to', () => {
  const p = { cid: 'c1', conv: 'channel:9', body: 'hi', createdAt: 0, status: 'queued' };
  assert.deepEqual(sendFrame(p), { op: 'send', cid: 'c1', type: 'text', body: 'hi', channel: '9' });
  assert.deepEqual(sendFrame({ ...p, conv: 'dm:4' }), { op: 'send', cid: 'c1', type: 'text', body: 'hi', to: '4' });
});

test('sendFrame of a file message names the upload, the body is its caption', () => {
  const file = { id: 'ab'.repeat(16), name: 'a.png', size: 3, type: 'image/png', url: '/api/v1/files/x' };
  const p = { cid: 'c2', conv: 'dm:4', body: '', createdAt: 0, status: 'queued', file };
  assert.deepEqual(sendFrame(p), { op: 'send', cid: 'c2', type: 'file', body: '', file: file.id, to: '4' });
});

test('a pending file message is kept with its file across a reload', () => {
  const store = new MemoryStore();
  const { box, wire } = setup({ store });
  const file = { id: 'cd'.repeat(16), name: 'n.txt', size: 9, type: 'text/plain', url: '/api/v1/files/y' };
  assert.equal(box.add('channel:1', 'see this', undefined, file), null);
  assert.equal(wire.take('send').at(-1).file, file.id);
  assert.deepEqual(stored(store)[0].file, file);
  const again = setup({ store, online: false });
  assert.deepEqual(again.box.list[0].file, file);
});

describe('add', () => {
  test('online: on the wire at once, sending until answered', () => {
    const { wire, box } = setup();
    assert.equal(box.add('dm:4', 'hello'), null);
    const [p] = box.list;
    assert.equal(p.status, 'sending');
    assert.deepEqual(wire.take(), [{ op: 'send', cid: p.cid, type: 'text', body: 'hello', to: '4' }]);
  });

  test('offline: queued, and kept for a reload', () => {
    const { wire, store, box } = setup({ online: false });
    box.add('channel:2', 'later');
    const [p] = box.list;
    assert.equal(p.status, 'queued');
    assert.deepEqual(wire.take(), []);
    assert.deepEqual(stored(store), [{ cid: p.cid, conv: 'channel:2', body: 'later', createdAt: p.createdAt }]);
  });

  test('refuses a body over the limit in UTF-8 bytes, not characters', () => {
    const { wire, box } = setup();
    assert.equal(box.add('dm:4', 'x'.repeat(MAX_BODY_BYTES)), null);
    const tooBig = 'é'.repeat(MAX_BODY_BYTES / 2 + 1); // 2 bytes each
    assert.equal(box.add('dm:4', tooBig), 'A message can be at most 16 KiB.');
    assert.equal(box.list.length, 1);
    assert.equal(wire.take().length, 1);
  });

  test('the list is replaced on every change (views compare it by identity)', () => {
    const { box, changes } = setup();
    const before = box.list;
    box.add('dm:4', 'a');
    assert.notEqual(box.list, before);
    assert.equal(before.length, 0);
    assert.ok(changes() > 0);
  });

  test('of() lists the sends of one conversation, oldest first', () => {
    const { box } = setup();
    box.add('dm:4', 'a');
    box.add('dm:5', 'b');
    box.add('dm:4', 'c');
    assert.deepEqual(box.of('dm:4').map((p) => p.body), ['a', 'c']);
  });
});

describe('answers', () => {
  test('settle removes the send, stops its timer and empties the storage', () => {
    const { clock, store, box } = setup();
    box.add('dm:4', 'a');
    const cid = box.list[0].cid;
    assert.equal(clock.armed, 1);
    assert.equal(box.settle(cid).body, 'a');
    assert.deepEqual(box.list, []);
    assert.equal(clock.armed, 0);
    assert.equal(stored(store), null);
    assert.equal(box.settle(cid), undefined, 'a second answer finds nothing');
  });

  test('no answer within the timeout: failed, and Retry resends the same cid', () => {
    const { wire, clock, box } = setup();
    box.add('channel:2', 'hello');
    const cid = box.list[0].cid;
    wire.take();
    clock.advance(SEND_TIMEOUT_MS - 1);
    assert.equal(box.list[0].status, 'sending');
    clock.advance(1);
    assert.equal(box.list[0].status, 'failed');
    assert.equal(box.list[0].error, 'No answer from the server.');
    box.retry(cid);
    assert.equal(box.list[0].status, 'sending');
    assert.equal(box.list[0].error, undefined);
    assert.deepEqual(wire.take(), [{ op: 'send', cid, type: 'text', body: 'hello', channel: '2' }]);
    box.settle(cid);
    clock.advance(SEND_TIMEOUT_MS);
    assert.deepEqual(box.list, []);
  });

  test('an error naming the cid fails the send; permanent codes are not resent', () => {
    const { wire, box } = setup();
    box.add('dm:4', 'big');
    box.add('dm:4', 'busy');
    const [big, busy] = box.list.map((p) => p.cid);
    assert.equal(box.refuse(big, 'payload_too_large', 'body over the limit'), true);
    assert.equal(box.refuse(busy, 'too_many_requests', 'slow down'), true);
    assert.equal(box.refuse('nope', 'forbidden', 'x'), false);
    assert.equal(box.refuse(undefined, 'forbidden', 'x'), false);
    const [p1, p2] = box.list;
    assert.deepEqual([p1.status, p1.refused, p1.permanent, p1.error], ['failed', true, true, 'body over the limit']);
    assert.deepEqual([p2.status, p2.refused, p2.permanent], ['failed', true, false]);
    wire.take();
    box.resend(); // a reconnect
    assert.deepEqual(wire.take().map((f) => f.cid), [busy]);
    box.retry(big); // the user insists
    assert.deepEqual(wire.take().map((f) => f.cid), [big]);
    assert.equal(box.list[0].permanent, false);
    assert.equal(box.list[0].refused, false);
  });

  test('a refused send does not time out on top of its error', () => {
    const { clock, box } = setup();
    box.add('dm:4', 'x');
    box.refuse(box.list[0].cid, 'unavailable', 'disk full');
    clock.advance(SEND_TIMEOUT_MS);
    assert.equal(box.list[0].error, 'disk full');
  });

  test('discard drops only a refused send (a timed-out one may be stored)', () => {
    const { clock, box } = setup();
    box.add('dm:4', 'timed out');
    box.add('dm:4', 'refused');
    const [t, r] = box.list.map((p) => p.cid);
    clock.advance(SEND_TIMEOUT_MS);
    box.refuse(r, 'forbidden', 'not a participant');
    box.discard(t);
    box.discard(r);
    assert.deepEqual(box.list.map((p) => p.cid), [t]);
  });
});

describe('connection', () => {
  test('lost: sends on the wire wait for the next connection instead of timing out', () => {
    const { wire, clock, box } = setup();
    box.add('dm:4', 'a');
    const cid = box.list[0].cid;
    wire.online = false;
    box.lost();
    assert.equal(box.list[0].status, 'queued');
    clock.advance(SEND_TIMEOUT_MS * 2);
    assert.equal(box.list[0].status, 'queued');
    wire.online = true;
    wire.take();
    box.resend();
    assert.deepEqual(wire.take().map((f) => f.cid), [cid]);
    assert.equal(box.list[0].status, 'sending');
  });

  test('resend while still offline keeps them queued', () => {
    const { wire, box } = setup({ online: false });
    box.add('dm:4', 'a');
    box.resend();
    assert.equal(box.list[0].status, 'queued');
    assert.deepEqual(wire.take(), []);
  });
});

describe('storage', () => {
  test('a reload takes the sends over, queued, with their cids', () => {
    const first = setup({ online: false });
    first.box.add('dm:4', 'one');
    first.box.add('channel:2', 'two');
    const cids = first.box.list.map((p) => p.cid);
    const again = setup({ store: first.store });
    assert.deepEqual(again.box.list.map((p) => [p.cid, p.status, p.body]), [
      [cids[0], 'queued', 'one'],
      [cids[1], 'queued', 'two'],
    ]);
    again.box.resend();
    assert.deepEqual(again.wire.take().map((f) => f.cid), cids);
  });

  test('only cid, conversation, body and time are kept; per user', () => {
    const { store, box } = setup();
    box.add('dm:4', 'x');
    box.refuse(box.list[0].cid, 'internal', 'oops');
    assert.deepEqual(Object.keys(stored(store)[0]).sort(), ['body', 'cid', 'conv', 'createdAt']);
    assert.equal(stored(store, 'u2'), null);
    const other = setup({ store, user: 'u2' });
    assert.deepEqual(other.box.list, []);
  });

  test('unreadable storage means nothing pending', () => {
    const store = new MemoryStore();
    store.setItem('imd.pending.u1', '{not json');
    assert.deepEqual(setup({ store }).box.list, []);
  });

  test('close forgets the sends and their timers but leaves storage; forget clears it', () => {
    const { clock, store, box } = setup();
    box.add('dm:4', 'x');
    box.close();
    assert.deepEqual(box.list, []);
    assert.equal(clock.armed, 0);
    assert.equal(stored(store).length, 1);
    box.open('u1');
    box.forget();
    assert.equal(stored(store), null);
  });
});
