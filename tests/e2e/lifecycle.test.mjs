// End-to-end scenarios of the messages people work with (issue 15) in the web client: edit,
// delete, reactions, replies, typing, mentions and the DM "Seen" mark, between two browser
// contexts against the real imd; and a device that was offline while the other changed
// messages reaches the same state through its resume (`sync` with `changes`), without a reload.
// Run with scripts/e2e.sh.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  createChannel,
  createSpace,
  joinChannel,
  joinSpace,
  newIdentity,
  PHONE,
  recordSent,
  register,
  Scenarios,
  send,
  shot,
  startDm,
  waitForMessage,
  waitOnline,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;

/** The message row whose body shows `text`. */
function row(page, text) {
  return page.locator('.msg-list li.msg:not(.pending)', { has: page.locator('.body', { hasText: text }) });
}

/** Opens the message menu of a row (hover) and clicks one of its buttons. */
async function menu(page, text, button) {
  const r = row(page, text).first();
  await r.hover();
  await r.locator('.msg-actions').getByRole('button', { name: button, exact: true }).click();
}

/** What a page shows of the message at `seq`: body text, quote, reactions. */
async function state(page, seq) {
  const r = page.locator(`.msg-list li.msg[data-seq="${seq}"]`);
  return {
    body: (await r.locator('.body').textContent()).trim(),
    quote: (await r.locator('.reply-quote').count()) ? (await r.locator('.reply-quote').textContent()).trim() : null,
    reactions: await r.locator('.reaction').allTextContents(),
  };
}

describe('imd web client: edit, delete, reactions, replies, typing, mentions', () => {
  const run = new Scenarios({
    extraArgs: ['--ws-heartbeat-s', '2', '--ws-presence-grace-ms', '500'],
    name: 'imd-e2e-lifecycle',
    defaultTimeoutMs: 15_000,
  });
  const { watch } = run;
  /** Two new users, each registered (with its `typing` and `sync` frames recorded) on a device of their own. */
  const pair = async (a, b) => {
    const ids = [newIdentity(a), newIdentity(b)];
    const devices = [];
    for (const [i, who] of [a, b].entries()) {
      const d = await run.device(who);
      // Before the login opens the WebSocket: the frames it sends are recorded.
      d.sent = {
        typing: recordSent(d.page, 'typing'),
        sync: recordSent(d.page, 'sync'),
        presence: recordSent(d.page, 'presence_sub'),
      };
      await register(d.page, ids[i]);
      devices.push(d);
    }
    return [...ids, ...devices];
  };

  before(() => run.start());
  after(() => run.stop());

  test('p) live: menu edit/delete/react/reply, typing line, mention chip and badge, Seen', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'p';
    const [alice, bob, A, B] = await pair('alice', 'bob');
    const typingFrames = B.sent.typing;

    const spaceId = await createSpace(A.page, 'Crew');
    await createChannel(A.page, 'general');
    await joinSpace(B.page, spaceId);
    await joinChannel(B.page, 'general');
    const dmBob = await startDm(A.page, bob.name);
    const bobId = dmBob.slice('dm:'.length);
    await send(A.page, 'first from alice');
    await waitForMessage(A.page, 'first from alice');

    // Bob sits in #general: a mention in the DM shows as an @ badge beside its unread count.
    await send(A.page, `ping <@${bobId}> please`);
    const dmItem = B.page.locator('[data-conv^="dm:"]');
    await dmItem.locator('.mention-badge', { hasText: '@1' }).waitFor();
    await shot(B.page, 'p-mention-badge');

    await dmItem.click();
    await B.page.locator('.mention', { hasText: `@${bob.name}` }).waitFor(); // <@id> as a chip
    assert.equal(await B.page.locator('.body', { hasText: `<@${bobId}>` }).count(), 0);
    await dmItem.locator('.mention-badge').waitFor({ state: 'detached' }); // read

    // Typing: alice sees the line; bob's keystrokes send one frame per 2 s at most.
    const box = B.page.locator('#composer-input');
    await box.pressSequentially('typing away', { delay: 30 });
    await A.page.locator('.typing-line', { hasText: `${bob.name} is typing…` }).waitFor();
    const spanMs = typingFrames.length > 1 ? typingFrames.at(-1).at - typingFrames[0].at : 0;
    assert.ok(typingFrames.length >= 1, 'typing sent');
    assert.ok(typingFrames.length <= 1 + Math.floor(spanMs / 2000), `${typingFrames.length} typing frames in ${spanMs} ms`);
    await box.fill('');

    // Reply: the quoted original above the composer and in the message.
    await menu(B.page, 'first from alice', 'Reply');
    await B.page.locator('.reply-bar', { hasText: 'first from alice' }).waitFor();
    await send(B.page, 'an answer from bob');
    await B.page.locator('.reply-bar').waitFor({ state: 'detached' });
    const answer = row(A.page, 'an answer from bob');
    await answer.locator('.reply-quote', { hasText: `${alice.name}: first from alice` }).waitFor();
    await A.page.locator('.typing-line', { hasText: 'typing' }).waitFor({ state: 'detached' }); // his message ends it

    // React: a chip with its count on both sides; a second click takes it back.
    await menu(A.page, 'an answer from bob', 'React 🎉');
    await row(B.page, 'an answer from bob').locator('.reaction', { hasText: '🎉 1' }).waitFor();
    await menu(B.page, 'an answer from bob', 'React 🎉');
    await row(A.page, 'an answer from bob').locator('.reaction', { hasText: '🎉 2' }).waitFor();
    await row(B.page, 'an answer from bob').locator('.reaction[aria-pressed="true"]').click();
    await row(A.page, 'an answer from bob').locator('.reaction', { hasText: '🎉 1' }).waitFor();

    // Seen: bob has read the DM: alice's newest message he read carries the mark.
    await A.page.locator('.msg-list li.msg.mine .seen-mark', { hasText: 'Seen' }).waitFor();

    // Edit inline from the menu: Escape cancels, Enter saves; "(edited)" on both sides.
    await menu(A.page, 'first from alice', 'Edit');
    const edit = A.page.locator('.edit-box');
    await edit.fill('not this');
    await edit.press('Escape');
    await edit.waitFor({ state: 'detached' });
    await row(A.page, 'first from alice').waitFor();
    await menu(A.page, 'first from alice', 'Edit');
    await edit.fill('first from alice, edited');
    await edit.press('Enter');
    await row(B.page, 'first from alice, edited').locator('.edited').waitFor();
    assert.equal(await row(B.page, 'first from alice, edited').locator('.body').textContent(), 'first from alice, edited(edited)');
    // The reply now quotes the edited original.
    await row(B.page, 'an answer from bob').locator('.reply-quote', { hasText: 'first from alice, edited' }).waitFor();
    await shot(A.page, 'p-edit-react-reply');

    // Delete (confirmed): the placeholder on both sides, the reply's quote says "deleted".
    A.page.once('dialog', (d) => void d.accept());
    await menu(A.page, 'first from alice, edited', 'Delete');
    await B.page.locator('.msg-list li.msg.deleted .body', { hasText: 'message deleted' }).waitFor();
    await row(B.page, 'an answer from bob').locator('.reply-quote', { hasText: 'deleted' }).waitFor();
    await A.page.locator('.msg-list li.msg.deleted').waitFor();
    assert.equal(await B.page.locator('.body', { hasText: 'first from alice, edited' }).count(), 0);
    await shot(B.page, 'p-deleted-placeholder');
    run.noConsoleErrors();
  });

  test('q) a device offline while the other edits, deletes and reacts catches up without a reload', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'q';
    const [, dave, C, D] = await pair('carol', 'dave');
    await startDm(C.page, dave.name);
    for (const t of ['one to edit', 'two to delete', 'three to react to', 'four stays']) {
      await send(C.page, t);
      await waitForMessage(C.page, t);
    }
    await D.page.locator('[data-conv^="dm:"]').click();
    await waitForMessage(D.page, 'four stays');
    const seqOf = async (text) => Number(await row(D.page, text).getAttribute('data-seq'));
    const [s1, s2, s3, s4] = [await seqOf('one to edit'), await seqOf('two to delete'), await seqOf('three to react to'), await seqOf('four stays')];
    await D.page.evaluate(() => { window.__noReload = true; });
    const syncs = D.sent.sync;

    watch.allowNetworkErrors = true;
    await D.context.setOffline(true);
    await D.page.getByTestId('conn').filter({ hasText: 'Offline' }).waitFor({ timeout: 10_000 });

    // While dave is away: carol edits (↑ in the empty composer), deletes, reacts, edits again.
    const box = C.page.locator('#composer-input');
    await send(C.page, 'five, the newest');
    await waitForMessage(C.page, 'five, the newest');
    await box.press('ArrowUp'); // edits her newest message
    await C.page.locator('.edit-box').fill('five, edited by arrow up');
    await C.page.locator('.edit-box').press('Enter');
    await row(C.page, 'five, edited by arrow up').locator('.edited').waitFor();
    await menu(C.page, 'one to edit', 'Edit');
    await C.page.locator('.edit-box').fill('one, edited while dave was away');
    await C.page.locator('.edit-box').press('Enter');
    await row(C.page, 'one, edited while dave was away').waitFor();
    C.page.once('dialog', (d) => void d.accept());
    await menu(C.page, 'two to delete', 'Delete');
    await C.page.locator(`.msg-list li.msg.deleted[data-seq="${s2}"]`).waitFor();
    await menu(C.page, 'three to react to', 'React 👍');
    await menu(C.page, 'three to react to', 'React ❤️');
    await row(C.page, 'three to react to').locator('.reaction', { hasText: '❤️ 1' }).waitFor();
    await row(C.page, 'three to react to').locator('.reaction', { hasText: '👍 1' }).click(); // taken back
    await row(C.page, 'three to react to').locator('.reaction', { hasText: '👍' }).waitFor({ state: 'detached' });
    // Still offline: dave's page shows none of it.
    assert.equal((await state(D.page, s1)).body, 'one to edit');

    await D.context.setOffline(false);
    await waitOnline(D.page, 15_000);
    const five = s4 + 1;
    const want = async (page) => ({
      one: await state(page, s1),
      two: await state(page, s2),
      three: await state(page, s3),
      four: await state(page, s4),
      five: await state(page, five),
    });
    // Dave reaches carol's state: same bodies, marks, placeholder and chips.
    await row(D.page, 'one, edited while dave was away').waitFor();
    await D.page.locator(`.msg-list li.msg.deleted[data-seq="${s2}"]`).waitFor();
    await row(D.page, 'three to react to').locator('.reaction', { hasText: '❤️ 1' }).waitFor();
    await row(D.page, 'five, edited by arrow up').waitFor();
    const [onC, onD] = [await want(C.page), await want(D.page)];
    assert.deepEqual(onD, onC);
    assert.equal(onD.one.body, 'one, edited while dave was away(edited)');
    assert.equal(onD.two.body, 'message deleted');
    assert.deepEqual(onD.three.reactions, ['❤️ 1']);
    assert.equal(onD.five.body, 'five, edited by arrow up(edited)');
    assert.equal(await D.page.evaluate(() => window.__noReload), true, 'no reload');
    // The resume named a change cursor beside the message cursor.
    assert.ok(syncs.some((f) => Object.keys(f.changes ?? {}).length === 1 && Object.keys(f.cursors).length === 1),
      `sync frames: ${JSON.stringify(syncs)}`);
    const seqsShown = await D.page.locator('.msg-list li.msg[data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
    assert.deepEqual(seqsShown, [s1, s2, s3, s4, five], 'no duplicates, nothing lost');
    await shot(D.page, 'q-offline-caught-up');
    watch.allowNetworkErrors = false;
    run.noConsoleErrors();
  });

  test('r) presence dots on the DM list and the member list, watched only while shown', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'r';
    const [, frank, E, F] = await pair('erin', 'frank');
    const subs = E.sent.presence;
    const spaceId = await createSpace(E.page, 'Lobby');
    await joinSpace(F.page, spaceId);
    const dm = await startDm(E.page, frank.name);
    const frankId = dm.slice('dm:'.length);
    const dot = E.page.locator(`[data-conv="${dm}"] .presence`);
    await dot.and(E.page.locator('[data-presence="online"]')).waitFor();
    // The member list shows dots while open, and is watched only then.
    await E.page.locator('details.members > summary').click();
    const memberDot = E.page.locator(`[data-member="${frankId}"] .presence`);
    await memberDot.and(E.page.locator('[data-presence="online"]')).waitFor();
    await E.page.locator('[data-member] .presence[data-presence="online"]').nth(1).waitFor(); // erin herself
    await shot(E.page, 'r-presence-dots');
    assert.ok(subs.some((f) => f.users.includes(frankId)), `presence_sub frames: ${JSON.stringify(subs)}`);
    // Closed: the subscription narrows to what is still shown, the DM peer.
    await E.page.locator('details.members > summary').click();
    for (const until = Date.now() + 10_000; JSON.stringify(subs.at(-1).users) !== JSON.stringify([frankId]);) {
      assert.ok(Date.now() < until, `presence_sub frames: ${JSON.stringify(subs)}`);
      await E.page.waitForTimeout(50);
    }
    // Frank's only device goes: offline on erin's DM entry after the grace.
    await F.page.close();
    await dot.and(E.page.locator('[data-presence="offline"]')).waitFor();
    run.noConsoleErrors();
  });

  test('s) @-autocomplete, @channel from the owner, the owner deletes a member\'s message, read receipts off', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 's';
    const [gina, hal, G, H] = await pair('gina', 'hal');
    const spaceId = await createSpace(G.page, 'Standup');
    const general = await createChannel(G.page, 'daily');
    await joinSpace(H.page, spaceId);
    await joinChannel(H.page, 'daily');
    // Hal looks at another conversation: the channel's badges show in the sidebar.
    await startDm(H.page, gina.name);
    const box = G.page.locator('#composer-input');
    await box.pressSequentially(`hi @${hal.name.slice(0, 3)}`, { delay: 20 });
    const list = G.page.getByRole('listbox', { name: 'Mention' });
    await list.getByRole('option', { name: `@${hal.name}` }).waitFor();
    await shot(G.page, 's-autocomplete');
    await box.press('Enter'); // picks, does not send
    assert.match(await box.inputValue(), /^hi <@\d+> $/);
    await box.press('Enter');
    await G.page.locator('.msg-list .mention', { hasText: `@${hal.name}` }).waitFor();
    const item = H.page.locator(`[data-conv="${general}"]`);
    await item.locator('.mention-badge', { hasText: '@1' }).waitFor();
    // The owner may use @channel: offered, inserted as <!channel>, counted for hal.
    await box.pressSequentially('@cha', { delay: 20 });
    await list.getByRole('option', { name: /@channel/ }).click();
    assert.equal(await box.inputValue(), '<!channel> ');
    await box.pressSequentially('standup now', { delay: 10 });
    await box.press('Enter');
    await G.page.locator('.msg-list .mention-all', { hasText: '@channel' }).waitFor();
    await item.locator('.mention-badge', { hasText: '@2' }).waitFor();
    // Hal, a plain member, is offered no @channel.
    await item.click();
    const hbox = H.page.locator('#composer-input');
    await hbox.pressSequentially('@', { delay: 20 });
    await H.page.getByRole('listbox', { name: 'Mention' }).waitFor();
    assert.equal(await H.page.getByRole('option', { name: /@channel|@here/ }).count(), 0);
    await hbox.press('Escape');
    await H.page.getByRole('listbox', { name: 'Mention' }).waitFor({ state: 'detached' });

    // Moderation: the owner deletes hal's message from the menu; hal cannot delete hers.
    await hbox.fill('');
    await send(H.page, 'a message from hal');
    await row(G.page, 'a message from hal').waitFor();
    await row(H.page, 'hi').first().hover();
    assert.equal(await row(H.page, 'hi').first().locator('.msg-actions').getByRole('button', { name: 'Delete', exact: true }).count(), 0);
    G.page.once('dialog', (dlg) => void dlg.accept());
    await menu(G.page, 'a message from hal', 'Delete');
    await H.page.locator('.msg-list li.msg.deleted .body', { hasText: 'message deleted' }).waitFor();
    assert.equal(await H.page.locator('.body', { hasText: 'a message from hal' }).count(), 0);

    // Read receipts off in the Account panel: stored on the server (a reload shows it off).
    await H.page.getByTestId('account').locator('summary').click();
    const receipts = H.page.getByRole('checkbox', { name: /Read receipts/ });
    assert.equal(await receipts.isChecked(), true);
    const saved = H.page.waitForResponse((r) => r.url().endsWith('/api/v1/users/me') && r.request().method() === 'PATCH');
    await receipts.uncheck();
    assert.equal((await saved).status(), 200);
    await H.page.reload();
    await waitOnline(H.page);
    await H.page.getByTestId('account').locator('summary').click();
    assert.equal(await H.page.getByRole('checkbox', { name: /Read receipts/ }).isChecked(), false);
    run.noConsoleErrors();
  });

  test('t) on a phone (no hover), a long press opens the message menu; a tap does not', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 't';
    const ids = [newIdentity('ivo'), newIdentity('jun')];
    const I = await run.device('ivo');
    await register(I.page, ids[0]);
    const J = await run.device('jun (phone)', PHONE);
    await register(J.page, ids[1]);
    const spaceId = await createSpace(I.page, 'Space T');
    await createChannel(I.page, 'general');
    await joinSpace(J.page, spaceId);
    await joinChannel(J.page, 'general');
    await send(I.page, 'a tap leaves me alone');
    await send(I.page, 'hold me to react');
    await waitForMessage(J.page, 'hold me to react');

    // Real touch input (CDP), not synthetic DOM events: what the phone's browser receives.
    const cdp = await J.context.newCDPSession(J.page);
    const touch = async (type, text) => {
      const box = await row(J.page, text).locator('.body').boundingBox();
      const at = { x: Math.round(box.x + box.width / 2), y: Math.round(box.y + box.height / 2) };
      await cdp.send('Input.dispatchTouchEvent', { type, touchPoints: type === 'touchEnd' ? [] : [at] });
    };
    // A tap on the first message, then a long press on the second: only the second opens (had
    // the tap started a press, its menu would have opened first).
    await touch('touchStart', 'a tap leaves me alone');
    await touch('touchEnd', 'a tap leaves me alone');
    await touch('touchStart', 'hold me to react');
    const held = row(J.page, 'hold me to react');
    await J.page.locator('.msg-list li.msg.menu-open').waitFor(); // opens while the finger rests
    await touch('touchEnd', 'hold me to react');
    assert.equal(await J.page.locator('.msg-list li.msg.menu-open').count(), 1, 'only the held message');
    assert.equal(await held.evaluate((e) => e.classList.contains('menu-open')), true);
    await shot(J.page, 't-long-press-menu-phone');
    await held.locator('.msg-actions').getByRole('button', { name: 'React 👍', exact: true }).tap();
    await row(I.page, 'hold me to react').locator('.reaction', { hasText: '👍 1' }).waitFor();
    assert.equal(await held.evaluate((e) => e.classList.contains('menu-open')), false, 'closed after the choice');
    run.noConsoleErrors();
  });
});
