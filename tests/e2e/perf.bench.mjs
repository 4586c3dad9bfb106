// The web client under a busy channel, measured in Chromium against the real imd: a reader
// holding PRELOAD messages while RATE msgs/s arrive for SECONDS. Prints send-to-display latency
// (the sender's clock in the body, read by the reader in the first animation frame after the
// row is in the DOM; both pages run on this machine's clock), long tasks (PerformanceObserver
// 'longtask': main-thread tasks over 50 ms), what the reader renders and its JS heap.
// Not a pass/fail test: run it with scripts/e2e-perf.sh and copy the numbers to
// docs/benchmarks.md. Environment: PERF_PRELOAD (10000), PERF_RATE (20), PERF_SECONDS (30).

import { ConsoleWatch, Server, createChannel, createSpace, joinChannel, joinSpace, launchBrowser, newIdentity, openDevice, register, scriptSend, waitForMessage } from './harness.mjs';

const PRELOAD = Number(process.env.PERF_PRELOAD ?? 10_000);
const RATE = Number(process.env.PERF_RATE ?? 20);
const SECONDS = Number(process.env.PERF_SECONDS ?? 30);

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

const server = new Server({
  name: 'imd-perf',
  extraArgs: ['--limits-ws-rate-per-s', '5000', '--limits-ws-burst', '5000', '--limits-ws-abuse-close-after', '100000'],
});
await server.start();
const browser = await launchBrowser();
const watch = new ConsoleWatch();
try {
  const reader = await openDevice(browser, server, watch, 'reader', { viewport: { width: 1280, height: 800 } });
  const writer = await openDevice(browser, server, watch, 'writer');
  reader.context.setDefaultTimeout(120_000);
  writer.context.setDefaultTimeout(120_000);
  await register(reader.page, newIdentity('reader'));
  await register(writer.page, newIdentity('writer'));
  const spaceId = await createSpace(writer.page, 'Perf');
  const busy = await createChannel(writer.page, 'busy');
  await joinSpace(reader.page, spaceId);
  await joinChannel(reader.page, 'busy');

  // The reader holds PRELOAD messages, received live with the channel open.
  const t0 = Date.now();
  await scriptSend(writer.page, busy, { count: PRELOAD, prefix: 'pre', stamp: true });
  await waitForMessage(reader.page, `pre ${PRELOAD} `, 300_000);
  const preloadS = (Date.now() - t0) / 1000;

  await reader.page.evaluate(() => {
    const w = window;
    w.__perf = { lags: [], long: [] };
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) w.__perf.long.push(e.duration);
    }).observe({ type: 'longtask' });
    const seen = new Set();
    new MutationObserver((records) => {
      const now = [];
      for (const r of records) {
        for (const n of r.addedNodes) {
          const body = n.querySelector?.('.body')?.textContent ?? '';
          const m = /^live (\d+) (\d+)$/.exec(body);
          if (m && !seen.has(m[1])) {
            seen.add(m[1]);
            now.push(Number(m[2]));
          }
        }
      }
      if (now.length) requestAnimationFrame(() => {
        const t = Date.now();
        for (const sent of now) w.__perf.lags.push(t - sent);
      });
    }).observe(document.querySelector('.msg-list'), { childList: true });
  });

  // PERF_PROFILE=file: a CPU profile of the reader during the live phase (Chrome DevTools format).
  const cdp = process.env.PERF_PROFILE ? await reader.context.newCDPSession(reader.page) : null;
  if (cdp) {
    await cdp.send('Profiler.enable');
    await cdp.send('Profiler.start');
  }
  await scriptSend(writer.page, busy, { count: RATE * SECONDS, rate: RATE, prefix: 'live', stamp: true });
  // A client that falls behind is reported as it stands a minute after the last send.
  const caughtUp = await waitForMessage(reader.page, `live ${RATE * SECONDS} `, 60_000).then(() => true, () => false);
  if (cdp) {
    const { profile } = await cdp.send('Profiler.stop');
    const self = new Map();
    const dt = profile.timeDeltas;
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    profile.samples.forEach((id, i) => {
      const f = byId.get(id).callFrame;
      const k = `${f.functionName || '(anon)'} ${f.url.split('/').pop()}:${f.lineNumber}`;
      self.set(k, (self.get(k) ?? 0) + (dt[i] ?? 0) / 1000);
    });
    console.log([...self].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, ms]) => `${ms.toFixed(0).padStart(7)} ms  ${k}`).join('\n'));
    (await import('node:fs')).writeFileSync(process.env.PERF_PROFILE, JSON.stringify(profile));
  }
  const r = await reader.page.evaluate(() => ({
    ...window.__perf,
    rows: document.querySelectorAll('.msg-list li').length,
    nodes: document.getElementsByTagName('*').length,
    heap: performance.memory?.usedJSHeapSize ?? 0,
  }));
  const lags = r.lags.slice().sort((a, b) => a - b);
  const long = r.long.slice().sort((a, b) => a - b);
  const out = {
    preload: PRELOAD,
    preload_received_s: preloadS,
    rate_per_s: RATE,
    seconds: SECONDS,
    shown: lags.length,
    caught_up_within_60s: caughtUp,
    lag_ms: { p50: pct(lags, 50), p95: pct(lags, 95), p99: pct(lags, 99), max: lags.at(-1) },
    long_tasks: { count: long.length, max_ms: long.length ? Math.round(long.at(-1)) : 0 },
    rows_rendered: r.rows,
    dom_nodes: r.nodes,
    js_heap_mib: Math.round((r.heap / 2 ** 20) * 10) / 10,
  };
  console.log(JSON.stringify(out, null, 2));
  const errors = watch.take();
  if (errors.length) console.log('console errors:', errors);
} finally {
  await browser.close();
  await server.stop();
}
