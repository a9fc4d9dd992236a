// SignalingClient: one WebSocket to a signal-node room that stays up.
//
// It speaks the node's wire format (docs/protocol.md), asks the application
// for a token before every connect, and reconnects by itself: at once when
// the token expired (4001) or the node drains (1001, to the next server),
// with capped exponential backoff and jitter after a failure, never after
// 4403 (not a member) or 1008 (policy). It keeps the room's peers across
// reconnects, queues what is sent while it is away, and pings the node when
// it has heard nothing for a while, because a browser cannot see WebSocket
// pings and a dead TCP connection can stay silent for minutes.

import { reconnectDelay } from './backoff.js';
import { Emitter } from './emitter.js';

/**
 * The account object the node builds from a token.
 * @typedef {{ id: string, name?: string | null, nick?: string | null, profile?: Record<string, unknown>, updatedAt?: string | null }} Account
 */
/**
 * A signal as it arrives, stamped by the node with its sender.
 * @typedef {{ type: string, data?: any, to?: string, senderAccountId: string, senderInfo: Account }} Signal
 */
/**
 * What sendMessage takes: `{ type, data, to }` (to is optional). The guide's
 * flat form `{ type: 'offer', offer: ... }` and the `webrtc.signal` envelope
 * are passed through as they are; the node accepts all three.
 * @typedef {{ type: string, data?: unknown, to?: string, [field: string]: unknown }} OutgoingSignal
 */
/** @typedef {'disconnected' | 'connecting' | 'connected' | 'reconnecting'} State */
/**
 * The welcome's data: who this connection is and who else is in the room.
 * @typedef {{ userId: string, roomId: string, message: string, timestamp: string, participants: Array<{ identity?: string | null, name?: string | null, accountId: string, account: Account, joinedAt: string }> }} Welcome
 */
/**
 * @typedef {object} ClientEvents
 * @property {{ state: State, previous: State, code?: number, reason?: string }} state
 * @property {{ accountId: string, account: Account }} join
 * @property {{ accountId: string, account: Account }} leave
 * @property {Welcome} welcome
 * @property {{ code: string, message: string }} error
 */
/**
 * @typedef {object} SignalingOptions
 * @property {string} chatId the room: a GUID
 * @property {string | string[]} serverUrl `wss://host[:port]`, or several: after a drain or a failed attempt the client moves to the next
 * @property {() => string | Promise<string>} getToken called before every connect and reconnect
 * @property {string} [pathPrefix] the node's SIGNAL_PATH_PREFIX (default `/api`)
 * @property {{ new (url: string): WebSocket }} [WebSocket] default globalThis.WebSocket
 * @property {number} [minReconnectDelayMs] default 500
 * @property {number} [maxReconnectDelayMs] default 20000
 * @property {number} [maxQueuedMessages] messages kept while not connected (default 100)
 * @property {number} [pingIntervalMs] ping after this long without hearing from the node (default 20000; 0 = never)
 * @property {number} [pingTimeoutMs] drop the connection when the ping is not answered this fast (default 10000)
 * @property {number} [connectTimeoutMs] give up an attempt that has no welcome this long after it started (default 10000)
 */

/** Close codes after which reconnecting cannot help, and what the error says. */
const FATAL = new Map([
  [4403, 'forbidden'],
  [1008, 'policy'],
]);
const EXPIRED = 4001;
const GOING_AWAY = 1001;
/** The code this client gives a connection it dropped: a ping unanswered, or no welcome in time. */
const CLIENT_TIMEOUT = 4000;
/** A connection shorter than this that ends with 4001 or 1001 retries with backoff, not at once. */
const MIN_HEALTHY_MS = 2000;

export class SignalingClient {
  /** @type {Required<Omit<SignalingOptions, 'serverUrl'>>} */
  #opts;
  /** @type {string[]} */
  #urls;
  #urlIndex = 0;
  /** @type {State} */
  #state = 'disconnected';
  /** @type {WebSocket | null} */
  #ws = null;
  /** Bumped on every connect attempt and on disconnect: a late callback of an older attempt sees it changed and gives up. */
  #generation = 0;
  #attempt = 0;
  #welcomedAt = 0;
  #lastHeard = 0;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #retryTimer;
  /** @type {ReturnType<typeof setInterval> | undefined} */
  #pingTimer;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  #connectTimer;
  /** @type {string[]} */
  #queue = [];
  /** @type {Map<string, Account>} */
  #peers = new Map();
  /** @type {Set<(signal: Signal, senderId: string, senderInfo: Account) => void>} */
  #messageHandlers = new Set();
  /** @type {Set<(accountId: string, account: Account, what: 'connected' | 'disconnected') => void>} */
  #peerHandlers = new Set();
  /** @type {Emitter<ClientEvents>} */
  #events = new Emitter();
  /** @type {{ resolve: () => void, reject: (e: Error) => void } | null} */
  #pending = null;
  /** @type {string | null} */
  userId = null;
  /** @type {string | null} */
  roomId = null;

  /** @param {SignalingOptions} options */
  constructor(options) {
    const { serverUrl, ...rest } = options;
    if (!options.chatId) throw new TypeError('SignalingClient: chatId is required');
    if (typeof options.getToken !== 'function') throw new TypeError('SignalingClient: getToken must be a function');
    this.#urls = (Array.isArray(serverUrl) ? serverUrl : [serverUrl]).map((u) => String(u).replace(/\/+$/, ''));
    if (!this.#urls.length || !this.#urls[0]) throw new TypeError('SignalingClient: serverUrl is required');
    this.#opts = {
      pathPrefix: '/api',
      WebSocket: globalThis.WebSocket,
      minReconnectDelayMs: 500,
      maxReconnectDelayMs: 20000,
      maxQueuedMessages: 100,
      pingIntervalMs: 20000,
      pingTimeoutMs: 10000,
      connectTimeoutMs: 10000,
      ...rest,
    };
  }

  /** @returns {State} */
  get state() {
    return this.#state;
  }

  /**
   * Starts connecting, and keeps the connection up until disconnect().
   * @returns {Promise<void>} resolves at the first welcome; rejects if the
   *   client gives up first (4403, 1008, or disconnect()).
   */
  connect() {
    if (this.#state === 'disconnected') {
      this.#attempt = 0;
      this.#setState('connecting');
      void this.#open();
    } else if (this.#state === 'connected') {
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const prev = this.#pending;
      this.#pending = {
        resolve: () => (prev?.resolve(), resolve()),
        reject: (e) => (prev?.reject(e), reject(e)),
      };
    });
  }

  /** Closes the connection (1000) for good: no reconnect, the queue is dropped, every peer leaves. */
  disconnect() {
    if (this.#state === 'disconnected') return;
    this.#stop({ code: 1000, reason: 'disconnect() called' }, new Error('disconnected'));
  }

  /**
   * Sends a signal to the room, or to one account with `to`. While not
   * connected it is queued (at most maxQueuedMessages) and sent, in order,
   * after the next welcome.
   * @param {OutgoingSignal} message
   * @returns {boolean} false when refused: not started, or the queue is full
   */
  sendMessage(message) {
    if (this.#state === 'disconnected') return false;
    const text = JSON.stringify(message);
    if (this.#state === 'connected' && this.#ws?.readyState === 1) {
      this.#ws.send(text);
      return true;
    }
    if (this.#queue.length >= this.#opts.maxQueuedMessages) {
      this.#events.emit('error', { code: 'queue_full', message: `${this.#queue.length} messages already wait for the connection` });
      return false;
    }
    this.#queue.push(text);
    return true;
  }

  /**
   * Calls handler with each signal from another connection (presence signals
   * excluded: see onPeer). A signal from this account's other device has
   * senderId === userId.
   * @param {(signal: Signal, senderId: string, senderInfo: Account) => void} handler
   * @returns {() => void} unsubscribe
   */
  onMessage(handler) {
    this.#messageHandlers.add(handler);
    return () => void this.#messageHandlers.delete(handler);
  }

  /**
   * Calls handler when another account appears in the room or leaves it.
   * @param {(accountId: string, account: Account, what: 'connected' | 'disconnected') => void} handler
   * @returns {() => void} unsubscribe
   */
  onPeer(handler) {
    this.#peerHandlers.add(handler);
    return () => void this.#peerHandlers.delete(handler);
  }

  /** @returns {Array<{ userId: string, userInfo: Account }>} the other accounts in the room */
  getConnectedPeers() {
    return [...this.#peers].map(([userId, userInfo]) => ({ userId, userInfo }));
  }

  /**
   * @param {string} accountId
   * @returns {Account | undefined}
   */
  getUserInfo(accountId) {
    return this.#peers.get(accountId);
  }

  /**
   * @template {keyof ClientEvents} K
   * @param {K} event
   * @param {(payload: ClientEvents[K]) => void} handler
   * @returns {() => void} unsubscribe
   */
  on(event, handler) {
    return this.#events.on(event, handler);
  }

  // ---------------------------------------------------------------------
  // Connecting

  /** One connect attempt: a fresh token, then a WebSocket to the current server. */
  async #open() {
    const generation = ++this.#generation;
    let token;
    try {
      token = await this.#opts.getToken();
    } catch (err) {
      if (generation !== this.#generation) return;
      this.#events.emit('error', { code: 'token_failed', message: String(/** @type {Error} */ (err)?.message ?? err) });
      this.#retry(false);
      return;
    }
    if (generation !== this.#generation) return;
    const { pathPrefix, chatId } = this.#opts;
    const url = `${this.#urls[this.#urlIndex]}${pathPrefix}/chat/realtime/${encodeURIComponent(chatId)}?tk=${encodeURIComponent(token)}`;
    let ws;
    try {
      ws = new this.#opts.WebSocket(url);
    } catch (err) {
      this.#events.emit('error', { code: 'bad_url', message: String(/** @type {Error} */ (err)?.message ?? err) });
      this.#retry(false);
      return;
    }
    this.#ws = ws;
    this.#welcomedAt = 0;
    ws.onmessage = (ev) => this.#onPacket(ev.data);
    ws.onerror = () => {}; // a close event follows, with the code
    ws.onclose = (ev) => ws === this.#ws && this.#onClose(ev.code, ev.reason);
    // A handshake into a dead network can hang for minutes.
    this.#connectTimer = setTimeout(() => {
      this.#events.emit('error', { code: 'connect_timeout', message: `no welcome within ${this.#opts.connectTimeoutMs} ms` });
      this.#onClose(CLIENT_TIMEOUT, 'connect timeout');
    }, this.#opts.connectTimeoutMs);
  }

  // The socket is gone with code: reconnect, at once or after a backoff, or give up.
  /** @param {number} code @param {string} reason */
  #onClose(code, reason) {
    this.#detach();
    const fatal = FATAL.get(code);
    if (fatal) {
      this.#events.emit('error', { code: fatal, message: reason || `closed with ${code}` });
      this.#stop({ code, reason }, new Error(`signal-node closed the connection: ${code} ${reason}`));
      return;
    }
    const healthy = this.#welcomedAt > 0 && Date.now() - this.#welcomedAt >= MIN_HEALTHY_MS;
    // A drained node's clients go to the next server; a server that failed before its welcome too.
    if (code === GOING_AWAY || !this.#welcomedAt) this.#urlIndex = (this.#urlIndex + 1) % this.#urls.length;
    this.#setState(this.#state === 'connecting' ? 'connecting' : 'reconnecting', { code, reason });
    this.#retry(healthy && (code === EXPIRED || code === GOING_AWAY));
  }

  // Schedules the next attempt: now, or after reconnectDelay().
  /** @param {boolean} now */
  #retry(now) {
    const delay = now ? 0 : reconnectDelay(this.#attempt++, this.#opts.minReconnectDelayMs, this.#opts.maxReconnectDelayMs);
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => void this.#open(), delay);
  }

  /** Forgets the current socket: no message or close callback of it runs after this, and it is closed. */
  #detach() {
    clearInterval(this.#pingTimer);
    clearTimeout(this.#connectTimer);
    const ws = this.#ws;
    this.#ws = null;
    if (!ws) return;
    ws.onmessage = ws.onclose = null;
    if (ws.readyState <= 1) ws.close(1000);
  }

  // Ends for good: disconnected, queue dropped, every peer gone, a pending connect() rejected with err.
  /** @param {{ code: number, reason: string }} why @param {Error} err */
  #stop(why, err) {
    this.#generation++;
    clearTimeout(this.#retryTimer);
    this.#detach();
    this.#queue = [];
    this.#setState('disconnected', why);
    for (const [id, account] of [...this.#peers]) this.#removePeer(id, account);
    const pending = this.#pending;
    this.#pending = null;
    pending?.reject(err);
  }

  // Moves to state and tells the listeners, with the close that caused it.
  /** @param {State} state @param {{ code?: number, reason?: string }} [why] */
  #setState(state, why = {}) {
    const previous = this.#state;
    if (previous === state) return;
    this.#state = state;
    this.#events.emit('state', { state, previous, ...why });
  }

  // ---------------------------------------------------------------------
  // Keepalive

  /** Every pingIntervalMs: a ping when the node has been silent that long, and a drop when the last ping went unanswered. */
  #startKeepalive() {
    const { pingIntervalMs, pingTimeoutMs } = this.#opts;
    if (!pingIntervalMs) return;
    let pingedAt = 0;
    const tick = Math.min(pingIntervalMs, pingTimeoutMs) / 2;
    this.#pingTimer = setInterval(() => {
      const now = Date.now();
      if (pingedAt && this.#lastHeard < pingedAt && now - pingedAt >= pingTimeoutMs) {
        this.#events.emit('error', { code: 'keepalive_timeout', message: `no answer from the node for ${now - this.#lastHeard} ms` });
        this.#onClose(CLIENT_TIMEOUT, 'keepalive timeout');
      } else if (now - this.#lastHeard >= pingIntervalMs && this.#lastHeard >= pingedAt) {
        pingedAt = now;
        this.#ws?.send('{"type":"webrtc.ping"}');
      }
    }, tick);
  }

  // ---------------------------------------------------------------------
  // Packets

  // One packet from the node: any packet is a sign of life; unknown types are ignored.
  /** @param {unknown} text */
  #onPacket(text) {
    this.#lastHeard = Date.now();
    let packet;
    try {
      packet = JSON.parse(String(text));
    } catch {
      return;
    }
    const data = packet?.data;
    switch (packet?.type) {
      case 'webrtc':
        this.#onWelcome(data);
        break;
      case 'webrtc.signal':
        if (data && typeof data.senderAccountId === 'string') this.#onSignal(data);
        break;
      case 'error':
        this.#events.emit('error', { code: String(data?.code), message: String(data?.message) });
        break;
    }
  }

  // Connected: send what waited, and make the peers those the welcome lists.
  /** @param {Welcome} welcome */
  #onWelcome(welcome) {
    clearTimeout(this.#connectTimer);
    this.#welcomedAt = Date.now();
    this.#attempt = 0;
    this.userId = welcome.userId;
    this.roomId = welcome.roomId;
    this.#setState('connected');
    this.#startKeepalive();
    const queued = this.#queue;
    this.#queue = [];
    for (const text of queued) this.#ws?.send(text);
    // The participants replace what this client knew before a reconnect.
    const now = new Map((welcome.participants ?? []).map((p) => [p.accountId, p.account ?? { id: p.accountId }]));
    for (const [id, account] of [...this.#peers]) if (!now.has(id)) this.#removePeer(id, account);
    for (const [id, account] of now) this.#addPeer(id, account);
    this.#events.emit('welcome', welcome);
    const pending = this.#pending;
    this.#pending = null;
    pending?.resolve();
  }

  // Presence signals move peers; others go to onMessage handlers.
  /** @param {Signal} signal */
  #onSignal(signal) {
    const from = signal.senderAccountId;
    const account = signal.senderInfo ?? { id: from };
    if (signal.type === 'user-joined') return this.#addPeer(from, account);
    if (signal.type === 'user-left') return this.#removePeer(from, this.#peers.get(from) ?? account);
    if (from !== this.userId) this.#addPeer(from, account);
    for (const handler of [...this.#messageHandlers]) {
      try {
        handler(signal, from, account);
      } catch (err) {
        console.error('signal-node client: an onMessage handler threw', err);
      }
    }
  }

  // Tells the listeners of a peer not known yet; never this account itself.
  /** @param {string} id @param {Account} account */
  #addPeer(id, account) {
    if (id === this.userId || this.#peers.has(id)) return;
    this.#peers.set(id, account);
    this.#notifyPeer(id, account, 'connected');
    this.#events.emit('join', { accountId: id, account });
  }

  // Tells the listeners of a known peer gone.
  /** @param {string} id @param {Account} account */
  #removePeer(id, account) {
    if (!this.#peers.delete(id)) return;
    this.#notifyPeer(id, account, 'disconnected');
    this.#events.emit('leave', { accountId: id, account });
  }

  // Calls the onPeer handlers; one that throws does not stop the others.
  /** @param {string} id @param {Account} account @param {'connected' | 'disconnected'} what */
  #notifyPeer(id, account, what) {
    for (const handler of [...this.#peerHandlers]) {
      try {
        handler(id, account, what);
      } catch (err) {
        console.error('signal-node client: an onPeer handler threw', err);
      }
    }
  }
}
