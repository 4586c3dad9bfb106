// src/model/quotes.ts: a reply's original fetched by id once, kept for a minute; unreadable ones
// remembered as unavailable; fetched again after the minute (an edit or a delete shows).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { model } from './fakes.mjs';

const { Quotes } = model('quotes');

const wire = (id, body) => ({ id, conversation: 'channel:1', seq: 3, from: '7', type: 'text', body, created_at: 0 });
const settle = () => new Promise((r) => setImmediate(r));

describe('quotes', () => {
  test('undefined while fetched, then the message; one fetch however often asked', async () => {
    const asked = [];
    let changes = 0;
    let now = 0;
    const quotes = new Quotes(async (id) => { asked.push(id); return wire(id, 'the original'); }, () => { changes++; }, () => now);
    assert.equal(quotes.get('42'), undefined);
    assert.equal(quotes.get('42'), undefined);
    await settle();
    assert.equal(quotes.get('42').body, 'the original');
    assert.deepEqual(asked, ['42']);
    assert.equal(changes, 1);
    // After a minute the held copy is still shown while it is fetched again.
    now = 61_000;
    assert.equal(quotes.get('42').body, 'the original');
    await settle();
    assert.deepEqual(asked, ['42', '42']);
  });

  test('a message the user may not read is null, and not asked again within the minute', async () => {
    const asked = [];
    const quotes = new Quotes(async (id) => { asked.push(id); throw new Error('404'); }, () => {}, () => 0);
    assert.equal(quotes.get('9'), undefined);
    await settle();
    assert.equal(quotes.get('9'), null);
    assert.equal(quotes.get('9'), null);
    assert.deepEqual(asked, ['9']);
  });
});
