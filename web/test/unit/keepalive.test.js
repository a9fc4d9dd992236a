// The client's keepalive against a real node: webrtc.ping answered by
// webrtc.pong keeps an idle connection up, and a connection whose network
// goes silent (no close, no reset: a TCP relay that stops forwarding) is
// dropped and made again.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { HOST, newRoom, startNode } from '../lib/processes.js';
import { makeClient, waitEvent } from './helpers.js';

let node, relay, port;
let silent = false;
const sockets = new Set();

before(async () => {
  node = await startNode();
  relay = net.createServer((down) => {
    const up = net.connect(node.port, HOST);
    sockets.add(down).add(up);
    down.on('data', (d) => silent || up.write(d));
    up.on('data', (d) => silent || down.write(d));
    for (const [x, y] of [[down, up], [up, down]]) {
      x.on('error', () => y.destroy());
      x.on('close', () => y.destroy());
    }
  });
  await new Promise((resolve) => relay.listen(0, HOST, () => resolve(undefined)));
  port = /** @type {net.AddressInfo} */ (relay.address()).port;
});

after(async () => {
  for (const s of sockets) s.destroy();
  relay.close();
  await node.stop();
});

test('an idle connection is pinged and stays up; one that goes silent is dropped and made again', async () => {
  const a = makeClient({ sub: 'alice', room: newRoom(), base: `ws://${HOST}:${port}`, pingIntervalMs: 200, pingTimeoutMs: 400, minReconnectDelayMs: 50, maxReconnectDelayMs: 100 });
  try {
    await a.connect();
    // Many ping intervals with nothing else said: every ping is answered.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(a.state, 'connected');
    assert.deepEqual(a.log.filter(([e]) => e === 'error' || e === 'state').map(([, p]) => p.state ?? p.code), ['connecting', 'connected']);
    const metrics = await (await fetch(`http://${HOST}:${node.port}/metrics`)).text();
    const received = Number(/^signal_messages_received_total (\d+)/m.exec(metrics)?.[1] ?? 'NaN');
    assert.ok(received >= 3, `the node got ${received} messages: the client did not ping`);
    silent = true;
    const err = await waitEvent(a, 'error', (e) => e.code === 'keepalive_timeout');
    assert.match(err.message, /no answer/);
    assert.equal((await waitEvent(a, 'state', (p) => p.state === 'reconnecting')).code, 4000);
    silent = false;
    const mark = a.log.length;
    await waitEvent(a, 'state', (p) => p.state === 'connected', { from: mark });
    assert.equal(a.counter.tokens, 2);
  } finally {
    a.disconnect();
  }
});

test('a handshake that is never answered is given up after connectTimeoutMs, and retried', async () => {
  // A server that accepts and says nothing, as a dead network or a stuck proxy does.
  const held = new Set();
  const mute = net.createServer((s) => held.add(s));
  await new Promise((resolve) => mute.listen(0, HOST, () => resolve(undefined)));
  const mutePort = /** @type {net.AddressInfo} */ (mute.address()).port;
  const a = makeClient({ sub: 'alice', room: newRoom(), base: [`ws://${HOST}:${mutePort}`, `ws://${HOST}:${node.port}`], connectTimeoutMs: 300, minReconnectDelayMs: 50, maxReconnectDelayMs: 100 });
  try {
    const started = performance.now();
    await a.connect();
    assert.ok(performance.now() - started >= 290, 'connected before the timeout: the mute server answered?');
    assert.equal((await waitEvent(a, 'error', (e) => e.code === 'connect_timeout')).code, 'connect_timeout');
    assert.equal(a.counter.tokens, 2, 'one attempt timed out, the next (to the next server) connected');
  } finally {
    a.disconnect();
    for (const s of held) s.destroy();
    mute.close();
  }
});
