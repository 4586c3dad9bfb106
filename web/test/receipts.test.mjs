// src/model/receipts.ts: delivery ACKs (cumulative, one frame per conversation per batch, never
// past a hole) and read markers (forward only, sent once per move, owed while offline).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Clock, Wire, model, wireMsg } from './fakes.mjs';

const { Receipts, ACK_DELAY_MS, READ_MIN_INTERVAL_MS } = model('receipts');
const { Directory } = model('directory');
const { insert, toMsg } = model('conversation');

function setup() {
  const wire = new Wire();
  const clock = new Clock();
  const dir = new Directory();
  const r = new Receipts({ send: wire.send, timers: clock, convs: () => dir.convs.values() });
  return { wire, clock, dir, r };
}

function hold(c, ...list) {
  insert(c, list.map((s) => toMsg(wireMsg(c.key, s))));
}

describe('ACK', () => {
  test('many arrivals within the delay become one cumulative ACK per conversation', () => {
    const { wire, clock, dir, r } = setup();
    const a = dir.ensure('dm:1');
    const b = dir.ensure('dm:2');
    for (let s = 1; s <= 30; s++) {
      hold(a, s);
      r.ackLater(a);
    }
    hold(b, 1, 2);
    r.ackLater(b);
    assert.equal(clock.armed, 1, 'one timer for the batch');
    clock.advance(ACK_DELAY_MS - 1);
    assert.deepEqual(wire.take(), []);
    clock.advance(1);
    assert.deepEqual(wire.take(), [
      { op: 'ack', conversation: 'dm:1', seq: 30 },
      { op: 'ack', conversation: 'dm:2', seq: 2 },
    ]);
    assert.deepEqual([a.ackSent, a.ackDirty], [30, false]);
  });

  test('never past a missing message; the rest follows once the hole is filled', () => {
    const { wire, clock, dir, r } = setup();
    const c = dir.ensure('dm:1');
    hold(c, 1, 2, 3, 5); // 4 not here yet
    r.ackLater(c);
    clock.advance(ACK_DELAY_MS);
    assert.deepEqual(wire.take(), [{ op: 'ack', conversation: 'dm:1', seq: 3 }]);
    hold(c, 4);
    r.ackLater(c);
    clock.advance(ACK_DELAY_MS);
    assert.deepEqual(wire.take(), [{ op: 'ack', conversation: 'dm:1', seq: 5 }]);
  });

  test('nothing new since the last ACK: no frame', () => {
    const { wire, clock, dir, r } = setup();
    const c = dir.ensure('dm:1');
    hold(c, 1, 2);
    r.ackLater(c);
    clock.advance(ACK_DELAY_MS);
    wire.take();
    r.ackLater(c); // e.g. a duplicate arrived
    clock.advance(ACK_DELAY_MS);
    assert.deepEqual(wire.take(), []);
    assert.equal(c.ackDirty, false);
  });

  test('offline: the ACK stays owed and goes with the next flush', () => {
    const { wire, clock, dir, r } = setup();
    const c = dir.ensure('dm:1');
    hold(c, 1);
    wire.online = false;
    r.ackLater(c);
    clock.advance(ACK_DELAY_MS);
    assert.equal(c.ackDirty, true);
    assert.equal(clock.armed, 0, 'no retry loop while offline');
    wire.online = true;
    r.flush(); // what hello does
    assert.deepEqual(wire.take(), [{ op: 'ack', conversation: 'dm:1', seq: 1 }]);
  });

  test('not for channels we are not a member of', () => {
    const { wire, clock, dir, r } = setup();
    const c = dir.ensure('channel:1');
    hold(c, 1);
    r.ackLater(c);
    clock.advance(ACK_DELAY_MS);
    assert.deepEqual(wire.take(), []);
  });

  test('cancel drops the scheduled flush', () => {
    const { wire, clock, dir, r } = setup();
    const c = dir.ensure('dm:1');
    hold(c, 1);
    r.ackLater(c);
    r.cancel();
    clock.advance(ACK_DELAY_MS * 2);
    assert.deepEqual(wire.take(), []);
  });
});

describe('read marker', () => {
  test('moves to the newest held message and is sent once', () => {
    const { wire, dir, r } = setup();
    const c = dir.ensure('dm:1');
    hold(c, 1, 2, 3);
    assert.equal(r.read(c), true);
    assert.equal(c.readSeq, 3);
    assert.equal(r.read(c), false);
    assert.deepEqual(wire.take(), [{ op: 'read', conversation: 'dm:1', seq: 3 }]);
  });

  test('never moves back', () => {
    const { wire, dir, r } = setup();
    const c = dir.ensure('dm:1');
    hold(c, 1, 2);
    c.readSeq = 9; // our own send moved it further
    c.readSent = 9;
    assert.equal(r.read(c), false);
    assert.equal(c.readSeq, 9);
    assert.deepEqual(wire.take(), []);
  });

  test('a marker the server already has is not sent again', () => {
    const { wire, dir, r } = setup();
    const c = dir.ensure('dm:1');
    hold(c, 1, 2, 3);
    c.readSent = 3; // another device read up to 3
    r.read(c);
    assert.deepEqual(wire.take(), []);
  });

  test('offline: owed, sent by sendRead once connected', () => {
    const { wire, dir, r } = setup();
    const c = dir.ensure('dm:1');
    hold(c, 1, 2);
    wire.online = false;
    r.read(c);
    assert.equal(c.readSent, 0);
    wire.online = true;
    r.sendRead(c);
    r.sendRead(c);
    assert.deepEqual(wire.take(), [{ op: 'read', conversation: 'dm:1', seq: 2 }]);
    assert.equal(c.readSent, 2);
  });

  test('coalesced: at most one read frame per conversation per second, the newest marker last', () => {
    const { wire, clock, dir, r } = setup();
    const a = dir.ensure('channel:1');
    a.joined = true;
    const b = dir.ensure('dm:2');
    // 20 messages a second for 3 seconds, each one seen as it arrives.
    for (let s = 1; s <= 60; s++) {
      hold(a, s);
      r.read(a);
      if (s % 10 === 0) {
        hold(b, s / 10);
        r.read(b);
      }
      clock.advance(50);
    }
    clock.advance(READ_MIN_INTERVAL_MS);
    const frames = wire.take('read');
    const ofA = frames.filter((f) => f.conversation === 'channel:1');
    assert.ok(ofA.length <= 4, `${ofA.length} read frames for 3 s of a busy channel`);
    assert.deepEqual(ofA[0], { op: 'read', conversation: 'channel:1', seq: 1 }, 'the first goes at once');
    assert.deepEqual(ofA.at(-1), { op: 'read', conversation: 'channel:1', seq: 60 }, 'the newest marker goes last');
    assert.equal(a.readSent, 60);
    // Another conversation is not held back by the first.
    assert.ok(frames.some((f) => f.conversation === 'dm:2' && f.seq === 1));
    clock.advance(READ_MIN_INTERVAL_MS * 3);
    assert.deepEqual(wire.take(), [], 'nothing more once the marker is sent');
  });

  test('read up to a seen message only, never past the newest held', () => {
    const { wire, dir, r } = setup();
    const c = dir.ensure('dm:1');
    hold(c, 1, 2, 3, 4, 5);
    assert.equal(r.read(c, 3), true);
    assert.equal(c.readSeq, 3);
    assert.deepEqual(wire.take(), [{ op: 'read', conversation: 'dm:1', seq: 3 }]);
    r.read(c, 99);
    assert.equal(c.readSeq, 5);
  });

  test('cancel drops a held read frame', () => {
    const { wire, clock, dir, r } = setup();
    const c = dir.ensure('dm:1');
    hold(c, 1, 2);
    r.read(c, 1);
    r.read(c, 2);
    r.cancel();
    clock.advance(READ_MIN_INTERVAL_MS * 2);
    assert.deepEqual(wire.take(), [{ op: 'read', conversation: 'dm:1', seq: 1 }]);
    assert.equal(c.readHeld, false);
  });
});
