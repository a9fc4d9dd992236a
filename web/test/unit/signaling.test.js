// SignalingClient against real signal-node processes (and redis-server where
// a cluster or Redis membership is needed): reconnect rules, token refresh,
// peers, the message forms, the send queue and the keepalive.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { reconnectDelay } from '../../src/index.js';
import { freePort, HOST, newRoom, startNode, startRedis } from '../lib/processes.js';
import { makeClient, states, waitEvent } from './helpers.js';

/** Everything a test started, stopped at its end (clients first). */
function scope() {
  const clients = [], processes = [];
  return {
    client(o) {
      const c = makeClient(o);
      clients.push(c);
      return c;
    },
    async node(o) {
      const n = await startNode(o);
      processes.push(n);
      return n;
    },
    async redis() {
      const r = await startRedis();
      processes.push(r);
      return r;
    },
    async close() {
      for (const c of clients) c.disconnect();
      for (const p of processes.reverse()) await p.stop();
    },
  };
}

describe('reconnectDelay', () => {
  test('stays between the minimum and a cap that doubles up to the maximum', () => {
    for (let attempt = 0; attempt < 12; attempt++) {
      const cap = Math.min(20000, 500 * 2 ** (attempt + 1));
      assert.equal(reconnectDelay(attempt, 500, 20000, () => 0), 500);
      const top = reconnectDelay(attempt, 500, 20000, () => 0.999999);
      assert.ok(top <= cap && top > cap - 1, `attempt ${attempt}: ${top} vs cap ${cap}`);
    }
    assert.equal(reconnectDelay(1000, 500, 20000, () => 0.999999) <= 20000, true);
  });

  test('spreads the delays: full jitter, not a fixed step', () => {
    const delays = new Set(Array.from({ length: 50 }, () => Math.round(reconnectDelay(3, 500, 20000))));
    assert.ok(delays.size > 40, `only ${delays.size} distinct delays`);
  });

  test('a client waits between the bounds between attempts to a port that refuses', async () => {
    const port = await freePort(); // nothing listens there
    const times = [];
    let sixth = () => {};
    const done = new Promise((resolve) => (sixth = resolve));
    // ttl() runs inside getToken(), at the start of every attempt.
    const ttl = () => (times.push(performance.now()) === 6 && sixth(), 3600);
    const c = makeClient({ sub: 'a', room: newRoom(), base: `ws://${HOST}:${port}`, ttl, minReconnectDelayMs: 100, maxReconnectDelayMs: 800 });
    void c.connect().catch(() => {});
    await done;
    c.disconnect();
    assert.deepEqual(states(c), ['connecting', 'disconnected']);
    for (let i = 1; i < times.length; i++) {
      const gap = times[i] - times[i - 1];
      assert.ok(gap >= 95, `attempt ${i}: retried after ${gap} ms, below the 100 ms minimum`);
      assert.ok(gap <= 800 + 1000, `attempt ${i}: retried after ${gap} ms, far above the 800 ms maximum`);
    }
  });
});

describe('one node', () => {
  const s = scope();
  let node;
  before(async () => {
    node = await s.node({ env: { SIGNAL_JWT_LEEWAY_S: '0', SIGNAL_RATE_BURST: '5', SIGNAL_RATE_PER_S: '5' } });
  });
  after(() => s.close());

  test('connect() resolves at the welcome, with the user id, room and state', async () => {
    const room = newRoom();
    const a = s.client({ sub: 'alice', room, base: node.base });
    await a.connect();
    assert.equal(a.state, 'connected');
    assert.equal(a.userId, 'alice');
    assert.equal(a.roomId, room);
    assert.deepEqual(states(a), ['connecting', 'connected']);
    assert.deepEqual(a.getConnectedPeers(), []);
  });

  test('peers: the welcome lists, joins and leaves, with their accounts', async () => {
    const room = newRoom();
    const a = s.client({ sub: 'alice', name: 'Alice', room, base: node.base });
    await a.connect();
    const b = s.client({ sub: 'bob', name: 'Bob', room, base: node.base });
    const peerCalls = [];
    b.onPeer((id, account, what) => peerCalls.push([id, account.name, what]));
    await b.connect();
    assert.deepEqual(peerCalls, [['alice', 'Alice', 'connected']]);
    assert.deepEqual(b.getConnectedPeers(), [{ userId: 'alice', userInfo: b.getUserInfo('alice') }]);
    assert.equal(b.getUserInfo('alice')?.name, 'Alice');
    const joined = await waitEvent(a, 'join');
    assert.equal(joined.accountId, 'bob');
    assert.equal(joined.account.name, 'Bob');
    b.disconnect();
    const left = await waitEvent(a, 'leave');
    assert.equal(left.accountId, 'bob');
    assert.equal(a.getUserInfo('bob'), undefined);
    assert.deepEqual(peerCalls.at(-1), ['alice', 'Alice', 'disconnected']);
    assert.equal(b.state, 'disconnected');
  });

  test('every accepted message form arrives as one signal shape', async () => {
    const room = newRoom();
    const a = s.client({ sub: 'alice', room, base: node.base });
    const b = s.client({ sub: 'bob', room, base: node.base });
    await a.connect();
    await b.connect();
    await waitEvent(a, 'join');
    assert.equal(a.sendMessage({ type: 'offer', data: { sdp: 'one' }, to: 'bob' }), true);
    assert.equal(a.sendMessage({ type: 'offer', offer: { sdp: 'two' } }), true);
    assert.equal(a.sendMessage({ type: 'webrtc.signal', data: { type: 'answer', data: { sdp: 'three' } } }), true);
    const seen = [];
    const got = new Promise((resolve) => b.onMessage((sig, from, info) => (seen.push([sig, from, info]), seen.length === 3 && resolve(undefined))));
    await got;
    assert.deepEqual(seen.map(([sig]) => [sig.type, sig.data, sig.to]), [
      ['offer', { sdp: 'one' }, 'bob'],
      ['offer', { offer: { sdp: 'two' } }, undefined],
      ['answer', { sdp: 'three' }, undefined],
    ]);
    for (const [sig, from, info] of seen) {
      assert.equal(from, 'alice');
      assert.equal(sig.senderAccountId, 'alice');
      assert.deepEqual(info, sig.senderInfo);
      assert.equal(info.id, 'alice');
    }
  });

  test("the node's errors arrive as error events and the connection stays", async () => {
    const room = newRoom();
    const a = s.client({ sub: 'alice', room, base: node.base });
    await a.connect();
    a.sendMessage({ type: 'user-joined' });
    assert.equal((await waitEvent(a, 'error', (e) => e.code === 'invalid_message')).code, 'invalid_message');
    a.sendMessage({ type: 'offer', to: 'nobody' });
    await waitEvent(a, 'error', (e) => e.code === 'unknown_target');
    assert.equal(a.state, 'connected');
  });

  test('the send queue keeps at most maxQueuedMessages, then refuses, and sends them in order', async () => {
    const room = newRoom();
    const b = s.client({ sub: 'bob', room, base: node.base });
    await b.connect();
    const a = s.client({ sub: 'alice', room, base: node.base, maxQueuedMessages: 3 });
    assert.equal(a.sendMessage({ type: 'x' }), false, 'refused before connect()');
    void a.connect();
    const accepted = [1, 2, 3, 4, 5].map((n) => a.sendMessage({ type: 'n', data: { n } }));
    assert.deepEqual(accepted, [true, true, true, false, false]);
    assert.equal((await waitEvent(a, 'error', (e) => e.code === 'queue_full')).code, 'queue_full');
    const got = [];
    await new Promise((resolve) => b.onMessage((sig) => (got.push(sig.data.n), got.length === 3 && resolve(undefined))));
    assert.deepEqual(got, [1, 2, 3]);
  });

  test('a token that expires (4001) is renewed with getToken and the client reconnects at once', async () => {
    const room = newRoom();
    let first = true;
    const a = s.client({ sub: 'alice', room, base: node.base, ttl: () => (first ? ((first = false), 3) : 3600) });
    await a.connect();
    const closed = await waitEvent(a, 'state', (p) => p.state === 'reconnecting');
    assert.equal(closed.code, 4001);
    const at = performance.now();
    await waitEvent(a, 'state', (p) => p.state === 'connected', { from: a.log.length - 1 });
    assert.ok(performance.now() - at < 2000, 'reconnected without a backoff');
    assert.equal(a.counter.tokens, 2);
    assert.deepEqual(states(a), ['connecting', 'connected', 'reconnecting', 'connected']);
  });

  test('no reconnect after 1008 (repeated abuse)', async () => {
    const room = newRoom();
    const a = s.client({ sub: 'alice', room, base: node.base, minReconnectDelayMs: 50, maxReconnectDelayMs: 100 });
    await a.connect();
    for (let i = 0; i < 1100; i++) a.sendMessage({ type: 'flood' });
    const err = await waitEvent(a, 'error', (e) => e.code === 'policy');
    assert.match(err.message, /./);
    assert.equal(a.state, 'disconnected');
    assert.equal(states(a).at(-1), 'disconnected');
    assert.equal(a.sendMessage({ type: 'x' }), false);
    // Long enough for several retries at this backoff: none happens.
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(a.counter.tokens, 1);
  });
});

describe('Redis membership', () => {
  const s = scope();
  let node, redis;
  before(async () => {
    redis = await s.redis();
    node = await s.node({ env: { SIGNAL_REDIS_URL: redis.url, SIGNAL_MEMBERSHIP: 'redis' } });
  });
  after(() => s.close());

  test('no reconnect after 4403 (not a member), and connect() rejects', async () => {
    const a = s.client({ sub: 'stranger', room: newRoom(), base: node.base, minReconnectDelayMs: 50, maxReconnectDelayMs: 100 });
    await assert.rejects(a.connect(), /4403/);
    assert.equal((await waitEvent(a, 'error', (e) => e.code === 'forbidden')).code, 'forbidden');
    assert.equal(a.state, 'disconnected');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(a.counter.tokens, 1);
  });

  test('a member connects', async () => {
    const room = newRoom();
    execFileSync('redis-cli', ['-p', String(redis.port), 'SADD', `chat:${room}:members`, 'member']);
    const a = s.client({ sub: 'member', room, base: node.base });
    await a.connect();
    assert.equal(a.state, 'connected');
  });
});

describe('a cluster of two nodes', () => {
  const s = scope();
  let redis, n1, n2;
  before(async () => {
    redis = await s.redis();
    n1 = await s.node({ env: { SIGNAL_REDIS_URL: redis.url } });
    n2 = await s.node({ env: { SIGNAL_REDIS_URL: redis.url } });
  });
  after(() => s.close());

  test('a drained node (1001) sends its clients to the next server at once, and they keep their peers and queue', async () => {
    const room = newRoom();
    const b = s.client({ sub: 'bob', room, base: n2.base });
    await b.connect();
    const a = s.client({ sub: 'alice', room, base: [n1.base, n2.base] });
    await a.connect();
    assert.equal(a.getUserInfo('bob')?.id, 'bob');
    const mark = a.log.length;
    const stopped = n1.terminate();
    const closed = await waitEvent(a, 'state', (p) => p.state === 'reconnecting', { from: mark });
    assert.equal(closed.code, 1001);
    assert.equal(a.sendMessage({ type: 'queued', data: { n: 1 } }), true);
    await waitEvent(a, 'state', (p) => p.state === 'connected', { from: mark });
    assert.equal(await stopped, 0);
    assert.equal(a.counter.tokens, 2);
    const sig = await waitEvent(b, 'message', (m) => m.type === 'queued');
    assert.deepEqual(sig.data, { n: 1 });
    // Bob was there all along: no leave or join for him.
    assert.deepEqual(a.log.slice(mark).filter(([e]) => e === 'join' || e === 'leave'), []);
    assert.equal(a.getUserInfo('bob')?.id, 'bob');
  });
});

describe('a node that comes back', () => {
  const s = scope();
  after(() => s.close());

  test('after a reconnect the welcome decides the peers: who left meanwhile leaves', async () => {
    const redis = await s.redis();
    const env = { SIGNAL_REDIS_URL: redis.url };
    const stay = await s.node({ env });
    const first = await startNode({ env });
    const room = newRoom();
    const a = s.client({ sub: 'alice', room, base: first.base, minReconnectDelayMs: 50, maxReconnectDelayMs: 200 });
    const b = s.client({ sub: 'bob', room, base: stay.base });
    await b.connect();
    await a.connect();
    assert.ok(a.getUserInfo('bob'));
    const mark = a.log.length;
    const port = first.port;
    await first.stop();
    await waitEvent(a, 'state', (p) => p.state === 'reconnecting', { from: mark });
    b.disconnect();
    const back = await s.node({ env, port }).catch(() => null);
    assert.ok(back, 'the port was taken meanwhile');
    await waitEvent(a, 'state', (p) => p.state === 'connected', { from: mark });
    const left = await waitEvent(a, 'leave', () => true, { from: mark });
    assert.equal(left.accountId, 'bob');
    assert.deepEqual(a.getConnectedPeers(), []);
  });
});
