// Call: a mesh call over a SignalingClient, one RTCPeerConnection for each
// other account in the room.
//
// Negotiation follows the perfect-negotiation pattern (the W3C WebRTC spec's
// example): both sides offer when they need to, and when two offers cross,
// the polite side (the smaller account id) rolls its own back and the other
// ignores the incoming one. Calls survive what breaks them in production:
// when the signaling connection comes back, or ICE fails, ICE restarts; a
// peer that leaves the room while its media still flows (it is reconnecting:
// an expired token, a drained node) keeps its connection for leaveGraceMs;
// an offer that got no answer (lost with a node) is rolled back and made
// again. Each RTCPeerConnection has a random id, and every signal carries
// the sender's (callId) and, once known, the receiver's (peerId): a page
// that reloads starts over with an offer without peerId, which replaces the
// other side's connection, and what the other side's old connection still
// sends, addressed to the page's old connection, is dropped.
//
// Wire, all directed with `to`: `offer` and `answer` (an
// RTCSessionDescription's { type, sdp } plus the ids), `ice-candidate` (an
// RTCIceCandidate's JSON plus the ids), `hangup` (the ids). It also reads
// the shapes the original guide's sample sends ({ offer: {...} },
// { candidate: {...} }, no ids), so it can talk to clients written from it.

import { Emitter } from './emitter.js';

/** @typedef {import('./signaling.js').SignalingClient} SignalingClient */
/** @typedef {import('./signaling.js').Account} Account */
/** @typedef {import('./signaling.js').Signal} Signal */
/**
 * @typedef {object} CallOptions
 * @property {MediaStream} [localStream] its tracks are sent to every peer
 * @property {RTCIceServer[]} [iceServers] STUN/TURN servers (default none)
 * @property {RTCConfiguration} [rtcConfiguration] anything else for each RTCPeerConnection
 * @property {number} [leaveGraceMs] how long a connected peer that left the room keeps its connection (default 10000)
 * @property {number} [answerTimeoutMs] an offer unanswered this long is rolled back and made again (default 10000)
 */
/**
 * One remote account.
 * @typedef {object} Peer
 * @property {string} accountId
 * @property {Account} account
 * @property {RTCPeerConnection} pc
 * @property {MediaStream | null} stream its media, once a track arrived
 * @property {boolean} polite
 * @property {boolean} makingOffer
 * @property {boolean} ignoreOffer
 * @property {string} localId this connection's random id
 * @property {string | null} remoteCallId the other side's connection's id, once known
 * @property {Promise<void>} chain its signals, handled one at a time
 * @property {Map<MediaStreamTrack, RTCRtpSender>} senders
 * @property {ReturnType<typeof setTimeout> | undefined} graceTimer
 * @property {ReturnType<typeof setTimeout> | undefined} answerTimer
 * @property {ReturnType<typeof setTimeout> | undefined} iceTimer
 * @property {boolean} closed
 */
/** @typedef {'left' | 'hangup' | 'replaced' | 'local'} CloseReason */
/**
 * @typedef {object} CallEvents
 * @property {{ accountId: string, account: Account, pc: RTCPeerConnection }} peer
 * @property {{ accountId: string, track: MediaStreamTrack, stream: MediaStream }} track
 * @property {{ accountId: string, state: RTCPeerConnectionState }} peerstate
 * @property {{ accountId: string, reason: CloseReason }} peerclosed
 * @property {{ accountId: string, error: Error }} error
 */

const SIGNALS = new Set(['offer', 'answer', 'ice-candidate', 'hangup']);
/** A connection 'disconnected' this long gets an ICE restart (a network change); 'failed' gets one at once. */
const DISCONNECTED_RESTART_MS = 3000;
/** A connection still not up this long after its negotiation settled gets an ICE restart. */
const STALLED_RESTART_MS = 5000;

export class Call {
  /** @type {SignalingClient} */
  #client;
  /** @type {Required<Omit<CallOptions, 'localStream'>>} */
  #opts;
  /** @type {Array<{ track: MediaStreamTrack, stream: MediaStream }>} */
  #tracks = [];
  /** @type {Emitter<CallEvents>} */
  #events = new Emitter();
  /** @type {Array<() => void>} */
  #unsubscribe = [];
  /** @type {Map<string, Peer>} */
  peers = new Map();

  /**
   * @param {SignalingClient} client
   * @param {CallOptions} [options]
   */
  constructor(client, options = {}) {
    const { localStream, ...rest } = options;
    this.#client = client;
    this.#opts = { iceServers: [], rtcConfiguration: {}, leaveGraceMs: 10000, answerTimeoutMs: 10000, ...rest };
    if (localStream) for (const track of localStream.getTracks()) this.#tracks.push({ track, stream: localStream });
  }

  /**
   * Connects to the room's peers now and to each one that joins later.
   * Call it once; the client may be connected or not yet.
   */
  start() {
    const client = this.#client;
    this.#unsubscribe.push(
      // A newcomer offers to those its welcome lists; they wait for its offer,
      // so that two offers seldom cross.
      client.on('welcome', ({ participants }) => {
        for (const { accountId, account } of participants ?? []) this.#joined(accountId, account, true);
      }),
      client.onPeer((id, account, what) => (what === 'connected' ? this.#joined(id, account, false) : this.#left(id))),
      client.onMessage((signal, from) => this.#onSignal(signal, from)),
      client.on('state', ({ state, previous }) => {
        if (state === 'connected' && previous === 'reconnecting') for (const p of this.peers.values()) this.#restart(p);
      }),
    );
    for (const { userId, userInfo } of client.getConnectedPeers()) this.#joined(userId, userInfo, true);
  }

  /** Tells the peers, closes every RTCPeerConnection and stops listening to the client (which stays connected). */
  hangup() {
    for (const p of [...this.peers.values()]) {
      this.#send(p, 'hangup', {});
      this.#close(p, 'local');
    }
    for (const off of this.#unsubscribe.splice(0)) off();
  }

  /**
   * Sends track (of stream) to every peer, and to those that come later.
   * @param {MediaStreamTrack} track
   * @param {MediaStream} stream
   */
  addTrack(track, stream) {
    if (this.#tracks.some((t) => t.track === track)) return;
    this.#tracks.push({ track, stream });
    for (const p of this.peers.values()) p.senders.set(track, p.pc.addTrack(track, stream));
  }

  /**
   * Stops sending track to every peer (camera off); the peers renegotiate.
   * @param {MediaStreamTrack} track
   */
  removeTrack(track) {
    this.#tracks = this.#tracks.filter((t) => t.track !== track);
    for (const p of this.peers.values()) {
      const sender = p.senders.get(track);
      p.senders.delete(track);
      if (sender && p.pc.signalingState !== 'closed') p.pc.removeTrack(sender);
    }
  }

  /**
   * Mutes or unmutes the local tracks of a kind without renegotiating.
   * @param {'audio' | 'video'} kind
   * @param {boolean} muted
   */
  setMuted(kind, muted) {
    for (const { track } of this.#tracks) if (track.kind === kind) track.enabled = !muted;
  }

  /**
   * @template {keyof CallEvents} K
   * @param {K} event
   * @param {(payload: CallEvents[K]) => void} handler
   * @returns {() => void} unsubscribe
   */
  on(event, handler) {
    return this.#events.on(event, handler);
  }

  // ---------------------------------------------------------------------
  // Peers

  // An account is in the room: a new peer (this side offers if it is the newcomer), or one back within its grace.
  /** @param {string} id @param {Account} account @param {boolean} offer */
  #joined(id, account, offer) {
    const p = this.peers.get(id);
    if (!p) return void (offer && id !== this.#client.userId && this.#create(id, account, true));
    clearTimeout(p.graceTimer);
    p.graceTimer = undefined;
    p.account = account;
    // What it was sent while away is lost: an offer still waiting is made again.
    // (When this side is the one back, its reconnect restarts every peer already.)
    if (!offer && p.pc.signalingState === 'have-local-offer') this.#restart(p);
  }

  // An account left the room. One whose media still flows may be reconnecting: it keeps its connection for leaveGraceMs.
  /** @param {string} id */
  #left(id) {
    const p = this.peers.get(id);
    if (!p) return;
    if (p.pc.connectionState !== 'connected' || this.#opts.leaveGraceMs <= 0) return this.#close(p, 'left');
    clearTimeout(p.graceTimer);
    p.graceTimer = setTimeout(() => this.#close(p, 'left'), this.#opts.leaveGraceMs);
  }

  // A new RTCPeerConnection for account id, with the local tracks; one that offers receives even without them.
  /** @param {string} id @param {Account} account @param {boolean} offer @returns {Peer} */
  #create(id, account, offer) {
    const { iceServers, rtcConfiguration } = this.#opts;
    const pc = new RTCPeerConnection({ ...rtcConfiguration, iceServers });
    /** @type {Peer} */
    const p = {
      accountId: id,
      account,
      pc,
      stream: null,
      polite: (this.#client.userId ?? '') < id,
      makingOffer: false,
      ignoreOffer: false,
      localId: Math.random().toString(36).slice(2, 12),
      remoteCallId: null,
      chain: Promise.resolve(),
      senders: new Map(),
      graceTimer: undefined,
      answerTimer: undefined,
      iceTimer: undefined,
      closed: false,
    };
    pc.onnegotiationneeded = () => void this.#offer(p);
    pc.onicecandidate = ({ candidate }) => candidate && this.#send(p, 'ice-candidate', candidate.toJSON());
    pc.ontrack = ({ track, streams }) => {
      p.stream = streams[0] ?? p.stream ?? new MediaStream();
      if (!p.stream.getTracks().includes(track)) p.stream.addTrack(track);
      this.#events.emit('track', { accountId: id, track, stream: p.stream });
    };
    pc.onconnectionstatechange = () => {
      if (p.closed) return;
      this.#events.emit('peerstate', { accountId: id, state: pc.connectionState });
      this.#watch(p);
    };
    pc.onsignalingstatechange = () => this.#watch(p);
    for (const { track, stream } of this.#tracks) p.senders.set(track, pc.addTrack(track, stream));
    if (offer && !this.#tracks.length) for (const kind of ['audio', 'video']) pc.addTransceiver(kind, { direction: 'recvonly' });
    this.peers.set(id, p);
    this.#events.emit('peer', { accountId: id, account, pc });
    return p;
  }

  // Restarts ICE when p's connection is not up some time after its negotiation
  // settled: after a network change ICE may recover by itself within seconds,
  // or never; and after crossed offers Chromium can leave ICE unstarted.
  /** @param {Peer} p */
  #watch(p) {
    clearTimeout(p.iceTimer);
    const state = p.pc.connectionState;
    if (p.closed || state === 'connected' || state === 'closed') return;
    if (state === 'failed') return this.#restart(p);
    if (p.pc.signalingState !== 'stable') return; // an offer under way has its answer timer
    p.iceTimer = setTimeout(() => {
      if (!p.closed && p.pc.connectionState !== 'connected' && p.pc.signalingState === 'stable') this.#restart(p);
    }, state === 'disconnected' ? DISCONNECTED_RESTART_MS : STALLED_RESTART_MS);
  }

  // Closes p for good and tells the listeners why.
  /** @param {Peer} p @param {CloseReason} reason */
  #close(p, reason) {
    if (p.closed) return;
    p.closed = true;
    clearTimeout(p.graceTimer);
    clearTimeout(p.answerTimer);
    clearTimeout(p.iceTimer);
    p.pc.close();
    if (this.peers.get(p.accountId) === p) this.peers.delete(p.accountId);
    this.#events.emit('peerclosed', { accountId: p.accountId, reason });
  }

  // ---------------------------------------------------------------------
  // Negotiation

  // Makes and sends an offer (negotiationneeded or an ICE restart), and watches that an answer comes.
  /** @param {Peer} p */
  async #offer(p) {
    try {
      p.makingOffer = true;
      await p.pc.setLocalDescription();
      const offer = p.pc.localDescription;
      if (p.closed || !offer || offer.type !== 'offer') return;
      this.#send(p, 'offer', { type: 'offer', sdp: offer.sdp });
      clearTimeout(p.answerTimer);
      p.answerTimer = setTimeout(() => {
        if (p.pc.signalingState === 'have-local-offer') this.#restart(p);
      }, this.#opts.answerTimeoutMs);
    } catch (err) {
      this.#fail(p, err);
    } finally {
      p.makingOffer = false;
    }
  }

  // Restarts ICE with p, first rolling back an offer that got no answer.
  /** @param {Peer} p */
  #restart(p) {
    this.#queue(p, async () => {
      if (p.pc.signalingState === 'have-local-offer') await p.pc.setLocalDescription({ type: 'rollback' });
      p.pc.restartIce();
    });
  }

  // A signal from account from: offer, answer, candidate or hangup; other types are the application's.
  /** @param {Signal} signal @param {string} from */
  #onSignal(signal, from) {
    if (!SIGNALS.has(signal.type) || from === this.#client.userId) return;
    const id = (/** @type {unknown} */ v) => (typeof v === 'string' ? v : null);
    const callId = id(signal.data?.callId), peerId = id(signal.data?.peerId);
    let p = this.peers.get(from);
    if (peerId && peerId !== p?.localId) {
      // For a connection of this side that is gone (before a reload): the other
      // side still holds one for it. A fresh connection offers, so it is replaced.
      if (p && !p.remoteCallId && p.pc.signalingState === 'stable' && !p.makingOffer) void this.#offer(p);
      return;
    }
    const known = !p || !p.remoteCallId || !callId || p.remoteCallId === callId;
    if (signal.type === 'hangup') return void (p && known && this.#close(p, 'hangup'));
    if (p && !known) {
      if (signal.type !== 'offer' || peerId) return; // from an older connection of the other side
      this.#close(p, 'replaced'); // the other side started over (a reloaded page)
      p = undefined;
    }
    if (!p && signal.type !== 'offer') return;
    p ??= this.#create(from, this.#client.getUserInfo(from) ?? signal.senderInfo, false);
    p.remoteCallId ??= callId;
    const peer = p;
    this.#queue(peer, () => this.#handle(peer, signal));
  }

  // Applies one offer, answer or candidate to p (perfect negotiation).
  /** @param {Peer} p @param {Signal} signal */
  async #handle(p, signal) {
    const pc = p.pc;
    const data = signal.data ?? {};
    if (signal.type === 'ice-candidate') {
      const c = typeof data.candidate === 'object' ? data.candidate : data;
      const init = { candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex, usernameFragment: c.usernameFragment };
      // A candidate of an offer this side ignored, or of an older ICE generation, fails harmlessly.
      await pc.addIceCandidate(init).catch(() => {});
      return;
    }
    const sdp = data.sdp ?? data[signal.type]?.sdp;
    const description = { type: /** @type {RTCSdpType} */ (signal.type), sdp: String(sdp ?? '') };
    const collision = description.type === 'offer' && (p.makingOffer || pc.signalingState !== 'stable');
    p.ignoreOffer = !p.polite && collision;
    if (p.ignoreOffer) return;
    // An answer to an offer since rolled back is stale.
    if (description.type === 'answer' && pc.signalingState !== 'have-local-offer') return;
    await pc.setRemoteDescription(description);
    if (description.type === 'answer') return void clearTimeout(p.answerTimer);
    await pc.setLocalDescription();
    if (pc.localDescription) this.#send(p, 'answer', { type: 'answer', sdp: pc.localDescription.sdp });
  }

  // Runs step after p's earlier steps; an error is reported as an event, not thrown.
  /** @param {Peer} p @param {() => Promise<void>} step */
  #queue(p, step) {
    p.chain = p.chain.then(() => (p.closed ? undefined : step())).catch((err) => this.#fail(p, err));
  }

  // Reports err as an error event, unless p is closed (its late failures do not matter).
  /** @param {Peer} p @param {unknown} err */
  #fail(p, err) {
    if (p.closed) return;
    this.#events.emit('error', { accountId: p.accountId, error: err instanceof Error ? err : new Error(String(err)) });
  }

  // Sends a signal to p alone, with this connection's id and, once known, p's.
  /** @param {Peer} p @param {string} type @param {object} data */
  #send(p, type, data) {
    const ids = p.remoteCallId ? { callId: p.localId, peerId: p.remoteCallId } : { callId: p.localId };
    if (!p.closed) this.#client.sendMessage({ type, data: { ...data, ...ids }, to: p.accountId });
  }
}
