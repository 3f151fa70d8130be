// How one chat message looks: its author, time, the message it answers, its text (always
// as text, never as HTML; links and the reader's @name marked), "edited", its reactions,
// the buttons that act on it, and its delivery status, marked when from before we joined.
import { REACTION_EMOJI } from './history.js';
import { appendText } from './rich-text.js';

/** What a screen reader calls each reaction. */
export const REACTION_NAMES = Object.freeze({
  '👍': 'thumbs up', '❤️': 'heart', '😂': 'laughing', '😮': 'surprised', '😢': 'sad', '🎉': 'party',
});
const QUOTE_LENGTH = 140;

/**
 * A message's <li>: `own` marks ours, `id` lets it change later, `history` marks one from
 * before we joined (with its time in `data-at`, for the log to place it). The rest is its
 * state (see updateMessage). Its buttons carry `data-action` for the log to act on.
 */
export function renderMessage(doc, message) {
  const { author, at, own, id, history = false, status = '' } = message;
  const li = doc.createElement('li');
  li.className = own ? 'message own' : 'message';
  if (id) li.dataset.messageId = id;
  const meta = doc.createElement('p');
  meta.className = 'meta';
  const who = doc.createElement('span');
  who.className = 'author';
  who.textContent = own ? (author ? `${author} (you)` : 'You') : author;
  const time = doc.createElement('time');
  time.dateTime = at.toISOString();
  time.textContent = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const edited = doc.createElement('span');
  edited.className = 'edited';
  edited.textContent = 'edited';
  edited.hidden = true;
  meta.append(who, time, edited);
  const body = doc.createElement('p');
  body.className = 'text';
  const reactions = doc.createElement('div');
  reactions.className = 'reactions';
  reactions.setAttribute('role', 'group');
  reactions.setAttribute('aria-label', `Reactions to ${who.textContent}'s message`);
  const state = doc.createElement('p');
  state.className = 'delivery';
  state.textContent = status;
  li.append(meta, body, reactions);
  if (id) li.append(renderActions(doc, who.textContent, own));
  li.append(state);
  if (history) {
    li.classList.add('history');
    li.dataset.at = String(at.getTime());
    const mark = doc.createElement('span');
    mark.className = 'history-mark';
    mark.textContent = 'before you joined';
    meta.append(mark);
  }
  if (message.replyTo) {
    li.dataset.replyTo = message.replyTo;
    const quote = doc.createElement('button');
    quote.type = 'button';
    quote.className = 'quote';
    quote.dataset.action = 'jump';
    body.before(quote);
  }
  updateMessage(li, message);
  return li;
}

/** The buttons under a message: reply, react (with its picker), and for ours edit and
 * delete. */
function renderActions(doc, who, own) {
  const actions = doc.createElement('div');
  actions.className = 'actions';
  const button = (action, text, label) => {
    const b = doc.createElement('button');
    b.type = 'button';
    b.className = 'action';
    b.dataset.action = action;
    b.textContent = text;
    if (label) b.setAttribute('aria-label', label);
    return b;
  };
  const react = button('pick', 'React', `React to ${who}'s message`);
  react.setAttribute('aria-expanded', 'false');
  const picker = doc.createElement('div');
  picker.className = 'picker';
  picker.setAttribute('role', 'group');
  picker.setAttribute('aria-label', 'Pick a reaction');
  picker.hidden = true;
  for (const emoji of REACTION_EMOJI) {
    const b = button('react', emoji, `React with ${REACTION_NAMES[emoji]}`);
    b.dataset.emoji = emoji;
    picker.append(b);
  }
  actions.append(button('reply', 'Reply', `Reply to ${who}'s message`), react);
  if (own) actions.append(button('edit', 'Edit', 'Edit your message'), button('delete', 'Delete', 'Delete your message'));
  actions.append(picker);
  return actions;
}

/**
 * Shows a message's state: {text, edited, deleted, rich, mentionsMe, me, reactions:
 * [{emoji, names, mine}]}. `me` is the reader's name, marked where the text mentions it.
 */
export function updateMessage(li, { text, edited = false, deleted = false, rich = false, mentionsMe = false, me = '', reactions = [] }) {
  const doc = li.ownerDocument;
  const body = li.querySelector('.text');
  body.replaceChildren();
  li.classList.toggle('deleted', deleted);
  li.classList.toggle('mentions-me', mentionsMe);
  li.querySelector('.edited').hidden = !edited || deleted;
  if (deleted) {
    body.textContent = 'message deleted';
    li.querySelector('.actions')?.remove();
    li.querySelector('.quote')?.remove();
    li.querySelector('.reactions').replaceChildren();
    return;
  }
  appendText(doc, body, text, { rich, me: mentionsMe ? me : '' });
  li.querySelector('.reactions').replaceChildren(...reactions.map(({ emoji, names, mine }) => {
    const b = doc.createElement('button');
    b.type = 'button';
    b.className = 'reaction';
    b.dataset.action = 'react';
    b.dataset.emoji = emoji;
    b.setAttribute('aria-pressed', String(mine));
    // Who reacted: the tooltip on hover, and the name a screen reader reads.
    const who = names.join(', ');
    b.title = who;
    b.setAttribute('aria-label', `${REACTION_NAMES[emoji]} ${names.length}: ${who}`);
    const count = doc.createElement('span');
    count.className = 'count';
    count.textContent = String(names.length);
    b.append(doc.createTextNode(`${emoji} `), count);
    return b;
  }));
}

/** Fills a reply's quote from the message it answers ({author, text, deleted}), or says
 * that message is not here. */
export function setQuote(li, quoted) {
  const quote = li.querySelector('.quote');
  if (!quote) return;
  const doc = li.ownerDocument;
  const author = doc.createElement('span');
  author.className = 'quote-author';
  const text = doc.createElement('span');
  text.className = 'quote-text';
  if (!quoted) {
    author.textContent = 'In reply to';
    text.textContent = 'a message not shown here';
    quote.disabled = true;
  } else {
    author.textContent = quoted.author;
    const t = quoted.deleted ? 'message deleted' : quoted.text;
    text.textContent = t.length > QUOTE_LENGTH ? `${t.slice(0, QUOTE_LENGTH)}…` : t;
    quote.disabled = false;
  }
  quote.replaceChildren(author, doc.createTextNode(' '), text);
  quote.setAttribute('aria-label', `In reply to ${author.textContent}: ${text.textContent}. Show that message`);
}

/** Sets the delivery line of a message's <li> ('' once it went out everywhere). */
export function setDelivery(li, text, { problem = false } = {}) {
  const state = li.querySelector('.delivery');
  state.textContent = text;
  state.classList.toggle('problem', problem);
}
