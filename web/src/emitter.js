// A minimal typed event emitter: on() returns its own unsubscribe, and a
// throwing handler never stops the others (it is reported on the console).

/**
 * @template {Record<string, any>} Events
 */
export class Emitter {
  /** @type {Map<keyof Events, Set<(payload: any) => void>>} */
  #handlers = new Map();

  /**
   * Calls handler with each later `event`'s payload.
   * @template {keyof Events} K
   * @param {K} event
   * @param {(payload: Events[K]) => void} handler
   * @returns {() => void} unsubscribe
   */
  on(event, handler) {
    let set = this.#handlers.get(event);
    if (!set) this.#handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => void set.delete(handler);
  }

  /**
   * @template {keyof Events} K
   * @param {K} event
   * @param {Events[K]} payload
   */
  emit(event, payload) {
    for (const handler of [...(this.#handlers.get(event) ?? [])]) {
      try {
        handler(payload);
      } catch (err) {
        console.error(`signal-node client: a '${String(event)}' handler threw`, err);
      }
    }
  }
}
