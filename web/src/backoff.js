// How long to wait before a reconnect attempt.

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry after a
 * failure): capped exponential backoff with full jitter, uniform between
 * minMs and min(maxMs, minMs * 2^(attempt+1)). The jitter spreads the
 * clients of a node that died over the whole window, so the nodes left do
 * not take them all in the same instant.
 * @param {number} attempt
 * @param {number} minMs
 * @param {number} maxMs
 * @param {() => number} [random] uniform in [0, 1)
 * @returns {number} milliseconds
 */
export function reconnectDelay(attempt, minMs, maxMs, random = Math.random) {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt + 1, 30));
  return minMs + random() * (cap - minMs);
}
