// src/model/mention.ts: the composer's @-autocomplete: the query at the caret, what it offers
// (members by name, @channel/@here only where allowed, never oneself), and the inserted token.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { model } from './fakes.mjs';

const { mentionQuery, suggestions, complete, MAX_SUGGESTIONS } = model('mention');

const members = [
  { id: '1', name: 'alice' },
  { id: '2', name: 'Alan' },
  { id: '3', name: 'bob' },
  { id: '4', name: 'me' },
];

describe('mention autocomplete', () => {
  test('an @word at the caret after a space or at the start is a query; others are not', () => {
    assert.deepEqual(mentionQuery('hi @al', 6), { start: 3, prefix: 'al' });
    assert.deepEqual(mentionQuery('@', 1), { start: 0, prefix: '' });
    assert.equal(mentionQuery('mail@al', 7), null);
    assert.equal(mentionQuery('hi @al there', 12), null);
    assert.deepEqual(mentionQuery('hi @al there', 6), { start: 3, prefix: 'al' });
  });

  test('members by name prefix, best first; never oneself; broadcast words only when allowed', () => {
    assert.deepEqual(suggestions(members, 'al', '4', false).map((s) => s.id), ['2', '1']);
    assert.deepEqual(suggestions(members, 'm', '4', false), []);
    assert.deepEqual(suggestions(members, 'h', '4', true), [{ kind: 'all', word: 'here' }]);
    assert.deepEqual(suggestions(members, 'ch', '4', false), []);
    const all = suggestions(members, '', '4', true);
    assert.deepEqual(all.map((s) => s.id ?? s.word), ['2', '1', '3', 'channel', 'here']);
    const many = Array.from({ length: 30 }, (_, i) => ({ id: String(i + 10), name: `al${i}` }));
    assert.equal(suggestions(many, 'al', '4', true).length, MAX_SUGGESTIONS);
  });

  test('a pick replaces the query with its token and a space, the rest kept', () => {
    const q = mentionQuery('hi @al and more', 6);
    assert.deepEqual(complete('hi @al and more', q, 6, { kind: 'user', id: '1', name: 'alice' }), {
      text: 'hi <@1>  and more',
      caret: 8,
    });
    assert.deepEqual(complete('@he', mentionQuery('@he', 3), 3, { kind: 'all', word: 'here' }), {
      text: '<!here> ',
      caret: 8,
    });
  });
});
