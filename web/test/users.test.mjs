// src/model/users.ts: profiles fetched once on first sight; a name awaited (notification titles).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { model } from './fakes.mjs';

const { Users } = model('users');

describe('users', () => {
  test('a name is "…" until fetched, then cached; one fetch however often asked', async () => {
    const asked = [];
    const users = new Users(async (id) => { asked.push(id); return { id, name: `name ${id}`, avatar: '', created_at: 0 }; }, () => {});
    assert.equal(users.name('5'), '…');
    assert.equal(await users.nameWhenKnown('5'), 'name 5');
    assert.equal(users.name('5'), 'name 5');
    assert.deepEqual(asked, ['5']);
  });

  test('nameWhenKnown waits for the fetch; a failed fetch names the user by id', async () => {
    let release;
    const users = new Users((id) => (id === '9' ? Promise.reject(new Error('404')) : new Promise((r) => { release = () => r({ id, name: 'Ada', avatar: '', created_at: 0 }); })), () => {});
    const pending = users.nameWhenKnown('3');
    const again = users.nameWhenKnown('3');
    release();
    assert.deepEqual(await Promise.all([pending, again]), ['Ada', 'Ada']);
    assert.equal(await users.nameWhenKnown('9'), 'user 9');
    users.put({ id: '4', name: 'Bo', avatar: '', created_at: 0 });
    assert.equal(await users.nameWhenKnown('4'), 'Bo');
  });
});

describe('users: logout', () => {
  test('after clear() a user seen before is fetched again (not "…" forever)', async () => {
    let n = 0;
    const users = new Users(async (id) => ({ id, name: `v${++n}`, avatar: '', created_at: 0 }), () => {});
    assert.equal(await users.nameWhenKnown('1'), 'v1');
    users.clear();
    assert.equal(users.name('1'), '…');
    assert.equal(await users.nameWhenKnown('1'), 'v2');
  });

  test("a stored list's profile gives way to the server's list; a fetched one stays", () => {
    const users = new Users(async (id) => ({ id, name: `name ${id}`, avatar: '', created_at: 0 }), () => {});
    users.rememberStale({ id: '5', name: 'Old', avatar: '', created_at: 0 });
    assert.equal(users.name('5'), 'Old', 'shown until the server answers, no fetch');
    users.remember({ id: '5', name: 'New', avatar: 'a.png', created_at: 0 });
    assert.equal(users.avatar('5'), 'a.png');
    users.remember({ id: '5', name: 'Newer', avatar: '', created_at: 0 });
    assert.equal(users.name('5'), 'New', 'a held profile stays');
    users.put({ id: '6', name: 'Six', avatar: '', created_at: 0 });
    users.rememberStale({ id: '6', name: 'Old six', avatar: '', created_at: 0 });
    assert.equal(users.name('6'), 'Six');
  });
});
