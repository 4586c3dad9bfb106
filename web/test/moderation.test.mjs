// src/model/moderation.ts: who sees which control (the role matrix of docs/security.md), the
// route a delete takes, the invitation form's request and description, the blocked list.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { model } from './fakes.mjs';

const { manages, mayRemove, mayChangeChannel, deleteRoute, inviteRequest, describeInvite, INVITE_EXPIRIES, Blocks } =
  model('moderation');

describe('moderation', () => {
  test('admins and the owner manage a space; a member, an unknown role or none does not', () => {
    assert.equal(manages('owner'), true);
    assert.equal(manages('admin'), true);
    for (const r of ['member', null, undefined, 'guest']) assert.equal(manages(r), false, String(r));
  });

  test('remove and ban: only a role above the target\'s, never oneself, never the owner', () => {
    assert.equal(mayRemove('admin', 'member', false), true);
    assert.equal(mayRemove('admin', undefined, false), true, 'no role listed: a member');
    assert.equal(mayRemove('admin', 'admin', false), false);
    assert.equal(mayRemove('owner', 'admin', false), true);
    assert.equal(mayRemove('owner', 'owner', false), false);
    assert.equal(mayRemove('admin', 'owner', false), false);
    assert.equal(mayRemove('member', 'member', false), false);
    assert.equal(mayRemove('owner', 'member', true), false, 'leaving is not removing');
    assert.equal(mayRemove(null, 'member', false), false, 'role still being fetched');
  });

  test('a channel is changed by its creator and by the space\'s admins and owner', () => {
    assert.equal(mayChangeChannel('member', '7', '7'), true);
    assert.equal(mayChangeChannel('member', '7', '8'), false);
    assert.equal(mayChangeChannel('admin', '7', '8'), true);
    assert.equal(mayChangeChannel('owner', '7', '8'), true);
    assert.equal(mayChangeChannel(null, '7', undefined), false);
  });

  test('a delete goes over the socket for one\'s own and as a moderator, over REST as a server admin', () => {
    const who = (o) => ({ me: '1', moderator: false, serverAdmin: false, ...o });
    assert.equal(deleteRoute({ from: '1' }, who({})), 'own');
    assert.equal(deleteRoute({ from: '1' }, who({ serverAdmin: true })), 'own');
    assert.equal(deleteRoute({ from: '2' }, who({})), null);
    assert.equal(deleteRoute({ from: '2' }, who({ moderator: true, serverAdmin: true })), 'moderator');
    assert.equal(deleteRoute({ from: '2' }, who({ serverAdmin: true })), 'admin');
    assert.equal(deleteRoute({ from: '2', deleted: true }, who({ serverAdmin: true })), null, 'already deleted');
    assert.equal(deleteRoute({ from: '2' }, who({ me: undefined, serverAdmin: true })), null, 'logged out');
  });

  test('an invitation request: whole uses 1..10000, an expiry the server takes', () => {
    assert.deepEqual(inviteRequest(' 5 ', 3600), { max_uses: 5, expires_in_s: 3600 });
    assert.deepEqual(inviteRequest('10000', 2_592_000), { max_uses: 10000, expires_in_s: 2_592_000 });
    for (const bad of ['0', '10001', '2.5', '-1', '', 'ten', '1e3']) {
      assert.match(inviteRequest(bad, 3600).error ?? '', /^Uses: a whole number from 1 to 10,000\.$/, bad);
    }
    assert.match(inviteRequest('1', 59).error, /Expiry/);
    assert.match(inviteRequest('1', 2_592_001).error, /Expiry/);
    for (const x of INVITE_EXPIRIES) assert.ok(!('error' in inviteRequest('1', x.seconds)), x.label);
  });

  test('an invitation is described by its time and uses left', () => {
    const now = 1_000_000_000_000;
    const inv = (ms, max, uses) => ({ expires_at: now + ms, max_uses: max, uses });
    assert.equal(describeInvite(inv(7 * 86_400_000, 100, 3), now), 'expires in 7 days · 97 of 100 uses left');
    assert.equal(describeInvite(inv(86_400_000 + 5, 1, 0), now), 'expires in 1 day · 1 of 1 use left');
    assert.equal(describeInvite(inv(2 * 3_600_000 + 1, 5, 5), now), 'expires in 2 hours · 0 of 5 uses left');
    assert.equal(describeInvite(inv(90_000, 5, 9), now), 'expires in 1 minute · 0 of 5 uses left');
    assert.equal(describeInvite(inv(30_000, 5, 0), now), 'expires in less than a minute · 5 of 5 uses left');
    assert.equal(describeInvite(inv(0, 5, 0), now), 'expired · 5 of 5 uses left');
  });

  test('blocks: loaded from the server, then kept as blocks and unblocks are accepted', () => {
    const b = new Blocks();
    assert.equal(b.loaded, false);
    b.set([{ user_id: '4', name: 'Dan', blocked_at: 1 }]);
    assert.equal(b.loaded, true);
    assert.equal(b.has('4'), true);
    b.put('5', 'Eve', true);
    b.put('5', 'Eve', true); // idempotent, as the server
    assert.deepEqual(b.all().map((x) => x.user_id), ['4', '5']);
    b.put('4', 'Dan', false);
    assert.equal(b.has('4'), false);
    assert.deepEqual(b.all(), [{ user_id: '5', name: 'Eve' }]);
    b.clear();
    assert.equal(b.loaded, false);
    assert.equal(b.has('5'), false);
  });
});
