// The conversation as the page shows it: messages and system lines in order (those from
// before we joined above the rest, by time), kept scrolled to its end while the user is
// there; the buttons on messages (reply, react, edit, delete, a reply's quote).
import { UserEvent } from './events.js';
import { renderMessage, setDelivery, setQuote, updateMessage } from './message-view.js';

// How long a message jumped to stays highlighted.
const FLASH_MS = 2_000;
// A touch held this long on a reaction shows who reacted (there is no hover on phones)...
const LONG_PRESS_MS = 500;
// ...for this long.
const WHO_SHOWN_MS = 5_000;

/** Emits, through `emit`, the UserEvents REPLY_TO, START_EDIT, DELETE and REACT. */
export class MessageLog {
  #doc;
  #log;
  #emit;
  #pinned = true; // the log shows its end, and keeps showing it as lines come

  constructor(doc = document, emit = () => {}) {
    this.#doc = doc;
    this.#emit = emit;
    this.#log = doc.getElementById('log');
    this.#log.addEventListener('scroll', () => {
      this.#pinned = this.#log.scrollHeight - this.#log.scrollTop - this.#log.clientHeight < 40;
    }, { passive: true });
    // The on-screen keyboard coming up shrinks the log: its end stays in view.
    new ResizeObserver(() => {
      if (this.#pinned) this.#log.scrollTop = this.#log.scrollHeight;
    }).observe(this.#log);
    this.#log.addEventListener('click', (e) => this.#onClick(e));
    this.#followLongPress();
    this.#log.addEventListener('keydown', (e) => {
      const picker = e.target.closest?.('.picker');
      if (e.key === 'Escape' && picker && !picker.hidden) {
        e.stopPropagation();
        this.#closePicker(picker, true);
      }
    });
  }

  /** Appends a chat message (see renderMessage). One from before we joined (`history`)
   * goes among the others of its kind, by time, above everything that happened since. */
  addMessage(message) {
    const li = renderMessage(this.#doc, message);
    if (message.replyTo) setQuote(li, this.#quoted(message.replyTo));
    this.#place(li, message);
    if (message.id) this.#refreshQuotes(message.id);
  }

  #place(li, message) {
    if (!message.history) return this.#append(li);
    const at = message.at.getTime();
    const older = [...this.#log.querySelectorAll('li.history')];
    const later = older.find((el) => Number(el.dataset.at) > at);
    if (later) later.before(li);
    else if (older.length > 0) older[older.length - 1].after(li);
    else this.#log.prepend(li);
  }

  /** Shows a message's new state (see updateMessage): edited, deleted or reacted to. */
  updateMessage(id, state) {
    const li = this.#find(id);
    if (!li) return;
    const hadFocus = li.contains(this.#doc.activeElement);
    updateMessage(li, state);
    // A delete takes the buttons away: the focus stays on the message.
    if (hadFocus && !li.contains(this.#doc.activeElement)) {
      li.tabIndex = -1;
      li.focus();
    }
    this.#refreshQuotes(id);
  }

  /** The author and text a message shows now, {author, text, deleted}, or null. */
  quoteOf(id) {
    return this.#quoted(id);
  }

  /** The id of our last message that is not deleted, or null. */
  lastOwnId() {
    const own = [...this.#log.querySelectorAll('li.message.own[data-message-id]:not(.deleted)')];
    return own.length > 0 ? own[own.length - 1].dataset.messageId : null;
  }

  /** Scrolls to a message and gives it the focus, highlighted for a moment. */
  jumpTo(id) {
    const li = this.#find(id);
    if (!li) return;
    li.tabIndex = -1;
    li.scrollIntoView({ block: 'center' });
    li.focus();
    li.classList.add('flash');
    setTimeout(() => li.classList.remove('flash'), FLASH_MS);
  }

  /** Gives the focus back to a button of a message (after the composer is done with it). */
  focusAction(id, action) {
    this.#find(id)?.querySelector(`[data-action="${action}"]`)?.focus();
  }

  /** Says what became of one of our messages ('' once it went out everywhere). */
  setMessageStatus(id, text, options) {
    const li = this.#find(id);
    if (li) setDelivery(li, text, options);
  }

  /** Appends a system line; `problem` marks failures. */
  addSystem(text, { problem = false } = {}) {
    const li = this.#doc.createElement('li');
    li.className = problem ? 'system problem' : 'system';
    li.textContent = text;
    this.#append(li);
  }

  /** A long press on a reaction shows who reacted, under the reactions, instead of
   * toggling ours. */
  #followLongPress() {
    let timer = null;
    let pressed = null; // the reaction held long enough: its click is not a toggle
    const stop = () => clearTimeout(timer);
    this.#log.addEventListener('pointerdown', (e) => {
      const reaction = e.target.closest?.('.reaction');
      stop();
      if (!reaction || e.pointerType !== 'touch') return;
      timer = setTimeout(() => {
        pressed = reaction;
        this.#showWho(reaction);
      }, LONG_PRESS_MS);
    });
    for (const type of ['pointerup', 'pointercancel', 'pointerleave']) this.#log.addEventListener(type, stop);
    this.#log.addEventListener('contextmenu', (e) => {
      if (e.target.closest?.('.reaction')) e.preventDefault();
    });
    this.#log.addEventListener('click', (e) => {
      if (pressed && e.target.closest?.('.reaction') === pressed) e.stopImmediatePropagation();
      pressed = null;
    }, { capture: true });
  }

  #showWho(reaction) {
    const li = reaction.closest('li');
    let who = li.querySelector('.reaction-who');
    if (!who) {
      who = this.#doc.createElement('p');
      who.className = 'reaction-who';
      who.setAttribute('role', 'status');
      li.querySelector('.reactions').after(who);
    }
    who.textContent = `${reaction.dataset.emoji} ${reaction.title}`;
    clearTimeout(who.timer);
    who.timer = setTimeout(() => who.remove(), WHO_SHOWN_MS);
  }

  #onClick(e) {
    const button = e.target.closest('button[data-action]');
    const li = button?.closest('li[data-message-id]');
    if (!li) return;
    const id = li.dataset.messageId;
    const { action } = button.dataset;
    if (action === 'jump') this.jumpTo(li.dataset.replyTo);
    else if (action === 'reply') this.#emit(UserEvent.REPLY_TO, { id });
    else if (action === 'edit') this.#emit(UserEvent.START_EDIT, { id });
    else if (action === 'delete') this.#emit(UserEvent.DELETE, { id });
    else if (action === 'pick') {
      const picker = li.querySelector('.picker');
      if (picker.hidden) this.#openPicker(picker);
      else this.#closePicker(picker, false);
    } else if (action === 'react') {
      const picker = button.closest('.picker');
      if (picker) this.#closePicker(picker, true);
      this.#emit(UserEvent.REACT, { id, emoji: button.dataset.emoji });
    }
  }

  #openPicker(picker) {
    for (const open of this.#log.querySelectorAll('.picker:not([hidden])')) this.#closePicker(open, false);
    picker.hidden = false;
    picker.closest('.actions').querySelector('[data-action="pick"]').setAttribute('aria-expanded', 'true');
    picker.querySelector('button').focus();
  }

  #closePicker(picker, refocus) {
    picker.hidden = true;
    const toggle = picker.closest('.actions').querySelector('[data-action="pick"]');
    toggle.setAttribute('aria-expanded', 'false');
    if (refocus) toggle.focus();
  }

  #quoted(id) {
    const li = this.#find(id);
    if (!li) return null;
    return {
      author: li.querySelector('.author').textContent,
      text: li.querySelector('.text').textContent,
      deleted: li.classList.contains('deleted'),
    };
  }

  /** Replies to `id` show its text as it is now. */
  #refreshQuotes(id) {
    for (const li of this.#log.querySelectorAll('li[data-reply-to]')) {
      if (li.dataset.replyTo === id) setQuote(li, this.#quoted(id));
    }
  }

  #find(id) {
    return [...this.#log.querySelectorAll('li[data-message-id]')].find((el) => el.dataset.messageId === id);
  }

  #append(li) {
    this.#log.append(li);
    if (this.#pinned) this.#log.scrollTop = this.#log.scrollHeight;
  }
}
