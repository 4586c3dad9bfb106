// The web client under a busy channel, measured in Chromium against the real imd (busy.mjs): a
// reader holding PRELOAD messages while RATE msgs/s arrive for SECONDS; prints send-to-display
// latency percentiles, long tasks, what the reader renders and its JS heap as JSON.
// Not a pass/fail test (its short form, busy.test.mjs, checks correctness in the test command):
// run it with scripts/e2e-perf.sh and copy the numbers to docs/benchmarks.md.
// Environment: PERF_PRELOAD (10000), PERF_RATE (20), PERF_SECONDS (30), PERF_PROFILE (a file:
// a CPU profile of the reader during the live phase).

import { BUSY_SERVER_ARGS, busyChannel } from './busy.mjs';
import { ConsoleWatch, Server, launchBrowser } from './harness.mjs';

const server = new Server({ name: 'imd-perf', extraArgs: BUSY_SERVER_ARGS });
await server.start();
const browser = await launchBrowser();
const watch = new ConsoleWatch();
try {
  const { report } = await busyChannel({
    browser,
    server,
    watch,
    preload: Number(process.env.PERF_PRELOAD ?? 10_000),
    rate: Number(process.env.PERF_RATE ?? 20),
    seconds: Number(process.env.PERF_SECONDS ?? 30),
    profile: process.env.PERF_PROFILE || null,
  });
  console.log(JSON.stringify(report, null, 2));
  const errors = watch.take();
  if (errors.length) console.log('console errors:', errors);
} finally {
  await browser.close();
  await server.stop();
}
