// src/model/presence.ts: the union of what views show goes out as one bounded `presence_sub`
// after a pause, again after a reconnect, never twice the same; answers and frames fill statuses.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Clock, Wire, model } from './fakes.mjs';

const { Presence, MAX_WATCHED, SUBSCRIBE_DELAY_MS, RETRY_MS, RETRY_MAX_MS } = model('presence');

function setup() {
  const wire = new Wire();
  const clock = new Clock();
  let changes = 0;
  const p = new Presence({ send: wire.send, timers: clock, changed: () => changes++ });
  return { wire, clock, p, changes: () => changes };
}

describe('presence subscription', () => {
  test('sources shown together become one sorted subscription after the pause', () => {
    const { wire, clock, p } = setup();
    p.show('dms', ['3', '1']);
    p.show('members', ['2', '1']);
    assert.deepEqual(wire.take(), []);
    clock.advance(SUBSCRIBE_DELAY_MS);
    assert.deepEqual(wire.take(), [{ op: 'presence_sub', users: ['1', '2', '3'] }]);
    // The same set again sends nothing; a source that goes away narrows it.
    p.show('dms', ['1', '3']);
    clock.advance(SUBSCRIBE_DELAY_MS);
    assert.deepEqual(wire.take(), []);
    p.show('members', []);
    clock.advance(SUBSCRIBE_DELAY_MS);
    assert.deepEqual(wire.take(), [{ op: 'presence_sub', users: ['1', '3'] }]);
  });

  test('at most MAX_WATCHED users, the first sources first', () => {
    const { wire, clock, p } = setup();
    p.show('dms', ['dm-peer']);
    p.show('members', Array.from({ length: MAX_WATCHED + 50 }, (_, i) => `u${i}`));
    clock.advance(SUBSCRIBE_DELAY_MS);
    const [f] = wire.take();
    assert.equal(f.users.length, MAX_WATCHED);
    assert.ok(f.users.includes('dm-peer'));
  });

  test('offline: nothing is lost, the reconnect subscribes again at once', () => {
    const { wire, clock, p } = setup();
    wire.online = false;
    p.show('dms', ['1']);
    clock.advance(SUBSCRIBE_DELAY_MS);
    assert.deepEqual(wire.take(), []);
    wire.online = true;
    p.reconnected();
    assert.deepEqual(wire.take(), [{ op: 'presence_sub', users: ['1'] }]);
    // A later reconnect asks again: the new connection watches nobody.
    p.reconnected();
    assert.deepEqual(wire.take(), [{ op: 'presence_sub', users: ['1'] }]);
  });

  test('a subscription refused for a passing reason is asked again, the pause doubling to a bound', () => {
    const { wire, clock, p } = setup();
    p.show('dms', ['1', '2']);
    clock.advance(SUBSCRIBE_DELAY_MS);
    const sub = { op: 'presence_sub', users: ['1', '2'] };
    assert.deepEqual(wire.take(), [sub]);
    // The store's breaker is open: asked again after RETRY_MS, then twice as long, ...
    let pause = RETRY_MS;
    for (let i = 0; i < 8; i++) {
      p.refused('unavailable');
      clock.advance(pause - 1);
      assert.deepEqual(wire.take(), [], `refusal ${i}: not before ${pause} ms`);
      clock.advance(1);
      assert.deepEqual(wire.take(), [sub], `refusal ${i}: again after ${pause} ms`);
      pause = Math.min(pause * 2, RETRY_MAX_MS);
    }
    assert.equal(pause, RETRY_MAX_MS);
    // An answer starts the pauses over; a rate limit is passing too.
    p.answered();
    p.refused('too_many_requests');
    clock.advance(RETRY_MS);
    assert.deepEqual(wire.take(), [sub]);
  });

  test('a refusal for good is not repeated, but a changed list is sent', () => {
    const { wire, clock, p } = setup();
    p.show('members', ['1']);
    clock.advance(SUBSCRIBE_DELAY_MS);
    wire.take();
    p.refused('invalid_argument');
    clock.advance(RETRY_MAX_MS * 2);
    assert.deepEqual(wire.take(), []);
    p.show('members', ['1', '2']);
    clock.advance(SUBSCRIBE_DELAY_MS);
    assert.deepEqual(wire.take(), [{ op: 'presence_sub', users: ['1', '2'] }]);
  });

  test('answers and frames set statuses; unknown users are offline; bad values ignored', () => {
    const { p, changes } = setup();
    assert.equal(p.of('1'), 'offline');
    p.apply({ 1: 'online', 2: 'away', 3: 'sleeping' });
    assert.equal(p.of('1'), 'online');
    assert.equal(p.of('2'), 'away');
    assert.equal(p.of('3'), 'offline');
    p.apply({ 1: 'offline' });
    assert.equal(p.of('1'), 'offline');
    assert.equal(changes(), 2);
  });
});
