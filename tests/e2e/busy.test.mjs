// End-to-end, the short form of the busy-channel bench (perf.bench.mjs, busy.mjs) in the test
// command: a reader holding 10,000 messages while 20 msgs/s arrive for 15 s. Prints the numbers
// (send-to-display latency, long tasks, rows, heap) and fails only on correctness: every live
// message displayed, in order, none lost, and the rows shown at the end dense and ordered by
// seq. The timing targets (p99 <= 100 ms, no long task over 50 ms) are reported, not asserted:
// the machines that run the tests are busy. Its own server (the writer's script sends above
// the default rate limit, so not against an external server such as the cluster).
// Run with scripts/e2e.sh (with the other files), or: node --test tests/e2e/busy.test.mjs
// Environment: BUSY_PRELOAD (10000), BUSY_RATE (20), BUSY_SECONDS (15).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { BUSY_SERVER_ARGS, busyChannel } from './busy.mjs';
import { Scenarios } from './harness.mjs';

const PRELOAD = Number(process.env.BUSY_PRELOAD ?? 10_000);
const RATE = Number(process.env.BUSY_RATE ?? 20);
const SECONDS = Number(process.env.BUSY_SECONDS ?? 15);

describe('imd web client: a busy channel', { skip: process.env.IMD_E2E_URL ? 'needs its own server (rate limits)' : false }, () => {
  const run = new Scenarios({ name: 'imd-e2e-busy', extraArgs: BUSY_SERVER_ARGS });
  before(() => run.start());
  after(() => run.stop());

  test(`y) ${PRELOAD} messages held, ${RATE} msgs/s for ${SECONDS} s: every one displayed in order, none lost (timings printed)`, { timeout: 240_000 }, async () => {
    run.watch.scenario = 'y';
    const { report, order, shown, live } = await busyChannel({
      browser: run.browser,
      server: run.server,
      watch: run.watch,
      preload: PRELOAD,
      rate: RATE,
      seconds: SECONDS,
      waitAfterMs: 90_000,
    });
    console.log(`busy channel: ${JSON.stringify(report)}`);

    assert.ok(report.caught_up, `the last live message was displayed: ${JSON.stringify(report)}`);
    // Every live message was displayed, each once, in the order sent.
    assert.deepEqual(order, Array.from({ length: live }, (_, i) => i + 1), 'the live messages as first displayed');
    // The rows at the end: ordered and dense by seq, ending with the newest live messages in order.
    assert.ok(shown.length > 0);
    const seqs = shown.map((r) => r.seq);
    assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0] + i), 'dense, ordered seqs');
    assert.equal(seqs.at(-1), PRELOAD + live, 'the newest seq is the channel\'s message count');
    const tail = shown.slice(-Math.min(live, shown.length)).map((r) => r.body.replace(/ \d+$/, ''));
    assert.deepEqual(tail, Array.from({ length: tail.length }, (_, i) => `live ${live - tail.length + i + 1}`));
    run.noConsoleErrors();
  });
});
