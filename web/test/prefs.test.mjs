// src/model/prefs.ts: per-user mute, sound and desktop-notification settings kept in storage,
// and what one incoming message does (notification, sound, nothing).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryStore, model } from './fakes.mjs';

const { Prefs, MAX_MUTED, alertFor, spaceMuteKey } = model('prefs');

describe('prefs', () => {
  test('defaults: nothing muted, sound and notifications on', () => {
    const p = new Prefs(new MemoryStore());
    p.open('7');
    assert.equal(p.muted('channel:1'), false);
    assert.equal(p.sound, true);
    assert.equal(p.desktop, true);
  });

  test('kept per user across page loads; another user has their own', () => {
    const store = new MemoryStore();
    const a = new Prefs(store);
    a.open('7');
    a.setMuted('channel:1', true);
    a.set('sound', false);
    a.set('desktop', false);
    const reloaded = new Prefs(store);
    reloaded.open('7');
    assert.equal(reloaded.muted('channel:1'), true);
    assert.equal(reloaded.muted('dm:2'), false);
    assert.equal(reloaded.sound, false);
    assert.equal(reloaded.desktop, false);
    const other = new Prefs(store);
    other.open('8');
    assert.equal(other.muted('channel:1'), false);
    assert.equal(other.sound, true);
  });

  test('unmuting and the defaults leave nothing stored; a stored value that does not parse is dropped', () => {
    const store = new MemoryStore();
    const p = new Prefs(store);
    p.open('7');
    p.setMuted('channel:1', true);
    p.setMuted('channel:1', false);
    p.set('sound', false);
    p.set('sound', true);
    assert.equal(store.getItem('imd.prefs.7'), null);
    store.setItem('imd.prefs.7', '{nope');
    p.open('7');
    assert.equal(p.muted('channel:1'), false);
    assert.equal(store.getItem('imd.prefs.7'), null);
  });

  test('a muted space mutes its channels, not DMs nor other spaces; kept across page loads', () => {
    const store = new MemoryStore();
    const p = new Prefs(store);
    p.open('7');
    p.setMuted(spaceMuteKey('5'), true);
    const reloaded = new Prefs(store);
    reloaded.open('7');
    assert.equal(reloaded.muted(spaceMuteKey('5')), true);
    assert.equal(reloaded.mutedIn('channel:1', '5'), true);
    assert.equal(reloaded.mutedIn('channel:2', '6'), false);
    assert.equal(reloaded.mutedIn('dm:3'), false);
    assert.equal(reloaded.muted('channel:1'), false, 'the channel itself stays unmuted');
    // A channel muted on its own stays muted when the space is unmuted.
    reloaded.setMuted('channel:2', true);
    reloaded.setMuted(spaceMuteKey('6'), true);
    reloaded.setMuted(spaceMuteKey('6'), false);
    assert.equal(reloaded.mutedIn('channel:2', '6'), true);
    assert.equal(reloaded.mutedIn('channel:4', '6'), false);
    // The space key never names a conversation.
    assert.equal(reloaded.mutedIn(spaceMuteKey('5')), true);
    assert.ok(!spaceMuteKey('5').startsWith('channel:') && !spaceMuteKey('5').startsWith('dm:'));
    reloaded.setMuted(spaceMuteKey('5'), false);
    assert.equal(new Prefs(store).mutedIn('channel:1', '5'), false);
    const again = new Prefs(store);
    again.open('7');
    assert.equal(again.mutedIn('channel:1', '5'), false);
  });

  test('bounded: past MAX_MUTED the oldest mute goes', () => {
    const p = new Prefs(new MemoryStore());
    p.open('7');
    for (let i = 0; i <= MAX_MUTED; i++) p.setMuted(`channel:${i}`, true);
    assert.equal(p.muted('channel:0'), false);
    assert.equal(p.muted(`channel:${MAX_MUTED}`), true);
  });

  test('storage that throws: the setting holds for the page', () => {
    const store = new MemoryStore();
    store.setItem = () => { throw new Error('QuotaExceededError'); };
    const p = new Prefs(store);
    p.open('7');
    p.setMuted('dm:3', true);
    assert.equal(p.muted('dm:3'), true);
  });
});

describe('alertFor', () => {
  const base = { direct: true, muted: false, visible: true, seeing: true, open: true, sound: true, desktop: true };
  const none = { notify: false, sound: false };

  test('a DM or mention in the open conversation the user looks at: nothing', () => {
    assert.deepEqual(alertFor(base), none);
  });

  test('another conversation open: a sound, no notification while the user sees the page', () => {
    assert.deepEqual(alertFor({ ...base, open: false }), { notify: false, sound: true });
  });

  test('the tab hidden: a notification and a sound', () => {
    assert.deepEqual(alertFor({ ...base, visible: false, seeing: false }), { notify: true, sound: true });
  });

  test('the window unfocused with the conversation open: a notification, no sound', () => {
    assert.deepEqual(alertFor({ ...base, seeing: false }), { notify: true, sound: false });
  });

  test('muted, or neither a DM nor a mention: nothing at all', () => {
    assert.deepEqual(alertFor({ ...base, visible: false, seeing: false, muted: true }), none);
    assert.deepEqual(alertFor({ ...base, visible: false, seeing: false, direct: false }), none);
  });

  test('sound off, notifications off: each alone', () => {
    const away = { ...base, visible: false, seeing: false };
    assert.deepEqual(alertFor({ ...away, sound: false }), { notify: true, sound: false });
    assert.deepEqual(alertFor({ ...away, desktop: false }), { notify: false, sound: true });
  });
});
