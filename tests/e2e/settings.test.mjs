// End-to-end scenarios of onboarding, attention and settings (issue 18, second round): no space
// id in the sidebar (a summary, "Invite people" for owners and admins, initials on the space
// switcher), per-conversation mute, the chime and desktop notifications for DMs and mentions,
// the Account panel's display name, notification switches and theme select, and message times
// whose hover title is made at hover with a relative form. Its own server.
// Run with scripts/e2e.sh (with the other files), or: node --test tests/e2e/settings.test.mjs

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  axeViolations,
  badge,
  createChannel,
  createSpace,
  joinChannel,
  joinSpace,
  newIdentity,
  openConv,
  PHONE,
  recordNotifications,
  register,
  Scenarios,
  send,
  shot,
  sleep,
  startDm,
  waitForMessage,
  waitOnline,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 150_000;

async function waitUntil(what, fn, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** Records the page's notifications (`__notes`) and the tones it starts (`__tones`, times). */
async function recordAlerts(context) {
  await recordNotifications(context);
  await context.addInitScript(() => {
    window.__tones = [];
    const make = AudioContext.prototype.createOscillator;
    AudioContext.prototype.createOscillator = function (...a) {
      window.__tones.push(Date.now());
      return make.apply(this, a);
    };
  });
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

async function myId(page) {
  const title = await page.locator('.me-name').getAttribute('title');
  return /your id: (\d+)/.exec(title)[1];
}

async function openAccount(page) {
  const details = page.getByTestId('account');
  if (!(await details.evaluate((d) => d.open))) await details.locator('summary').click();
  return details;
}

describe('imd web client: onboarding, attention, settings', () => {
  const run = new Scenarios({ name: 'imd-e2e-settings', defaultTimeoutMs: 20_000 });
  const { watch } = run;
  const device = (who, options, setup) => run.device(who, options, setup);
  before(() => run.start());
  after(() => run.stop());

  test('t) onboarding: invite links, not ids; a summary of the space; Invite people for its owner only; initials on the switcher', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 't';
    const ann = newIdentity('ann');
    const ben = newIdentity('ben');
    const A = await device('ann');
    await register(A.page, ann);
    const welcome = await A.page.locator('main.pane.empty').textContent();
    assert.match(welcome, /invite link/);
    assert.doesNotMatch(welcome, /\bid\b/);
    const join = A.page.locator('details.inline-form', { has: A.page.locator('summary', { hasText: 'Join a space' }) });
    await join.locator('summary').click();
    assert.equal(await join.getByLabel('Invite link').count(), 1);
    await join.locator('summary').click();

    const spaceId = await createSpace(A.page, 'Team Tango');
    const sidebar = await A.page.locator('.sidebar').textContent();
    assert.doesNotMatch(sidebar, /Space id/);
    assert.doesNotMatch(sidebar, new RegExp(spaceId));
    await A.page.getByTestId('space-about').filter({ hasText: 'You own this space' }).waitFor();
    await A.page.getByTestId('invite').waitFor();
    // No picture: the initials on a colour of the space's own.
    const mark = A.page.locator(`[data-space="${spaceId}"] [data-initials]`);
    assert.equal((await mark.textContent()).trim(), 'TT');
    const colour = await mark.evaluate((e) => getComputedStyle(e).backgroundColor);
    assert.notEqual(colour, 'rgba(0, 0, 0, 0)');
    await createChannel(A.page, 'general');

    const B = await device('ben');
    await register(B.page, ben);
    await joinSpace(B.page, spaceId);
    await B.page.getByTestId('space-about').filter({ hasText: 'You are a member' }).waitFor();
    assert.equal(await B.page.getByTestId('invite').count(), 0, 'a plain member makes no invitations');
    assert.equal(
      await B.page.locator(`[data-space="${spaceId}"] [data-initials]`).evaluate((e) => getComputedStyle(e).backgroundColor),
      colour,
      'the same colour for everyone',
    );
    await shot(B.page, 't-member-sidebar');
    run.noConsoleErrors();
  });

  test('u) attention: a mention notifies and chimes; a muted channel counts in grey and stays silent; sound off', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'u';
    const cat = newIdentity('cat');
    const dan = newIdentity('dan');
    const C = await device('cat');
    await register(C.page, cat);
    const spaceId = await createSpace(C.page, 'Space U');
    const general = await createChannel(C.page, 'general');
    await createChannel(C.page, 'random');
    const D = await device('dan', {}, recordAlerts);
    await register(D.page, dan);
    await joinSpace(D.page, spaceId);
    await joinChannel(D.page, 'general');
    await joinChannel(D.page, 'random');
    const random = await D.page.evaluate(() => decodeURIComponent(location.pathname.replace(/^\/c\//, '')));
    const danId = await myId(D.page);
    await openConv(C.page, general);

    // Dan reads #random in another window: a mention in #general notifies and chimes.
    await unfocus(D.page);
    await send(C.page, `hey <@${danId}> look`);
    const notes = await waitUntil('a notification', () => D.page.evaluate(() => window.__notes.length && window.__notes));
    assert.deepEqual(notes, [{ title: `${cat.name} in # general`, body: `hey <@${danId}> look`, tag: general }]);
    await waitUntil('a chime', () => D.page.evaluate(() => window.__tones.length > 0));
    const tones = await D.page.evaluate(() => window.__tones.length);

    // Muted: the count stays, greyed, out of the title; a mention there makes no alert.
    await refocus(D.page);
    await openConv(D.page, general);
    await waitUntil('general read', async () => (await badge(D.page, `[data-conv="${general}"]`).count()) === 0);
    await D.page.getByTestId('mute').click();
    await D.page.getByTestId('mute').filter({ hasText: 'Unmute' }).waitFor();
    await openConv(D.page, random);
    await unfocus(D.page);
    await send(C.page, `again <@${danId}>`);
    await D.page.locator(`[data-conv="${general}"] .badge.muted`).filter({ hasText: '1' }).first().waitFor();
    assert.equal(await D.page.locator(`[data-conv="${general}"] [aria-label="muted"]`).count(), 1);
    assert.equal(await badge(D.page, `[data-space="${spaceId}"]`).count(), 0, 'no space badge for a muted channel');
    // A DM after it: the barrier that shows the muted mention made no notification.
    await startDm(C.page, dan.name);
    const dm = `dm:${await myId(C.page)}`; // Dan's key of the DM: the peer's id
    await waitUntil('the chime to be over', () => D.page.evaluate(() => Date.now() - window.__tones.at(-1) > 1100));
    await send(C.page, 'a direct word');
    await waitUntil('the DM notification', () => D.page.evaluate(() => window.__notes.length === 2));
    assert.deepEqual((await D.page.evaluate(() => window.__notes))[1], { title: cat.name, body: 'a direct word', tag: dm });
    await waitUntil('the DM chime', () => D.page.evaluate((n) => window.__tones.length > n, tones));
    await waitUntil('the title counts the DM only', async () => (await D.page.title()).startsWith('(1) '));

    // Dan looks at the page with #random open: a DM chimes but needs no notification.
    await refocus(D.page);
    await waitUntil('the chime to be over', () => D.page.evaluate(() => Date.now() - window.__tones.at(-1) > 1100));
    const heard = await D.page.evaluate(() => window.__tones.length);
    await send(C.page, 'while you look');
    await waitUntil('a chime', () => D.page.evaluate((n) => window.__tones.length > n, heard));
    await badge(D.page, `[data-conv="${dm}"]`).filter({ hasText: '2' }).waitFor();
    assert.equal(await D.page.evaluate(() => window.__notes.length), 2, 'no notification while the page is seen');
    await unfocus(D.page);

    // Sound off: the next DM notifies without a tone.
    const account = await openAccount(D.page);
    await account.getByTestId('pref-sound').uncheck();
    const before = await D.page.evaluate(() => window.__tones.length);
    await send(C.page, 'quietly');
    await waitUntil('the third notification', () => D.page.evaluate(() => window.__notes.length === 3));
    assert.equal(await D.page.evaluate(() => window.__tones.length), before, 'no tone with the sound off');

    // Kept across a reload: the mute and the switch.
    await D.page.reload();
    await waitOnline(D.page);
    await D.page.locator(`[data-conv="${general}"] .badge.muted`).first().waitFor();
    assert.equal(await (await openAccount(D.page)).getByTestId('pref-sound').isChecked(), false);
    run.noConsoleErrors();
  });

  test('v) the Account panel: display name (the server\'s refusal shown), theme select, axe in light and dark, 44 px on a phone', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'v';
    const eve = newIdentity('eve');
    const E = await device('eve', { viewport: { width: 1280, height: 800 } });
    await register(E.page, eve);
    const account = await openAccount(E.page);
    const nameField = account.getByTestId('my-name');
    assert.equal(await nameField.inputValue(), eve.name);
    // 33 characters, 66 bytes: the browser lets it through, the server refuses it.
    watch.allowStatuses = [400];
    await nameField.fill('é'.repeat(33));
    await account.getByRole('button', { name: 'Save name' }).click();
    await account.getByRole('alert').filter({ hasText: /64 bytes/ }).waitFor();
    const renamed = `${eve.name} Renamed`;
    await nameField.fill(renamed);
    await account.getByRole('button', { name: 'Save name' }).click();
    await account.getByRole('status').filter({ hasText: 'Name changed.' }).waitFor();
    await E.page.locator('.me-name', { hasText: renamed }).waitFor();

    // Theme: the select and the sidebar button agree.
    await account.getByLabel('Desktop notifications for direct messages and mentions').waitFor();
    await account.getByTestId('theme-select').selectOption('dark');
    assert.equal(await E.page.evaluate(() => document.documentElement.dataset.theme), 'dark');
    assert.equal(await E.page.getByTestId('theme').textContent(), 'Theme: dark');
    assert.deepEqual(await axeViolations(E.page), [], 'axe: account panel, dark');
    await shot(E.page, 'v-account-dark');
    await account.getByTestId('theme-select').selectOption('light');
    assert.deepEqual(await axeViolations(E.page), [], 'axe: account panel, light');
    await shot(E.page, 'v-account-light');
    await account.getByTestId('theme-select').selectOption('system');
    assert.equal(await E.page.evaluate(() => document.documentElement.dataset.theme), undefined);

    await E.page.reload();
    await waitOnline(E.page);
    await E.page.locator('.me-name', { hasText: renamed }).waitFor();
    assert.equal(await (await openAccount(E.page)).getByTestId('my-name').inputValue(), renamed);

    // A phone: the panel's controls are 44 px touch targets.
    const F = await device('eve (phone)', PHONE);
    await register(F.page, newIdentity('fay'));
    const panel = await openAccount(F.page);
    const small = await panel.locator('button, summary, input, select').evaluateAll((els) =>
      els
        .filter((e) => e.offsetParent !== null)
        .map((e) => [e.getAttribute('data-testid') || e.textContent.trim() || e.getAttribute('type') || e.tagName, e.getBoundingClientRect()])
        .filter(([, r]) => r.width < 44 || r.height < 44)
        .map(([n, r]) => `${n}: ${Math.round(r.width)}x${Math.round(r.height)}`),
    );
    assert.deepEqual(small, [], 'touch targets under 44 px');
    assert.deepEqual(await axeViolations(F.page), [], 'axe: account panel, phone');
    await shot(F.page, 'v-account-phone');
    watch.allowStatuses = [];
    run.noConsoleErrors();
  });

  test('w) a message time: no title until hovered, then the date-time and how long ago', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'w';
    const gil = newIdentity('gil');
    const G = await device('gil');
    await register(G.page, gil);
    await createSpace(G.page, 'Space W');
    await createChannel(G.page, 'general');
    await send(G.page, 'what time is it');
    await waitForMessage(G.page, 'what time is it');
    const time = G.page.locator('.msg-list li.msg .msg-meta time').first();
    assert.equal(await time.getAttribute('title'), null, 'nothing formatted for the title at render');
    await time.hover();
    const title = await waitUntil('the hover title', () => time.getAttribute('title'));
    assert.match(title, /\((just now|\d+ minutes? ago)\)$/);
    assert.match(title, /\d{4}/, 'the absolute date-time, with the year');
    run.noConsoleErrors();
  });
});
