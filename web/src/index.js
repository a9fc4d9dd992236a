// signal-node's browser client: a signaling connection that survives
// reconnects (SignalingClient) and mesh calls over it (Call).
// See docs/client.md in the signal-node repository.
export { SignalingClient } from './signaling.js';
export { Call } from './call.js';
export { reconnectDelay } from './backoff.js';
