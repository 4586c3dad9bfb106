// End-to-end: a returning user's sidebar in the first frame (issue 18, first paint <= 300 ms).
// The client keeps the sidebar as last fetched (src/model/listcache.ts) and shows it at start
// while the server's answers are on their way; they then replace it. Logout forgets it. Its own
// server. Run with scripts/e2e.sh (with the other files), or:
// node --test tests/e2e/returning.test.mjs

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Scenarios, createChannel, createSpace, logout, myId, newIdentity, register, send, startDm, waitForMessage, waitOnline } from './harness.mjs';

const LIST_CALLS = /\/api\/v1\/(spaces(\/\d+\/channels)?|conversations)(\?.*)?$/;

/** Holds the page's sidebar requests (spaces, channels, conversations) until `release()`. */
async function holdListCalls(page) {
  const held = [];
  let open = false;
  await page.route(LIST_CALLS, (route) => (open ? route.continue() : held.push(route)));
  return {
    count: () => held.length,
    release: async () => {
      open = true;
      for (const r of held.splice(0)) await r.continue();
      await page.unroute(LIST_CALLS);
    },
  };
}

const entries = (page) => page.locator('.sidebar [data-conv]').evaluateAll((els) => els.map((e) => e.getAttribute('data-conv')));

describe('imd web client: a returning user', () => {
  const run = new Scenarios({ name: 'imd-e2e-returning', defaultTimeoutMs: 20_000 });
  before(() => run.start());
  after(() => run.stop());

  test('z) the sidebar as last seen shows before the server answers, is then replaced by its answer, and is forgotten at logout', { timeout: 120_000 }, async () => {
    run.watch.scenario = 'z';
    const ida = newIdentity('ida');
    const jon = newIdentity('jon');
    const I = await run.device('ida');
    const J = await run.device('jon');
    await register(I.page, ida);
    await register(J.page, jon);
    await createSpace(I.page, 'Returning');
    const general = await createChannel(I.page, 'general');
    const dm = await startDm(I.page, jon.name);
    await send(I.page, 'hello jon'); // a DM is a conversation of the list once it has a message
    await waitForMessage(I.page, 'hello jon');
    // The stored sidebar is the one last fetched: a page load fetches it.
    await I.page.reload();
    await waitOnline(I.page);
    await I.page.locator(`.sidebar [data-conv="${dm}"]`).waitFor();
    const before = await entries(I.page);
    assert.ok(before.includes(general) && before.includes(dm), `sidebar: ${before}`);

    // A reload with the server's answers held: the stored sidebar is there, unread counts and all.
    const hold = await holdListCalls(I.page);
    await I.page.reload();
    await I.page.locator(`.sidebar [data-conv="${dm}"]`).waitFor();
    assert.deepEqual((await entries(I.page)).sort(), before.slice().sort());
    assert.ok(hold.count() >= 2, `the list calls were held: ${hold.count()}`);

    // Meanwhile a channel was made on another device: the server's answer brings it.
    const other = await I.context.newPage();
    run.watch.attach(other, 'ida-2');
    await other.goto('/');
    const random = await createChannel(other, 'random');
    await other.close();
    await hold.release();
    await I.page.locator(`.sidebar [data-conv="${random}"]`).waitFor();

    // Logout forgets the stored sidebar.
    const userId = await myId(I.page);
    assert.notEqual(await I.page.evaluate((id) => localStorage.getItem(`imd.list.${id}`), userId), null);
    await logout(I.page);
    assert.equal(await I.page.evaluate((id) => localStorage.getItem(`imd.list.${id}`), userId), null);
    run.noConsoleErrors();
  });
});
