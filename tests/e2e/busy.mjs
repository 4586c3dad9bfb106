// The web client under a busy channel, shared by the bench (perf.bench.mjs, long) and the test
// (busy.test.mjs, short): a reader holding `preload` messages while `rate` msgs/s arrive for
// `seconds`, in Chromium against the real imd. Measures send-to-display latency (the sender's
// clock in the body, read by the reader in the first animation frame after the row is in the
// DOM; both pages run on this machine's clock), long tasks (PerformanceObserver 'longtask':
// main-thread tasks over 50 ms), what the reader renders and its JS heap; and records what a
// correctness check needs: the live messages in the order they were first displayed, and the
// rows shown at the end.

import { createChannel, createSpace, joinChannel, joinSpace, newIdentity, openDevice, register, scriptSend, waitForMessage } from './harness.mjs';

/** The server's flags: the writer's script sends far above the default per-connection rate. */
export const BUSY_SERVER_ARGS = ['--limits-ws-rate-per-s', '5000', '--limits-ws-burst', '5000', '--limits-ws-abuse-close-after', '100000'];

function pct(sorted, p) {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * Runs the busy channel on `browser` against `server` (started with BUSY_SERVER_ARGS), with two
 * new browser contexts, closed at the end. `profile`: a file for a CPU profile of the reader's
 * live phase (Chrome DevTools format), with the top functions printed. Returns { report, order, shown, live }:
 * `report` the numbers to print, `order` the live message numbers as first displayed, `shown`
 * the rows at the end ({ seq, body }), `live` how many live messages were sent.
 */
export async function busyChannel({ browser, server, watch, preload, rate, seconds, profile = null, waitAfterMs = 60_000 }) {
  const reader = await openDevice(browser, server, watch, 'reader', { viewport: { width: 1280, height: 800 } });
  const writer = await openDevice(browser, server, watch, 'writer');
  reader.context.setDefaultTimeout(120_000);
  writer.context.setDefaultTimeout(120_000);
  try {
    await register(reader.page, newIdentity('reader'));
    await register(writer.page, newIdentity('writer'));
    const spaceId = await createSpace(writer.page, 'Perf');
    const busy = await createChannel(writer.page, 'busy');
    await joinSpace(reader.page, spaceId);
    await joinChannel(reader.page, 'busy');

    // The reader holds `preload` messages, received live with the channel open.
    const t0 = Date.now();
    await scriptSend(writer.page, busy, { count: preload, prefix: 'pre', stamp: true });
    await waitForMessage(reader.page, `pre ${preload} `, 300_000);
    const preloadS = (Date.now() - t0) / 1000;

    await reader.page.evaluate(() => {
      const w = window;
      w.__perf = { lags: [], long: [], order: [] };
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
              w.__perf.order.push(Number(m[1]));
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

    const cdp = profile ? await reader.context.newCDPSession(reader.page) : null;
    if (cdp) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.start');
    }
    const live = Math.round(rate * seconds);
    await scriptSend(writer.page, busy, { count: live, rate, prefix: 'live', stamp: true });
    // A client that falls behind is reported as it stands `waitAfterMs` after the last send.
    const caughtUp = await waitForMessage(reader.page, `live ${live} `, waitAfterMs).then(() => true, () => false);
    if (cdp) await writeProfile(cdp, profile);
    const r = await reader.page.evaluate(() => ({
      ...window.__perf,
      shown: [...document.querySelectorAll('.msg-list li.msg[data-seq]')].map((e) => ({
        seq: Number(e.dataset.seq),
        body: e.querySelector('.body')?.textContent ?? '',
      })),
      rows: document.querySelectorAll('.msg-list li').length,
      nodes: document.getElementsByTagName('*').length,
      heap: performance.memory?.usedJSHeapSize ?? 0,
    }));
    const lags = r.lags.slice().sort((a, b) => a - b);
    const long = r.long.slice().sort((a, b) => a - b);
    const report = {
      preload,
      preload_received_s: preloadS,
      rate_per_s: rate,
      seconds,
      shown: lags.length,
      caught_up: caughtUp,
      lag_ms: { p50: pct(lags, 50), p95: pct(lags, 95), p99: pct(lags, 99), max: lags.at(-1) },
      long_tasks: { count: long.length, max_ms: long.length ? Math.round(long.at(-1)) : 0 },
      rows_rendered: r.rows,
      dom_nodes: r.nodes,
      js_heap_mib: Math.round((r.heap / 2 ** 20) * 10) / 10,
    };
    return { report, order: r.order, shown: r.shown, live };
  } finally {
    await reader.context.close();
    await writer.context.close();
  }
}

async function writeProfile(cdp, file) {
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
  (await import('node:fs')).writeFileSync(file, JSON.stringify(profile));
}
