// End-to-end scenarios of the web client against the real imd, in headless Chromium.
// Run with scripts/e2e.sh (builds web/dist first), or: node --test tests/e2e/

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  Scenarios,
  badge,
  bodies,
  createChannel,
  createSpace,
  joinChannel,
  inlineForm,
  inviteLink,
  joinSpace,
  login,
  logout,
  newIdentity,
  newTab,
  openConv,
  PHONE,
  register,
  send,
  settledBodies,
  seqs,
  shot,
  sleep,
  startDm,
  waitForMessage,
  waitOnline,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;

// A short heartbeat proves the client pings (the server drops a silent connection after two
// beats); a short access-token lifetime makes the tabs refresh (and rotate) their tokens.
const SERVER_ARGS = ['--ws-heartbeat-s', '2', '--auth-access-ttl-s', '40'];

/** Strictly increasing and dense from the first shown seq: ordered, nothing doubled or lost. */
function assertDense(list, what) {
  for (let i = 1; i < list.length; i++) {
    assert.equal(list[i], list[i - 1] + 1, `${what}: seq ${list[i]} after ${list[i - 1]}`);
  }
}

describe('imd web client', () => {
  const run = new Scenarios({ extraArgs: SERVER_ARGS, name: 'imd-e2e', defaultTimeoutMs: 15_000 });
  const { watch } = run;
  let server;
  const device = (who, options, setup) => run.device(who, options, setup);
  const everyPageOnline = (timeout) => run.everyPageOnline(timeout);
  const noConsoleErrors = () => run.noConsoleErrors();

  before(async () => {
    await run.start();
    server = run.server;
  });
  after(() => run.stop());

  test('a) two users chat 1:1 and in a channel, live', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'a';
    const alice = newIdentity('alice');
    const bob = newIdentity('bob');
    const A = await device('alice');
    await register(A.page, alice);
    const B = await device('bob');
    await register(B.page, bob);

    const spaceId = await createSpace(A.page, 'Team A');
    const general = await createChannel(A.page, 'general');
    assert.match(general, /^channel:\d+$/);
    await joinSpace(B.page, spaceId);
    await joinChannel(B.page, 'general');

    await send(A.page, 'hello from alice in general');
    await waitForMessage(B.page, 'hello from alice in general');
    await send(B.page, 'hi alice, bob here');
    await waitForMessage(A.page, 'hi alice, bob here');
    const lastA = A.page.locator('.msg-list li.msg').last();
    await lastA.locator('.author', { hasText: bob.name }).waitFor(); // resolved from the id
    assert.match(await lastA.locator('time').textContent(), /\d/);
    const inGeneral = ['hello from alice in general', 'hi alice, bob here'];
    assert.deepEqual(await settledBodies(B.page, inGeneral), inGeneral);

    // 1:1: Alice finds Bob by name; Bob, busy in #general, gets a red dot on the new DM.
    const dmOfBob = await startDm(A.page, bob.name);
    assert.match(dmOfBob, /^dm:\d+$/);
    await send(A.page, 'a private hello');
    await waitForMessage(A.page, 'a private hello');
    const dmItem = B.page.locator('[data-conv^="dm:"]');
    await badge(B.page, '[data-conv^="dm:"]').filter({ hasText: '1' }).waitFor();
    await dmItem.locator('.item-name', { hasText: alice.name }).waitFor();
    await dmItem.click();
    await waitForMessage(B.page, 'a private hello');
    await badge(B.page, '[data-conv^="dm:"]').waitFor({ state: 'detached' });

    // Shift+Enter makes a new line, Enter sends.
    const box = B.page.locator('#composer-input');
    await box.click();
    await box.pressSequentially('line one');
    await box.press('Shift+Enter');
    await box.pressSequentially('line two');
    await box.press('Enter');
    await waitForMessage(A.page, 'line two');
    const inDm = ['a private hello', 'line one\nline two'];
    assert.deepEqual(await settledBodies(A.page, inDm), inDm);
    assert.equal(await box.inputValue(), '');

    await shot(A.page, 'a-alice-dm');
    await shot(B.page, 'a-bob-dm');
    noConsoleErrors();
  });

  test('b) unread counts after being away; reading clears the dot in the other tab', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'b';
    const dave = newIdentity('dave');
    const carol = newIdentity('carol');
    const D = await device('dave');
    await register(D.page, dave);
    const spaceId = await createSpace(D.page, 'Space B');
    const news = await createChannel(D.page, 'news');
    const random = await createChannel(D.page, 'random');

    const C = await device('carol');
    await register(C.page, carol);
    await joinSpace(C.page, spaceId);
    await joinChannel(C.page, 'news');
    await joinChannel(C.page, 'random');
    // Dave was last in a quiet channel: logging in again brings him back there.
    await createChannel(D.page, 'quiet');

    await logout(D.page);

    await openConv(C.page, news);
    for (const t of ['news 1', 'news 2', 'news 3']) {
      await send(C.page, t);
      await waitForMessage(C.page, t);
    }
    await openConv(C.page, random);
    for (const t of ['random 1', 'random 2']) {
      await send(C.page, t);
      await waitForMessage(C.page, t);
    }
    await startDm(C.page, dave.name);
    await send(C.page, 'are you there, dave?');
    await waitForMessage(C.page, 'are you there, dave?');

    await login(D.page, dave);
    await D.page.locator('#conv-title', { hasText: '# quiet' }).waitFor();
    const tab2 = await newTab(D.context, watch, 'dave tab 2');
    await waitOnline(tab2);
    for (const page of [D.page, tab2]) {
      await badge(page, `[data-conv="${news}"]`).filter({ hasText: /^3$/ }).waitFor();
      await badge(page, `[data-conv="${random}"]`).filter({ hasText: /^2$/ }).waitFor();
      await badge(page, `[data-space="${spaceId}"]`).filter({ hasText: /^5$/ }).waitFor();
      await badge(page, '[data-conv^="dm:"]').filter({ hasText: /^1$/ }).waitFor();
    }
    await shot(tab2, 'b-tab2-unread');

    await openConv(D.page, news);
    await waitForMessage(D.page, 'news 3');
    const inNews = ['news 1', 'news 2', 'news 3'];
    assert.deepEqual(await settledBodies(D.page, inNews), inNews);
    await badge(D.page, `[data-conv="${news}"]`).waitFor({ state: 'detached' });
    // The read marker reaches the other tab: its dot clears and the space's count drops.
    await badge(tab2, `[data-conv="${news}"]`).waitFor({ state: 'detached' });
    await badge(tab2, `[data-space="${spaceId}"]`).filter({ hasText: /^2$/ }).waitFor();
    await badge(tab2, `[data-conv="${random}"]`).filter({ hasText: /^2$/ }).waitFor();
    await shot(D.page, 'b-tab1-read');
    await shot(tab2, 'b-tab2-cleared');

    // And the server agrees: a fresh load shows the same counts.
    await tab2.reload();
    await waitOnline(tab2);
    await badge(tab2, `[data-space="${spaceId}"]`).filter({ hasText: /^2$/ }).waitFor();
    assert.equal(await badge(tab2, `[data-conv="${news}"]`).count(), 0);
    noConsoleErrors();
  });

  test('c) a reload keeps the session and the history; scrolling back pages it in', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'c';
    const eve = newIdentity('eve');
    const E = await device('eve');
    await register(E.page, eve);
    await createSpace(E.page, 'Space C');
    const key = await createChannel(E.page, 'history');

    // 120 messages from a second connection of the same user (a script, not the UI).
    const total = 120;
    await E.page.evaluate(async (n) => {
      const s = JSON.parse(localStorage.getItem('imd.session'));
      const ws = new WebSocket(`ws://${location.host}/ws?token=${encodeURIComponent(s.access)}`);
      await new Promise((r) => (ws.onopen = r));
      const channel = location.pathname.split(':')[1];
      let acked = 0;
      const done = new Promise((r) => {
        ws.onmessage = (e) => {
          if (JSON.parse(e.data).op === 'sent' && ++acked === n) r();
        };
      });
      for (let i = 1; i <= n; i++) {
        ws.send(JSON.stringify({ op: 'send', cid: `bulk-${i}`, channel, body: `bulk ${i}` }));
      }
      await done;
      ws.close();
    }, total);
    await waitForMessage(E.page, `bulk ${total}`); // pushed live to the app's own connection

    let sockets = 0;
    E.page.on('websocket', () => sockets++);
    await E.page.reload();
    await waitOnline(E.page);
    assert.equal(new URL(E.page.url()).pathname, `/c/${key}`);
    await waitForMessage(E.page, `bulk ${total}`);
    const firstPage = await bodies(E.page);
    assert.ok(firstPage.length >= 50 && firstPage.length < total, `first page: ${firstPage.length}`);

    // Scrolled up: a jump-to-latest button; at the top, older pages load.
    const list = E.page.locator('.messages');
    for (let i = 0; i < 10 && (await bodies(E.page)).length < total; i++) {
      await list.evaluate((el) => (el.scrollTop = 0));
      await sleep(300);
    }
    await waitForMessage(E.page, 'bulk 1');
    const all = await bodies(E.page);
    assert.deepEqual(all, Array.from({ length: total }, (_, i) => `bulk ${i + 1}`));
    const shown = await seqs(E.page);
    assert.equal(shown[0], 1);
    assertDense(shown, 'history');
    await E.page.getByText('This is the start of the conversation.').waitFor();
    const jump = E.page.getByRole('button', { name: /Jump to latest/ });
    await jump.waitFor();
    await shot(E.page, 'c-scrolled-up');
    await jump.click();
    await jump.waitFor({ state: 'detached' });
    assert.ok(await E.page.locator('.msg-list li.msg').last().isVisible());

    // The heartbeat keeps the one connection alive across several 2 s beats.
    await sleep(6000);
    assert.equal(sockets, 1, 'the WebSocket was replaced: heartbeat missed?');
    assert.equal(await E.page.getByTestId('conn').textContent(), 'Online');
    noConsoleErrors();
  });

  test('d) the server is killed and restarted mid-conversation: the client recovers', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'd';
    const frank = newIdentity('frank');
    const gina = newIdentity('gina');
    const F = await device('frank');
    await register(F.page, frank);
    const G = await device('gina');
    await register(G.page, gina);
    await startDm(F.page, gina.name);
    await send(F.page, 'before the crash');
    await G.page.locator('[data-conv^="dm:"]').click();
    await waitForMessage(G.page, 'before the crash');

    watch.allowNetworkErrors = true;
    await server.kill();
    await F.page.getByTestId('conn').filter({ hasText: 'Reconnecting' }).waitFor();
    // The pill does not wrap the sidebar header: one line, as high as when online.
    const header = await F.page.locator('.sidebar .me').boundingBox();
    const brand = await F.page.locator('.sidebar .me .brand').boundingBox();
    assert.ok(header.height <= brand.height + 16, `header ${header.height}px high while reconnecting`);
    await send(F.page, 'while down 1');
    await send(F.page, 'while down 2');
    const pending = F.page.locator('.msg-list li.pending');
    await pending.filter({ hasText: 'Waiting for connection' }).nth(1).waitFor();
    await shot(F.page, 'd-offline-pending');
    await sleep(1000);
    await server.start(); // same port, same data directory

    await waitOnline(F.page, 30_000);
    await waitOnline(G.page, 30_000);
    await waitForMessage(G.page, 'while down 2', 30_000);
    await pending.first().waitFor({ state: 'detached' });

    // Killed right after a send: the ACK may be lost, the resend (same cid) must not double.
    await send(F.page, 'sent as it died');
    await server.kill();
    await server.start();
    await waitOnline(F.page, 30_000);
    await waitForMessage(G.page, 'sent as it died', 30_000);
    await pending.first().waitFor({ state: 'detached' });

    await send(G.page, 'gina is back');
    await waitForMessage(F.page, 'gina is back', 30_000);
    await everyPageOnline();
    watch.allowNetworkErrors = false;

    const expected = ['before the crash', 'while down 1', 'while down 2', 'sent as it died', 'gina is back'];
    assert.deepEqual(await settledBodies(F.page, expected), expected);
    assert.deepEqual(await settledBodies(G.page, expected), expected);
    assert.deepEqual(await seqs(G.page), [1, 2, 3, 4, 5]);
    assert.deepEqual(await seqs(F.page), [1, 2, 3, 4, 5]);

    // A reload shows the same history from the store.
    await G.page.reload();
    await waitOnline(G.page);
    await waitForMessage(G.page, 'gina is back');
    assert.deepEqual(await settledBodies(G.page, expected), expected);
    await shot(G.page, 'd-after-restart');
    noConsoleErrors();
  });

  test('e) at 360 px wide the app is usable', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'e';
    const ida = newIdentity('ida');
    const hank = newIdentity('hank');
    const I = await device('ida');
    await register(I.page, ida);
    const H = await device('hank (phone)', PHONE);
    await register(H.page, hank);

    const sidebar = H.page.locator('.sidebar');
    const pane = H.page.locator('.pane');
    assert.ok(await sidebar.isVisible());
    assert.ok(!(await pane.isVisible()), 'the pane hides behind the conversation list');
    await shot(H.page, 'e-phone-list');

    await startDm(H.page, ida.name);
    assert.ok(await pane.isVisible());
    assert.ok(!(await sidebar.isVisible()), 'the sidebar collapses while a conversation is open');
    await send(H.page, 'hello from a phone');
    await waitForMessage(H.page, 'hello from a phone');
    await I.page.locator('[data-conv^="dm:"]').click();
    await waitForMessage(I.page, 'hello from a phone');
    await send(I.page, 'hello, phone');
    await waitForMessage(H.page, 'hello, phone');
    const overflow = await H.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `horizontal overflow of ${overflow}px`);
    const composer = await H.page.locator('.composer').boundingBox();
    assert.ok(composer && composer.x >= 0 && composer.x + composer.width <= 360 + 1);
    await shot(H.page, 'e-phone-conversation');

    await H.page.getByRole('button', { name: 'Conversations' }).click();
    assert.ok(await sidebar.isVisible());
    await H.page.locator('[data-conv^="dm:"]').waitFor();
    noConsoleErrors();
  });

  test('g) two tabs renew the one-time refresh token together and stay logged in', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'g';
    const jo = newIdentity('jo');
    const J = await device('jo');
    await register(J.page, jo);
    const tab2 = await newTab(J.context, watch, 'jo tab 2');
    await waitOnline(tab2);
    const refreshTokenNow = () => J.page.evaluate(() => JSON.parse(localStorage.getItem('imd.session')).refresh);
    const first = await refreshTokenNow();

    // The access token lives 40 s and is renewed 30 s before it expires: wait into that window,
    // then make both tabs call the API at once. A refresh token used twice would be refused
    // (HTTP 401, a console error) and log the loser out.
    // A slow refresh makes the two attempts overlap for sure.
    await sleep(11_000);
    let refreshes = 0;
    await J.context.route('**/api/v1/auth/refresh', async (route) => {
      refreshes++;
      await sleep(700);
      await route.continue();
    });
    await Promise.all([createSpace(J.page, 'Space G1'), createSpace(tab2, 'Space G2')]);
    await J.context.unroute('**/api/v1/auth/refresh');
    assert.equal(refreshes, 1, 'one tab refreshed, the other adopted its tokens');
    assert.notEqual(await refreshTokenNow(), first, 'the refresh token was rotated');
    for (const page of [J.page, tab2]) {
      await page.reload();
      await waitOnline(page);
      await page.locator('.sidebar .item-name', { hasText: 'Space G2' }).waitFor();
    }

    // Logging out in one tab logs out the other. The logout ends the session on the server, so
    // what the other tab asks before it sees the stored session gone is refused (401).
    watch.allowStatuses = [401];
    await logout(J.page);
    await tab2.getByRole('button', { name: 'Create account' }).or(tab2.getByLabel('Phone')).first().waitFor();
    assert.equal(await tab2.evaluate(() => localStorage.getItem('imd.session')), null);
    watch.allowStatuses = [];
    noConsoleErrors();
  });

  test('h) a refused or unanswered send fails visibly and Retry resends it with the same cid', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'h';
    const kim = newIdentity('kim');
    const lee = newIdentity('lee');
    const L = await device('lee');
    await register(L.page, lee);

    // Kim's WebSocket goes through a proxy that can refuse or swallow her sends.
    let mode = 'pass'; // 'refuse': answer with an `error` frame; 'drop': never answer
    const sends = [];
    const K = await device('kim', {}, (context) => context.routeWebSocket(/\/ws/, (ws) => {
      const server = ws.connectToServer();
      ws.onMessage((m) => {
        const f = JSON.parse(m);
        if (f.op === 'send') {
          sends.push({ cid: f.cid, body: f.body, mode });
          if (mode === 'refuse') {
            ws.send(JSON.stringify({ op: 'error', code: 'unavailable', message: 'storing failed', ref: 'send', cid: f.cid }));
            return;
          }
          if (mode === 'drop') return;
        }
        server.send(m);
      });
    }));
    await register(K.page, kim);
    await startDm(K.page, lee.name);
    const failed = K.page.locator('.msg-list li.pending.failed');

    mode = 'refuse';
    await send(K.page, 'refused once');
    await failed.filter({ hasText: 'storing failed' }).waitFor();
    mode = 'pass';
    await failed.getByRole('button', { name: 'Retry' }).click();
    await waitForMessage(K.page, 'refused once');

    mode = 'drop';
    await send(K.page, 'unanswered once');
    await failed.filter({ hasText: 'No answer from the server' }).waitFor({ timeout: 20_000 });
    await shot(K.page, 'h-failed-send');
    mode = 'pass';
    await failed.getByRole('button', { name: 'Retry' }).click();
    await waitForMessage(K.page, 'unanswered once');
    await failed.waitFor({ state: 'detached' });

    for (const body of ['refused once', 'unanswered once']) {
      const tries = sends.filter((x) => x.body === body);
      assert.equal(tries.length, 2, `${body}: two attempts`);
      assert.equal(tries[0].cid, tries[1].cid, `${body}: the retry reuses the cid`);
    }
    await L.page.locator('[data-conv^="dm:"]').click();
    const expected = ['refused once', 'unanswered once'];
    assert.deepEqual(await settledBodies(L.page, expected), expected);
    assert.deepEqual(await settledBodies(K.page, expected), expected);
    noConsoleErrors();
  });

  test('r) an invite link opened before logging in joins the private space; a private channel by adding; a removal shows at once; a listed space is joined from Discover', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'r';
    const olga = newIdentity('olga');
    const pete = newIdentity('pete');
    const O = await device('olga');
    await register(O.page, olga);
    const spaceId = await createSpace(O.page, 'Private Crew');
    await createChannel(O.page, 'crew');
    const link = await inviteLink(O.page);
    assert.match(link, /\/invite\/[A-Za-z0-9_-]{22}$/);

    // Pete opens the link as a stranger: he registers, and lands in the space.
    const P = await device('pete');
    await P.page.goto(link);
    await register(P.page, pete);
    await P.page.locator(`[data-space="${spaceId}"][aria-pressed="true"]`).waitFor();
    assert.equal(await P.page.evaluate(() => location.pathname), '/');
    await joinChannel(P.page, 'crew');
    await send(P.page, 'pete joined by link');
    await waitForMessage(O.page, 'pete joined by link');

    // A private channel (the checkbox): its member adds Pete by name; he sees it with its lock.
    const form = O.page.locator('details.inline-form', { has: O.page.locator('summary', { hasText: 'New channel' }) });
    await form.locator('summary').click();
    await form.getByTestId('channel-private').check();
    await inlineForm(O.page, 'New channel', 'inner');
    await O.page.locator('#conv-title', { hasText: 'inner' }).waitFor();
    const inner = await O.page.evaluate(() => decodeURIComponent(location.pathname.replace(/^\/c\//, '')));
    assert.match(inner, /^channel:\d+$/);
    await O.page.locator(`[data-conv="${inner}"][data-private="true"]`).waitFor();
    await inlineForm(O.page, 'Add to 🔒 inner', pete.name);
    await send(O.page, 'welcome to the inner circle');
    await P.page.reload();
    await waitOnline(P.page);
    await P.page.locator(`[data-conv="${inner}"][data-private="true"]`).click();
    await waitForMessage(P.page, 'welcome to the inner circle');

    // The owner sees the roles and removes him: his client drops the space at once.
    const members = O.page.locator('details.members');
    await members.locator('summary').click();
    await members.locator(`[data-member] .role-owner`).waitFor();
    await members.getByRole('button', { name: `Remove ${pete.name}` }).click();
    await P.page.getByRole('alert').filter({ hasText: 'You were removed from Private Crew' }).waitFor();
    await P.page.locator(`[data-space="${spaceId}"]`).waitFor({ state: 'detached' });
    await shot(P.page, 'r-removed');

    // Removed is not banned: once the owner lists the space (in its settings), he finds it and
    // joins again.
    await O.page.getByTestId('space-settings').locator('summary').click();
    await Promise.all([
      O.page.waitForResponse((r) => r.request().method() === 'PATCH' && r.url().includes(`/spaces/${spaceId}`) && r.ok()),
      O.page.getByTestId('discoverable').click(),
    ]);
    const discover = P.page.locator('details.discover');
    await discover.locator('summary').click();
    await discover.getByRole('button', { name: 'Join space Private Crew' }).click();
    await P.page.locator(`[data-space="${spaceId}"][aria-pressed="true"]`).waitFor();
    noConsoleErrors();
  });

  test('s) a password change ends the other devices\' sessions; "Log out everywhere" ends them all', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 's';
    // A wrong current password (403), then the ended sessions' requests (401) are the point.
    watch.allowStatuses = [401, 403];
    const max = newIdentity('max');
    const laptop = await device('max laptop');
    await register(laptop.page, max);
    const phone = await device('max phone');
    await login(phone.page, max);

    const account = laptop.page.getByTestId('account');
    await account.locator('summary').click();
    const form = account.getByRole('form', { name: 'Change password' });
    await form.getByLabel('Current password').fill('not-the-password');
    await form.getByLabel('New password').fill('a-brand-new-secret');
    await form.getByRole('button', { name: 'Change password' }).click();
    await account.getByRole('alert').filter({ hasText: 'old_password is wrong' }).waitFor();

    await form.getByLabel('Current password').fill(max.password);
    await form.getByRole('button', { name: 'Change password' }).click();
    await account.getByRole('status').filter({ hasText: 'Password changed' }).waitFor();
    // This device goes on (with the new session); the phone is signed out.
    await waitOnline(laptop.page);
    await phone.page.getByRole('button', { name: 'Create account' }).or(phone.page.getByLabel('Phone')).first().waitFor();
    await createSpace(laptop.page, 'After the change');  // REST with the new session
    await waitOnline(laptop.page);
    max.password = 'a-brand-new-secret';
    await login(phone.page, max);

    await account.getByRole('button', { name: 'Log out everywhere' }).click();
    for (const page of [laptop.page, phone.page]) {
      await page.getByRole('button', { name: 'Create account' }).or(page.getByLabel('Phone')).first().waitFor();
    }
    await login(laptop.page, max);
    watch.allowStatuses = [];
    noConsoleErrors();
  });

  test('u) the Account panel lists the sessions, this device marked; signing out the other one ends it there at once', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'u';
    // The ended session's requests (401) are the point.
    watch.allowStatuses = [401];
    const ada = newIdentity('ada');
    const laptop = await device('ada laptop');
    await register(laptop.page, ada);
    const phone = await device('ada phone');
    await login(phone.page, ada);
    await waitOnline(phone.page);

    const account = laptop.page.getByTestId('account');
    await account.locator('summary').click();
    const sessions = account.getByTestId('sessions');
    await sessions.locator('li.session').nth(1).waitFor();
    assert.equal(await sessions.locator('li.session').count(), 2);
    const mine = sessions.locator('li[data-current="true"]');
    assert.equal(await mine.count(), 1);
    await mine.getByText('this device').waitFor();
    assert.equal(await mine.getByRole('button', { name: /^Sign out/ }).count(), 0);
    const other = sessions.locator('li[data-current="false"]');
    await other.getByText('127.0.0.1').waitFor();

    await other.getByRole('button', { name: /^Sign out/ }).click();
    await account.getByRole('status').filter({ hasText: 'Signed out' }).waitFor();
    // The phone is signed out (its WebSocket closed with 4003, its tokens refused) ...
    await phone.page.getByRole('button', { name: 'Create account' }).or(phone.page.getByLabel('Phone')).first().waitFor();
    // ... and the laptop goes on, its list down to itself.
    await sessions.locator('li[data-current="false"]').waitFor({ state: 'detached' });
    assert.equal(await sessions.locator('li.session').count(), 1);
    await createSpace(laptop.page, 'Still here');
    await waitOnline(laptop.page);
    watch.allowStatuses = [];
    noConsoleErrors();
  });

  test('t) channel settings: archived is read-only with its history, a member is removed from the channel at once, a delete needs a confirmation and reaches every member', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 't';
    const quinn = newIdentity('quinn');
    const rosa = newIdentity('rosa');
    const Q = await device('quinn');
    await register(Q.page, quinn);
    const spaceId = await createSpace(Q.page, 'Lifecycle');
    const key = await createChannel(Q.page, 'old-news');
    const link = await inviteLink(Q.page);
    const R = await device('rosa');
    await R.page.goto(link);
    await register(R.page, rosa);
    await R.page.locator(`[data-space="${spaceId}"][aria-pressed="true"]`).waitFor();
    await joinChannel(R.page, 'old-news');
    await send(R.page, 'rosa was here');
    await waitForMessage(Q.page, 'rosa was here');

    // Archived: the composer gives way to a note, the list says so; the history stays.
    const settings = Q.page.getByTestId('channel-settings');
    await settings.locator('summary').click();
    await settings.getByTestId('archive').click();
    await Q.page.getByTestId('archived').waitFor();
    await Q.page.locator(`[data-conv="${key}"]`, { hasText: 'old-news (archived)' }).waitFor();
    await R.page.reload();
    await waitOnline(R.page);
    await openConv(R.page, key);
    await R.page.getByTestId('archived').waitFor();
    await waitForMessage(R.page, 'rosa was here');
    await shot(R.page, 't-archived');
    await settings.getByTestId('archive').click();  // Unarchive
    await Q.page.locator('#composer-input').waitFor();

    // Removed from the channel: her client drops it at once and offers to join again.
    await settings.getByRole('button', { name: `Remove ${rosa.name} from the channel` }).click();
    await R.page.getByRole('alert').filter({ hasText: 'You were removed from the channel old-news' }).waitFor();
    await R.page.getByRole('button', { name: 'Join channel old-news' }).waitFor();
    await joinChannel(R.page, 'old-news');

    // Deleted, after a confirmation: gone from both lists, and Rosa is told.
    await settings.getByRole('button', { name: 'Delete channel' }).click();
    await settings.getByRole('button', { name: 'Cancel' }).click();
    await settings.getByRole('button', { name: 'Delete channel' }).click();
    await settings.getByTestId('confirm-delete').click();
    await R.page.getByRole('alert').filter({ hasText: 'The channel old-news was deleted' }).waitFor();
    for (const page of [Q.page, R.page]) {
      await page.locator(`[data-conv="${key}"]`).waitFor({ state: 'detached' });
      await page.getByRole('button', { name: 'Join channel old-news' }).waitFor({ state: 'detached' });
    }
    noConsoleErrors();
  });

  test('f) no console errors in any scenario', () => {
    watch.scenario = 'f';
    run.noErrorsAnywhere();
  });
});
