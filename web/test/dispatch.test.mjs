// src/model/dispatch.ts: each server frame of docs/protocol.md applied to a real directory,
// outbox and receipts, with the wire, timers and the effects beyond the model recorded.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Clock, MemoryStore, Wire, model, seqs, wireMsg } from './fakes.mjs';

const { onFrame, onHello } = model('dispatch');
const { Directory, unread } = model('directory');
const { Outbox } = model('outbox');
const { Receipts, ACK_DELAY_MS } = model('receipts');
const { insert, toMsg } = model('conversation');

const ME = '1';

function setup({ online = true } = {}) {
  const wire = new Wire();
  wire.online = online;
  const clock = new Clock();
  const dir = new Directory();
  const effects = { fillGaps: [], refreshSoon: 0, refreshAll: 0, notices: [], changed: 0, incoming: [], typingTimers: [], removed: [], refusedIn: [] };
  const outbox = new Outbox({ send: wire.send, timers: clock, store: new MemoryStore(), changed: () => effects.changed++ });
  outbox.open(ME);
  const receipts = new Receipts({ send: wire.send, timers: clock, convs: () => dir.convs.values() });
  const refusedPresence = [];
  const t = {
    dir,
    outbox,
    receipts,
    send: wire.send,
    me: () => ME,
    fillGaps: (c) => effects.fillGaps.push(c.key),
    refreshConversationsSoon: () => effects.refreshSoon++,
    refreshAll: () => effects.refreshAll++,
    notice: (text) => effects.notices.push(text),
    incoming: (c, m) => effects.incoming.push(`${c.key}#${m.seq}`),
    changed: () => effects.changed++,
    now: () => clock.now,
    expireTyping: (c, ms) => effects.typingTimers.push(ms),
    removedFrom: (space, reason, conversation) =>
      effects.removed.push(conversation ? `${space}:${conversation}:${reason}` : `${space}:${reason}`),
    channelRefused: (conversation) => effects.refusedIn.push(conversation),
    presence: {
      refused: (code) => refusedPresence.push(code),
      answered: () => refusedPresence.push('answered'),
      apply: () => {},
      reconnected: () => {},
    },
  };
  return { wire, clock, dir, outbox, effects, refusedPresence, frame: (f) => onFrame(t, f), hello: (re) => onHello(t, re) };
}

const msg = (conversation, seq, extra) => ({ op: 'msg', ...wireMsg(conversation, seq, extra) });

function held(dir, key, ...list) {
  const c = dir.ensure(key);
  insert(c, list.map((s) => toMsg(wireMsg(key, s))));
  return c;
}

describe('hello', () => {
  test('asks for what this tab lacks, then resends, reports read markers and ACKs', () => {
    const { wire, dir, outbox, effects, hello } = setup({ online: false });
    const a = held(dir, 'dm:2', 1, 2, 3, 5);
    a.readSeq = 3;
    a.ackDirty = true;
    held(dir, 'channel:7', 4, 5); // left: no cursor
    dir.ensure('dm:3'); // nothing held: the server's own backfill covers it
    outbox.add('dm:2', 'queued while offline');
    outbox.add('dm:2', 'refused for good');
    outbox.refuse(outbox.list[1].cid, 'forbidden', 'no');
    wire.online = true;
    hello(false);
    const frames = wire.take();
    assert.deepEqual(frames.map((f) => f.op), ['sync', 'send', 'read', 'ack']);
    assert.deepEqual(frames[0].cursors, { 'dm:2': 3 });
    assert.deepEqual(frames[0].changes, { 'dm:2': 0 }, 'the change cursor beside each message cursor');
    assert.equal(frames[1].cid, outbox.list[0].cid);
    assert.deepEqual(frames[2], { op: 'read', conversation: 'dm:2', seq: 3 });
    assert.deepEqual(frames[3], { op: 'ack', conversation: 'dm:2', seq: 3 });
    assert.equal(effects.refreshAll, 0, 'the first connection: the lists are being loaded already');
  });

  test('a reconnect also refreshes the lists; nothing held means no sync frame', () => {
    const { wire, effects, hello } = setup();
    hello(true);
    assert.deepEqual(wire.take(), []);
    assert.equal(effects.refreshAll, 1);
  });
});

describe('msg', () => {
  test('merges in seq order, once, and ACKs the batch', () => {
    const { wire, clock, dir, frame } = setup();
    dir.ensure('dm:2');
    for (const s of [1, 3, 2, 3]) frame(msg('dm:2', s));
    const c = dir.get('dm:2');
    assert.deepEqual(seqs(c), [1, 2, 3]);
    assert.equal(unread(c), 3);
    clock.advance(ACK_DELAY_MS);
    assert.deepEqual(wire.take(), [{ op: 'ack', conversation: 'dm:2', seq: 3 }]);
  });

  test('a conversation new to us joins the directory and the list is fetched soon', () => {
    const { dir, effects, frame } = setup();
    frame(msg('channel:9', 1));
    const c = dir.get('channel:9');
    assert.equal(c.joined, true);
    assert.equal(effects.refreshSoon, 1);
    frame(msg('channel:9', 2));
    assert.equal(effects.refreshSoon, 1, 'known now');
  });

  test('a message in a channel we had left means we are back in it', () => {
    const { dir, effects, frame } = setup();
    dir.ensure('channel:9').joined = false;
    frame(msg('channel:9', 5));
    assert.equal(dir.get('channel:9').joined, true);
    assert.equal(effects.refreshSoon, 1);
  });

  test('a seq jump in a loaded conversation pages the hole in', () => {
    const { dir, effects, frame } = setup();
    const c = held(dir, 'dm:2', 1, 2);
    frame(msg('dm:2', 3));
    assert.deepEqual(effects.fillGaps, [], 'not loaded: history does it when opened');
    c.loaded = true;
    frame(msg('dm:2', 4));
    assert.deepEqual(effects.fillGaps, []);
    frame(msg('dm:2', 7));
    assert.deepEqual(effects.fillGaps, ['dm:2']);
  });

  test('our own message from another device moves our read marker', () => {
    const { dir, frame } = setup();
    const c = held(dir, 'dm:2', 1, 2);
    frame(msg('dm:2', 3, { from: ME, cid: 'other-device' }));
    assert.equal(c.readSeq, 3);
    assert.equal(unread(c), 0);
  });

  test('our own message carrying a pending cid settles that send', () => {
    const { dir, outbox, frame } = setup();
    dir.ensure('dm:2');
    outbox.add('dm:2', 'hello');
    const cid = outbox.list[0].cid;
    frame(msg('dm:2', 1, { from: ME, cid, body: 'hello' }));
    assert.deepEqual(outbox.list, []);
    assert.equal(dir.get('dm:2').msgs[0].cid, cid);
  });
});

describe('sent', () => {
  test('settles the send and shows it as a message of ours, read', () => {
    const { wire, clock, dir, outbox, frame } = setup();
    const c = held(dir, 'channel:4', 1, 2);
    c.joined = true;
    outbox.add('channel:4', 'hi all');
    const p = outbox.list[0];
    wire.take();
    frame({ op: 'sent', cid: p.cid, id: 'm3', seq: 3, conversation: 'channel:4', created_at: 123 });
    assert.deepEqual(outbox.list, []);
    assert.deepEqual(c.msgs.at(-1), { id: 'm3', seq: 3, from: ME, type: 'text', body: 'hi all', createdAt: 123, cid: p.cid, rev: 0 });
    assert.equal(c.readSeq, 3);
    assert.equal(unread(c), 0);
    clock.advance(ACK_DELAY_MS);
    assert.deepEqual(wire.take(), [{ op: 'ack', conversation: 'channel:4', seq: 3 }]);
  });

  test('without created_at the send time stands; a loaded conversation checks for holes', () => {
    const { dir, outbox, effects, frame } = setup();
    const c = dir.ensure('dm:2');
    c.loaded = true;
    outbox.add('dm:2', 'x');
    const p = outbox.list[0];
    frame({ op: 'sent', cid: p.cid, id: 'm9', seq: 9, conversation: 'dm:2' });
    assert.equal(c.msgs[0].createdAt, p.createdAt);
    assert.deepEqual(effects.fillGaps, ['dm:2']);
  });

  test('a file message of ours carries its file from the start', () => {
    const { dir, outbox, frame } = setup();
    const file = { id: 'f'.repeat(32), name: 'p.png', size: 9, type: 'image/png', width: 4, height: 2,
      url: `/api/v1/files/${'f'.repeat(32)}`, thumb_url: `/api/v1/files/${'f'.repeat(32)}?thumb=1` };
    outbox.add('dm:2', 'look', undefined, file);
    const p = outbox.list[0];
    frame({ op: 'sent', cid: p.cid, id: 'm4', seq: 4, conversation: 'dm:2', created_at: 7 });
    const m = dir.get('dm:2').msgs.at(-1);
    assert.equal(m.type, 'file');
    assert.equal(m.body, 'look');
    assert.deepEqual(m.file, file);
  });

  test('a second answer to the same cid changes nothing', () => {
    const { dir, outbox, frame } = setup();
    outbox.add('dm:2', 'x');
    const cid = outbox.list[0].cid;
    const sent = { op: 'sent', cid, id: 'm1', seq: 1, conversation: 'dm:2', created_at: 5 };
    frame(sent);
    const msgs = dir.get('dm:2').msgs;
    frame(sent);
    frame({ ...sent, cid: 'unknown' });
    assert.equal(dir.get('dm:2').msgs, msgs);
  });
});

describe('read', () => {
  test('another device read: the marker moves forward and counts as sent', () => {
    const { wire, dir, frame } = setup();
    const c = held(dir, 'dm:2', 1, 2, 3, 4);
    frame({ op: 'read', conversation: 'dm:2', seq: 3 });
    assert.deepEqual([c.readSeq, c.readSent, unread(c)], [3, 3, 1]);
    frame({ op: 'read', conversation: 'dm:2', seq: 1 });
    assert.deepEqual([c.readSeq, c.readSent], [3, 3]);
    assert.deepEqual(wire.take(), []);
  });

  test('for a conversation this tab does not hold: ignored', () => {
    const { dir, frame } = setup();
    frame({ op: 'read', conversation: 'dm:5', seq: 3 });
    assert.equal(dir.get('dm:5'), undefined);
  });
});

describe('error', () => {
  test('naming a pending cid: that send fails, for good when the code says so', () => {
    const { outbox, effects, frame } = setup();
    outbox.add('dm:2', 'a');
    outbox.add('dm:2', 'b');
    const [a, b] = outbox.list.map((p) => p.cid);
    frame({ op: 'error', code: 'forbidden', message: 'not a participant', ref: 'send', cid: a });
    frame({ op: 'error', code: 'unavailable', message: 'try again', ref: 'send', cid: b });
    assert.deepEqual(outbox.list.map((p) => [p.status, p.error, p.permanent]), [
      ['failed', 'not a participant', true],
      ['failed', 'try again', false],
    ]);
    assert.deepEqual(effects.notices, []);
  });

  test('a send forbidden in a channel asks for its settings again (archived since); other refusals do not', () => {
    const { outbox, effects, frame } = setup();
    outbox.add('channel:7', 'a');
    outbox.add('channel:7', 'b');
    outbox.add('dm:2', 'c');
    const [a, b, c] = outbox.list.map((p) => p.cid);
    frame({ op: 'error', code: 'forbidden', message: 'this channel is archived: it is read-only', ref: 'send', cid: a });
    frame({ op: 'error', code: 'unavailable', message: 'try again', ref: 'send', cid: b });
    frame({ op: 'error', code: 'forbidden', message: 'you blocked this user', ref: 'send', cid: c });
    frame({ op: 'error', code: 'forbidden', message: 'no', ref: 'send', cid: 'settled-long-ago' });
    assert.deepEqual(effects.refusedIn, ['channel:7']);
  });

  test('a refused presence subscription goes to presence, with no notice', () => {
    const { effects, frame, refusedPresence } = setup();
    frame({ op: 'error', code: 'unavailable', message: 'store is unavailable (circuit open): retry in 1 s', ref: 'presence_sub' });
    frame({ op: 'presence_sub', presence: { 2: 'online' } });
    assert.deepEqual(refusedPresence, ['unavailable', 'answered']);
    assert.deepEqual(effects.notices, []);
  });

  test('about anything else: a notice', () => {
    const { effects, frame } = setup();
    frame({ op: 'error', code: 'invalid_argument', message: 'bad seq', ref: 'ack' });
    frame({ op: 'error', code: 'too_many_requests', message: 'slow down' });
    frame({ op: 'error', code: 'forbidden', message: 'no', ref: 'send', cid: 'settled-long-ago' });
    assert.deepEqual(effects.notices, [
      'The server refused ack: bad seq',
      'The server refused a request: slow down',
      'The server refused send: no',
    ]);
  });
});

test('synced, pong and ops the client does not know change nothing', () => {
  const { wire, dir, outbox, effects, frame } = setup();
  held(dir, 'dm:2', 1, 2);
  outbox.add('dm:2', 'x');
  wire.take();
  const before = JSON.stringify({ convs: [...dir.convs], list: outbox.list, effects });
  frame({ op: 'synced', messages: 2 });
  frame({ op: 'pong', t: 'x' });
  frame({ op: 'batch', frames: [] }); // only sent to clients that ask for batch=1, which this one does not
  assert.equal(JSON.stringify({ convs: [...dir.convs], list: outbox.list, effects }), before);
  assert.deepEqual(wire.take(), []);
});

test('incoming: a new message from someone else, once; not our own, not a duplicate', () => {
  const { effects, frame } = setup();
  frame(msg('dm:2', 1));
  frame(msg('dm:2', 1)); // the same message again (a sync after a reconnect)
  frame(msg('dm:2', 2, { from: ME }));
  frame(msg('channel:7', 1));
  assert.deepEqual(effects.incoming, ['dm:2#1', 'channel:7#1']);
});

describe('changes (edited, deleted, reaction)', () => {
  test('a change replaces the held copy only when its rev is higher; the cursor follows', () => {
    const { dir, frame, wire, hello } = setup();
    const c = held(dir, 'dm:2', 1, 2, 3);
    frame({ op: 'edited', ...wireMsg('dm:2', 2, { body: 'v2', rev: 2, edited_at: 5 }) });
    frame({ op: 'reaction', ...wireMsg('dm:2', 2, { body: 'v1', rev: 1, reactions: [{ emoji: '👍', count: 1, users: ['2'] }] }) });
    assert.equal(c.msgs[1].body, 'v2', 'an older state never replaces a newer one');
    assert.equal(c.msgs[1].editedAt, 5);
    assert.equal(c.msgs[1].reactions, undefined);
    frame({ op: 'reaction', ...wireMsg('dm:2', 2, { body: 'v2', rev: 3, edited_at: 5, reactions: [{ emoji: '👍', count: 1, users: ['2'] }] }) });
    assert.deepEqual(c.msgs[1].reactions, [{ emoji: '👍', count: 1, users: ['2'] }]);
    frame({ op: 'deleted', ...wireMsg('dm:2', 3, { body: undefined, deleted: true, rev: 4 }) });
    assert.equal(c.msgs[2].deleted, true);
    assert.equal(c.msgs[2].body, '');
    frame(msg('dm:2', 3)); // a stale copy (no rev = 0) of the deleted message
    assert.equal(c.msgs[2].deleted, true, 'a msg without rev does not bring a deleted message back');
    assert.deepEqual(seqs(c), [1, 2, 3]);
    assert.equal(c.rev, 4);
    wire.take();
    hello(true);
    const sync = wire.take().find((f) => f.op === 'sync');
    assert.deepEqual(sync, { op: 'sync', cursors: { 'dm:2': 3 }, changes: { 'dm:2': 4 } });
  });

  test('a msg backfilled in a newer state replaces the held copy; same rev is ignored', () => {
    const { dir, frame } = setup();
    const c = held(dir, 'channel:5', 1, 2);
    const before = c.msgs;
    frame({ op: 'edited', ...wireMsg('channel:5', 1, { body: 'x', rev: 0 }) });
    assert.equal(c.msgs, before, 'rev 0 over rev 0: nothing changes, not even the array');
    frame(msg('channel:5', 1, { body: 'edited later', rev: 7, edited_at: 9 }));
    assert.equal(c.msgs[0].body, 'edited later');
    assert.equal(c.rev, 0, 'a msg is not a change frame: the change cursor stays');
  });

  test('a change of a message not held is dropped, but still moves the cursor', () => {
    const { dir, frame } = setup();
    const c = held(dir, 'dm:2', 5);
    frame({ op: 'deleted', ...wireMsg('dm:2', 1, { deleted: true, rev: 2 }) });
    assert.deepEqual(seqs(c), [5]);
    assert.equal(c.rev, 2);
  });
});

describe('typing, seen, mentions', () => {
  test('typing shows until it expires or that user writes', () => {
    const { dir, frame, clock, effects } = setup();
    const { typingNow } = model('dispatch');
    const c = held(dir, 'channel:5', 1);
    frame({ op: 'typing', conversation: 'channel:5', user: '7', expires_ms: 6000 });
    frame({ op: 'typing', conversation: 'channel:5', user: '8', expires_ms: 6000 });
    frame({ op: 'typing', conversation: 'channel:5', user: ME, expires_ms: 6000 });
    assert.deepEqual(typingNow(c, clock.now).sort(), ['7', '8']);
    assert.deepEqual(effects.typingTimers, [6000, 6000]);
    frame(msg('channel:5', 2, { from: '7' }));
    assert.deepEqual(typingNow(c, clock.now), ['8']);
    assert.deepEqual(typingNow(c, clock.now + 6000), []);
    assert.deepEqual(c.typing, {}, 'expired indicators are forgotten');
  });

  test('a refused typing frame is no notice; a refused edit is', () => {
    const { frame, effects } = setup();
    frame({ op: 'error', code: 'too_many_requests', message: 'typing: at most one per second', ref: 'typing' });
    assert.deepEqual(effects.notices, []);
    frame({ op: 'error', code: 'forbidden', message: 'not yours', ref: 'edit', id: '5' });
    assert.equal(effects.notices.length, 1);
    assert.match(effects.notices[0], /edit: not yours/);
  });

  test('seen moves the peer read marker forward only', () => {
    const { dir, frame } = setup();
    const c = held(dir, 'dm:2', 1, 2, 3);
    frame({ op: 'seen', conversation: 'dm:2', user: '2', seq: 3 });
    frame({ op: 'seen', conversation: 'dm:2', user: '2', seq: 2 });
    assert.equal(c.peerReadSeq, 3);
  });

  test('a live message mentioning me counts once; reading everything clears the badge', () => {
    const { dir, frame } = setup();
    const { mentionCount } = model('directory');
    const c = held(dir, 'channel:5', 1);
    c.joined = true;
    frame(msg('channel:5', 2, { body: `hi <@${ME}>` }));
    frame(msg('channel:5', 2, { body: `hi <@${ME}>` }));
    frame(msg('channel:5', 3, { body: 'hi <@11>' }));
    assert.equal(mentionCount(c), 1);
    c.readSeq = 3;
    assert.equal(mentionCount(c), 0);
  });
});

describe('removed', () => {
  test('a removal or ban from a space or a channel, a deleted channel: each reaches the app, and nothing else changes', () => {
    const { frame, effects, wire } = setup();
    frame({ op: 'removed', space: '77', reason: 'banned' });
    frame({ op: 'removed', space: '78', reason: 'removed' });
    assert.deepEqual(effects.removed, ['77:banned', '78:removed']);
    frame({ op: 'removed', space: '78', conversation: 'channel:9', reason: 'removed' });
    frame({ op: 'removed', space: '78', conversation: 'channel:10', reason: 'deleted' });
    assert.deepEqual(effects.removed.slice(2), ['78:channel:9:removed', '78:channel:10:deleted']);
    assert.deepEqual(effects.notices, []);
    assert.deepEqual(wire.take(), []);
  });
});
