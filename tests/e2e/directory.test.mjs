// End-to-end: finding people and places (issue 18, "Onboarding" and "Attention"), on a server
// with the default DM policy (shared_space). a) People: the server's directory finds "Alice"
// from "ali" among the people who share a space with the user (not a stranger of the same
// prefix) and starts a DM; the DM finder asks the same search. b) Browse: the space's channels
// the user has not joined and the listed spaces they are not in, each joined from the panel.
// c) A muted space: its channels' unread counts turn grey and leave the title count until it is
// unmuted; the mute outlives a reload. Screenshots at desktop and 360 px, axe (WCAG A/AA) with
// no serious violation on each panel. Run with scripts/e2e.sh, or:
// node --test tests/e2e/directory.test.mjs

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  axeViolations,
  createChannel,
  createSpace,
  joinChannel,
  joinSpace,
  login,
  myId,
  newIdentity,
  PHONE,
  register,
  Scenarios,
  send,
  shot,
  startDm,
  waitOnline,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;

/** Opens the People or Browse panel from the sidebar; returns the dialog. */
async function openPanel(page, testId, label) {
  await page.getByTestId(testId).click();
  const dialog = page.getByRole('dialog', { name: label });
  await dialog.waitFor();
  return dialog;
}

/** The users the People panel lists, by id, once `expected` of them are shown. */
async function listed(dialog, selector, attr, expected) {
  await dialog.locator(`${selector}:nth-child(${expected})`).waitFor();
  return dialog.locator(selector).evaluateAll((els, a) => els.map((e) => e.getAttribute(a)), attr);
}

/** A screenshot into the test output, and axe's serious violations: none. */
async function looks(page, name, what) {
  await shot(page, name);
  assert.deepEqual(await axeViolations(page), [], `axe: ${what}`);
}

/** The user signed in on a 360 px phone, with `spaceId` (if given) selected. */
async function onPhone(run, who, id, spaceId) {
  const Q = await run.device(who, PHONE);
  await login(Q.page, id);
  if (spaceId) {
    await Q.page.locator(`.sidebar [data-space="${spaceId}"]`).click();
    await Q.page.locator(`.sidebar [data-space="${spaceId}"][aria-pressed="true"]`).waitFor();
  }
  return Q;
}

/** An authenticated REST call from a signed-in page (setup steps a user would do elsewhere). */
function rest(page, method, path, body) {
  return page.evaluate(
    async ({ method, path, body }) => {
      const s = JSON.parse(localStorage.getItem('imd.session'));
      const r = await fetch(`/api/v1${path}`, {
        method,
        headers: { Authorization: `Bearer ${s.access}`, 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: r.status, body: r.status === 204 ? null : await r.json() };
    },
    { method, path, body },
  );
}

describe('imd web client: people, browse, space mute', () => {
  const run = new Scenarios({ name: 'imd-e2e-directory', defaultTimeoutMs: 20_000, extraArgs: ['--limits-dm-policy', 'shared_space'] });
  before(() => run.start());
  after(() => run.stop());

  // Who the directory lists follows the DM policy: this scenario needs `shared_space`; the local
  // cluster runs with its own (`anyone`, scripts/cluster.sh), where every account of every
  // scenario file is listed by prefix (the C++ Directory tests skip there too).
  const ownPolicy = process.env.IMD_E2E_URL ? 'the DM policy is the external server\'s own' : false;
  test('a) People: "ali" finds Alice among the people sharing a space, not a stranger; Message opens the DM', { timeout: TEST_TIMEOUT_MS, skip: ownPolicy }, async () => {
    run.watch.scenario = 'a';
    const dora = newIdentity('Dora');
    const alice = newIdentity('Alice');
    const alistair = newIdentity('Alistair');
    const D = await run.device('dora');
    await register(D.page, dora);
    const spaceId = await createSpace(D.page, 'People space');
    const A = await run.device('alice');
    await register(A.page, alice);
    await joinSpace(A.page, spaceId);
    const S = await run.device('alistair');
    await register(S.page, alistair);
    const aliceId = await myId(A.page);

    const people = await openPanel(D.page, 'open-people', 'People');
    // No query: everyone who shares a space with her.
    assert.deepEqual(await listed(people, '[data-user]', 'data-user', 1), [aliceId]);
    await people.getByLabel('Search people').fill('ali');
    await people.locator(`[data-user="${aliceId}"]`).waitFor();
    await people.getByLabel('Search people').fill('alis');
    await people.locator('.hint', { hasText: 'Nobody found for “alis”' }).waitFor();
    await people.getByLabel('Search people').fill('Ali');
    const row = people.locator(`[data-user="${aliceId}"]`);
    await row.waitFor();
    assert.equal(await people.locator('[data-user]').count(), 1, 'the stranger Alistair is not listed');
    assert.equal((await row.locator('.initials').textContent()).trim().length > 0, true, 'initials shown');
    await looks(D.page, 'dir-a-people-desktop', 'People panel, desktop');
    await row.getByRole('button', { name: `Message ${alice.name}` }).click();
    await people.waitFor({ state: 'detached' });
    await D.page.locator('#conv-title', { hasText: alice.name }).waitFor();
    assert.equal(await D.page.evaluate(() => location.pathname), `/c/dm:${aliceId}`);

    // The DM finder asks the server's directory too: "Ali" opens Alice.
    await D.page.locator(`[data-conv="dm:${aliceId}"]`).waitFor();
    const dm = await startDm(A.page, dora.name.slice(0, 3).toLowerCase());
    assert.equal(await A.page.locator('#conv-title').textContent(), dora.name);
    assert.match(dm, /^dm:\d+$/);

    // The panel at 360 px.
    const P = await onPhone(run, 'dora-phone', dora);
    const phonePanel = await openPanel(P.page, 'open-people', 'People');
    await phonePanel.getByLabel('Search people').fill('ali');
    await phonePanel.locator(`[data-user="${aliceId}"]`).waitFor();
    await looks(P.page, 'dir-a-people-phone', 'People panel, phone');
    run.noConsoleErrors();
  });

  test('b) Browse: the channels not joined and the listed spaces not joined, each joined from the panel', { timeout: TEST_TIMEOUT_MS }, async () => {
    run.watch.scenario = 'b';
    const olga = newIdentity('olga');
    const pete = newIdentity('pete');
    const O = await run.device('olga');
    await register(O.page, olga);
    const openId = await createSpace(O.page, 'Open house');
    assert.equal((await rest(O.page, 'PATCH', `/spaces/${openId}`, { discoverable: true })).status, 200);
    const spaceId = await createSpace(O.page, 'Browse space');
    const general = await createChannel(O.page, 'general');
    const random = await createChannel(O.page, 'random');
    const P = await run.device('pete');
    await register(P.page, pete);
    await joinSpace(P.page, spaceId);
    await joinChannel(P.page, 'general');

    const browse = await openPanel(P.page, 'open-browse', 'Browse channels and spaces');
    const channels = browse.getByTestId('browse-channels');
    assert.deepEqual(await listed(channels, '[data-channel]', 'data-channel', 1), [random.slice('channel:'.length)]);
    assert.ok(!(await channels.textContent()).includes('general'), 'a joined channel is not offered');
    const spaces = browse.getByTestId('browse-spaces');
    await spaces.locator(`[data-space-row="${openId}"]`).waitFor();
    assert.equal(await spaces.locator(`[data-space-row="${spaceId}"]`).count(), 0, 'not a space he is in');
    await looks(P.page, 'dir-b-browse-desktop', 'Browse panel, desktop');

    await channels.getByRole('button', { name: 'Join channel random' }).click();
    await P.page.locator('#conv-title', { hasText: '# random' }).waitFor();
    await channels.locator('.hint', { hasText: 'You are in every channel of this space.' }).waitFor();
    await spaces.getByRole('button', { name: 'Join space Open house' }).click();
    await P.page.locator(`.sidebar [data-space="${openId}"][aria-pressed="true"]`).waitFor();
    await spaces.locator(`[data-space-row="${openId}"]`).waitFor({ state: 'detached' });
    await P.page.keyboard.press('Escape');
    await browse.waitFor({ state: 'detached' });
    assert.match(general, /^channel:\d+$/);

    const Q = await onPhone(run, 'pete-phone', pete, spaceId);
    const phonePanel = await openPanel(Q.page, 'open-browse', 'Browse channels and spaces');
    await phonePanel.getByTestId('browse-channels').locator('.hint').waitFor();
    await phonePanel.getByTestId('browse-spaces').locator('li').first().waitFor();
    await looks(Q.page, 'dir-b-browse-phone', 'Browse panel, phone');
    run.noConsoleErrors();
  });

  test('c) a muted space: its unread turns grey and leaves the title count until unmuted; kept across a reload', { timeout: TEST_TIMEOUT_MS }, async () => {
    run.watch.scenario = 'c';
    const mia = newIdentity('mia');
    const ned = newIdentity('ned');
    const M = await run.device('mia');
    await register(M.page, mia);
    const spaceId = await createSpace(M.page, 'Loud space');
    const general = await createChannel(M.page, 'general');
    const N = await run.device('ned');
    await register(N.page, ned);
    const quiet = await createSpace(N.page, 'Quiet space');
    await createChannel(N.page, 'notes');
    await joinSpace(N.page, spaceId);
    await joinChannel(N.page, 'general');

    await N.page.getByTestId('space-mute').click();
    await N.page.getByTestId('space-mute').filter({ hasText: 'Unmute space' }).waitFor();
    await N.page.locator(`.sidebar [data-space="${spaceId}"] .muted-mark`).waitFor();
    // Another space's channel open: the muted space's message counts grey, not in the title.
    await N.page.locator(`.sidebar [data-space="${quiet}"]`).click();
    await N.page.locator('.sidebar [data-conv^="channel:"]', { hasText: 'notes' }).click();
    await N.page.locator('#conv-title', { hasText: '# notes' }).waitFor();
    await send(M.page, 'is anyone there?');
    await N.page.locator(`.sidebar [data-space="${spaceId}"] .badge.muted`).waitFor();
    assert.equal(await N.page.locator(`.sidebar [data-space="${spaceId}"] .badge:not(.muted)`).count(), 0);
    assert.ok(!/^\(\d+\)/.test(await N.page.title()), `no count in the title: ${await N.page.title()}`);
    await looks(N.page, 'dir-c-space-muted-desktop', 'muted space, desktop');

    // Kept across a reload.
    await N.page.reload();
    await waitOnline(N.page);
    await N.page.locator(`.sidebar [data-space="${spaceId}"] .badge.muted`).waitFor();
    assert.ok(!/^\(\d+\)/.test(await N.page.title()));

    // Unmuted: the count comes back to the title and the badge is red again.
    await N.page.locator(`.sidebar [data-space="${spaceId}"]`).click();
    await N.page.getByTestId('space-mute').filter({ hasText: 'Unmute space' }).click();
    await N.page.getByTestId('space-mute').filter({ hasText: 'Mute space' }).waitFor();
    await N.page.waitForFunction(() => /^\(1\)/.test(document.title));
    await N.page.locator(`.sidebar [data-space="${spaceId}"] .badge:not(.muted)`).waitFor();
    assert.equal(await N.page.locator(`.sidebar [data-conv="${general}"] .badge.muted`).count(), 0);

    const Q = await onPhone(run, 'ned-phone', ned, spaceId);
    await Q.page.getByTestId('space-mute').click();
    await Q.page.locator(`.sidebar [data-space="${spaceId}"] .muted-mark`).waitFor();
    await looks(Q.page, 'dir-c-space-muted-phone', 'muted space, phone');
    run.noConsoleErrors();
  });

  test('d) no console errors in any scenario', () => {
    run.noErrorsAnywhere();
  });
});
