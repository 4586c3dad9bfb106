// First paint of a returning user, measured in Chromium against the real imd: a user with a
// stored session (two spaces, a few channels and DMs, a conversation open) reloads the page
// LOADS times; each load reports, from the navigation's start (performance.now()), when the
// document arrived, the first contentful paint, and when the conversation list was on screen
// (the first frame after a `[data-conv]` entry is in the sidebar; measured after that frame,
// from an init script) and the open conversation's messages. Prints median, p95 and max.
// Not a pass/fail test: run it with scripts/e2e-perf.sh firstpaint and copy the numbers to
// docs/benchmarks.md. Environment: PERF_LOADS (20), PERF_WARMUP (2 loads not counted).

import { ConsoleWatch, Server, createChannel, createSpace, launchBrowser, newIdentity, openDevice, register, scriptSend, startDm, waitForMessage } from './harness.mjs';

const LOADS = Number(process.env.PERF_LOADS ?? 20);
const WARMUP = Number(process.env.PERF_WARMUP ?? 2);

function pct(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const server = new Server({ name: 'imd-firstpaint' });
await server.start();
const browser = await launchBrowser();
const watch = new ConsoleWatch();
try {
  const user = await openDevice(browser, server, watch, 'user', { viewport: { width: 1280, height: 800 } });
  const peer = await openDevice(browser, server, watch, 'peer');
  const me = newIdentity('paint');
  const them = newIdentity('peer');
  await register(user.page, me);
  await register(peer.page, them);
  await createSpace(user.page, 'Second');
  await createChannel(user.page, 'other');
  await createSpace(user.page, 'Paint');
  for (const name of ['design', 'random']) await createChannel(user.page, name);
  await startDm(user.page, them.name);
  const general = await createChannel(user.page, 'general');
  await scriptSend(user.page, general, { count: 60, prefix: 'hello' });
  await waitForMessage(user.page, 'hello 60');

  // Each load: the times of its milestones, kept in sessionStorage across the reloads.
  await user.context.addInitScript(() => {
    const t = {};
    const afterFrame = (key) => requestAnimationFrame(() => setTimeout(() => (t[key] ??= performance.now())));
    const seen = () => {
      if (!t.listQueued && document.querySelector('.sidebar [data-conv]')) {
        t.listQueued = true;
        afterFrame('list');
      }
      if (!t.messagesQueued && document.querySelector('.msg-list li.msg')) {
        t.messagesQueued = true;
        afterFrame('messages');
      }
      return t.listQueued && t.messagesQueued;
    };
    const mo = new MutationObserver(() => seen() && mo.disconnect());
    mo.observe(document, { childList: true, subtree: true });
    window.__firstPaint = t;
  });
  const rows = [];
  for (let i = 0; i < WARMUP + LOADS; i++) {
    await user.page.reload({ waitUntil: 'commit' });
    await user.page.waitForFunction(() => window.__firstPaint?.list && window.__firstPaint?.messages, null, { timeout: 30_000 });
    const r = await user.page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      const fcp = performance.getEntriesByName('first-contentful-paint')[0];
      // What the list waits for: the script, then the REST calls that fill it.
      const done = (re) => performance.getEntriesByType('resource').find((e) => re.test(new URL(e.name).pathname))?.responseEnd ?? NaN;
      return {
        document: nav.responseEnd,
        script: done(/^\/assets\/index-.*\.js$/),
        fcp: fcp?.startTime ?? NaN,
        api_spaces: done(/^\/api\/v1\/spaces$/),
        api_channels: done(/^\/api\/v1\/spaces\/\d+\/channels$/),
        api_conversations: done(/^\/api\/v1\/conversations$/),
        list: window.__firstPaint.list,
        messages: window.__firstPaint.messages,
      };
    });
    if (i >= WARMUP) rows.push(r);
  }
  const stats = (key) => {
    const v = rows.map((r) => r[key]).sort((a, b) => a - b);
    return { p50: Math.round(pct(v, 50)), p95: Math.round(pct(v, 95)), max: Math.round(v.at(-1)) };
  };
  console.log(
    JSON.stringify(
      {
        loads: rows.length,
        document_ms: stats('document'),
        script_ms: stats('script'),
        first_contentful_paint_ms: stats('fcp'),
        api_spaces_ms: stats('api_spaces'),
        api_channels_ms: stats('api_channels'),
        api_conversations_ms: stats('api_conversations'),
        conversation_list_ms: stats('list'),
        open_conversation_messages_ms: stats('messages'),
      },
      null,
      2,
    ),
  );
  const errors = watch.take();
  if (errors.length) console.log('console errors:', errors);
} finally {
  await browser.close();
  await server.stop();
}
