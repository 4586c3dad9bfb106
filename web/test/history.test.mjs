// src/model/history.ts: history pages over REST merged with live messages by seq; older pages
// on demand; holes filled up to lastSeq. The REST history is a fake holding seq 1..N and
// answering like GET .../messages (docs/api.md): newest page, before_seq, after_seq, limit.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { model, range, seqs, wireMsg } from './fakes.mjs';

const { History, HISTORY_PAGE, UNREAD_CONTEXT, AROUND_BEFORE } = model('history');
const { newConv, insert, toMsg } = model('conversation');

class FakeHistory {
  constructor(count) {
    this.count = count;
    this.queries = [];
    this.gate = null; // when set, each answer waits for it
    this.failNext = null;
  }
  fetch = async (key, q) => {
    this.queries.push({ ...q });
    const failure = this.failNext;
    this.failNext = null;
    // The answer is what the server held when the request reached it.
    const limit = q.limit ?? 50;
    let list = range(1, this.count);
    if (q.before_seq !== undefined) list = list.filter((s) => s < q.before_seq).slice(-limit);
    else if (q.after_seq !== undefined) list = list.filter((s) => s > q.after_seq).slice(0, limit);
    else list = list.slice(-limit);
    if (this.gate) await this.gate;
    if (failure) throw failure;
    return { messages: list.map((s) => wireMsg(key, s)) };
  };
}

function setup(count) {
  const server = new FakeHistory(count);
  const log = { merged: 0, changed: 0, failed: [] };
  const h = new History({
    fetch: server.fetch,
    merged: () => log.merged++,
    changed: () => log.changed++,
    fail: (e) => log.failed.push(e),
  });
  const c = newConv('channel:1');
  c.joined = true;
  return { server, log, h, c };
}

const live = (c, s) => insert(c, [toMsg(wireMsg(c.key, s, { body: `live ${s}` }))]);

describe('around (jumping to a search hit)', () => {
  test('loads the page around the message, a few before it, then fills up to the newest', async () => {
    const { server, h, c } = setup(500);
    c.lastSeq = 500;
    await h.around(c, 200);
    assert.deepEqual(server.queries[0], { after_seq: 200 - AROUND_BEFORE - 1, limit: HISTORY_PAGE });
    assert.ok(seqs(c).includes(200));
    assert.equal(seqs(c)[0], 200 - AROUND_BEFORE, 'context before the hit');
    assert.deepEqual(seqs(c), range(200 - AROUND_BEFORE, 500), 'no hole up to the newest');
    assert.equal(c.loaded, true);
    assert.equal(c.hasOlder, true);
  });

  test('a held message needs no request', async () => {
    const { server, h, c } = setup(60);
    c.lastSeq = 60;
    await h.latest(c);
    const asked = server.queries.length;
    await h.around(c, 40);
    assert.equal(server.queries.length, asked);
  });

  test('near the start, the page starts at seq 1 and nothing is older', async () => {
    const { server, h, c } = setup(30);
    c.lastSeq = 30;
    await h.around(c, 3);
    assert.deepEqual(server.queries[0], { after_seq: 0, limit: HISTORY_PAGE });
    assert.deepEqual(seqs(c), range(1, 30));
    assert.equal(c.hasOlder, false);
  });
});

describe('latest', () => {
  test('more than a page unread: starts where the unread part starts, then fills up to the newest', async () => {
    const { server, h, c } = setup(300);
    c.lastSeq = 300;
    c.readSeq = 100; // 200 unread
    await h.latest(c);
    assert.deepEqual(server.queries[0], { after_seq: 100 - UNREAD_CONTEXT, limit: HISTORY_PAGE });
    assert.deepEqual(seqs(c), range(100 - UNREAD_CONTEXT + 1, 300), 'from a few read ones to the newest, no hole');
    assert.equal(c.hasOlder, true);
    assert.equal(c.readSeq, 100, 'loading marks nothing read');
  });

  test('loads the newest page and tells whether older ones exist', async () => {
    const { server, log, h, c } = setup(120);
    c.lastSeq = 120;
    c.readSeq = 110; // less than a page unread
    await h.latest(c);
    assert.deepEqual(server.queries, [{ limit: HISTORY_PAGE }]);
    assert.deepEqual(seqs(c), range(71, 120));
    assert.equal(c.loaded, true);
    assert.equal(c.hasOlder, true);
    assert.equal(log.merged, 1, 'the page is to be ACKed');
    assert.deepEqual(log.failed, []);
  });

  test('a short conversation has nothing older', async () => {
    const { h, c } = setup(3);
    await h.latest(c);
    assert.deepEqual(seqs(c), [1, 2, 3]);
    assert.equal(c.hasOlder, false);
  });

  test('an empty conversation is loaded with nothing older', async () => {
    const { h, c } = setup(0);
    await h.latest(c);
    assert.equal(c.loaded, true);
    assert.equal(c.hasOlder, false);
    assert.deepEqual(seqs(c), []);
  });

  test('merges with live messages that arrived while the page was on its way', async () => {
    const { server, h, c } = setup(60);
    let open;
    server.gate = new Promise((r) => (open = r));
    const loading = h.latest(c);
    // Live frames: one inside the page, one past it (the server has moved on meanwhile).
    live(c, 55);
    server.count = 62;
    live(c, 62);
    open();
    await loading;
    assert.deepEqual(seqs(c), range(11, 62), 'the page, then 61 paged in, no duplicates');
    assert.equal(c.msgs.find((m) => m.seq === 55).body, 'live 55', 'the copy held first stays');
    assert.deepEqual(server.queries.slice(1), [{ after_seq: 60, limit: 100 }]);
  });

  test('a failed request is reported, not thrown', async () => {
    const { server, log, h, c } = setup(10);
    server.failNext = new TypeError('network down');
    await h.latest(c);
    assert.equal(log.failed.length, 1);
    assert.equal(c.loaded, false, 'opening it again retries');
  });
});

describe('older', () => {
  test('pages back one page at a time until seq 1', async () => {
    const { server, h, c } = setup(120);
    await h.latest(c);
    await h.older(c);
    assert.deepEqual(server.queries.at(-1), { before_seq: 71, limit: HISTORY_PAGE });
    assert.deepEqual(seqs(c), range(21, 120));
    assert.equal(c.hasOlder, true);
    await h.older(c);
    assert.deepEqual(seqs(c), range(1, 120));
    assert.equal(c.hasOlder, false);
    const asked = server.queries.length;
    await h.older(c);
    assert.equal(server.queries.length, asked, 'nothing older: no request');
  });

  test('one request at a time; none before the newest page is loaded', async () => {
    const { server, h, c } = setup(120);
    c.hasOlder = true;
    await h.older(c);
    assert.equal(server.queries.length, 0);
    await h.latest(c);
    let open;
    server.gate = new Promise((r) => (open = r));
    const first = h.older(c);
    assert.equal(c.loadingOlder, true);
    await h.older(c);
    open();
    await first;
    assert.equal(server.queries.filter((q) => q.before_seq).length, 1);
    assert.equal(c.loadingOlder, false);
  });

  test('a failure ends the loading state', async () => {
    const { server, log, h, c } = setup(120);
    await h.latest(c);
    server.failNext = new Error('boom');
    await h.older(c);
    assert.equal(c.loadingOlder, false);
    assert.equal(c.hasOlder, true, 'can be tried again');
    assert.equal(log.failed.length, 1);
  });
});

describe('fillGaps', () => {
  test('pages in a hole between held messages and the rest up to lastSeq', async () => {
    const { server, log, h, c } = setup(300);
    await h.latest(c); // 251..300
    live(c, 305);
    live(c, 303); // a reconnect left 301, 302 and 304 out
    server.count = 305;
    server.queries = [];
    log.merged = 0;
    await h.fillGaps(c);
    assert.deepEqual(server.queries, [{ after_seq: 300, limit: 100 }]);
    assert.deepEqual(seqs(c), range(251, 305));
    assert.equal(log.merged, 1);
  });

  test('stops when the server has nothing more, and when nothing is missing', async () => {
    const { server, h, c } = setup(10);
    await h.latest(c);
    c.lastSeq = 15; // announced, but not readable (yet)
    server.queries = [];
    await h.fillGaps(c);
    assert.deepEqual(server.queries, [{ after_seq: 10, limit: 100 }]);
    c.lastSeq = 10;
    server.queries = [];
    await h.fillGaps(c);
    assert.deepEqual(server.queries, []);
    assert.equal(c.filling, false);
  });

  test('a long hole takes several pages, bounded per fill', async () => {
    const { server, h, c } = setup(5000);
    c.loaded = true;
    live(c, 1);
    c.lastSeq = 5000;
    await h.fillGaps(c);
    assert.equal(server.queries.length, 20);
    assert.deepEqual(seqs(c), range(1, 2001));
  });

  test('one fill at a time; none before the conversation is loaded', async () => {
    const { server, h, c } = setup(200);
    c.lastSeq = 200;
    await h.fillGaps(c);
    assert.equal(server.queries.length, 0);
    c.loaded = true;
    let open;
    server.gate = new Promise((r) => (open = r));
    const first = h.fillGaps(c);
    await h.fillGaps(c);
    open();
    await first;
    assert.deepEqual(server.queries, [{ after_seq: 0, limit: 100 }, { after_seq: 100, limit: 100 }]);
    assert.deepEqual(seqs(c), range(1, 200));
  });

  test('a failure is reported and a later fill can run', async () => {
    const { server, log, h, c } = setup(20);
    c.loaded = true;
    c.lastSeq = 20;
    server.failNext = new Error('boom');
    await h.fillGaps(c);
    assert.equal(log.failed.length, 1);
    assert.equal(c.filling, false);
    await h.fillGaps(c);
    assert.deepEqual(seqs(c), range(1, 20));
  });
});
