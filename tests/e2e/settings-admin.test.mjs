// End-to-end: space and channel settings, blocks and the server admin's moderation in the web
// client (issue 14, item 8). "root" is a server admin (the first account; on the cluster, a
// phone auth.admins names: harness adminIdentity); olga owns a space,
// bob is a member. a) olga renames the space, makes an invitation with 2 uses and a day's expiry
// (listed with its uses left) and revokes another (its link refused), renames a channel, sets
// "history from joining", archives it (bob's stale client has his send refused, and then shows
// it archived), bans bob (his client drops the space), lists and unbans him (the
// invitation lets him in again); a plain member sees none of these controls; axe on the open
// settings in light and dark, 44 px targets on a phone (space and channel settings). b) olga blocks bob from the DM header:
// bob's DM is refused; the Account panel lists him, Unblock lets his retry through; bob blocks
// and unblocks olga from the member list. c) root (a plain member of the space) deletes bob's
// channel message from the menu (DELETE /admin/messages/{id}), and removes bob from the space
// in the admin pages; olga transfers the space to root (confirmed by name) and is an admin then. Run with scripts/e2e.sh, or: node --test tests/e2e/settings-admin.test.mjs

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  adminIdentity,
  axeViolations,
  createChannel,
  createSpace,
  joinChannel,
  joinSpace,
  newIdentity,
  openConv,
  PHONE,
  register,
  Scenarios,
  send,
  shot,
  startDm,
  waitForMessage,
  waitOnline,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 180_000;

/** Opens a <details> by its test id (if closed); with `reload`, closes it first (it reloads on open). */
async function openDetails(page, testId, reload = false) {
  const d = page.getByTestId(testId);
  if (reload && (await d.evaluate((x) => x.open))) await d.locator('summary').first().click();
  if (!(await d.evaluate((x) => x.open))) await d.locator('summary').first().click();
  return d;
}

function row(page, text) {
  return page.locator('.msg-list li.msg:not(.pending)', { has: page.locator('.body', { hasText: text }) });
}

/** Controls of `scope` that are shown and smaller than 44 x 44 px. */
function smallTargets(scope) {
  return scope.locator('button, summary, input, select').evaluateAll((els) =>
    els
      .filter((e) => e.offsetParent !== null)
      .map((e) => [e.getAttribute('data-testid') || e.getAttribute('aria-label') || e.textContent.trim() || e.tagName, e.getBoundingClientRect()])
      .filter(([, r]) => r.width < 44 || r.height < 44)
      .map(([n, r]) => `${n}: ${Math.round(r.width)}x${Math.round(r.height)}`),
  );
}

async function myId(page) {
  const title = await page.locator('.me-name').getAttribute('title');
  return /your id: (\d+)/.exec(title)[1];
}

describe('imd web client: space and channel settings, blocks, server admin', () => {
  const run = new Scenarios({ name: 'imd-e2e-settings-admin', defaultTimeoutMs: 20_000 });
  const { watch } = run;
  before(() => run.start());
  after(() => run.stop());

  const root = adminIdentity('root', 1);
  const olga = newIdentity('olga');
  const bob = newIdentity('bob');
  let R, O, B, spaceId, key;

  test('a) space settings: rename, invitations, bans; channel settings: rename, history, archive', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'a';
    // A revoked invitation (404), sends refused in an archived channel, bob's requests after
    // his ban (404) are the point.
    watch.allowStatuses = [403, 404];
    R = await run.device('root');
    await register(R.page, root); // a server admin (the first account, or named by phone on the cluster)
    O = await run.device('olga', { viewport: { width: 1280, height: 900 } });
    await register(O.page, olga);
    B = await run.device('bob');
    await register(B.page, bob);
    spaceId = await createSpace(O.page, 'Settings Crew');
    key = await createChannel(O.page, 'plans');

    // Rename the space.
    const settings = await openDetails(O.page, 'space-settings');
    await settings.getByTestId('space-name-input').fill('Renamed Crew');
    await settings.getByRole('button', { name: 'Rename' }).click();
    await O.page.locator('.space-name', { hasText: 'Renamed Crew' }).waitFor();
    await settings.getByRole('status').filter({ hasText: 'Space renamed.' }).waitFor();

    // An invitation with 2 uses and a day; another with the defaults, revoked.
    await settings.getByTestId('invite-uses').fill('2');
    await settings.getByTestId('invite-expiry').selectOption('86400');
    await settings.getByRole('button', { name: 'Make invitation' }).click();
    await settings.locator('[data-invite]').first().waitFor();
    const link = await settings.getByTestId('made-invite').inputValue();
    assert.match(link, /\/invite\/[A-Za-z0-9_-]{22}$/);
    const code = link.split('/').pop();
    assert.match(await settings.locator(`[data-invite="${code}"]`).textContent(), /expires in (23 hours|1 day) · 2 of 2 uses left/);
    await settings.getByTestId('invite-uses').fill('100');
    await settings.getByTestId('invite-expiry').selectOption('604800');
    await settings.getByRole('button', { name: 'Make invitation' }).click();
    await O.page.waitForFunction((c) => {
      const v = document.querySelector('[data-testid="made-invite"]')?.value ?? '';
      return v && !v.endsWith(c);
    }, code);
    const revoked = await settings.getByTestId('made-invite').inputValue();
    const revokedCode = revoked.split('/').pop();
    const revokedRow = settings.locator(`[data-invite="${revokedCode}"]`);
    assert.match(await revokedRow.textContent(), /expires in (6|7) days · 100 of 100 uses left/);
    await revokedRow.getByRole('button', { name: /^Revoke/ }).click();
    await revokedRow.waitFor({ state: 'detached' });
    await settings.getByRole('status').filter({ hasText: 'Invitation revoked.' }).waitFor();
    await B.page.goto(revoked);
    await waitOnline(B.page);
    await B.page.getByRole('alert').filter({ hasText: 'This invitation cannot be used' }).waitFor();
    await B.page.getByRole('button', { name: 'Dismiss' }).click();

    // The good one lets bob in; one use is left.
    await B.page.goto(link);
    await waitOnline(B.page);
    await B.page.locator(`[data-space="${spaceId}"][aria-pressed="true"]`, { hasText: 'Renamed Crew' }).waitFor();
    await openDetails(O.page, 'space-settings', true);
    await settings.locator(`[data-invite="${code}"]`, { hasText: '1 of 2 uses left' }).waitFor();
    // A plain member: no space settings, no invitations, a channel without rename or archive.
    assert.equal(await B.page.getByTestId('space-settings').count(), 0);
    assert.equal(await B.page.getByTestId('invite').count(), 0);
    await joinChannel(B.page, 'plans');
    const bs = await openDetails(B.page, 'channel-settings');
    await bs.locator('[data-channel-member]').nth(1).waitFor();
    assert.equal(await bs.getByTestId('archive').count(), 0);
    assert.equal(await bs.getByTestId('channel-name-input').count(), 0);
    assert.equal(await bs.getByRole('button', { name: 'Delete channel' }).count(), 0);
    await bs.locator('summary').click();
    await send(B.page, 'bob in plans');
    await waitForMessage(O.page, 'bob in plans');

    // Rename the channel; history from joining on.
    const cs = await openDetails(O.page, 'channel-settings');
    await cs.getByTestId('channel-name-input').fill('roadmap');
    await cs.getByRole('button', { name: 'Rename' }).click();
    await O.page.locator('#conv-title', { hasText: '# roadmap' }).waitFor();
    await O.page.locator(`[data-conv="${key}"]`, { hasText: 'roadmap' }).waitFor();
    await cs.getByTestId('history-from-join').check();
    await O.page.locator('[data-testid="history-from-join"]:checked').waitFor();

    // axe with both settings open, light and dark.
    for (const scheme of ['light', 'dark']) {
      await O.page.emulateMedia({ colorScheme: scheme });
      assert.deepEqual(await axeViolations(O.page), [], `axe: settings open, ${scheme}`);
      await shot(O.page, `a-settings-${scheme}`);
    }
    await O.page.emulateMedia({ colorScheme: 'light' });

    // Archived: olga sees the note; bob's client, not told, has his send refused, and shows
    // the channel archived once reloaded.
    await cs.getByTestId('archive').click();
    await O.page.getByTestId('archived').waitFor();
    await O.page.locator(`[data-conv="${key}"]`, { hasText: 'roadmap (archived)' }).waitFor();
    await send(B.page, 'too late');
    await B.page.locator('.msg.pending.failed', { hasText: 'too late' }).filter({ hasText: /Not sent: .*archived/ }).waitFor();
    // The refusal makes his client ask for the channel's settings: it shows archived.
    await B.page.getByTestId('archived').waitFor();
    await B.page.getByRole('button', { name: 'Discard' }).click();
    await B.page.reload();
    await waitOnline(B.page);
    await openConv(B.page, key);
    await B.page.getByTestId('archived').waitFor();
    await B.page.locator('#conv-title', { hasText: '# roadmap' }).waitFor();
    await waitForMessage(B.page, 'bob in plans');
    await cs.getByTestId('archive').click(); // unarchive
    await O.page.locator('#composer-input').waitFor();

    // Ban: bob's client drops the space; the bans list names him; unbanned, the link works.
    const members = O.page.locator('details.members');
    await members.locator('summary').click();
    await members.getByRole('button', { name: `Ban ${bob.name}` }).click();
    await B.page.getByRole('alert').filter({ hasText: 'You were banned from Renamed Crew' }).waitFor();
    await B.page.locator(`[data-space="${spaceId}"]`).waitFor({ state: 'detached' });
    await openDetails(O.page, 'space-settings', true);
    const bobId = await myId(B.page);
    const banned = settings.locator(`[data-ban="${bobId}"]`, { hasText: bob.name });
    await banned.waitFor();
    await banned.getByRole('button', { name: `Unban ${bob.name}` }).click();
    await banned.waitFor({ state: 'detached' });
    await settings.getByRole('status').filter({ hasText: `${bob.name} unbanned.` }).waitFor();
    await B.page.getByRole('button', { name: 'Dismiss' }).click();
    await B.page.goto(link);
    await waitOnline(B.page);
    await B.page.locator(`[data-space="${spaceId}"][aria-pressed="true"]`).waitFor();
    await joinChannel(B.page, 'roadmap');

    // A phone: the space settings' controls are 44 px touch targets.
    const P = await run.device('olga (phone)', PHONE);
    await P.page.getByRole('button', { name: 'Log in', exact: true }).first().click();
    await P.page.getByLabel('Phone').fill(olga.phone);
    await P.page.getByLabel('Password').fill(olga.password);
    await P.page.locator('form').getByRole('button', { name: 'Log in' }).click();
    await waitOnline(P.page);
    const ps = await openDetails(P.page, 'space-settings');
    await ps.getByRole('list', { name: 'Banned people' }).locator('li').first().waitFor();
    assert.deepEqual(await smallTargets(ps), [], 'touch targets under 44 px');
    assert.deepEqual(await axeViolations(P.page), [], 'axe: space settings, phone');
    await shot(P.page, 'a-space-settings-phone');
    // The channel's settings are under the conversation's header, so a phone has them too.
    await P.page.locator(`[data-conv="${key}"]`).click();
    const pc = await openDetails(P.page, 'channel-settings');
    await pc.getByTestId('archive').waitFor();
    await pc.locator('[data-channel-member]').nth(1).waitFor();
    assert.deepEqual(await smallTargets(pc), [], 'touch targets under 44 px (channel settings)');
    assert.deepEqual(await axeViolations(P.page), [], 'axe: channel settings, phone');
    await shot(P.page, 'a-channel-settings-phone');
    watch.allowStatuses = [];
    run.noConsoleErrors();
  });

  test('b) blocks: from the DM header (the DM refused), listed in the Account panel, from the member list', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'b';
    const dm = await startDm(O.page, bob.name);
    O.page.once('dialog', (d) => void d.accept());
    await O.page.getByRole('button', { name: `Block ${bob.name}` }).click();
    await O.page.locator('[data-testid="block"][data-blocked="true"]').waitFor();
    await startDm(B.page, olga.name);
    await send(B.page, 'are you there?');
    await B.page.locator('.msg.pending.failed', { hasText: 'are you there?' }).filter({ hasText: 'Not sent:' }).waitFor();
    assert.equal(await O.page.locator('.body', { hasText: 'are you there?' }).count(), 0);

    // The Account panel lists him; Unblock lets bob's retry through.
    const account = await openDetails(O.page, 'account');
    const entry = account.locator('[data-blocked-user]', { hasText: bob.name });
    await entry.waitFor();
    await entry.getByRole('button', { name: `Unblock ${bob.name}` }).click();
    await entry.waitFor({ state: 'detached' });
    await O.page.locator('[data-testid="block"][data-blocked="false"]').waitFor();
    await account.locator('summary').click();
    await B.page.getByRole('button', { name: 'Retry' }).click();
    await waitForMessage(O.page, 'are you there?');
    assert.equal(dm.startsWith('dm:'), true);

    // Bob blocks and unblocks olga from the member list.
    await B.page.locator('details.members summary').click();
    const olgaRow = B.page.locator('details.members [data-member]', { hasText: olga.name });
    B.page.once('dialog', (d) => void d.accept());
    await olgaRow.getByRole('button', { name: `Block ${olga.name}` }).click();
    await olgaRow.getByRole('button', { name: `Unblock ${olga.name}` }).waitFor();
    const bAccount = await openDetails(B.page, 'account');
    await bAccount.locator('[data-blocked-user]', { hasText: olga.name }).waitFor();
    await olgaRow.getByRole('button', { name: `Unblock ${olga.name}` }).click();
    await bAccount.locator('[data-blocked-user]').waitFor({ state: 'detached' });
    await bAccount.locator('summary').click();
    await B.page.locator('details.members summary').click();
    run.noConsoleErrors();
  });

  test('c) a server admin deletes another user\'s message and removes a user from a space', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'c';
    await joinSpace(R.page, spaceId);
    assert.equal(await R.page.getByTestId('space-settings').count(), 0, 'a plain member of the space');
    await joinChannel(R.page, 'roadmap');
    await openConv(B.page, key);
    await send(B.page, 'something rude');
    await waitForMessage(R.page, 'something rude');
    await openConv(O.page, key);
    await waitForMessage(O.page, 'something rude');

    // The menu offers root Delete on bob's message: it goes to the admin route.
    const r = row(R.page, 'something rude').first();
    await r.hover();
    R.page.once('dialog', (d) => void d.accept());
    const [res] = await Promise.all([
      R.page.waitForResponse((x) => x.request().method() === 'DELETE' && /\/api\/v1\/admin\/messages\/\d+$/.test(x.url())),
      r.locator('.msg-actions').getByRole('button', { name: 'Delete', exact: true }).click(),
    ]);
    assert.equal(res.status(), 204);
    for (const page of [B.page, O.page, R.page]) {
      await page.locator('.msg-list li.msg.deleted .body', { hasText: 'message deleted' }).waitFor();
      assert.equal(await page.locator('.body', { hasText: 'something rude' }).count(), 0);
    }

    // The admin pages: bob removed from the space, his client drops it.
    const panel = await openDetails(R.page, 'admin');
    await panel.getByLabel('Name or phone').fill(bob.name);
    await panel.getByRole('button', { name: 'Find users' }).click();
    const user = panel.locator('[data-admin-user]', { hasText: bob.name });
    await user.waitFor();
    await panel.locator('[data-admin-user]', { hasText: root.name }).waitFor({ state: 'detached' });
    await user.getByRole('button', { name: `Remove ${bob.name} from a space` }).click();
    await user.locator(`[data-testid="admin-remove-space"] option[value="${spaceId}"]`).waitFor({ state: 'attached' });
    await user.getByTestId('admin-remove-space').selectOption(spaceId);
    await user.getByRole('button', { name: 'Remove', exact: true }).click();
    await panel.getByRole('status').filter({ hasText: `${bob.name} removed from Renamed Crew.` }).waitFor();
    await B.page.getByRole('alert').filter({ hasText: 'You were removed from Renamed Crew' }).waitFor();
    await B.page.locator(`[data-space="${spaceId}"]`).waitFor({ state: 'detached' });
    await shot(R.page, 'c-admin-removed');

    // Olga hands the space to root, after a confirmation naming him; she is an admin then.
    const settings = await openDetails(O.page, 'space-settings', true);
    await settings.getByTestId('heir').locator('option', { hasText: root.name }).waitFor({ state: 'attached' });
    await settings.getByTestId('heir').selectOption({ label: root.name });
    await settings.getByRole('button', { name: 'Transfer…' }).click();
    await settings.getByRole('group', { name: 'Confirm the transfer' })
      .filter({ hasText: `Make ${root.name} the owner of Renamed Crew?` }).waitFor();
    await settings.getByTestId('confirm-transfer').click();
    await O.page.getByTestId('space-about').filter({ hasText: 'You are an admin here' }).waitFor();
    await O.page.getByRole('status').filter({ hasText: `${root.name} owns Renamed Crew now.` }).waitFor();
    assert.equal(await O.page.getByTestId('heir').count(), 0, 'only the owner transfers');
    await R.page.reload();
    await waitOnline(R.page);
    await R.page.getByTestId('space-about').filter({ hasText: 'You own this space' }).waitFor();
    await R.page.getByTestId('space-settings').waitFor();
    run.noConsoleErrors();
  });

  test('f) no console errors in any scenario', () => {
    watch.scenario = 'f';
    run.noErrorsAnywhere();
  });
});
