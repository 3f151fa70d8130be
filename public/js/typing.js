// "Ada is typing…": when to tell the others that we type, and who is typing now.
import { TypingEvent } from './events.js';

// While we keep typing, the others hear so at most this often...
export const TYPING_INTERVAL_MS = 3_000;
// ...and forget it this long after the last time they heard, unless a message came first.
export const TYPING_EXPIRY_MS = 6_000;

/** Throttles our own typing signals and expires those of others. Emits the TypingEvents of
 * events.js. */
export class Typing extends EventTarget {
  #lastSent = -Infinity;
  #timers = new Map(); // by peer id: when its typing expires

  /** We typed: true when the others should be told now. */
  typed(now = performance.now()) {
    if (now - this.#lastSent < TYPING_INTERVAL_MS) return false;
    this.#lastSent = now;
    return true;
  }

  /** We sent (or cleared) the message: the next keystroke is news again. */
  reset() {
    this.#lastSent = -Infinity;
  }

  /** `peerId` says it is typing. */
  heard(peerId) {
    const known = this.#timers.has(peerId);
    clearTimeout(this.#timers.get(peerId));
    this.#timers.set(peerId, setTimeout(() => this.stopped(peerId), TYPING_EXPIRY_MS));
    if (!known) this.#changed();
  }

  /** `peerId` sent its message, or left. */
  stopped(peerId) {
    if (!this.#timers.has(peerId)) return;
    clearTimeout(this.#timers.get(peerId));
    this.#timers.delete(peerId);
    this.#changed();
  }

  #changed() {
    this.dispatchEvent(new CustomEvent(TypingEvent.CHANGE, { detail: { peerIds: [...this.#timers.keys()] } }));
  }
}
