// End-to-end: the web client's server administration pages (issue 14). The first account is
// a server admin and sees "Server admin"; others do not. The admin finds a user by name,
// deactivates them (their open client is signed out at once, their login refused), reactivates
// them, resets their password (the generated one works, the old one no longer does), and lists
// every space. Run with scripts/e2e.sh, or: node --test tests/e2e/admin.test.mjs

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Scenarios, adminIdentity, createSpace, newIdentity, register, shot } from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;

describe('imd web client: server admin pages', () => {
  const run = new Scenarios({ name: 'imd-e2e-admin', defaultTimeoutMs: 20_000 });
  before(() => run.start());
  after(() => run.stop());

  test('an admin finds, deactivates, reactivates and resets a user, and lists every space', { timeout: TEST_TIMEOUT_MS }, async () => {
    run.watch.scenario = 'admin';
    // The deactivated user's requests (401) and refused login (403) are the point.
    run.watch.allowStatuses = [401, 403];
    const root = adminIdentity('root', 0);
    const carl = newIdentity('carl');
    const R = await run.device('root');
    await register(R.page, root);  // a server admin (the first account, or named by phone on the cluster)
    const C = await run.device('carl');
    await register(C.page, carl);
    const spaceId = await createSpace(C.page, 'Carl\u2019s corner');

    const panel = R.page.getByTestId('admin');
    await panel.waitFor();
    assert.equal(await C.page.getByTestId('admin').count(), 0, 'not shown to a user who is no admin');

    // Every user at first; a name prefix finds Carl alone.
    await panel.locator('summary').click();
    await panel.locator(`[data-admin-user]`).nth(1).waitFor();
    await panel.getByLabel('Name or phone').fill(carl.name.slice(0, 6));
    await panel.getByRole('button', { name: 'Find users' }).click();
    const row = panel.locator('[data-admin-user]', { hasText: carl.name });
    await row.waitFor();
    await panel.locator('[data-admin-user]', { hasText: root.name }).waitFor({ state: 'detached' });
    assert.equal(await row.getAttribute('data-deactivated'), 'false');

    // Deactivated: Carl's open client is signed out, and his login is refused.
    await row.getByRole('button', { name: `Deactivate ${carl.name}` }).click();
    await panel.locator(`[data-admin-user][data-deactivated="true"]`, { hasText: carl.name }).waitFor();
    await C.page.getByLabel('Phone').waitFor();
    await shot(R.page, 'admin-deactivated');
    await C.page.getByRole('button', { name: 'Log in', exact: true }).first().click();
    await C.page.getByLabel('Phone').fill(carl.phone);
    await C.page.getByLabel('Password').fill(carl.password);
    await C.page.locator('form').getByRole('button', { name: 'Log in' }).click();
    await C.page.getByRole('alert').filter({ hasText: 'deactivated' }).waitFor();

    // Reactivated, then a reset password: the shown one works.
    await row.getByRole('button', { name: `Reactivate ${carl.name}` }).click();
    await panel.locator(`[data-admin-user][data-deactivated="false"]`, { hasText: carl.name }).waitFor();
    await row.getByRole('button', { name: `Reset the password of ${carl.name}` }).click();
    const note = panel.getByRole('status').filter({ hasText: `New password for ${carl.name}: ` });
    await note.waitFor();
    const password = (await note.textContent()).split(': ').pop().trim();
    assert.match(password, /^[A-Za-z0-9_-]{16}$/);
    await C.page.getByLabel('Password').fill(password);
    await C.page.locator('form').getByRole('button', { name: 'Log in' }).click();
    await C.page.getByTestId('conn').filter({ hasText: 'Online' }).waitFor();

    // Every space, private ones included.
    await panel.getByRole('button', { name: 'List spaces' }).click();
    await panel.locator(`[data-admin-space="${spaceId}"]`, { hasText: 'private' }).waitFor();
    await shot(R.page, 'admin-spaces');
    run.noConsoleErrors();
  });
});
