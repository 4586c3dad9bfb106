// src/model/listcache.ts: the sidebar as last fetched, per user, shown at the next start; and
// why applying it before the server's list is safe (src/model/directory.ts merges by maxima).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryStore, listState, model } from './fakes.mjs';

const { ListCache, MAX_SNAPSHOT_CHARS } = model('listcache');
const { Directory, unread } = model('directory');

const state = listState;

function snapshot(conversations = [state('channel:5', { last_seq: 3 })]) {
  return {
    spaces: [{ id: '1', name: 'Team', avatar: '', owner_id: '7', created_at: 1 }],
    spaceId: '1',
    channels: [{ id: '5', space_id: '1', name: 'general' }],
    list: { conversations, spaces: [{ space_id: '1', unread: 0 }] },
  };
}

describe('list cache', () => {
  test('kept per user across a new page; forget drops it', () => {
    const store = new MemoryStore();
    new ListCache(store).write('7', snapshot());
    const next = new ListCache(store);
    assert.deepEqual(next.read('7'), snapshot());
    assert.equal(next.read('8'), null, 'another user sees none of it');
    next.forget('7');
    assert.equal(next.read('7'), null);
  });

  test('a stored value that does not parse, or has another shape, is dropped', () => {
    const store = new MemoryStore();
    const cache = new ListCache(store);
    store.setItem('imd.list.7', '{not json');
    assert.equal(cache.read('7'), null);
    assert.equal(store.getItem('imd.list.7'), null);
    for (const bad of [{}, { ...snapshot(), spaces: 'x' }, { ...snapshot(), list: { conversations: [{}], spaces: [] } }, { ...snapshot(), spaceId: 5 }]) {
      store.setItem('imd.list.7', JSON.stringify(bad));
      assert.equal(cache.read('7'), null, JSON.stringify(bad));
      assert.equal(store.getItem('imd.list.7'), null);
    }
  });

  test('bounded: a snapshot over the limit is not stored and an older one goes', () => {
    const store = new MemoryStore();
    const cache = new ListCache(store);
    cache.write('7', snapshot());
    const many = Array.from({ length: 4000 }, (_, i) => state(`dm:${i + 100}`, { name: 'x'.repeat(100) }));
    assert.ok(JSON.stringify(snapshot(many)).length > MAX_SNAPSHOT_CHARS);
    cache.write('7', snapshot(many));
    assert.equal(cache.read('7'), null);
  });

  test('an older list applied first leaves the state the fresh list alone makes', () => {
    const older = [
      state('channel:5', { last_seq: 10, read_seq: 4, mentions: 2, last_rev: 3 }),
      state('channel:6', { last_seq: 2, read_seq: 2 }), // left on another device since
      state('dm:9', { last_seq: 1, read_seq: 0 }),
    ];
    const fresh = [
      state('channel:5', { last_seq: 14, read_seq: 12, mentions: 0, last_rev: 5 }),
      state('dm:9', { last_seq: 3, read_seq: 3 }),
    ];
    const both = new Directory();
    both.applyList(older);
    both.applyList(fresh);
    const alone = new Directory();
    alone.applyList(fresh);
    const view = (d) =>
      [...d.convs.values()]
        .filter((c) => c.joined)
        .map((c) => ({ key: c.key, unread: unread(c), mentions: c.mentions, lastSeq: c.lastSeq, readSeq: c.readSeq, rev: c.rev }));
    assert.deepEqual(view(both), view(alone));
    assert.equal(both.get('channel:6').joined, false, 'a channel the fresh list does not name is left');
  });
});
