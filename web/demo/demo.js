// The demo call page's logic: reads the page's query, fetches tokens from the
// node's /demo/token (a --dev-only route), joins a room with the client
// library's SignalingClient and Call, and draws the participants, the video
// tiles and the connection state in plain words.
//
// Query parameters: room, name, account, servers (comma-separated ws:// bases),
// prefix (the nodes' SIGNAL_PATH_PREFIX, default /api), ttl (token lifetime
// in seconds), auto=1 (join at load).
// window.demo exposes the client and the call, and a few read-only hooks, for
// the browser tests (web/test/e2e/).
import { SignalingClient, Call } from './lib/index.js';

const params = new URLSearchParams(location.search);
const ACCOUNT_KEY = 'signal-demo-account';

/**
 * Returns the element with this id; throws if the page lacks it.
 * @param {string} id
 */
function $(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`demo: no element #${id}`);
  return el;
}

const form = /** @type {HTMLFormElement} */ ($('join-form'));
const nameInput = /** @type {HTMLInputElement} */ ($('name'));
const roomInput = /** @type {HTMLInputElement} */ ($('room'));
const joinButton = /** @type {HTMLButtonElement} */ ($('join'));
const muteButton = /** @type {HTMLButtonElement} */ ($('mute'));
const cameraButton = /** @type {HTMLButtonElement} */ ($('camera'));
const leaveButton = /** @type {HTMLButtonElement} */ ($('leave'));
const statusLine = $('status');
const errorLine = $('error');
const callSection = $('call');
const tiles = $('tiles');
const participants = $('participants');
const localVideo = /** @type {HTMLVideoElement} */ ($('local-video'));
const tileTemplate = /** @type {HTMLTemplateElement} */ ($('tile-template'));

/** A random lower-case GUID (crypto.randomUUID needs a secure context; this does not). */
function randomGuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The account id: the query's, else one kept in sessionStorage so that a reload keeps the identity. */
function accountId() {
  const fromQuery = params.get('account');
  if (fromQuery) return fromQuery;
  let id = sessionStorage.getItem(ACCOUNT_KEY);
  if (!id) {
    id = `guest-${randomGuid().slice(0, 8)}`;
    sessionStorage.setItem(ACCOUNT_KEY, id);
  }
  return id;
}

/** The ws:// bases to connect to: the query's list, else this page's own origin. */
function serverList() {
  const list = (params.get('servers') || '').split(',').map((s) => s.trim().replace(/\/+$/, '')).filter(Boolean);
  return list.length ? list : [location.origin.replace(/^http/, 'ws')];
}

const account = accountId();
const servers = serverList();
const ttl = Number(params.get('ttl')) > 0 ? Number(params.get('ttl')) : 3600;
const pathPrefix = params.get('prefix') || '/api';
nameInput.value = params.get('name') || params.get('account') || `Guest ${account.slice(-4)}`;
roomInput.value = params.get('room') || randomGuid();

/**
 * Fetches a token for this account and room from /demo/token: from this
 * page's origin first, then from each server's http:// equivalent (the page's
 * own node may be the one that went away). Resolves with the token string;
 * rejects with the last failure.
 */
async function getToken() {
  attempts++;
  if (hooks.client) setStatus(stateText(hooks.client.state));
  const query = new URLSearchParams({ sub: account, name: nameInput.value, room: roomInput.value.toLowerCase(),
    ttl: String(ttl) });
  const origins = [location.origin, ...servers.map((s) => s.replace(/^ws/, 'http'))];
  let failure = new Error('no server to ask for a token');
  for (const origin of [...new Set(origins)]) {
    try {
      const res = await fetch(`${origin}/demo/token?${query}`, { cache: 'no-store' });
      if (!res.ok) throw new Error(`${origin}/demo/token answered ${res.status} ${(await res.text()).trim()}`);
      const body = await res.json();
      if (typeof body.token !== 'string') throw new Error(`${origin}/demo/token sent no token`);
      hooks.tokens++;
      return body.token;
    } catch (e) {
      failure = /** @type {Error} */ (e);
    }
  }
  throw failure;
}

/** The read-only hooks the browser tests use (window.demo). */
const hooks = {
  /** @type {SignalingClient | null} */
  client: null,
  /** @type {Call | null} */
  call: null,
  account,
  servers,
  /** Tokens fetched so far (one per connect). */
  tokens: 0,
  /**
   * performance.now() when Join was pressed (or at load with auto=1), when
   * the camera was open, when the first welcome came, and when each peer's
   * RTCPeerConnection first reached `connected`.
   */
  timings: { join: 0, media: 0, welcome: 0, connected: /** @type {Record<string, number>} */ ({}) },
  /** The status line's last 50 texts, oldest first. */
  statuses: /** @type {string[]} */ ([]),
  /** The status line's text, as shown. */
  get status() { return statusLine.textContent || ''; },
  /** The error line's text ('' when none). */
  get error() { return errorLine.hidden ? '' : errorLine.textContent || ''; },
  /** Each RTCPeerConnection closed: its account and the reason, oldest first. */
  closedPeers: /** @type {{ accountId: string, reason: string }[]} */ ([]),
  /** The close codes that made the client reconnect, oldest first. */
  closes: /** @type {number[]} */ ([]),
  /**
   * Per remote account: its RTCPeerConnection's state and the inbound
   * video's framesDecoded (0 before any), read from getStats now. A new
   * connection or stream starts its count again.
   * @returns {Promise<Record<string, { state: string, framesDecoded: number }>>}
   */
  async stats() {
    /** @type {Record<string, { state: string, framesDecoded: number }>} */
    const out = {};
    if (!hooks.call) return out;
    for (const [id, peer] of hooks.call.peers) {
      let frames = 0;
      const report = await peer.pc.getStats();
      report.forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
      });
      out[id] = { state: peer.pc.connectionState, framesDecoded: frames };
    }
    return out;
  },
  join,
  leave,
};
Object.assign(window, { demo: hooks });

/**
 * Shows text on the status line.
 * @param {string} text
 */
function setStatus(text) {
  if (statusLine.textContent === text) return;
  statusLine.textContent = text;
  hooks.statuses.push(text);
  if (hooks.statuses.length > 50) hooks.statuses.shift();
}

/**
 * Shows an error in plain words ('' hides it).
 * @param {string} text
 */
function showError(text) {
  errorLine.textContent = text;
  errorLine.hidden = !text;
}

/**
 * Plain words for an error event of the client (or a rejected connect).
 * @param {{ code?: string, message?: string }} error
 */
function errorText({ code, message }) {
  switch (code) {
    case 'forbidden': return 'You are not a member of this room.';
    case 'policy': return 'The server closed the connection: too many bad messages.';
    case 'token_failed': return `Could not get a token: ${message}`;
    case 'queue_full': return 'Too many messages waiting to be sent; some were dropped.';
    case 'keepalive_timeout': return 'The connection went silent; reconnecting…';
    case 'rate_limited': return 'Sending too fast; the server dropped a message.';
    default: return message ? `${message} (${code})` : String(code);
  }
}

/** Connect attempts since the last welcome: getToken runs once before each. */
let attempts = 0;
/** The close code that started the current reconnect (null while connected). */
let closeCode = /** @type {number | null} */ (null);

/**
 * Plain words for the client's state: the close that started a reconnect
 * while its first attempt runs, then the attempt's number.
 * @param {string} state
 */
function stateText(state) {
  if (state === 'connected') return `In the call as ${nameInput.value}`;
  if (state === 'disconnected') return 'Not connected';
  if (attempts <= 1 && closeCode === 4001) return 'Your session expired, renewing…';
  if (attempts <= 1 && closeCode === 1001) return 'This node is shutting down, moving to another…';
  const word = state === 'reconnecting' ? 'Reconnecting…' : 'Connecting…';
  return attempts > 1 || (attempts === 1 && state === 'reconnecting') ? `${word} (attempt ${attempts})` : word;
}

/**
 * The display name of an account object, else its id.
 * @param {string} id
 * @param {{ name?: string | null, nick?: string | null } | undefined | null} acct
 */
function displayName(id, acct) {
  return (acct && (acct.nick || acct.name)) || id;
}

/** Redraws the participants list: you, then everyone the client knows of. */
function drawParticipants() {
  const client = hooks.client;
  participants.replaceChildren();
  const me = document.createElement('li');
  me.textContent = `${nameInput.value} (you)`;
  participants.append(me);
  if (!client) return;
  for (const { userId, userInfo } of client.getConnectedPeers()) {
    const li = document.createElement('li');
    li.textContent = displayName(userId, userInfo);
    li.dataset.account = userId;
    participants.append(li);
  }
}

/**
 * The tile of a remote account, made on first use. Returns it.
 * @param {string} id
 */
function tileFor(id) {
  let tile = /** @type {HTMLElement | null} */ (tiles.querySelector(`li[data-account="${CSS.escape(id)}"]`));
  if (!tile) {
    const frag = /** @type {DocumentFragment} */ (tileTemplate.content.cloneNode(true));
    tile = /** @type {HTMLElement} */ (frag.firstElementChild);
    tile.dataset.account = id;
    tiles.append(tile);
  }
  const name = /** @type {HTMLElement} */ (tile.querySelector('.name'));
  name.textContent = displayName(id, hooks.client && hooks.client.getUserInfo(id));
  return tile;
}

/**
 * Plays a video element; when the browser blocks sound before a click, plays it muted until one.
 * @param {HTMLVideoElement} video
 */
function play(video) {
  video.play().catch(() => {
    video.muted = true;
    video.play().catch(() => {});
    addEventListener('click', () => { video.muted = false; }, { once: true });
  });
}

/**
 * This page's address for another person joining room: the same room and
 * servers, none of this person's own settings.
 * @param {string} room
 */
function inviteLink(room) {
  const q = new URLSearchParams({ room });
  if (params.get('servers')) q.set('servers', servers.join(','));
  if (params.get('prefix')) q.set('prefix', pathPrefix);
  return `${location.origin}${location.pathname}?${q}`;
}

/** @type {MediaStream | null} */
let localStream = null;

/** The camera and microphone; whichever of them exists; an empty stream if none. */
async function openMedia() {
  for (const constraints of [{ video: true, audio: true }, { video: true }, { audio: true }]) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch {
      // try the next, smaller set
    }
  }
  showError('No camera or microphone could be opened: you join without them.');
  return new MediaStream();
}

/** Joins the room in the form: opens the media, connects, starts the call. */
async function join() {
  if (hooks.client) return;
  if (!form.reportValidity()) return;
  hooks.timings = { join: performance.now(), media: 0, welcome: 0, connected: {} };
  joinButton.disabled = true;
  showError('');
  setStatus('Opening your camera…');
  localStream = await openMedia();
  hooks.timings.media = performance.now();
  localVideo.srcObject = localStream;
  play(localVideo);

  const client = new SignalingClient({ chatId: roomInput.value.toLowerCase(), serverUrl: servers, pathPrefix, getToken });
  const call = new Call(client, { localStream });
  hooks.client = client;
  hooks.call = call;

  client.on('state', (ev) => {
    if (typeof ev.code === 'number') {
      closeCode = ev.code;
      if (ev.state !== 'connected') hooks.closes.push(ev.code);
    }
    if (ev.state === 'connected' || ev.state === 'disconnected') {
      attempts = 0;
      closeCode = null;
    }
    if (ev.state === 'connected') {
      showError('');
      hooks.timings.welcome ||= performance.now();
    }
    setStatus(stateText(ev.state));
    document.body.dataset.state = ev.state;
  });
  client.on('error', (ev) => showError(errorText(ev)));
  client.on('join', drawParticipants);
  client.on('leave', drawParticipants);
  client.on('welcome', drawParticipants);

  call.on('peer', ({ accountId }) => { tileFor(accountId); });
  call.on('track', ({ accountId, stream }) => {
    const video = /** @type {HTMLVideoElement} */ (tileFor(accountId).querySelector('video'));
    if (video.srcObject !== stream) {
      video.srcObject = stream;
      play(video);
    }
  });
  call.on('peerstate', ({ accountId, state }) => {
    const badge = /** @type {HTMLElement} */ (tileFor(accountId).querySelector('.peer-state'));
    badge.textContent = state === 'connected' ? '' : `(${state})`;
    if (state === 'connected' && !(accountId in hooks.timings.connected))
      hooks.timings.connected[accountId] = performance.now();
  });
  call.on('peerclosed', ({ accountId, reason }) => {
    hooks.closedPeers.push({ accountId, reason });
    tiles.querySelector(`li[data-account="${CSS.escape(accountId)}"]`)?.remove();
  });

  const room = roomInput.value.toLowerCase();
  $('room-id').textContent = room;
  /** @type {HTMLAnchorElement} */ ($('invite')).href = inviteLink(room);
  form.hidden = true;
  callSection.hidden = false;
  drawParticipants();
  try {
    await client.connect();
    call.start();
  } catch (e) {
    // Left meanwhile, or the client gave up (4403, 1008) and its error event said why already.
    if (hooks.client === client && !hooks.error) showError(`Could not join: ${/** @type {Error} */ (e).message}`);
  }
}

/** Leaves the call: hangs up, disconnects, stops the media, shows the form again. */
function leave() {
  hooks.call?.hangup();
  hooks.client?.disconnect();
  hooks.call = null;
  hooks.client = null;
  localStream?.getTracks().forEach((t) => t.stop());
  localStream = null;
  localVideo.srcObject = null;
  tiles.querySelectorAll('li.remote').forEach((t) => t.remove());
  muteButton.setAttribute('aria-pressed', 'false');
  muteButton.textContent = 'Mute';
  cameraButton.setAttribute('aria-pressed', 'false');
  cameraButton.textContent = 'Camera off';
  callSection.hidden = true;
  form.hidden = false;
  joinButton.disabled = false;
  setStatus('You left the call');
  delete document.body.dataset.state;
}

/** Mute: the microphone's track stays but sends silence (no renegotiation). */
function toggleMute() {
  const muted = muteButton.getAttribute('aria-pressed') !== 'true';
  hooks.call?.setMuted('audio', muted);
  muteButton.setAttribute('aria-pressed', String(muted));
  muteButton.textContent = muted ? 'Unmute' : 'Mute';
}

/** Camera off: the video track is removed from every peer and stopped (the light goes off); on: a new one is added. */
async function toggleCamera() {
  const call = hooks.call;
  if (!call || !localStream) return;
  const off = cameraButton.getAttribute('aria-pressed') !== 'true';
  cameraButton.disabled = true;
  try {
    if (off) {
      for (const track of localStream.getVideoTracks()) {
        call.removeTrack(track);
        localStream.removeTrack(track);
        track.stop();
      }
    } else {
      const media = await navigator.mediaDevices.getUserMedia({ video: true });
      const [track] = media.getVideoTracks();
      localStream.addTrack(track);
      call.addTrack(track, localStream);
    }
    cameraButton.setAttribute('aria-pressed', String(off));
    cameraButton.textContent = off ? 'Camera on' : 'Camera off';
  } catch (e) {
    showError(`Could not turn the camera on: ${/** @type {Error} */ (e).message}`);
  } finally {
    cameraButton.disabled = false;
  }
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  join();
});
muteButton.addEventListener('click', toggleMute);
cameraButton.addEventListener('click', toggleCamera);
leaveButton.addEventListener('click', leave);
if (params.get('auto') === '1') join();
