// The conversation as the page shows it: messages and system lines in order (those from
// before we joined above the rest, by time), kept scrolled to its end while the user is there.
import { renderMessage, setDelivery } from './message-view.js';

export class MessageLog {
  #doc;
  #log;
  #pinned = true; // the log shows its end, and keeps showing it as lines come

  constructor(doc = document) {
    this.#doc = doc;
    this.#log = doc.getElementById('log');
    this.#log.addEventListener('scroll', () => {
      this.#pinned = this.#log.scrollHeight - this.#log.scrollTop - this.#log.clientHeight < 40;
    }, { passive: true });
    // The on-screen keyboard coming up shrinks the log: its end stays in view.
    new ResizeObserver(() => {
      if (this.#pinned) this.#log.scrollTop = this.#log.scrollHeight;
    }).observe(this.#log);
  }

  /** Appends a chat message (see renderMessage). One from before we joined (`history`)
   * goes among the others of its kind, by time, above everything that happened since. */
  addMessage(message) {
    const li = renderMessage(this.#doc, message);
    if (!message.history) return this.#append(li);
    const at = message.at.getTime();
    const older = [...this.#log.querySelectorAll('li.history')];
    const later = older.find((el) => Number(el.dataset.at) > at);
    if (later) later.before(li);
    else if (older.length > 0) older[older.length - 1].after(li);
    else this.#log.prepend(li);
  }

  /** Says what became of one of our messages ('' once it went out everywhere). */
  setMessageStatus(id, text, options) {
    const li = [...this.#log.querySelectorAll('li[data-message-id]')].find((el) => el.dataset.messageId === id);
    if (li) setDelivery(li, text, options);
  }

  /** Appends a system line; `problem` marks failures. */
  addSystem(text, { problem = false } = {}) {
    const li = this.#doc.createElement('li');
    li.className = problem ? 'system problem' : 'system';
    li.textContent = text;
    this.#append(li);
  }

  #append(li) {
    this.#log.append(li);
    if (this.#pinned) this.#log.scrollTop = this.#log.scrollHeight;
  }
}
