// The message box: what the user writes and sends (reported as UserEvents through `emit`),
// whether they can write now and why not, and who else is typing.
import { UserEvent } from './events.js';

export class Composer {
  #input;
  #send;
  #hint;
  #typing;

  constructor(doc, emit) {
    const $ = (id) => doc.getElementById(id);
    this.#input = $('message');
    this.#send = $('send');
    this.#hint = $('message-hint');
    this.#typing = $('typing');
    $('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      const text = this.#input.value;
      if (!text.trim() || this.#input.disabled) return;
      emit(UserEvent.SEND, { text });
    });
    this.#input.addEventListener('input', () => {
      if (this.#input.value.trim()) emit(UserEvent.TYPING, {});
    });
  }

  /** Enables the message box, or disables it and says why. */
  set(enabled, hint) {
    this.#input.disabled = !enabled;
    this.#send.disabled = !enabled;
    this.#hint.textContent = hint;
  }

  /** Empties the box after a send, ready for the next message. */
  clear() {
    this.#input.value = '';
    this.#input.focus();
  }

  /** "Ada is typing…" for the names given; nothing for none. */
  setTyping(names) {
    const [a, b] = names;
    let text = '';
    if (names.length === 1) text = `${a} is typing…`;
    else if (names.length === 2) text = `${a} and ${b} are typing…`;
    else if (names.length > 2) text = `${names.length} people are typing…`;
    this.#typing.textContent = text;
  }
}
