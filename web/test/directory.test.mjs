// src/model/directory.ts: the conversation list, unread counts and the space roll-up.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { listState, model, wireMsg } from './fakes.mjs';

const { Directory, unread, convTitle } = model('directory');
const { insert, toMsg } = model('conversation');

const state = listState;

test('unread is lastSeq - readSeq, never below zero', () => {
  const d = new Directory();
  const c = d.ensure('dm:1');
  c.lastSeq = 9;
  c.readSeq = 4;
  assert.equal(unread(c), 5);
  c.readSeq = 12; // our own send moved the marker before the message itself arrived
  assert.equal(unread(c), 0);
});

test('ensure creates a conversation once and returns it afterwards', () => {
  const d = new Directory();
  const c = d.ensure('channel:5');
  assert.equal(d.ensure('channel:5'), c);
  assert.equal(d.get('channel:5'), c);
  assert.equal(d.get('channel:6'), undefined);
  d.reset();
  assert.equal(d.get('channel:5'), undefined);
});

describe('applyList', () => {
  test('adopts names, spaces and cursors, and joins the listed channels', () => {
    const d = new Directory();
    d.applyList([state('channel:1', { space_id: 's1', last_seq: 8, read_seq: 3 })]);
    const c = d.get('channel:1');
    assert.equal(c.joined, true);
    assert.equal(c.title, 'name of channel:1');
    assert.equal(c.spaceId, 's1');
    assert.deepEqual([c.lastSeq, c.readSeq, c.readSent, unread(c)], [8, 3, 3, 5]);
  });

  test('cursors only move forward: a list older than the live frames changes nothing', () => {
    const d = new Directory();
    const c = d.ensure('dm:2');
    c.lastSeq = 20;
    c.readSeq = 15;
    c.readSent = 15;
    d.applyList([state('dm:2', { last_seq: 18, read_seq: 10 })]);
    assert.deepEqual([c.lastSeq, c.readSeq, c.readSent], [20, 15, 15]);
    d.applyList([state('dm:2', { last_seq: 25, read_seq: 22 })]);
    assert.deepEqual([c.lastSeq, c.readSeq, c.readSent], [25, 22, 22]);
  });

  test('a channel missing from the list was left elsewhere; DMs stay', () => {
    const d = new Directory();
    d.applyList([state('channel:1'), state('channel:2'), state('dm:3')]);
    d.applyList([state('channel:2')]);
    assert.equal(d.get('channel:1').joined, false);
    assert.equal(d.get('channel:2').joined, true);
    assert.equal(d.get('dm:3').joined, true);
  });

  test('returns the DM peers it names, as placeholder profiles', () => {
    const d = new Directory();
    const peers = d.applyList([state('dm:3', { name: 'Carol', avatar: 'a.png' }), state('channel:1')]);
    assert.deepEqual(peers, [{ id: '3', name: 'Carol', avatar: 'a.png', created_at: 0 }]);
  });
});

describe('spaceUnread', () => {
  test('sums the joined channels of that space only', () => {
    const d = new Directory();
    d.applyList([
      state('channel:1', { space_id: 's1', last_seq: 10, read_seq: 7 }),
      state('channel:2', { space_id: 's1', last_seq: 4, read_seq: 0 }),
      state('channel:3', { space_id: 's2', last_seq: 50, read_seq: 0 }),
      state('dm:9', { last_seq: 6, read_seq: 0 }),
    ]);
    const left = d.ensure('channel:4'); // seen live, then left: not counted
    left.spaceId = 's1';
    left.lastSeq = 100;
    assert.equal(d.spaceUnread('s1'), 3 + 4);
    assert.equal(d.spaceUnread('s2'), 50);
    assert.equal(d.spaceUnread('s3'), 0);
  });

  test('follows the read marker as it moves', () => {
    const d = new Directory();
    d.applyList([state('channel:1', { space_id: 's1', last_seq: 10, read_seq: 2 })]);
    d.get('channel:1').readSeq = 10;
    assert.equal(d.spaceUnread('s1'), 0);
  });
});

test('muted conversations (the `counts` filter) leave the space badge, its @ count and the total; their own count stays', () => {
  const d = new Directory();
  d.applyList([
    state('channel:1', { space_id: 's1', last_seq: 10, read_seq: 7, mentions: 2 }),
    state('channel:2', { space_id: 's1', last_seq: 4, read_seq: 0, mentions: 1 }),
    state('dm:9', { last_seq: 6, read_seq: 0 }),
  ]);
  const muted = new Set(['channel:1', 'dm:9']);
  const counts = (c) => !muted.has(c.key);
  assert.equal(d.spaceUnread('s1', counts), 4);
  assert.equal(d.spaceMentions('s1', counts), 1);
  assert.equal(d.totalUnread(counts), 4);
  assert.equal(d.totalUnread(), 3 + 4 + 6, 'unfiltered: everything');
  assert.equal(unread(d.get('channel:1')), 3, 'a muted channel still counts its unread');
});

test('dms lists only DMs, the most recent first, then by title', () => {
  const d = new Directory();
  for (const k of ['dm:1', 'channel:2', 'dm:3', 'dm:4', 'dm:5']) d.ensure(k);
  const names = { 1: 'zoe', 3: 'Anna', 4: 'mark', 5: 'bea' };
  assert.deepEqual(d.dms((c) => names[c.peerOrChannel]).map((c) => c.key), ['dm:3', 'dm:5', 'dm:4', 'dm:1']);
  // The list tells the last message's time; a live message moves its DM to the top.
  d.applyList([state('dm:4', { last_message: { created_at: 2_000 } }), state('dm:1', { last_message: { created_at: 1_000 } })]);
  assert.deepEqual(d.dms((c) => names[c.peerOrChannel]).map((c) => c.key), ['dm:4', 'dm:1', 'dm:3', 'dm:5']);
  insert(d.get('dm:5'), [toMsg(wireMsg('dm:5', 1, { created_at: 3_000 }))]);
  assert.deepEqual(d.dms((c) => names[c.peerOrChannel]).map((c) => c.key), ['dm:5', 'dm:4', 'dm:1', 'dm:3']);
});

test('totalUnread sums every joined conversation', () => {
  const d = new Directory();
  d.applyList([state('channel:1', { last_seq: 5, read_seq: 2 }), state('dm:2', { last_seq: 4, read_seq: 0 })]);
  d.ensure('channel:9').lastSeq = 50; // not joined
  assert.equal(d.totalUnread(), 7);
});

test('convTitle: the peer for a DM; for a channel the list name, its space list, or a placeholder', () => {
  const d = new Directory();
  const userName = (id) => `user-${id}`;
  assert.equal(convTitle(d.ensure('dm:5'), userName, {}), 'user-5');
  const ch = d.ensure('channel:8');
  assert.equal(convTitle(ch, userName, {}), 'channel');
  const channels = { s1: undefined, s2: [{ id: '8', name: 'general' }] };
  assert.equal(convTitle(ch, userName, channels), 'general');
  ch.title = 'from the list';
  assert.equal(convTitle(ch, userName, channels), 'from the list');
});

describe('mentions, receipts and the change cursor from the list', () => {
  test('last_rev starts the change cursor only while nothing is held', () => {
    const dir = new Directory();
    const base = { kind: 'channel', name: 'a', avatar: '', last_seq: 2, read_seq: 0, unread: 2, space_id: 's', last_message: null };
    dir.applyList([{ ...base, conversation: 'channel:1', last_rev: 4, mentions: 2 }, { ...base, conversation: 'channel:2', mentions: 1 }]);
    const c = dir.get('channel:1');
    assert.equal(c.rev, 4);
    assert.equal(dir.spaceMentions('s'), 3);
    insert(c, [toMsg({ id: 'x', conversation: 'channel:1', seq: 1, from: '2', type: 'text', body: 'a', created_at: 1 })]);
    dir.applyList([{ ...base, conversation: 'channel:1', last_rev: 9, mentions: 0 }]);
    assert.equal(c.rev, 4, 'changes of held messages come through sync, not the list');
    assert.equal(dir.spaceMentions('s'), 0);
  });

  test('a list older than a live mention does not hide it', () => {
    const dir = new Directory();
    const c = dir.ensure('dm:2');
    c.lastSeq = 3;
    c.mentions = 1; // counted live at seq 3
    const dm = { conversation: 'dm:2', kind: 'dm', name: 'b', avatar: '', read_seq: 0, unread: 2, user_id: '2', last_message: null };
    dir.applyList([{ ...dm, last_seq: 2, mentions: 0 }]);
    assert.equal(c.mentions, 1);
    dir.applyList([{ ...dm, last_seq: 3, mentions: 0 }]);
    assert.equal(c.mentions, 0, 'a list as new as the messages held is the truth');
  });

  test('peer_read_seq only moves forward', () => {
    const dir = new Directory();
    const dm = { conversation: 'dm:2', kind: 'dm', name: 'b', avatar: '', last_seq: 5, read_seq: 5, unread: 0, user_id: '2', last_message: null };
    dir.applyList([{ ...dm, peer_read_seq: 4 }]);
    dir.applyList([{ ...dm, peer_read_seq: 3 }]);
    assert.equal(dir.get('dm:2').peerReadSeq, 4);
  });
});
