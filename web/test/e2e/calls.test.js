// End-to-end calls: real chromium pages join rooms through the demo page on
// several --dev nodes sharing Redis, and the media between them is checked
// with getStats (framesDecoded of the inbound video grows). Covers a two-node
// call, a three-node mesh, a token expiring mid-call, a node draining and a
// page reloaded mid-call. Run inside a loopback-only network namespace by
// tools/web-test.sh; prints its measurements as `e2e: <what> <n> ms`.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { newRoom } from '../lib/processes.js';
import {
  artifact, demoUrl, launchBrowser, openPage, pageLogs, report, startCluster, startGapSampler,
  stopGapSampler, waitConnected, waitFrames, waitPage,
} from '../lib/browser.js';

/** The longest media gap a disruption may cause: the bound. */
const MAX_GAP_MS = 5000;

/** @type {import('playwright-core').Browser} */
let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/**
 * Runs body with a cluster of n nodes, and closes every page's context and
 * the cluster afterwards, whatever happened.
 * @param {number} n
 * @param {(c: Awaited<ReturnType<typeof startCluster>>, pages: import('playwright-core').Page[]) => Promise<void>} body
 */
async function withCluster(n, body) {
  const cluster = await startCluster(n);
  /** @type {import('playwright-core').Page[]} */
  const pages = [];
  try {
    await body(cluster, pages);
  } finally {
    await Promise.allSettled(pages.map((p) => p.context().close()));
    await cluster.stop();
  }
}

/**
 * Measures the media gap around a disruption: samples every page's inbound
 * video, runs disrupt() and awaits its end, then awaits that the video from
 * every other page advances again on every page. Returns the longest gap (ms)
 * any page saw from any other.
 * @param {{ page: import('playwright-core').Page, account: string }[]} people
 * @param {() => Promise<void>} disrupt
 */
async function mediaGap(people, disrupt) {
  const others = (me) => people.filter((p) => p !== me).map((p) => p.account);
  await Promise.all(people.map((p) => startGapSampler(p.page, others(p))));
  await disrupt();
  await Promise.all(people.map((p) => waitFrames(p.page, others(p), 30)));
  const gaps = await Promise.all(people.map((p) => stopGapSampler(p.page)));
  return Math.max(...gaps.map((g) => g.maxGap));
}

test('two pages on two nodes connect and exchange video', { timeout: 60000 }, async () => {
  await withCluster(2, async ({ nodes }, pages) => {
    const room = newRoom();
    const [alice, bob] = ['alice', 'bob'];
    pages.push(await openPage(browser, demoUrl(nodes[0], { room, account: alice, name: 'Alice', auto: false })));
    pages.push(await openPage(browser, demoUrl(nodes[1], { room, account: bob, name: 'Bob', auto: false })));
    const [pa, pb] = pages;
    await pa.getByRole('button', { name: 'Join' }).click();
    await waitPage(pa, () => /** @type {any} */ (window).demo.client?.state === 'connected', null);
    await pb.getByRole('button', { name: 'Join' }).click();

    const tb = await waitConnected(pb, [alice]);
    await waitConnected(pa, [bob]);
    const ms = (/** @type {number} */ t) => Math.round(t);
    report('join->connected', tb.connected[alice] - tb.join, `camera ${ms(tb.media - tb.join)} ms, welcome ` +
      `${ms(tb.welcome - tb.media)} ms, negotiation and ICE ${ms(tb.connected[alice] - tb.welcome)} ms`);
    await Promise.all([waitFrames(pa, [bob]), waitFrames(pb, [alice])]);

    // The page shows both people, in plain words.
    for (const page of pages) {
      await page.getByRole('listitem').filter({ hasText: page === pa ? 'Bob' : 'Alice' }).first().waitFor({ timeout: 5000 });
      assert.match(await page.getByRole('status').innerText(), /In the call/);
    }
    await pa.screenshot({ path: artifact('demo-two-participants.png') });

    // Mute and camera off/on: the camera comes back through renegotiation, and Bob sees it.
    await pa.getByRole('button', { name: 'Mute' }).click();
    await pa.getByRole('button', { name: 'Unmute', pressed: true }).waitFor({ timeout: 5000 });
    const micEnabled = await pa.evaluate(() => /** @type {any} */ (window).demo.call.peers.get('bob').pc.getSenders()
      .find((/** @type {RTCRtpSender} */ s) => s.track?.kind === 'audio')?.track.enabled);
    assert.equal(micEnabled, false, 'muted: the microphone track sends silence');
    await pa.getByRole('button', { name: 'Camera off' }).click();
    await pa.getByRole('button', { name: 'Camera on', pressed: true }).waitFor({ timeout: 5000 });
    await pa.getByRole('button', { name: 'Camera on' }).click();
    await pa.getByRole('button', { name: 'Camera off', pressed: false }).waitFor({ timeout: 10000 });
    await waitFrames(pb, [alice]);
  });
});

test('three pages on three nodes make a full mesh', { timeout: 90000 }, async () => {
  await withCluster(3, async ({ nodes }, pages) => {
    const room = newRoom();
    const accounts = ['alice', 'bob', 'carol'];
    for (const [i, account] of accounts.entries())
      pages.push(await openPage(browser, demoUrl(nodes[i], { room, account, name: account })));
    for (const [i, page] of pages.entries()) {
      const others = accounts.filter((_, j) => j !== i);
      await waitConnected(page, others, 45000);
      await waitFrames(page, others);
      assert.equal(await page.locator('#tiles li.remote').count(), 2, pageLogs(page));
    }
  });
});

test('a token that expires mid-call is renewed without a page action', { timeout: 90000 }, async () => {
  await withCluster(2, async ({ nodes }, pages) => {
    const room = newRoom();
    // Alice's tokens live 5 s: the node closes her with 4001 during the call.
    pages.push(await openPage(browser, demoUrl(nodes[0], { room, account: 'alice', ttl: 5 })));
    pages.push(await openPage(browser, demoUrl(nodes[1], { room, account: 'bob' })));
    const [pa, pb] = pages;
    await Promise.all([waitConnected(pa, ['bob']), waitConnected(pb, ['alice'])]);
    await Promise.all([waitFrames(pa, ['bob']), waitFrames(pb, ['alice'])]);

    const tokens = await pa.evaluate(() => /** @type {any} */ (window).demo.tokens);
    const gap = await mediaGap([{ page: pa, account: 'alice' }, { page: pb, account: 'bob' }], async () => {
      // The expiry happened, and the client is back with a new token.
      await waitPage(pa, (n) => {
        const d = /** @type {any} */ (window).demo;
        return d.tokens > n && d.closes.includes(4001) && d.client.state === 'connected';
      }, tokens);
    });
    report('token-expiry media gap', gap);
    assert.ok((await pa.evaluate(() => /** @type {any} */ (window).demo.statuses)).includes('Your session expired, renewing…'),
      'the page said why it reconnected');
    assert.ok(gap < MAX_GAP_MS, `media stopped for ${gap} ms around the token's expiry`);
    await waitConnected(pb, ['alice']);
  });
});

test('a draining node moves its page to another node without a page action', { timeout: 90000 }, async () => {
  await withCluster(3, async ({ nodes }, pages) => {
    const room = newRoom();
    const [n0, n1, n2] = nodes;
    pages.push(await openPage(browser, demoUrl(n0, { room, account: 'alice', servers: [n0, n1, n2] })));
    pages.push(await openPage(browser, demoUrl(n1, { room, account: 'bob', servers: [n1, n2, n0] })));
    const [pa, pb] = pages;
    await Promise.all([waitConnected(pa, ['bob']), waitConnected(pb, ['alice'])]);
    await Promise.all([waitFrames(pa, ['bob']), waitFrames(pb, ['alice'])]);

    const gap = await mediaGap([{ page: pa, account: 'alice' }, { page: pb, account: 'bob' }], async () => {
      assert.equal(await n0.terminate(), 0, n0.logs());
      // Alice's connection closed, and she is back (n0 is gone: on another node).
      await waitPage(pa, () => {
        const d = /** @type {any} */ (window).demo;
        return d.closes.length > 0 && d.client.state === 'connected';
      }, null);
    });
    report('drain media gap', gap);
    assert.ok(gap < MAX_GAP_MS, `media stopped for ${gap} ms around the drain`);
    const { closes, statuses } = await pa.evaluate(() => {
      const d = /** @type {any} */ (window).demo;
      return { closes: d.closes, statuses: d.statuses };
    });
    // The node waits for the browser's own close frame before it exits, so
    // the page sees the 1001 it was sent, not a reset (1006).
    assert.equal(closes[0], 1001, `the page saw close code ${closes[0]}`);
    assert.ok(statuses.includes('This node is shutting down, moving to another…'), 'the page said why it reconnected');
  });
});

test('a page reloaded mid-call rejoins and media flows both ways', { timeout: 90000 }, async () => {
  await withCluster(2, async ({ nodes }, pages) => {
    const room = newRoom();
    // Alice has no account in the query: the page keeps hers in sessionStorage across the reload.
    pages.push(await openPage(browser, demoUrl(nodes[0], { room })));
    pages.push(await openPage(browser, demoUrl(nodes[1], { room, account: 'bob' })));
    const [pa, pb] = pages;
    await waitPage(pa, () => !!(/** @type {any} */ (window).demo), null);
    const alice = await pa.evaluate(() => /** @type {any} */ (window).demo.account);
    await Promise.all([waitConnected(pa, ['bob']), waitConnected(pb, [alice])]);
    await Promise.all([waitFrames(pa, ['bob']), waitFrames(pb, [alice])]);

    const t0 = Date.now();
    await pa.reload();
    assert.equal(await pa.evaluate(() => /** @type {any} */ (window).demo.account), alice, 'the reload kept the identity');
    await Promise.all([waitConnected(pa, ['bob']), waitConnected(pb, [alice])]);
    await Promise.all([waitFrames(pa, ['bob']), waitFrames(pb, [alice])]);
    report('reload->media both ways', Date.now() - t0);
  });
});
