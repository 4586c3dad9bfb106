// End-to-end: emoji never show as boxes (issue 18). The client ships Twemoji (a COLR font, from
// npm's twemoji-colr-font) as an @font-face with a unicode-range over the emoji blocks; Chromium
// runs here with a fontconfig that refuses every colour font of the system, so the font must come
// from imd. Its own server and browser.
// Run with scripts/e2e.sh (with the other files), or: node --test tests/e2e/emoji.test.mjs

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Scenarios, createChannel, createSpace, newIdentity, register, send, shot, waitForMessage } from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;
const TEXT = 'thumbs 👍 party 🎉 heart ❤️ family 👨‍👩‍👧 flag 🇫🇷';

// The system's fonts less every colour font (Noto Color Emoji, Twemoji, JoyPixels …): a machine
// without an emoji font, whatever this one has installed.
const fontDir = mkdtempSync(join(tmpdir(), 'imd-e2e-fonts-'));
writeFileSync(
  join(fontDir, 'fonts.conf'),
  `<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "fonts.dtd">
<fontconfig>
  <include ignore_missing="yes">/etc/fonts/fonts.conf</include>
  <cachedir>${fontDir}/cache</cachedir>
  <selectfont><rejectfont><pattern><patelt name="color"><bool>true</bool></patelt></pattern></rejectfont></selectfont>
</fontconfig>
`,
);

/** The page's `imd-emoji` faces' statuses and the font files it fetched. */
function emojiFontState(page) {
  return page.evaluate(() => ({
    faces: [...document.fonts].filter((f) => f.family.replace(/["']/g, '') === 'imd-emoji').map((f) => f.status),
    fetched: performance.getEntriesByType('resource').map((e) => e.name).filter((n) => /\.woff2$/.test(n)),
  }));
}

/**
 * Pixels of `text` drawn on a canvas in `family` that are coloured (not grey): a colour emoji
 * glyph has many, a tofu box or a monochrome glyph none. Also the drawn width.
 */
function colourPixels(page, family, text) {
  return page.evaluate(
    ({ family, text }) => {
      const c = document.createElement('canvas');
      c.width = 96;
      c.height = 96;
      const ctx = c.getContext('2d');
      ctx.font = `64px ${family}`;
      ctx.textBaseline = 'top';
      ctx.fillStyle = '#000';
      ctx.fillText(text, 8, 8);
      const d = ctx.getImageData(0, 0, c.width, c.height).data;
      let coloured = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i + 3] > 128 && Math.max(d[i], d[i + 1], d[i + 2]) - Math.min(d[i], d[i + 1], d[i + 2]) > 60) coloured++;
      }
      return { coloured, width: ctx.measureText(text).width };
    },
    { family, text },
  );
}

describe('imd web client: emoji font', () => {
  const run = new Scenarios({
    name: 'imd-e2e-emoji',
    defaultTimeoutMs: 20_000,
    browserOptions: { env: { ...process.env, FONTCONFIG_FILE: join(fontDir, 'fonts.conf') } },
  });
  before(() => run.start());
  after(async () => {
    await run.stop();
    rmSync(fontDir, { recursive: true, force: true });
  });

  test('x) emoji are drawn in colour from the font imd serves, fetched only once one is on screen', { timeout: TEST_TIMEOUT_MS }, async () => {
    run.watch.scenario = 'x';
    const A = await run.device('amy', { viewport: { width: 1280, height: 800 } });
    // The login form has no emoji: the font is declared, not fetched.
    await A.page.getByRole('button', { name: 'Register' }).waitFor();
    assert.deepEqual(await emojiFontState(A.page), { faces: ['unloaded'], fetched: [] });

    await register(A.page, newIdentity('amy'));
    await createSpace(A.page, 'Emoji');
    await createChannel(A.page, 'general');
    await send(A.page, TEXT);
    await waitForMessage(A.page, 'thumbs');
    const body = A.page.locator('.msg-list li.msg:not(.pending) .body', { hasText: 'thumbs' });
    await A.page.waitForFunction(() => [...document.fonts].some((f) => f.family.replace(/["']/g, '') === 'imd-emoji' && f.status === 'loaded'));
    const state = await emojiFontState(A.page);
    assert.equal(state.fetched.length, 1, `one font file: ${state.fetched}`);
    assert.match(state.fetched[0], /\/assets\/twemoji-[\w-]+\.woff2$/);

    // Served like the other hashed assets: cached for a year, immutable, with its type.
    const headers = await A.page.evaluate(async (url) => {
      const r = await fetch(url);
      return { status: r.status, type: r.headers.get('content-type'), cache: r.headers.get('cache-control') };
    }, state.fetched[0]);
    assert.deepEqual(headers, { status: 200, type: 'font/woff2', cache: 'public, max-age=31536000, immutable' });

    // The message's text is laid out with the web font (Chromium's own account of the fonts it
    // used for the node: the font's name is Twemoji's, a custom font, one glyph per emoji).
    const cdp = await A.context.newCDPSession(A.page);
    await cdp.send('DOM.enable');
    await cdp.send('CSS.enable');
    const { root } = await cdp.send('DOM.getDocument', { depth: -1 });
    const { nodeId } = await cdp.send('DOM.querySelector', { nodeId: root.nodeId, selector: '.msg-list li.msg:not(.pending) .body' });
    const { fonts } = await cdp.send('CSS.getPlatformFontsForNode', { nodeId });
    const custom = fonts.filter((f) => f.isCustomFont);
    assert.equal(custom.length, 1, `fonts used: ${JSON.stringify(fonts)}`);
    assert.match(custom[0].familyName, /twemoji/i);
    assert.ok(custom[0].glyphCount >= 5, `emoji glyphs from the web font: ${JSON.stringify(fonts)}`);

    // And drawn in colour, where the system's fonts alone draw a box (no colour, another width).
    const family = await body.evaluate((e) => getComputedStyle(e).fontFamily);
    assert.match(family, /^"?imd-emoji"?,/);
    const withFont = await colourPixels(A.page, family, '👍');
    const systemOnly = await colourPixels(A.page, 'sans-serif', '👍');
    assert.equal(systemOnly.coloured, 0, 'the system has no colour emoji font (the check would prove nothing)');
    assert.ok(withFont.coloured > 200, `coloured pixels of 👍: ${withFont.coloured}`);
    assert.notEqual(Math.round(withFont.width), Math.round(systemOnly.width), 'not the width of the box');
    // Digits and Latin text stay in the text font: the emoji ranges leave them out.
    const digits = await colourPixels(A.page, family, '123');
    assert.equal(digits.coloured, 0);
    await shot(A.page, 'x-emoji');
    run.noConsoleErrors();
  });
});
