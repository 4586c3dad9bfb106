// src/model/drafts.ts: drafts per conversation kept in storage across page loads, bounded.
// src/model/finder.ts: the DM finder matches name prefixes and substrings.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryStore, model } from './fakes.mjs';

const { Drafts, MAX_DRAFTS, MAX_DRAFT_CHARS } = model('drafts');
const { findPeople } = model('finder');

describe('drafts', () => {
  test('kept per conversation and found again by a new page of the same user', () => {
    const store = new MemoryStore();
    const a = new Drafts(store);
    a.open('7');
    a.set('dm:1', 'half a thought');
    a.set('channel:2', 'another');
    const reloaded = new Drafts(store);
    reloaded.open('7');
    assert.equal(reloaded.get('dm:1'), 'half a thought');
    assert.equal(reloaded.get('channel:2'), 'another');
    const other = new Drafts(store);
    other.open('8');
    assert.equal(other.get('dm:1'), '', 'another user sees none of them');
  });

  test('an emptied draft is removed; forget drops them all', () => {
    const store = new MemoryStore();
    const d = new Drafts(store);
    d.open('7');
    d.set('dm:1', 'x');
    d.set('dm:1', '');
    assert.equal(store.getItem('imd.drafts.7'), null);
    d.set('dm:2', 'y');
    d.forget();
    assert.equal(store.getItem('imd.drafts.7'), null);
    assert.equal(d.get('dm:2'), '');
  });

  test('bounded in count (the least recently edited goes) and in length', () => {
    const store = new MemoryStore();
    const d = new Drafts(store);
    d.open('7');
    for (let i = 0; i <= MAX_DRAFTS; i++) d.set(`dm:${i}`, `draft ${i}`);
    d.set('dm:1', 'edited again');
    d.set('dm:long', 'x'.repeat(MAX_DRAFT_CHARS * 2));
    const stored = JSON.parse(store.getItem('imd.drafts.7'));
    assert.equal(Object.keys(stored).length, MAX_DRAFTS);
    assert.equal(stored['dm:0'], undefined);
    assert.equal(stored['dm:2'], undefined);
    assert.equal(stored['dm:1'], 'edited again');
    assert.equal(stored['dm:long'].length, MAX_DRAFT_CHARS);
  });

  test('a stored value that does not parse is dropped, not thrown', () => {
    const store = new MemoryStore();
    store.setItem('imd.drafts.7', '{not json');
    const d = new Drafts(store);
    d.open('7');
    assert.equal(d.get('dm:1'), '');
    assert.equal(store.getItem('imd.drafts.7'), null);
  });
});

describe('finder', () => {
  const people = [
    { id: '1', name: 'Alice' },
    { id: '2', name: 'alicia' },
    { id: '3', name: 'Malik' },
    { id: '4', name: 'Bob' },
    { id: '5', name: 'Dr. Ali' },
    { id: '6', name: 'ali' },
  ];

  test('"Ali" finds Alice: equal first, then prefixes, word prefixes, substrings', () => {
    assert.deepEqual(findPeople(people, 'Ali').map((u) => u.name), ['ali', 'Alice', 'alicia', 'Dr. Ali', 'Malik']);
    assert.deepEqual(findPeople(people, ' alic ').map((u) => u.name), ['Alice', 'alicia']);
    assert.deepEqual(findPeople(people, 'zed'), []);
    assert.deepEqual(findPeople(people, ''), []);
  });

  test('each person once, at most `limit`', () => {
    assert.deepEqual(findPeople([...people, ...people], 'b').map((u) => u.id), ['4']);
    assert.equal(findPeople(people, 'a', 2).length, 2);
  });
});
