// End-to-end scenarios of the web client's everyday behaviour (issue 18): offline noticed at
// once, read markers coalesced and only while the user looks, the unread part of a long
// conversation, DMs by recency, drafts, the name-part DM finder, rich text kept inert, the
// title/favicon count and notifications, keyboard, and an accessibility pass (axe-core) with
// contrast and touch-target checks. Screenshots at desktop and 360 px go to screenshots/.
// Run with scripts/e2e.sh (with chat.test.mjs), or: node --test tests/e2e/client.test.mjs

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  axeViolations,
  badge,
  bodies,
  contrastRatio,
  createChannel,
  createSpace,
  inlineForm,
  joinChannel,
  joinSpace,
  myId,
  newIdentity,
  openConv,
  PHONE,
  recordNotifications,
  recordSent,
  register,
  Scenarios,
  scriptSend,
  send,
  shot,
  sleep,
  startDm,
  waitForMessage,
  waitOnline,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 150_000;
const SERVER_ARGS = ['--ws-heartbeat-s', '2'];

/** The `read` frames a page puts on its WebSockets, as they are sent. */
function recordReads(page) {
  return recordSent(page, 'read');
}

/** The window loses the focus (headless Chromium keeps every page focused: only a stand-in can). */
function unfocus(page) {
  return page.evaluate(() => {
    document.hasFocus = () => false;
    window.dispatchEvent(new Event('blur'));
  });
}

function refocus(page) {
  return page.evaluate(() => {
    delete document.hasFocus;
    window.dispatchEvent(new Event('focus'));
  });
}

async function waitUntil(what, fn, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('imd web client: everyday behaviour', () => {
  const run = new Scenarios({ extraArgs: SERVER_ARGS, name: 'imd-e2e-client', defaultTimeoutMs: 20_000 });
  const { watch } = run;
  const device = (who, options, setup) => run.device(who, options, setup);
  const noConsoleErrors = () => run.noConsoleErrors();
  before(() => run.start());
  after(() => run.stop());

  test('i) offline (and a silent link) is noticed within seconds; errors under forms clear with their cause', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'i';
    const olga = newIdentity('olga');
    const paul = newIdentity('paul');
    const P = await device('paul');
    await register(P.page, paul);
    const O = await device('olga');
    await register(O.page, olga);
    await startDm(O.page, paul.name);
    await send(O.page, 'before going offline');
    await waitForMessage(O.page, 'before going offline');

    watch.allowNetworkErrors = true;
    const t0 = Date.now();
    await O.context.setOffline(true);
    await O.page.getByTestId('conn').filter({ hasText: 'Offline' }).waitFor({ timeout: 5_000 });
    const noticedMs = Date.now() - t0;
    assert.ok(noticedMs < 5_000, `offline noticed after ${noticedMs} ms`);
    const header = await O.page.locator('.sidebar .me').boundingBox();
    const brand = await O.page.locator('.sidebar .me .brand').boundingBox();
    assert.ok(header.height <= brand.height + 16, `header ${header.height}px high while offline`);

    // A send waits; a form says the server cannot be reached.
    await send(O.page, 'written offline');
    await O.page.locator('.msg-list li.pending', { hasText: 'Waiting for connection' }).waitFor();
    await inlineForm(O.page, 'New space', 'Offline space');
    const formError = O.page.locator('details.inline-form .error', { hasText: 'The server cannot be reached.' });
    await formError.waitFor();
    await shot(O.page, 'i-offline');

    await O.context.setOffline(false);
    await waitOnline(O.page, 10_000);
    await formError.waitFor({ state: 'detached' }); // the cause is gone
    await P.page.locator('[data-conv^="dm:"]').click();
    await waitForMessage(P.page, 'written offline');
    await O.page.locator('.msg-list li.pending').waitFor({ state: 'detached' });
    watch.allowNetworkErrors = false;

    // Too long for a message: the error goes as soon as the text fits again.
    const box = O.page.locator('#composer-input');
    await box.fill('x'.repeat(17 * 1024));
    await box.press('Enter');
    const tooLong = O.page.locator('.composer .error', { hasText: 'at most 16 KiB' });
    await tooLong.waitFor();
    await box.fill('short again');
    await tooLong.waitFor({ state: 'detached' });
    await box.fill('');

    // A link that dies without a word (no offline event, no close): the unanswered ping tells.
    let silent = false;
    const Z = await device('zed', {}, (context) => context.routeWebSocket(/\/ws/, (ws) => {
      const upstream = ws.connectToServer();
      upstream.onMessage((m) => {
        if (!silent) ws.send(m);
      });
    }));
    await register(Z.page, newIdentity('zed'));
    silent = true;
    const t1 = Date.now();
    await Z.page.getByTestId('conn').filter({ hasText: /Reconnecting|Connecting/ }).waitFor({ timeout: 15_000 });
    const silentMs = Date.now() - t1;
    assert.ok(silentMs < 12_000, `a silent link noticed after ${silentMs} ms`);
    silent = false;
    await waitOnline(Z.page, 20_000);
    noConsoleErrors();
  });

  test('j) read frames: at most one per second in a busy channel, none while the window is unfocused', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'j';
    const quinn = newIdentity('quinn');
    const rita = newIdentity('rita');
    const Q = await device('quinn');
    const reads = recordReads(Q.page);
    await register(Q.page, quinn);
    const R = await device('rita');
    await register(R.page, rita);
    const spaceId = await createSpace(R.page, 'Space J');
    const key = await createChannel(R.page, 'busy');
    await joinSpace(Q.page, spaceId);
    await joinChannel(Q.page, 'busy');

    // 60 messages at 20/s while Quinn watches the channel.
    const t0 = Date.now();
    await scriptSend(R.page, key, { count: 60, rate: 20, prefix: 'busy' });
    await waitForMessage(Q.page, 'busy 60');
    await waitUntil('the last read frame', () => reads.some((r) => r.conversation === key && r.seq === 60));
    const seconds = (Date.now() - t0) / 1000;
    const inChannel = reads.filter((r) => r.conversation === key);
    assert.ok(inChannel.length <= Math.ceil(seconds) + 1, `${inChannel.length} read frames in ${seconds.toFixed(1)} s`);
    for (let i = 1; i < inChannel.length; i++) {
      assert.ok(inChannel[i].at - inChannel[i - 1].at >= 900, `read frames ${inChannel[i].at - inChannel[i - 1].at} ms apart`);
    }

    // The window loses the focus: messages show but are not marked read.
    await unfocus(Q.page);
    const before = reads.length;
    await scriptSend(R.page, key, { count: 5, prefix: 'unseen' });
    await waitForMessage(Q.page, 'unseen 5');
    await badge(Q.page, `[data-conv="${key}"]`).filter({ hasText: /^5$/ }).waitFor();
    assert.equal(reads.length, before, 'no read frame while unfocused');
    await refocus(Q.page);
    await badge(Q.page, `[data-conv="${key}"]`).waitFor({ state: 'detached' });
    await waitUntil('the read frame after focus', () => reads.some((r) => r.conversation === key && r.seq === 65));
    noConsoleErrors();
  });

  test('k) 200 unread: a new-messages line, read only as far as seen; DMs by recency; drafts; "Ali" finds Alice; the view stays put as pages and messages come', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'k';
    const sam = newIdentity('sam');
    const alice = newIdentity('Alicewonder');
    const S = await device('sam');
    await register(S.page, sam);
    const A = await device('alice');
    const reads = recordReads(A.page);
    await register(A.page, alice);
    const spaceId = await createSpace(S.page, 'Space K');
    const lobby = await createChannel(S.page, 'lobby');
    const updates = await createChannel(S.page, 'updates');
    await joinSpace(A.page, spaceId);
    await joinChannel(A.page, 'updates');
    await joinChannel(A.page, 'lobby');

    // A part of the name finds her (the server directory's prefix search).
    const partial = alice.name.slice(0, 7).toLowerCase(); // "alicewo"
    const dmOfAlice = await startDm(S.page, partial);
    assert.equal(await S.page.locator('#conv-title').textContent(), alice.name);
    await send(S.page, 'hello alice');
    await waitForMessage(S.page, 'hello alice');

    // 200 messages arrive while Alice is in #lobby.
    await scriptSend(S.page, updates, { count: 200, prefix: 'upd' });
    await badge(A.page, `[data-conv="${updates}"]`).filter({ hasText: '99+' }).waitFor();
    await openConv(A.page, updates);
    const line = A.page.locator('.unread-sep');
    await line.waitFor();
    assert.ok(await line.isVisible(), 'the new-messages line is in view');
    const first = A.page.locator('.msg-list li.msg', { has: A.page.locator('.unread-sep') });
    assert.equal((await first.locator('.body').textContent()).trim(), 'upd 1');
    // Only what is on screen is read: most of the 200 stay unread.
    await A.page.getByRole('button', { name: /new messages ↓/ }).waitFor();
    const firstRead = await waitUntil('a read frame', () => reads.find((r) => r.conversation === updates));
    assert.ok(firstRead.seq >= 1 && firstRead.seq < 100, `read up to ${firstRead.seq} on opening`);
    await badge(A.page, `[data-conv="${updates}"]`).filter({ hasText: '99+' }).waitFor();
    await shot(A.page, 'k-unread-line');
    await A.page.getByRole('button', { name: /new messages ↓/ }).click();
    await waitForMessage(A.page, 'upd 200');
    await badge(A.page, `[data-conv="${updates}"]`).waitFor({ state: 'detached' });

    // DMs by recency: the one written to last is on top.
    const bob = newIdentity('bob');
    const B = await device('bob');
    await register(B.page, bob);
    await joinSpace(B.page, spaceId);
    await startDm(B.page, alice.name);
    await send(B.page, 'bob says hi');
    const dmOfBob = `dm:${await myId(B.page)}`;
    const dmOfSam = `dm:${await myId(S.page)}`;
    const order = () => A.page.locator('[data-conv^="dm:"]').evaluateAll((els) => els.map((e) => e.dataset.conv));
    await waitUntil('bob first', async () => JSON.stringify(await order()) === JSON.stringify([dmOfBob, dmOfSam]));
    await send(S.page, 'sam again');
    await waitUntil('sam first', async () => JSON.stringify(await order()) === JSON.stringify([dmOfSam, dmOfBob]));
    assert.match(dmOfAlice, /^dm:\d+$/);

    // A draft survives a reload.
    await openConv(A.page, lobby);
    await A.page.locator('#composer-input').fill('half a thought');
    await A.page.reload();
    await waitOnline(A.page);
    await A.page.locator('#conv-title', { hasText: '# lobby' }).waitFor();
    assert.equal(await A.page.locator('#composer-input').inputValue(), 'half a thought');

    // Scrolled up: an older page comes in above and the view stays where it was; new messages
    // below do not move it either, a pill counts them.
    await openConv(A.page, updates);
    await waitForMessage(A.page, 'upd 200');
    const list = A.page.locator('.messages');
    const topOf = (seq) => A.page.locator(`.msg-list li[data-seq="${seq}"]`).evaluate((el) => el.getBoundingClientRect().top);
    const oldest = await A.page.locator('.msg-list li[data-seq]').first().getAttribute('data-seq');
    await list.evaluate((el) => (el.scrollTop = 0));
    const before = await topOf(oldest);
    await A.page.locator(`.msg-list li[data-seq="${Number(oldest) - 1}"]`).waitFor();
    assert.ok(Math.abs((await topOf(oldest)) - before) <= 4, `moved from ${before} to ${await topOf(oldest)} by the older page`);
    const anchor = await topOf(oldest);
    await scriptSend(S.page, updates, { count: 3, prefix: 'later' });
    await A.page.getByRole('button', { name: '3 new messages ↓' }).waitFor();
    assert.ok(Math.abs((await topOf(oldest)) - anchor) <= 4, 'new messages below moved the view');
    await A.page.getByRole('button', { name: '3 new messages ↓' }).click();
    await waitForMessage(A.page, 'later 3');
    noConsoleErrors();
  });

  test('l) rich text: markdown as elements, safe links, hostile markup stays text', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'l';
    const tom = newIdentity('tom');
    const uma = newIdentity('uma');
    const T = await device('tom');
    await register(T.page, tom);
    const U = await device('uma');
    await register(U.page, uma);
    await startDm(T.page, uma.name);
    const hostile = [
      '**bold** _italic_ ~~gone~~ `a <b>code</b>` see https://example.com/x?a=1&b=2.',
      '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>',
      '[click](javascript:window.__pwned=3) javascript:window.__pwned=4 <a href="javascript:alert(1)">a</a>',
      '```',
      'const x = "<b>not bold</b>";',
      '```',
      '> quoted',
      '- one',
      '- two',
      'x'.repeat(2000),
    ].join('\n');
    await send(T.page, hostile);
    await U.page.locator('[data-conv^="dm:"]').click();
    const body = U.page.locator('.msg-list li.msg:not(.pending) .body').last();
    await body.locator('strong', { hasText: 'bold' }).waitFor();
    assert.equal(await body.locator('em').textContent(), 'italic');
    assert.equal(await body.locator('s').textContent(), 'gone');
    assert.equal(await body.locator('p code').textContent(), 'a <b>code</b>');
    assert.equal(await body.locator('pre code').textContent(), 'const x = "<b>not bold</b>";');
    assert.equal(await body.locator('blockquote').textContent(), 'quoted');
    assert.equal(await body.locator('ul li').count(), 2);
    const links = await body.locator('a').evaluateAll((els) => els.map((a) => [a.getAttribute('href'), a.target, a.rel]));
    assert.deepEqual(links, [['https://example.com/x?a=1&b=2', '_blank', 'noopener noreferrer']]);
    assert.equal(await body.locator('img, script, b, iframe, [onerror]').count(), 0, 'no element from the text');
    assert.equal(await U.page.evaluate(() => window.__pwned), undefined);
    const overflow = await U.page.locator('.messages').evaluate((el) => el.scrollWidth - el.clientWidth);
    assert.ok(overflow <= 0, `a long word overflows by ${overflow}px`);
    await shot(U.page, 'l-rich-text');
    noConsoleErrors();
  });

  test('m) attention and keyboard: title and favicon count, a DM notification, Ctrl+K, Alt+Up/Down, Alt+Shift+Down, Esc', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'm';
    const vic = newIdentity('vic');
    const wes = newIdentity('wes');
    const V = await device('vic');
    await register(V.page, vic);
    const W = await device('wes', {}, recordNotifications);
    await register(W.page, wes);
    await createSpace(W.page, 'Space M');
    const chan = await createChannel(W.page, 'general');
    const dm = await startDm(W.page, vic.name);
    await waitUntil('the title', async () => (await W.page.title()) === `${vic.name} · imd`);

    // Wes looks elsewhere: a DM counts in the title and favicon, and notifies.
    await unfocus(W.page);
    await startDm(V.page, wes.name);
    await send(V.page, 'ping from vic');
    await waitForMessage(W.page, 'ping from vic');
    await waitUntil('the title count', async () => (await W.page.title()).startsWith('(1) '));
    assert.match(await W.page.locator('link[rel="icon"]').getAttribute('href'), /^data:image\/svg\+xml,/);
    const notes = await waitUntil('a notification', () => W.page.evaluate(() => window.__notes.length && window.__notes));
    assert.deepEqual(notes, [{ title: vic.name, body: 'ping from vic', tag: dm }]);

    // Esc marks the open conversation read, even unfocused.
    await W.page.keyboard.press('Escape');
    await waitUntil('no count', async () => (await W.page.title()) === `${vic.name} · imd`);
    assert.equal(await W.page.locator('link[rel="icon"]').getAttribute('href'), '/favicon.svg');
    await refocus(W.page);

    // Ctrl+K, a part of the name, Enter; Alt+Down to the next conversation in the sidebar.
    await W.page.keyboard.press('Control+k');
    const dialog = W.page.getByRole('dialog', { name: 'Switch conversation' });
    await dialog.waitFor();
    await shot(W.page, 'm-switcher');
    assert.deepEqual(await axeViolations(W.page), [], 'axe: quick switcher');
    await W.page.keyboard.type('gener');
    await W.page.keyboard.press('Enter');
    await dialog.waitFor({ state: 'detached' });
    await W.page.locator(`[data-conv="${chan}"][aria-current="page"]`).waitFor();
    await W.page.keyboard.press('Alt+ArrowDown');
    await W.page.locator(`[data-conv="${dm}"][aria-current="page"]`).waitFor();
    await W.page.keyboard.press('Alt+ArrowUp');
    await W.page.locator(`[data-conv="${chan}"][aria-current="page"]`).waitFor();
    // Alt+Shift+Down: the next conversation with unread messages.
    await send(V.page, 'one more');
    await badge(W.page, `[data-conv="${dm}"]`).filter({ hasText: '1' }).waitFor();
    await W.page.keyboard.press('Alt+Shift+ArrowDown');
    await W.page.locator(`[data-conv="${dm}"][aria-current="page"]`).waitFor();
    await waitForMessage(W.page, 'one more');
    noConsoleErrors();
  });

  test('n) accessibility: axe finds nothing serious (light, dark, phone); AA contrast; 44 px touch targets', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'n';
    const xia = newIdentity('xia');
    const yan = newIdentity('yan');
    const X = await device('xia', { viewport: { width: 1280, height: 800 } });
    assert.deepEqual(await axeViolations(X.page), [], 'axe: login');
    await shot(X.page, 'n-desktop-login');
    await register(X.page, xia);
    const spaceId = await createSpace(X.page, 'Space N');
    const key = await createChannel(X.page, 'design');
    await createChannel(X.page, 'later');
    await openConv(X.page, key);
    await send(X.page, 'Welcome to **design**: see https://example.com');
    await send(X.page, 'a second message in the same group');
    await waitForMessage(X.page, 'a second message');

    const Y = await device('yan (phone)', PHONE);
    assert.deepEqual(await axeViolations(Y.page), [], 'axe: phone login');
    await shot(Y.page, 'n-phone-login');
    await register(Y.page, yan);
    await joinSpace(Y.page, spaceId);
    // One channel left unjoined: its Join button is on screen for the checks below.
    await Y.page.getByRole('button', { name: 'Join channel design' }).waitFor();
    await shot(Y.page, 'n-phone-list');
    assert.deepEqual(await axeViolations(Y.page), [], 'axe: phone list');
    // Every control on the phone is at least 44 x 44 px.
    const small = await Y.page.locator('button, summary, input, textarea, [role="option"]').evaluateAll((els) =>
      els
        .filter((e) => e.offsetParent !== null)
        .map((e) => [e.textContent.trim() || e.getAttribute('aria-label') || e.tagName, e.getBoundingClientRect()])
        .filter(([, r]) => r.width < 44 || r.height < 44)
        .map(([n, r]) => `${n}: ${Math.round(r.width)}x${Math.round(r.height)}`),
    );
    assert.deepEqual(small, [], 'touch targets under 44 px');
    await joinChannel(Y.page, 'design');
    await waitForMessage(Y.page, 'a second message');
    await shot(Y.page, 'n-phone-conversation');
    assert.deepEqual(await axeViolations(Y.page), [], 'axe: phone conversation');

    // Desktop, light: contrast of the sidebar buttons, the pill in each state, the focus ring.
    await X.page.locator('details.inline-form summary', { hasText: 'New channel' }).click();
    await X.page.locator('details.inline-form summary', { hasText: 'Join a space' }).click();
    await X.page.locator('details.inline-form summary', { hasText: 'New message' }).click();
    assert.deepEqual(await axeViolations(X.page), [], 'axe: desktop conversation, forms open');
    await shot(X.page, 'n-desktop-light');
    const pairs = await X.page.evaluate(() => {
      const rgb = (el, p) => getComputedStyle(el)[p];
      const out = [];
      for (const b of document.querySelectorAll('.sidebar .inline-form button[type="submit"], .sidebar .prefs button')) {
        const bg = getComputedStyle(b).backgroundColor;
        out.push([`button ${b.textContent}`, rgb(b, 'color'), bg === 'rgba(0, 0, 0, 0)' ? rgb(document.querySelector('.sidebar'), 'backgroundColor') : bg, 4.5]);
      }
      const header = document.querySelector('.sidebar .me');
      for (const state of ['online', 'connecting', 'reconnecting', 'offline']) {
        const pill = document.createElement('span');
        pill.className = `conn conn-${state}`;
        pill.textContent = state;
        header.append(pill);
        out.push([`pill ${state}`, rgb(pill, 'color'), rgb(pill, 'backgroundColor'), 4.5]);
        pill.remove();
      }
      const badgeEl = document.createElement('span');
      badgeEl.className = 'badge';
      header.append(badgeEl);
      out.push(['badge', rgb(badgeEl, 'color'), rgb(badgeEl, 'backgroundColor'), 4.5]);
      badgeEl.remove();
      const focus = getComputedStyle(document.querySelector('.sidebar .item')).getPropertyValue('--focus').trim();
      const probe = document.createElement('span');
      probe.style.color = focus;
      document.body.append(probe);
      const ring = getComputedStyle(probe).color;
      probe.remove();
      out.push(['focus ring on the sidebar', ring, rgb(document.querySelector('.sidebar'), 'backgroundColor'), 3]);
      out.push(['focus ring on the pane', ring, rgb(document.querySelector('.pane'), 'backgroundColor'), 3]);
      return out;
    });
    for (const [what, fg, bg, min] of pairs) {
      const ratio = contrastRatio(fg, bg);
      assert.ok(ratio >= min, `${what}: ${ratio.toFixed(2)}:1 (${fg} on ${bg}) < ${min}:1`);
    }
    // The ring is drawn with that colour when a control gets the keyboard focus.
    await X.page.locator('.sidebar .prefs button').first().focus();
    await X.page.keyboard.press('Tab');
    const outline = await X.page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
    assert.notEqual(outline, 'none');

    // Dark.
    const themeBtn = X.page.getByTestId('theme');
    while ((await themeBtn.textContent()) !== 'Theme: dark') await themeBtn.click();
    assert.equal(await X.page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.deepEqual(await axeViolations(X.page), [], 'axe: desktop dark');
    await shot(X.page, 'n-desktop-dark');
    await X.page.reload();
    await waitOnline(X.page);
    assert.equal(await X.page.evaluate(() => document.documentElement.dataset.theme), 'dark', 'the theme is kept');
    await X.page.locator('.msg-list li.msg').first().waitFor();
    await openConv(X.page, key);
    assert.equal(await X.page.locator('[role="log"]').count(), 1);
    assert.ok((await bodies(X.page)).length >= 2);
    while ((await themeBtn.textContent()) !== 'Theme: system') await themeBtn.click();
    noConsoleErrors();
  });

  test('o) no console errors in any scenario', () => {
    watch.scenario = 'o';
    run.noErrorsAnywhere();
  });
});
