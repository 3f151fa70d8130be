// How one chat message looks: its author, time, text (always as text, never as HTML) and
// delivery status, marked when it is from before we joined.

/** A message's <li>: `own` marks ours, `id` lets its status be set later, `history` marks
 * one from before we joined (with its time in `data-at`, for the log to place it). */
export function renderMessage(doc, { author, text, at, own, id, history = false, status = '' }) {
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
  meta.append(who, time);
  const body = doc.createElement('p');
  body.className = 'text';
  body.textContent = text;
  const state = doc.createElement('p');
  state.className = 'delivery';
  state.textContent = status;
  li.append(meta, body, state);
  if (history) {
    li.classList.add('history');
    li.dataset.at = String(at.getTime());
    const mark = doc.createElement('span');
    mark.className = 'history-mark';
    mark.textContent = 'before you joined';
    meta.append(mark);
  }
  return li;
}

/** Sets the delivery line of a message's <li> ('' once it went out everywhere). */
export function setDelivery(li, text, { problem = false } = {}) {
  const state = li.querySelector('.delivery');
  state.textContent = text;
  state.classList.toggle('problem', problem);
}
