// End-to-end harness: starts the real imd binary on a free port with a fresh data directory,
// drives Debian's Chromium through playwright-core (no browser download), collects console
// errors, and offers the few UI steps the scenarios share.

import assert from 'node:assert/strict';
import { execSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** A phone: the 360 px viewport every phone scenario uses, with touch. */
export const PHONE = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };

/** The id of the user signed in on `page` (from the stored session). */
export function myId(page) {
  return page.evaluate(() => JSON.parse(localStorage.getItem('imd.session')).user.id);
}

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SHOTS = join(ROOT, 'tests/e2e/screenshots');
const IMD_BIN = resolve(ROOT, process.env.IMD_BIN ?? 'build/src/app/imd');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
// The client build imd serves (IMD_E2E_WEB_ROOT: e.g. an older build, to compare in the bench).
const WEB_ROOT = resolve(ROOT, process.env.IMD_E2E_WEB_ROOT ?? 'web/dist');

// playwright-core is a devDependency of web/: resolve it from there.
const { chromium } = createRequire(join(ROOT, 'web/package.json'))('playwright-core');

mkdirSync(SHOTS, { recursive: true });

// IMD_E2E_URL runs the scenarios against a server that is already up, e.g. the local cluster
// behind nginx (scripts/e2e-cluster.sh). "Killing the server" then runs IMD_E2E_KILL_CMD and
// starting it again IMD_E2E_START_CMD (shell commands), and the server's flags are its own.
const EXTERNAL = process.env.IMD_E2E_URL
  ? {
      url: process.env.IMD_E2E_URL.replace(/\/$/, ''),
      killCmd: process.env.IMD_E2E_KILL_CMD,
      startCmd: process.env.IMD_E2E_START_CMD,
    }
  : null;

function runCommand(cmd, name) {
  if (!cmd) throw new Error(`${name} is not set: cannot do this to an external server`);
  execSync(cmd, { cwd: ROOT, stdio: 'inherit', timeout: 120_000 });
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

let counter = 0;
/** A unique user: the name doubles as a search key, the phone must be unique. */
/**
 * A server admin's identity. A server of its own makes its first account an admin; a shared
 * server (IMD_E2E_URL: the cluster, where every scenario file registers into one database) names
 * admins by phone in IMD_E2E_ADMIN_PHONES (comma-separated, its `auth.admins`): each file takes
 * its own `slot`, so no phone is registered twice.
 */
export function adminIdentity(prefix, slot) {
  const id = newIdentity(prefix);
  const phones = (process.env.IMD_E2E_ADMIN_PHONES ?? '').split(',').filter(Boolean);
  if (EXTERNAL && phones[slot]) id.phone = phones[slot];
  return id;
}

export function newIdentity(prefix) {
  counter++;
  const n = `${String(Date.now() % 1e6).padStart(6, '0')}${String(counter).padStart(3, '0')}`;
  return { name: `${prefix}${n}`, phone: `+1${n}${String(process.pid % 100).padStart(2, '0')}`, password: 'correct horse battery' };
}

/**
 * A running imd. `start()` parses "imd listening on http://HOST:PORT" from stderr;
 * `restart()` starts it again on the same port and data directory.
 */
export class Server {
  constructor({ extraArgs = [], name = 'imd' } = {}) {
    this.dataDir = mkdtempSync(join(tmpdir(), 'imd-e2e-'));
    this.extraArgs = extraArgs;
    this.name = name;
    this.port = 0;
    this.proc = null;
    this.log = '';
  }

  get url() {
    return EXTERNAL ? EXTERNAL.url : `http://127.0.0.1:${this.port}`;
  }

  async start() {
    if (EXTERNAL) {
      // The first start finds the server running; later ones bring back what kill() took down.
      if (this.killed) runCommand(EXTERNAL.startCmd, 'IMD_E2E_START_CMD');
      this.killed = false;
      return;
    }
    const args = [
      '--listen', `127.0.0.1:${this.port}`,
      '--data-dir', this.dataDir,
      '--auth-password-hash', 'min',
      '--web-root', WEB_ROOT,
      '--log-level', 'info',
      // The scenarios DM people they share no space with (the DM policy has its own tests).
      '--limits-dm-policy', 'anyone',
      ...this.extraArgs,
    ];
    const proc = spawn(IMD_BIN, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = proc;
    const exited = new Promise((r) => proc.once('exit', (code, sig) => r({ code, sig })));
    this.exited = exited;
    const listening = new Promise((resolveP, reject) => {
      let buf = '';
      const onData = (d) => {
        const s = d.toString();
        this.log += s;
        buf += s;
        const m = /imd listening on http:\/\/[^:\s]+:(\d+)/.exec(buf);
        if (m) {
          this.port = Number(m[1]);
          resolveP();
        }
      };
      proc.stderr.on('data', onData);
      proc.stdout.on('data', (d) => (this.log += d.toString()));
      exited.then(({ code, sig }) => reject(new Error(`imd exited (${code ?? sig}) before listening:\n${this.log}`)));
    });
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`imd did not start in 15 s:\n${this.log}`)), 15_000);
    });
    try {
      await Promise.race([listening, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** SIGKILL: no graceful shutdown, the clients see their connections drop. */
  async kill() {
    if (EXTERNAL) {
      runCommand(EXTERNAL.killCmd, 'IMD_E2E_KILL_CMD');
      this.killed = true;
      return;
    }
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGKILL');
    await this.exited;
  }

  async restart() {
    await this.kill();
    await this.start();
  }

  async stop() {
    if (EXTERNAL) return;
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      this.proc.kill('SIGTERM');
      const done = await Promise.race([this.exited.then(() => true), sleep(5000).then(() => false)]);
      if (!done) await this.kill();
    }
    writeFileSync(join(SHOTS, `${this.name}.log`), this.log);
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** `options` go to playwright's launch, e.g. `env` (the browser's environment). */
export async function launchBrowser(options = {}) {
  return chromium.launch({
    ...options,
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
}

/**
 * Console errors and uncaught page errors of every page, tagged with the scenario that was
 * running. Network errors can be allowed while a scenario deliberately takes the server down.
 */
export class ConsoleWatch {
  constructor() {
    this.errors = [];
    this.scenario = '';
    this.allowNetworkErrors = false;
    // HTTP statuses a scenario provokes on purpose (e.g. 401 once sessions are ended): the
    // browser logs each failed resource as a console error.
    this.allowStatuses = [];
    // What each page did on the network that went wrong or changed its connection, with the
    // time: written next to the server's log, to explain a failure after the fact.
    this.trace = [];
  }

  note(who, what) {
    this.trace.push(`${new Date().toISOString()} [${this.scenario}] ${who}: ${what}`);
  }

  attach(page, who) {
    page.on('response', (r) => {
      if (r.status() >= 400 || r.url().includes('/auth/')) {
        this.note(who, `${r.status()} ${r.request().method()} ${r.url()}`);
      }
    });
    page.on('requestfailed', (r) => {
      this.note(who, `failed ${r.method()} ${r.url()}: ${r.failure()?.errorText}`);
    });
    page.on('websocket', (ws) => {
      this.note(who, `ws open ${ws.url().replace(/(token|ticket)=[^&]+/, '$1=…')}`);
      ws.on('close', () => this.note(who, 'ws closed'));
      ws.on('socketerror', (e) => this.note(who, `ws error ${e}`));
    });
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const text = msg.text();
      if (this.allowNetworkErrors && isNetworkError(text)) return;
      const status = /the server responded with a status of (\d+)/.exec(text);
      if (status && this.allowStatuses.includes(Number(status[1]))) return;
      // A WebSocket handshake refused with 401 logs its own text. On a cluster an account change
      // (reactivation, a reset password) reaches the other processes within
      // auth.account_poll_ms: a reconnect inside that window is refused once, then retried.
      if (this.allowStatuses.includes(401) && /WebSocket connection to .* failed: HTTP Authentication failed/.test(text)) return;
      // The resource a "Failed to load resource" names is in the location, not the text.
      const url = msg.location()?.url ?? '';
      this.errors.push(`[${this.scenario}] ${who}: console.error: ${text}${url ? ` (${url})` : ''}`);
    });
    page.on('pageerror', (err) => {
      this.errors.push(`[${this.scenario}] ${who}: uncaught: ${err.stack ?? err.message}`);
    });
  }

  take() {
    const e = this.errors;
    this.errors = [];
    return e;
  }
}

function isNetworkError(text) {
  return (
    /WebSocket connection to .* failed/.test(text) ||
    /Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE|CONNECTION_CLOSED|INTERNET_DISCONNECTED)/.test(text)
  );
}

/**
 * A browser context (one "device") with its first page at the app. `setup(context)` runs
 * before the page loads (e.g. to route its WebSocket).
 */
export async function openDevice(browser, server, watch, who, options = {}, setup = undefined) {
  const context = await browser.newContext({ baseURL: server.url, ...options });
  if (setup) await setup(context);
  const page = await context.newPage();
  watch.attach(page, who);
  await page.goto('/');
  return { context, page };
}

export async function newTab(context, watch, who, path = '/') {
  const page = await context.newPage();
  watch.attach(page, who);
  await page.goto(path);
  return page;
}

export async function register(page, id) {
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByLabel('Name').fill(id.name);
  await page.getByLabel('Phone').fill(id.phone);
  await page.getByLabel('Password').fill(id.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await waitOnline(page);
}

export async function login(page, id) {
  await page.getByRole('button', { name: 'Log in', exact: true }).first().click();
  await page.getByLabel('Phone').fill(id.phone);
  await page.getByLabel('Password').fill(id.password);
  await page.locator('form').getByRole('button', { name: 'Log in' }).click();
  await waitOnline(page);
}

export async function logout(page) {
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('button', { name: 'Create account' }).or(page.getByLabel('Phone')).first().waitFor();
}

export async function waitOnline(page, timeout = 15_000) {
  await page.getByTestId('conn').filter({ hasText: 'Online' }).waitFor({ timeout });
}

/** Opens a <details> inline form by its summary, fills its text field and submits. */
export async function inlineForm(page, summary, value) {
  const details = page.locator('details.inline-form', { has: page.locator('summary', { hasText: summary }) });
  if (!(await details.evaluate((d) => d.open))) await details.locator('summary').click();
  await details.locator('input:not([type=checkbox])').fill(value);
  await details.locator('button[type=submit]').click();
}

/** The page that created each space (createSpace), by space id: joinSpace invites through it. */
const spaceOwners = new Map();

/** Creates a space (private: others join it by invitation); returns its id. */
export async function createSpace(page, name) {
  await inlineForm(page, 'New space', name);
  await page.locator('.space-name', { hasText: name }).waitFor();
  // The space switcher marks the selected space; its id is on the button (no id is shown).
  const id = await page.locator('.sidebar [data-space][aria-pressed="true"]', { hasText: name }).getAttribute('data-space');
  spaceOwners.set(id, page);
  return id;
}

/** "Invite people" in the selected space: the link it shows. */
export async function inviteLink(page) {
  const before = await page.getByTestId('invite-link').inputValue().catch(() => '');
  await page.getByTestId('invite').click();
  await page.waitForFunction(
    (old) => {
      const v = document.querySelector('[data-testid="invite-link"]')?.value ?? '';
      return v && v !== old;
    },
    before,
  );
  return page.getByTestId('invite-link').inputValue();
}

/**
 * Joins a space through an invitation link pasted into "Join a space". The link comes from the
 * space's creator over REST (with their session), so that their page's UI is not disturbed.
 */
export async function joinSpace(page, spaceId) {
  const owner = spaceOwners.get(spaceId);
  const link = owner
    ? await owner.evaluate(async (id) => {
        const s = JSON.parse(localStorage.getItem('imd.session'));
        const r = await fetch(`/api/v1/spaces/${id}/invites`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${s.access}`, 'Content-Type': 'application/json' },
          body: '{}',
        });
        return `${location.origin}/invite/${(await r.json()).code}`;
      }, spaceId)
    : spaceId;
  await inlineForm(page, 'Join a space', link);
  await page.locator(`[data-space="${spaceId}"][aria-pressed="true"]`).waitFor();
}

/** Creates a channel in the selected space; the app opens it. Returns its conversation key. */
export async function createChannel(page, name) {
  await inlineForm(page, 'New channel', name);
  await page.locator('#conv-title', { hasText: `# ${name}` }).waitFor();
  return page.evaluate(() => decodeURIComponent(location.pathname.replace(/^\/c\//, '')));
}

export async function joinChannel(page, name) {
  await page.getByRole('button', { name: `Join channel ${name}` }).click();
  await page.locator('#conv-title', { hasText: `# ${name}` }).waitFor();
}

export async function startDm(page, name) {
  await inlineForm(page, 'New message', name);
  await page.locator('#conv-title', { hasText: name }).waitFor();
  return page.evaluate(() => decodeURIComponent(location.pathname.replace(/^\/c\//, '')));
}

export async function openConv(page, key) {
  await page.locator(`[data-conv="${key}"]`).click();
  await page.locator(`[data-conv="${key}"][aria-current="page"]`).waitFor();
}

/** Types into the composer and presses Enter. */
export async function send(page, text) {
  const box = page.locator('#composer-input');
  await box.fill(text);
  await box.press('Enter');
}

/** The stored (not pending) message bodies shown, in order. */
export function bodies(page) {
  return page.locator('.msg-list li.msg:not(.pending) .body').allTextContents();
}

/** Waits until the stored messages shown are exactly `expected`; returns what is shown. */
export async function settledBodies(page, expected, timeout = 15_000) {
  const deadline = Date.now() + timeout;
  let shown;
  do {
    shown = await bodies(page);
    if (JSON.stringify(shown) === JSON.stringify(expected)) break;
    await sleep(100);
  } while (Date.now() < deadline);
  return shown;
}

export async function waitForMessage(page, text, timeout = 15_000) {
  await page.locator('.msg-list li.msg:not(.pending) .body', { hasText: text }).first().waitFor({ timeout });
}

/** The shown seqs are strictly increasing (ordered, no duplicates). */
export async function seqs(page) {
  return page.locator('.msg-list li.msg[data-seq]').evaluateAll((els) => els.map((e) => Number(e.dataset.seq)));
}

export function badge(page, selector) {
  return page.locator(`${selector} .badge`);
}

/**
 * Grants the context notifications and records what its pages show (`window.__notes`: title,
 * body, tag); headless Chromium displays none. A device's setup, before its page opens.
 */
export async function recordNotifications(context) {
  await context.grantPermissions(['notifications']);
  await context.addInitScript(() => {
    const Real = window.Notification;
    window.__notes = [];
    class Recorded extends Real {
      constructor(title, options) {
        window.__notes.push({ title, body: options?.body, tag: options?.tag });
        super(title, options);
      }
    }
    Object.defineProperty(Recorded, 'permission', { get: () => Real.permission });
    Recorded.requestPermission = (...a) => Real.requestPermission(...a);
    window.Notification = Recorded;
  });
}

/** The frames of `op` a page puts on its WebSockets, as they are sent (with `at`, ms). */
export function recordSent(page, op) {
  const frames = [];
  page.on('websocket', (ws) => {
    ws.on('framesent', (f) => {
      try {
        const frame = JSON.parse(f.payload);
        if (frame.op === op) frames.push({ ...frame, at: Date.now() });
      } catch {
        // not JSON: not ours
      }
    });
  });
  return frames;
}

export async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: false });
}

const AXE_SOURCE = readFileSync(createRequire(join(ROOT, 'web/package.json')).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * axe-core's WCAG 2.x A/AA rules on the page as it is; returns the serious and critical
 * violations as "rule: target" lines. axe is evaluated through the DevTools protocol, which the
 * page's Content-Security-Policy does not govern.
 */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe !== 'undefined'))) await page.evaluate(AXE_SOURCE);
  const violations = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'], resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')) }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.id}: ${n}`));
}

/** WCAG contrast ratio of two CSS colours as getComputedStyle gives them ('rgb(r, g, b)'). */
export function contrastRatio(a, b) {
  const lum = (css) => {
    const [r, g, bl] = css.match(/[\d.]+/g).slice(0, 3).map((x) => Number(x) / 255);
    const lin = (c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(bl);
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

/**
 * One file of scenarios: a server, a browser, the devices opened so far and the console watch.
 * `start()` in before(), `stop()` in after().
 */
export class Scenarios {
  constructor({ extraArgs = [], name, defaultTimeoutMs = 15_000, browserOptions = {} }) {
    this.serverOptions = { extraArgs, name };
    this.browserOptions = browserOptions;
    this.defaultTimeoutMs = defaultTimeoutMs;
    this.watch = new ConsoleWatch();
    this.allErrors = [];
    this.contexts = [];
    this.server = null;
    this.browser = null;
  }

  async start() {
    this.server = new Server(this.serverOptions);
    await this.server.start();
    this.browser = await launchBrowser(this.browserOptions);
  }

  async stop() {
    for (const c of this.contexts) await c.close().catch(() => undefined);
    await this.browser?.close();
    await this.server?.stop();
    writeFileSync(join(SHOTS, `${this.serverOptions.name}-trace.log`), this.watch.trace.join('\n') + '\n');
  }

  async device(who, options, setup) {
    const d = await openDevice(this.browser, this.server, this.watch, who, options, setup);
    d.context.setDefaultTimeout(this.defaultTimeoutMs);
    this.contexts.push(d.context);
    return d;
  }

  // Every signed-in page of every scenario so far is back online. Network errors are allowed
  // while the server is down; a page of an earlier scenario may still be in its reconnect
  // backoff after this scenario's pages are back (more so on a busy machine), and its failed
  // attempt must not be counted after the allowance ends.
  async everyPageOnline(timeout = 30_000) {
    for (const c of this.contexts) {
      for (const page of c.pages()) {
        if (await page.getByTestId('conn').count()) await waitOnline(page, timeout);
      }
    }
  }

  /** The scenario logged no console error (all of them are kept for the final check). */
  noConsoleErrors() {
    const errors = this.watch.take();
    this.allErrors.push(...errors);
    assert.deepEqual(errors, [], `console errors in scenario ${this.watch.scenario}`);
  }

  /** No console error in any scenario. */
  noErrorsAnywhere() {
    this.allErrors.push(...this.watch.take());
    assert.deepEqual(this.allErrors, []);
  }
}

/**
 * Sends `count` messages as the page's user over a second, script-driven WebSocket, `rate` per
 * second (0: at once), to a conversation key; bodies are "<prefix> <i>", with `stamp` followed
 * by the sender's Date.now(). Resolves when every one is stored (its `sent` came back).
 */
export function scriptSend(page, conversation, { count, rate = 0, prefix, stamp = false }) {
  return page.evaluate(
    async ({ conversation, count, rate, prefix, stamp }) => {
      const s = JSON.parse(localStorage.getItem('imd.session'));
      const ws = new WebSocket(`ws://${location.host}/ws?token=${encodeURIComponent(s.access)}`);
      await new Promise((r, j) => {
        ws.onopen = r;
        ws.onerror = j;
      });
      const [kind, id] = conversation.split(':');
      const to = kind === 'channel' ? { channel: id } : { to: id };
      // At most WINDOW sends unanswered: the server's write queue to this socket stays short
      // even while the page is busy rendering what it sends.
      const WINDOW = 200;
      let acked = 0;
      let wake = null;
      const done = new Promise((r) => {
        ws.onmessage = (e) => {
          if (JSON.parse(e.data).op !== 'sent') return;
          if (++acked === count) r();
          wake?.();
        };
      });
      const t0 = performance.now();
      const run = Math.random().toString(36).slice(2);
      for (let i = 1; i <= count; i++) {
        while (i - acked > WINDOW) await new Promise((r) => (wake = r));
        if (rate > 0) {
          const wait = t0 + (i * 1000) / rate - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        const body = stamp ? `${prefix} ${i} ${Date.now()}` : `${prefix} ${i}`;
        ws.send(JSON.stringify({ op: 'send', cid: `${prefix}-${run}-${i}`, ...to, body }));
      }
      await done;
      ws.close();
    },
    { conversation, count, rate, prefix, stamp },
  );
}
