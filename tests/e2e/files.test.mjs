// End-to-end scenario of files and images (issue 17) in the web client: alice sends a PNG with
// the attach button, a text file by drag-and-drop and a screenshot by pasting; bob, on his own
// device, sees the image rendered inline (fetched with his token into a blob: URL), opens and
// closes the lightbox, and downloads the file from its card. Then a photo: bob's list shows its
// thumbnail (made by the server), the lightbox the full image; alice sets a profile picture in
// the Account panel and it replaces her initials in both message lists. Run with scripts/e2e.sh.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Scenarios, newIdentity, register, shot, startDm, waitForMessage } from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;

// A real 3x2 PNG (red pixels), the same bytes as tests/integration/files_test.cpp.
const PNG = Buffer.from(
  '89504e470d0a1a0a0000000d49484452000000030000000208020000001216f14d0000001049444154789c63' +
    'f8cfc00041' +
    '0c70160041d205fb87f0b9480000000049454e44ae426082',
  'hex',
);

/** New users alice and bob, each on a device, with a DM open on both sides after `first`. */
async function dmPair(run, first) {
  const alice = newIdentity('alice');
  const bob = newIdentity('bob');
  const A = await run.device('alice');
  await register(A.page, alice);
  const B = await run.device('bob');
  await register(B.page, bob);
  await startDm(A.page, bob.name);
  await A.page.locator('#composer-input').fill(first);
  await A.page.locator('#composer-input').press('Enter');
  await waitForMessage(A.page, first);
  await B.page.locator('[data-conv^="dm:"]').click();
  await waitForMessage(B.page, first);
  return { A, B };
}

/** A w x h PNG drawn by the page's canvas (left half red, right half blue), as bytes. */
async function canvasPng(page, w, h) {
  const bytes = await page.evaluate(
    async ({ w, h }) => {
      const c = document.createElement('canvas');
      c.width = w;
      c.height = h;
      const g = c.getContext('2d');
      g.fillStyle = '#ff0000';
      g.fillRect(0, 0, w / 2, h);
      g.fillStyle = '#0000ff';
      g.fillRect(w / 2, 0, w - w / 2, h);
      const blob = await new Promise((resolve) => c.toBlob(resolve, 'image/png'));
      return [...new Uint8Array(await blob.arrayBuffer())];
    },
    { w, h },
  );
  return Buffer.from(bytes);
}

/** Waits until the image at `selector` has decoded at naturalWidth x naturalHeight. */
async function decodedAt(page, selector, width, height) {
  await page.waitForFunction(
    ({ selector, width, height }) => {
      const el = document.querySelector(selector);
      return el && el.complete && el.naturalWidth === width && el.naturalHeight === height;
    },
    { selector, width, height },
    { timeout: 15_000 },
  );
}

/** Dispatches a drop (files dragged from the desktop) or a paste of `files` at `selector`. */
async function dispatchFiles(page, selector, kind, files) {
  await page.evaluate(
    ({ selector, kind, files }) => {
      const dt = new DataTransfer();
      for (const f of files) dt.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: f.type }));
      const target = document.querySelector(selector);
      const event =
        kind === 'paste'
          ? new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true })
          : new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true });
      target.dispatchEvent(event);
    },
    { selector, kind, files: files.map((f) => ({ ...f, bytes: [...f.bytes] })) },
  );
}

describe('imd web client: files and images', () => {
  const run = new Scenarios({ name: 'imd-e2e-files', defaultTimeoutMs: 15_000 });
  const { watch } = run;
  before(() => run.start());
  after(() => run.stop());

  test('f) a PNG attached by alice renders on bob\'s side; drop and paste send files too', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'f';
    const { A, B } = await dmPair(run, 'hello bob');

    // The attach button: a file chooser with the PNG.
    const chooser = A.page.waitForEvent('filechooser');
    await A.page.getByRole('button', { name: 'Attach a file' }).click();
    await (await chooser).setFiles({ name: 'red dot.png', mimeType: 'image/png', buffer: PNG });

    // Bob's side: the image, fetched with his token, decoded at its real size.
    const img = B.page.locator('.msg-list .file-image img[alt="red dot.png"]');
    await img.waitFor();
    await B.page.waitForFunction(
      () => {
        const el = document.querySelector('.msg-list .file-image img');
        return el && el.complete && el.naturalWidth === 3 && el.naturalHeight === 2;
      },
      undefined,
      { timeout: 15_000 },
    );
    assert.match(await img.getAttribute('src'), /^blob:/, 'no token in any URL: a blob: URL');
    assert.equal(await img.getAttribute('width'), '3');
    await shot(B.page, 'f-image');

    // The lightbox opens on a click and closes with Escape.
    await B.page.getByRole('button', { name: 'Open image red dot.png' }).click();
    await B.page.locator('.lightbox img').waitFor();
    await shot(B.page, 'f-lightbox');
    await B.page.keyboard.press('Escape');
    await B.page.locator('.lightbox').waitFor({ state: 'detached' });

    // A text file dropped on the conversation: a card with its name and size on bob's side,
    // and its download gives the same bytes.
    const notes = Buffer.from('meeting notes\nline two\n');
    await dispatchFiles(A.page, 'main.pane', 'drop', [{ name: 'notes.txt', type: 'text/plain', bytes: notes }]);
    const card = B.page.locator('.msg-list .file-card', { hasText: 'notes.txt' });
    await card.waitFor();
    assert.match(await card.locator('.file-size').textContent(), /^23 B$/);
    const download = B.page.waitForEvent('download');
    await card.getByRole('button', { name: 'Download notes.txt' }).click();
    const file = await download;
    assert.equal(file.suggestedFilename(), 'notes.txt');
    const path = await file.path();
    const { readFile } = await import('node:fs/promises');
    assert.deepEqual(await readFile(path), notes);

    // A screenshot pasted into the composer is sent as an image.
    await dispatchFiles(A.page, '#composer-input', 'paste', [{ name: 'image.png', type: 'image/png', bytes: PNG }]);
    await B.page.locator('.msg-list .file-image img[alt="image.png"]').waitFor();
    assert.equal(await B.page.locator('.msg-list .file-image').count(), 2);
    run.noConsoleErrors();
  });

  test('g) a photo shows as its thumbnail and opens full size; a profile picture replaces the initials', { timeout: TEST_TIMEOUT_MS }, async () => {
    watch.scenario = 'g';
    const { A, B } = await dmPair(run, 'a photo for you');

    // An 800 x 400 photo: the list shows the server's 360 x 180 thumbnail, the lightbox the
    // full image.
    const photo = await canvasPng(A.page, 800, 400);
    const chooser = A.page.waitForEvent('filechooser');
    await A.page.getByRole('button', { name: 'Attach a file' }).click();
    await (await chooser).setFiles({ name: 'wide.png', mimeType: 'image/png', buffer: photo });
    const thumb = '.msg-list .file-image img[alt="wide.png"]';
    await B.page.locator(thumb).waitFor();
    assert.equal(await B.page.locator(thumb).getAttribute('data-thumb'), 'true');
    await decodedAt(B.page, thumb, 360, 180);
    // The sender's own copy shows it too, as soon as it is sent.
    await decodedAt(A.page, thumb, 360, 180);
    assert.match(await B.page.locator(thumb).getAttribute('src'), /^blob:/);
    await B.page.getByRole('button', { name: 'Open image wide.png' }).click();
    await decodedAt(B.page, '.lightbox img', 800, 400);
    await shot(B.page, 'g-lightbox');
    await B.page.keyboard.press('Escape');
    await B.page.locator('.lightbox').waitFor({ state: 'detached' });

    // Alice's initials give way to her picture: a 128 x 128 square made by the server.
    const myRows = `.msg-list img.avatar`;
    assert.equal(await A.page.locator(myRows).count(), 0);
    await A.page.locator('[data-testid="account"] summary').click();
    await A.page.locator('[data-testid="my-avatar"]').setInputFiles({
      name: 'me.png',
      mimeType: 'image/png',
      buffer: await canvasPng(A.page, 300, 200),
    });
    await A.page.getByText('Profile picture updated.').waitFor();
    await A.page.locator(myRows).first().waitFor();
    await decodedAt(A.page, myRows, 128, 128);
    await shot(A.page, 'g-avatar');

    // Bob sees it once he loads her profile again (a new page).
    await B.page.reload();
    await B.page.locator('[data-conv^="dm:"]').click();
    await waitForMessage(B.page, 'a photo for you');
    const hers = '.msg-list img.avatar';
    await B.page.locator(hers).first().waitFor();
    await decodedAt(B.page, hers, 128, 128);
    // ... and in the conversation list, beside her name.
    await decodedAt(B.page, '[data-conv^="dm:"] img.item-avatar', 128, 128);
    run.noConsoleErrors();
  });
});
