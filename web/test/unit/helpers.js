// What the client's unit tests share: a SignalingClient on the `ws` package
// (Node.js 18 has no WebSocket), and awaiting its events with a deadline.
import WebSocket from 'ws';
import { SignalingClient } from '../../src/index.js';
import { mintToken } from '../lib/processes.js';

/** How long any awaited event may take, on a loaded two-core machine. */
export const EVENT_TIMEOUT_MS = 15000;

/**
 * A client for account sub in room, on the node base URL(s) given, with a
 * token minted at every getToken() call (counted in client.tokens).
 * @param {{ sub: string, room: string, base: string | string[], name?: string, ttl?: () => number, [option: string]: unknown }} o
 */
export function makeClient({ sub, room, base, name, ttl = () => 3600, ...options }) {
  const counter = { tokens: 0 };
  const client = new SignalingClient({
    chatId: room,
    serverUrl: base,
    WebSocket: /** @type {any} */ (WebSocket),
    getToken: () => {
      counter.tokens++;
      return mintToken({ sub, name: name ?? sub, rooms: [room], ttl: ttl() });
    },
    ...options,
  });
  return Object.assign(client, { counter, log: record(client) });
}

/** Every event of client, in order, as [event, payload]. */
function record(client) {
  /** @type {Array<[string, any]>} */
  const log = [];
  for (const event of ['state', 'join', 'leave', 'welcome', 'error']) client.on(event, (p) => log.push([event, p]));
  client.onMessage((signal) => log.push(['message', signal]));
  return log;
}

/**
 * Resolves with the first payload of client's event for which pred is true
 * (including one already in its log at index >= from); rejects after the
 * deadline.
 */
export function waitEvent(client, event, pred = () => true, { from = 0, timeoutMs = EVENT_TIMEOUT_MS } = {}) {
  const seen = client.log.slice(from).find(([e, p]) => e === event && pred(p));
  if (seen) return Promise.resolve(seen[1]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error(`no '${event}' event matching ${pred} within ${timeoutMs} ms; log: ${JSON.stringify(client.log.slice(-20))}`));
    }, timeoutMs);
    const off = event === 'message'
      ? client.onMessage((s) => pred(s) && (clearTimeout(timer), off(), resolve(s)))
      : client.on(event, (p) => pred(p) && (clearTimeout(timer), off(), resolve(p)));
  });
}

/** The states client went through, in order. */
export function states(client) {
  return client.log.filter(([e]) => e === 'state').map(([, p]) => p.state);
}
