// The browser side of the end-to-end tests (test/e2e/): Debian's chromium
// through playwright-core, a cluster of --dev nodes sharing one Redis that
// serve the demo page, pages that join a call through it, and the
// measurements taken inside those pages (connect times, decoded frames, media
// gaps). Every wait here awaits a condition in the page, bounded by a timeout.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startNode, startRedis } from './processes.js';

const WEB = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHROMIUM = process.env.SIGNAL_CHROMIUM || '/usr/bin/chromium';
/** Where screenshots go: never inside git's view (web/test-artifacts/ is ignored). */
export const ARTIFACTS = process.env.SIGNAL_ARTIFACTS_DIR || path.join(WEB, 'test-artifacts');

/**
 * Prints one measured number in the form CI logs are grepped for:
 * `e2e: <what> <n> ms`, then (detail) if given.
 * @param {string} what
 * @param {number} ms
 * @param {string} [detail]
 */
export function report(what, ms, detail) {
  console.log(`e2e: ${what} ${Math.round(ms)} ms${detail ? ` (${detail})` : ''}`);
}

/** The path of an artifact named file, its folder made. */
export function artifact(file) {
  mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, file);
}

/**
 * Launches headless chromium with fake camera and microphone, loopback-only
 * WebRTC and nothing that reaches out to the network. Returns the Browser.
 */
export function launchBrowser() {
  const args = ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--autoplay-policy=no-user-gesture-required'];
  // Chromium's sandbox refuses to run as root, which CI and `unshare -r` are.
  if (process.getuid && process.getuid() === 0) args.push('--no-sandbox');
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args });
}

/**
 * Starts Redis and n --dev nodes sharing it, each with its own node id, the
 * test secret, and no JWT leeway (a token expires exactly at its exp). Returns { redis, nodes, stop() };
 * stop() stops every node still running (throwing on an unclean exit) and Redis.
 */
export async function startCluster(n) {
  const redis = await startRedis();
  const nodes = [];
  const cluster = {
    redis,
    nodes,
    async stop() {
      const results = await Promise.allSettled(nodes.map((node) => node.stop()));
      await redis.stop();
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw /** @type {PromiseRejectedResult} */ (failed).reason;
    },
  };
  try {
    // startNode gives each node its own id (nodes sharing one take each other's members for gone).
    for (let i = 0; i < n; i++) {
      const env = { SIGNAL_REDIS_URL: redis.url, SIGNAL_JWT_LEEWAY_S: '0' };
      nodes.push(await startNode({ args: ['--dev'], env }));
    }
  } catch (e) {
    await cluster.stop().catch(() => {});
    throw e;
  }
  return cluster;
}

/**
 * The demo page's URL on node, with the query { room, name, account, servers
 * (node objects, default [node]), ttl, auto }.
 */
export function demoUrl(node, { room, name, account, servers = [node], ttl, auto = true }) {
  const q = new URLSearchParams({ room, servers: servers.map((s) => s.base).join(',') });
  if (name) q.set('name', name);
  if (account) q.set('account', account);
  if (ttl) q.set('ttl', String(ttl));
  if (auto) q.set('auto', '1');
  return `${node.http}/demo/?${q}`;
}

/**
 * Opens url in a new browser context (its own sessionStorage: another person).
 * The page's console errors and uncaught exceptions are kept in page.logs for
 * a failure's message. Returns the Page.
 */
export async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1100, height: 720 } });
  const page = await context.newPage();
  /** @type {string[]} */
  const logs = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') logs.push(`${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  Object.assign(page, { logs });
  await page.goto(url);
  return page;
}

/** The logs kept by openPage, for an assertion's message. */
export function pageLogs(page) {
  return /** @type {any} */ (page).logs?.join('\n') || '(no console errors)';
}

/**
 * Resolves once the page's call has an RTCPeerConnection to each of accounts
 * and every one of them is `connected`. Returns the page's timings
 * ({ join, connected: { account: ms } }, performance.now() values).
 */
export async function waitConnected(page, accounts, timeout = 30000) {
  try {
    await page.waitForFunction((ids) => {
      const call = /** @type {any} */ (window).demo?.call;
      return !!call && ids.every((id) => call.peers.get(id)?.pc.connectionState === 'connected');
    }, accounts, { timeout, polling: 100 });
  } catch (e) {
    throw new Error(`${/** @type {Error} */ (e).message}\npage: ${await status(page)}\n${pageLogs(page)}`);
  }
  return page.evaluate(() => /** @type {any} */ (window).demo.timings);
}

/** What the page showed and saw (status lines, error, closes), for messages. */
async function status(page) {
  return page.evaluate(() => {
    const d = /** @type {any} */ (window).demo;
    return JSON.stringify({ statuses: d?.statuses, error: d?.error, closes: d?.closes, state: d?.client?.state,
      closedPeers: d?.closedPeers });
  }).catch((e) => `(page gone: ${e.message})`);
}

/**
 * Resolves once predicate(arg), polled in the page every 100 ms, is true; on
 * timeout throws with what the page showed and logged.
 * @template T
 * @param {import('playwright-core').Page} page
 * @param {(arg: T) => boolean} predicate runs in the page (no closure over the test's variables)
 * @param {T} arg
 */
export async function waitPage(page, predicate, arg, timeout = 20000) {
  try {
    await page.waitForFunction(predicate, arg, { timeout, polling: 100 });
  } catch (e) {
    throw new Error(`${/** @type {Error} */ (e).message}\nwaiting for: ${predicate}\npage: ${await status(page)}\n` +
      pageLogs(page));
  }
}

/** framesDecoded of the inbound video from each account (0 if none yet). */
export async function frames(page, accounts) {
  const stats = await page.evaluate(() => /** @type {any} */ (window).demo.stats());
  return Object.fromEntries(accounts.map((id) => [id, stats[id]?.framesDecoded ?? 0]));
}

/**
 * Resolves once the video from each of accounts has decoded `more` new
 * frames: remote video advances. A counter that goes down (a new
 * RTCPeerConnection, or a new stream after a renegotiation) starts again
 * from 0. The page polls its stats every 100 ms until then or the timeout
 * (waitForFunction would not await an async predicate).
 */
export async function waitFrames(page, accounts, more = 30, timeout = 20000) {
  const base = await frames(page, accounts);
  try {
    await page.evaluate(async ({ ids, base, more, timeout }) => {
      const deadline = performance.now() + timeout;
      const last = { ...base }, /** @type {Record<string, number>} */ seen = {};
      for (;;) {
        const stats = await /** @type {any} */ (window).demo.stats();
        for (const id of ids) {
          const n = stats[id]?.framesDecoded ?? 0;
          seen[id] = (seen[id] || 0) + (n >= last[id] ? n - last[id] : n);
          last[id] = n;
        }
        if (ids.every((id) => seen[id] >= more)) return;
        if (performance.now() > deadline) throw new Error(`no ${more} new video frames within ${timeout} ms`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }, { ids: accounts, base, more, timeout });
  } catch (e) {
    throw new Error(`${/** @type {Error} */ (e).message}\nframes before: ${JSON.stringify(base)}, now: ` +
      `${JSON.stringify(await frames(page, accounts).catch(() => null))}\npage: ${await status(page)}\n${pageLogs(page)}`);
  }
}

/**
 * Starts sampling, every 100 ms inside the page, the video decoded from each
 * of accounts, and keeps the longest interval between two samples that saw
 * a new frame from one of them (so 100 ms or a little more while video
 * flows). A counter that changed counts as a new frame, also when it went
 * down (a new RTCPeerConnection or stream), unless it is 0. Read it with
 * stopGapSampler.
 */
export function startGapSampler(page, accounts) {
  return page.evaluate((ids) => {
    const s = { running: true, maxGap: 0, worst: '', /** @type {Record<string, number>} */ last: {},
      /** @type {Record<string, number>} */ grew: {} };
    const start = performance.now();
    for (const id of ids) { s.last[id] = 0; s.grew[id] = start; }
    /** One sample: the stats now, then the next one 100 ms later. */
    const tick = async () => {
      if (!s.running) return;
      const stats = await /** @type {any} */ (window).demo.stats().catch(() => ({}));
      const now = performance.now();
      for (const id of ids) {
        const n = stats[id]?.framesDecoded ?? 0;
        // The gap so far: since the last sample that saw a new frame.
        const gap = now - s.grew[id];
        if (gap > s.maxGap) { s.maxGap = gap; s.worst = id; }
        if (n !== s.last[id] && n > 0) s.grew[id] = now;
        s.last[id] = n;
      }
      setTimeout(tick, 100);
    };
    Object.assign(window, { gapSampler: s });
    tick();
  }, accounts);
}

/** Stops the page's sampler; returns { maxGap (ms), worst (the account it was from) }. */
export function stopGapSampler(page) {
  return page.evaluate(() => {
    const s = /** @type {any} */ (window).gapSampler;
    s.running = false;
    return { maxGap: s.maxGap, worst: s.worst };
  });
}
