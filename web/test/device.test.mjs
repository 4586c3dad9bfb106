// src/text/device.ts: the session list's device names and "last active" words.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { text } from './fakes.mjs';

const { deviceName, lastActive } = text('device');

describe('deviceName', () => {
  test('names the browser and the system of common agents', () => {
    assert.equal(deviceName('Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'), 'Firefox on Linux');
    assert.equal(deviceName('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Edg/120.0'), 'Edge on Windows');
    assert.equal(deviceName('Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1'), 'Safari on iOS');
    assert.equal(deviceName('Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36'), 'Chrome on Android');
    assert.equal(deviceName('Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15'), 'Safari on macOS');
  });
  test('shortens what it does not know, and names no agent', () => {
    assert.equal(deviceName('imbench/1.0'), 'imbench/1.0');
    assert.equal(deviceName('x'.repeat(100)).length, 40);
    assert.equal(deviceName(''), 'Unknown device');
    assert.equal(deviceName('   '), 'Unknown device');
  });
});

describe('lastActive', () => {
  test('counts minutes, hours, then days', () => {
    const now = 1_000_000_000;
    assert.equal(lastActive(now - 10_000, now), 'just now');
    assert.equal(lastActive(now - 60_000, now), '1 minute ago');
    assert.equal(lastActive(now - 5 * 60_000, now), '5 minutes ago');
    assert.equal(lastActive(now - 3 * 3_600_000, now), '3 hours ago');
    assert.equal(lastActive(now - 49 * 3_600_000, now), '2 days ago');
  });
});
