// The message box: what the user writes and sends (reported as UserEvents through `emit`),
// answering or editing a message (Up arrow in an empty box edits the last one of ours, Esc
// cancels), `@name` completion, whether they can write now and why not, and who is typing.
import { UserEvent } from './events.js';
import { matchingNames, mentionQuery } from './mentions.js';

const QUOTE_LENGTH = 80;

export class Composer {
  #doc;
  #emit;
  #input;
  #send;
  #hint;
  #typing;
  #context;
  #contextText;
  #mentionList;
  #mode = null; // {kind: 'reply' | 'edit', id}, or null for a new message
  #draft = ''; // what the box held before an edit began, given back after it
  #names = () => []; // the members' names, for completion
  #choices = []; // the names offered for the `@…` being typed
  #chosen = 0;

  constructor(doc, emit) {
    const $ = (id) => doc.getElementById(id);
    this.#doc = doc;
    this.#emit = emit;
    this.#input = $('message');
    this.#send = $('send');
    this.#hint = $('message-hint');
    this.#typing = $('typing');
    this.#context = $('composer-context');
    this.#contextText = $('composer-context-text');
    this.#mentionList = $('mention-list');
    $('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      this.#submit();
    });
    $('composer-cancel').addEventListener('click', () => this.cancel());
    this.#input.addEventListener('input', () => {
      if (this.#input.value.trim()) emit(UserEvent.TYPING, {});
      this.#offerNames();
    });
    this.#input.addEventListener('keydown', (e) => this.#onKey(e));
    this.#input.addEventListener('blur', () => this.#closeNames());
    // A press, not a click: the box keeps the focus.
    this.#mentionList.addEventListener('pointerdown', (e) => {
      const li = e.target.closest('li[data-name]');
      if (!li) return;
      e.preventDefault();
      this.#complete(li.dataset.name);
    });
  }

  /** Where completion finds the names of the members. */
  setNames(names) {
    this.#names = names;
  }

  /** Enables the message box, or disables it and says why. */
  set(enabled, hint) {
    this.#input.disabled = !enabled;
    this.#send.disabled = !enabled;
    this.#hint.textContent = hint;
  }

  /** Empties the box after a send, ready for the next message. */
  clear() {
    const wasEdit = this.#mode?.kind === 'edit';
    this.#setMode(null);
    this.#input.value = wasEdit ? this.#draft : '';
    this.#draft = '';
    this.#input.focus();
  }

  /** The next message answers `id`; `author` and `text` show what it answers. */
  replyTo({ id, author, text }) {
    if (this.#mode?.kind === 'edit') this.cancel();
    this.#setMode({ kind: 'reply', id }, `Replying to ${author}: ${short(text)}`);
    this.#input.focus();
  }

  /** The box edits our message `id`, which says `text`, until sent or cancelled. */
  startEdit({ id, text }) {
    if (this.#mode?.kind !== 'edit') this.#draft = this.#input.value;
    this.#setMode({ kind: 'edit', id }, 'Editing your message. Enter saves, Esc cancels.');
    this.#input.value = text;
    this.#input.focus();
  }

  /** Leaves answering or editing; an edit gives back what the box held before. Returns
   * the id of the message that was being answered or edited, or null. */
  cancel() {
    const id = this.#mode?.id ?? null;
    if (this.#mode?.kind === 'edit') this.clear();
    else this.#setMode(null);
    this.#input.focus();
    return id;
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

  #submit() {
    const text = this.#input.value;
    if (!text.trim() || this.#input.disabled) return;
    if (this.#mode?.kind === 'edit') this.#emit(UserEvent.EDIT, { id: this.#mode.id, text });
    else this.#emit(UserEvent.SEND, { text, replyTo: this.#mode?.kind === 'reply' ? this.#mode.id : null });
  }

  #onKey(e) {
    if (this.#choices.length > 0) {
      if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
        e.preventDefault();
        const step = e.key === 'ArrowDown' ? 1 : -1;
        this.#choose((this.#chosen + step + this.#choices.length) % this.#choices.length);
        return;
      }
      if (e.key === 'Enter' || e.key === 'Tab') {
        e.preventDefault();
        this.#complete(this.#choices[this.#chosen]);
        return;
      }
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        this.#closeNames();
        return;
      }
    }
    if (e.key === 'ArrowUp' && this.#input.value === '' && !this.#mode) {
      e.preventDefault();
      this.#emit(UserEvent.START_EDIT, { id: '' });
    } else if (e.key === 'Escape' && this.#mode) {
      e.preventDefault();
      e.stopPropagation();
      this.cancel();
    }
  }

  #setMode(mode, text = '') {
    this.#mode = mode;
    this.#context.hidden = !mode;
    this.#contextText.textContent = text;
    this.#send.textContent = mode?.kind === 'edit' ? 'Save' : 'Send';
  }

  /** Offers the members whose name starts with the `@…` before the caret. */
  #offerNames() {
    const q = mentionQuery(this.#input.value, this.#input.selectionStart ?? this.#input.value.length);
    this.#choices = q ? matchingNames(this.#names(), q.query) : [];
    if (this.#choices.length === 0) return this.#closeNames();
    this.#mentionList.replaceChildren(...this.#choices.map((name, i) => {
      const li = this.#doc.createElement('li');
      li.id = `mention-${i}`;
      li.setAttribute('role', 'option');
      li.dataset.name = name;
      li.textContent = name;
      return li;
    }));
    this.#mentionList.hidden = false;
    this.#input.setAttribute('aria-expanded', 'true');
    this.#choose(0);
  }

  #choose(i) {
    this.#chosen = i;
    for (const [j, li] of [...this.#mentionList.children].entries()) li.setAttribute('aria-selected', String(i === j));
    this.#input.setAttribute('aria-activedescendant', `mention-${i}`);
  }

  #closeNames() {
    this.#choices = [];
    this.#mentionList.hidden = true;
    this.#mentionList.replaceChildren();
    this.#input.setAttribute('aria-expanded', 'false');
    this.#input.removeAttribute('aria-activedescendant');
  }

  /** Puts `@name ` in place of the `@…` being typed. */
  #complete(name) {
    const value = this.#input.value;
    const caret = this.#input.selectionStart ?? value.length;
    const q = mentionQuery(value, caret);
    if (!q) return this.#closeNames();
    const insert = `@${name} `;
    this.#input.value = value.slice(0, q.start) + insert + value.slice(caret);
    const at = q.start + insert.length;
    this.#input.setSelectionRange(at, at);
    this.#closeNames();
  }
}

function short(text) {
  return text.length > QUOTE_LENGTH ? `${text.slice(0, QUOTE_LENGTH)}…` : text;
}
