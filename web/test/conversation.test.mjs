// src/model/conversation.ts: messages ordered and deduplicated by seq, and the cursors derived
// from them (top, contiguous top, the next hole to page in, sync cursors).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { model, range, seqs, wireMsg } from './fakes.mjs';

const { newConv, toMsg, insert, topSeq, contiguousTop, nextGap, syncCursors, trim, lowerBound, MAX_HELD } = model('conversation');

const msgs = (key, list) => list.map((s) => toMsg(wireMsg(key, s)));

describe('newConv', () => {
  test('splits the key; a DM is ours from the start, a channel only once listed', () => {
    const dm = newConv('dm:42');
    assert.equal(dm.kind, 'dm');
    assert.equal(dm.peerOrChannel, '42');
    assert.equal(dm.joined, true);
    const ch = newConv('channel:9');
    assert.equal(ch.kind, 'channel');
    assert.equal(ch.peerOrChannel, '9');
    assert.equal(ch.joined, false);
    assert.deepEqual([ch.lastSeq, ch.readSeq, ch.ackSent, ch.readSent, ch.msgs.length], [0, 0, 0, 0, 0]);
  });
});

test('toMsg maps the wire names', () => {
  const m = toMsg(wireMsg('dm:1', 3, { cid: 'c1' }));
  assert.deepEqual(m, {
    id: 'mdm:1:3', seq: 3, from: '7', type: 'text', body: 'message 3', createdAt: 1_700_000_000_003, cid: 'c1', rev: 0,
  });
  const changed = toMsg(wireMsg('dm:1', 4, { body: undefined, deleted: true, rev: 3, reply_to: 'm1', reactions: [] }));
  assert.equal(changed.body, '');
  assert.equal(changed.deleted, true);
  assert.equal(changed.replyTo, 'm1');
  assert.equal(changed.reactions, undefined, 'no reactions: no chips');
});

describe('insert', () => {
  test('keeps ascending seq whatever the arrival order', () => {
    const c = newConv('channel:1');
    insert(c, msgs(c.key, [5, 2, 9]));
    insert(c, msgs(c.key, [1, 7, 3]));
    assert.deepEqual(seqs(c), [1, 2, 3, 5, 7, 9]);
  });

  test('drops a seq already held, keeping the first copy', () => {
    const c = newConv('channel:1');
    assert.equal(insert(c, msgs(c.key, [1, 2, 3])), true);
    const held = c.msgs;
    const again = toMsg(wireMsg(c.key, 2, { body: 'other copy' }));
    assert.equal(insert(c, [again, ...msgs(c.key, [3, 1])]), false);
    assert.equal(c.msgs, held, 'unchanged: the array is not replaced');
    assert.equal(c.msgs[1].body, 'message 2');
  });

  test('duplicates inside one list count once', () => {
    const c = newConv('dm:4');
    insert(c, msgs(c.key, [4, 4, 2, 2]));
    assert.deepEqual(seqs(c), [2, 4]);
  });

  test('replaces the array on change and never mutates the old one', () => {
    const c = newConv('dm:4');
    insert(c, msgs(c.key, [1, 3]));
    const before = c.msgs;
    assert.equal(insert(c, msgs(c.key, [2])), true);
    assert.notEqual(c.msgs, before);
    assert.deepEqual(before.map((m) => m.seq), [1, 3]);
    assert.deepEqual(seqs(c), [1, 2, 3]);
  });

  test('raises lastSeq to the newest message, never lowers it', () => {
    const c = newConv('dm:4');
    c.lastSeq = 10;
    insert(c, msgs(c.key, [3]));
    assert.equal(c.lastSeq, 10);
    insert(c, msgs(c.key, [12]));
    assert.equal(c.lastSeq, 12);
  });
});

describe('cursors', () => {
  test('topSeq is the newest held, contiguousTop the end of the run from the oldest', () => {
    const c = newConv('channel:1');
    assert.equal(topSeq(c), 0);
    assert.equal(contiguousTop(c), 0);
    insert(c, msgs(c.key, [4, 5, 6, 8, 9]));
    assert.equal(topSeq(c), 9);
    assert.equal(contiguousTop(c), 6);
    insert(c, msgs(c.key, [7]));
    assert.equal(contiguousTop(c), 9);
  });

  test('nextGap: first below a hole, then up to lastSeq, then nothing', () => {
    const c = newConv('channel:1');
    assert.equal(nextGap(c), -1);
    c.lastSeq = 3;
    assert.equal(nextGap(c), 0, 'nothing held but messages exist: from the start');
    insert(c, msgs(c.key, [...range(1, 3), 6, 7, 10]));
    assert.equal(nextGap(c), 3);
    insert(c, msgs(c.key, [4, 5]));
    assert.equal(nextGap(c), 7);
    insert(c, msgs(c.key, [8, 9]));
    assert.equal(nextGap(c), -1);
    c.lastSeq = 12;
    assert.equal(nextGap(c), 10);
  });

  test('syncCursors names the joined conversations holding messages, at their contiguous top', () => {
    const a = newConv('channel:1');
    a.joined = true;
    insert(a, msgs(a.key, [1, 2, 3, 5]));
    const left = newConv('channel:2'); // not a member (any more)
    insert(left, msgs(left.key, [1]));
    const empty = newConv('dm:3');
    const dm = newConv('dm:4');
    insert(dm, msgs(dm.key, [7]));
    dm.rev = 5;
    assert.deepEqual(syncCursors([a, left, empty, dm]), {
      cursors: { 'channel:1': 3, 'dm:4': 7 },
      changes: { 'channel:1': 0, 'dm:4': 5 },
    });
  });
});

describe('bounds', () => {
  test('trim drops the oldest once past the slack, down to MAX_HELD; paging can bring them back', () => {
    const c = newConv('channel:1');
    const many = (from, to) => range(from, to).map((s) => toMsg(wireMsg(c.key, s)));
    insert(c, many(1, MAX_HELD + 1000));
    assert.equal(trim(c), false, 'within the slack: kept');
    insert(c, many(MAX_HELD + 1001, MAX_HELD + 1001));
    assert.equal(trim(c), true);
    assert.equal(c.msgs.length, MAX_HELD);
    assert.equal(c.msgs[0].seq, 1002);
    assert.equal(topSeq(c), MAX_HELD + 1001);
    assert.equal(c.hasOlder, true);
  });

  test('lowerBound finds the first message at or after a seq', () => {
    const c = newConv('dm:1');
    insert(c, [2, 4, 6].map((s) => toMsg(wireMsg(c.key, s))));
    assert.deepEqual([0, 2, 3, 6, 7].map((s) => lowerBound(c.msgs, s)), [0, 0, 1, 2, 3]);
  });

  test('lastAt follows the newest message written', () => {
    const c = newConv('dm:1');
    insert(c, [toMsg(wireMsg(c.key, 2, { created_at: 500 })), toMsg(wireMsg(c.key, 1, { created_at: 400 }))]);
    assert.equal(c.lastAt, 500);
  });
});

test('toMsg keeps a file message\'s file, and drops it once the message is deleted', () => {
  const file = { id: 'ef'.repeat(16), name: 'p.png', size: 73, type: 'image/png', width: 3, height: 2, url: '/api/v1/files/z' };
  const m = toMsg({ id: '5', conversation: 'dm:2', seq: 1, from: '2', type: 'file', body: 'cap', created_at: 1, file });
  assert.deepEqual(m.file, file);
  assert.equal(m.body, 'cap');
  const gone = toMsg({ id: '5', conversation: 'dm:2', seq: 1, from: '2', type: 'file', created_at: 1, deleted: true, rev: 2 });
  assert.equal(gone.file, undefined);
});
