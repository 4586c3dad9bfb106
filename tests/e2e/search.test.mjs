// End-to-end: message search in the web client (issue 17). A user who joined a busy channel
// presses "/", finds a Chinese word inside a longer one, sees who wrote it, where and when with
// the match marked, and Enter jumps to that message far back in the history (the page around it
// is loaded; it is centred and marked). Run with scripts/e2e.sh, or:
// node --test tests/e2e/search.test.mjs

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Scenarios,
  bodies,
  createChannel,
  createSpace,
  joinChannel,
  joinSpace,
  newIdentity,
  register,
  scriptSend,
  send,
  shot,
  waitForMessage,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;
const NEEDLE = '离线消息缓存已经满了，请清理';

describe('imd web client: search', () => {
  const run = new Scenarios({ name: 'imd-e2e-search', defaultTimeoutMs: 20_000 });
  before(() => run.start());
  after(() => run.stop());

  test('"/" finds a message by a word inside it and Enter jumps to it in its history', { timeout: TEST_TIMEOUT_MS }, async () => {
    run.watch.scenario = 'search';
    const alice = newIdentity('alice');
    const bob = newIdentity('bob');
    const A = await run.device('alice');
    await register(A.page, alice);
    const spaceId = await createSpace(A.page, 'Search space');
    const general = await createChannel(A.page, 'general');
    await send(A.page, NEEDLE);
    await waitForMessage(A.page, NEEDLE);
    // Enough after it that the newest page no longer holds it.
    await scriptSend(A.page, general, { count: 80, prefix: 'filler' });

    const B = await run.device('bob');
    await register(B.page, bob);
    await joinSpace(B.page, spaceId);
    await joinChannel(B.page, 'general');
    await B.page.locator('.msg-list li.msg[data-seq]').first().waitFor();
    assert.ok(!(await bodies(B.page)).includes(NEEDLE), 'the newest page does not reach it');

    await B.page.locator('#conv-title').click(); // out of the composer: "/" is a shortcut here
    await B.page.keyboard.press('/');
    const box = B.page.getByRole('combobox', { name: 'Search messages' });
    await box.fill('消息');
    const hit = B.page.locator('.search-hit').first();
    await hit.locator('mark', { hasText: '消息' }).waitFor();
    assert.equal(await B.page.locator('.search-hit').count(), 1);
    await hit.locator('.search-sender', { hasText: alice.name }).waitFor();
    assert.equal((await hit.locator('.search-conv').textContent()).trim(), '# general');
    assert.match(await hit.locator('time').textContent(), /\d/);
    assert.equal((await hit.locator('.search-snippet').textContent()).trim(), NEEDLE);
    await shot(B.page, 'search-results');

    await box.press('Enter');
    await B.page.getByRole('dialog', { name: 'Search messages' }).waitFor({ state: 'detached' });
    const row = B.page.locator('.msg-list li.msg.focused');
    await row.waitFor();
    assert.equal(await row.getAttribute('data-seq'), '1');
    assert.equal((await row.locator('.body').textContent()).trim(), NEEDLE);
    // In view: the list scrolled to it.
    const inView = await row.evaluate((el) => {
      const r = el.getBoundingClientRect();
      const list = el.closest('.messages').getBoundingClientRect();
      return r.top >= list.top - 1 && r.bottom <= list.bottom + 1;
    });
    assert.ok(inView, 'the message is scrolled into view');
    await shot(B.page, 'search-jumped');

    run.noConsoleErrors();

    // A query the server refuses (400) shows its reason, not a crash; the browser logs the
    // refused request, and nothing else.
    await B.page.locator('#conv-title').click();
    await B.page.keyboard.press('/');
    await B.page.getByRole('combobox', { name: 'Search messages' }).fill('"unbalanced');
    await B.page.getByRole('dialog', { name: 'Search messages' }).getByRole('alert').filter({ hasText: 'unbalanced' }).waitFor();
    const logged = run.watch.take();
    for (const e of logged) assert.match(e, /status of 400.*\/api\/v1\/search/, e);
  });
});
