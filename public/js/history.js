// The room's recent messages as this page has seen them, kept in memory only, so that a
// newcomer can be given what was said before it joined; merged by message id.
import { isId } from './ids.js';

/** At most this many messages are kept and given, none older than MAX_AGE_MS. */
export const MAX_MESSAGES = 200;
export const MAX_AGE_MS = 60 * 60 * 1000;
// Ids already seen, so a message given twice (by two peers, or live and in a backfill)
// shows once; bounded, as the ids of old messages stop mattering.
const MAX_SEEN_IDS = 5_000;
const SHARE_KEY = 'meshchat.shareHistory';

/** A message as kept and as sent to newcomers: {id, at, name, client, text}. */
export class History {
  #messages = [];
  #seen = new Set();

  /** Whether a message with this id has been kept or shown already. */
  has(id) {
    return this.#seen.has(id);
  }

  /** Keeps `message` unless its id is known; returns whether it was new. */
  add(message) {
    if (this.#seen.has(message.id)) return false;
    this.#seen.add(message.id);
    if (this.#seen.size > MAX_SEEN_IDS) this.#seen.delete(this.#seen.values().next().value);
    // Mostly appended; a backfill's older messages go where their time puts them.
    let i = this.#messages.length;
    while (i > 0 && this.#messages[i - 1].at > message.at) i -= 1;
    this.#messages.splice(i, 0, message);
    if (this.#messages.length > MAX_MESSAGES) this.#messages.shift();
    return true;
  }

  /** What a newcomer may be given now, oldest first. */
  recent(now = Date.now()) {
    return this.#messages.filter((m) => now - m.at <= MAX_AGE_MS);
  }
}

/** A message of a backfill from a peer, checked and trimmed; null when unusable. */
export function parseHistoryItem(raw, { maxText, cleanName }) {
  if (raw === null || typeof raw !== 'object') return null;
  const { id, at, name, client, text } = raw;
  if (!isId(id) || !Number.isFinite(at) || typeof text !== 'string' || !text.trim()) return null;
  return {
    id,
    at,
    name: cleanName(name),
    client: isId(client) ? client : null,
    text: text.slice(0, maxText),
  };
}

/** Splits `messages` into batches whose JSON stays under `maxLength` characters. */
export function batches(messages, maxLength) {
  const out = [];
  let batch = [];
  let length = 0;
  for (const m of messages) {
    const size = JSON.stringify(m).length + 1;
    if (batch.length > 0 && length + size > maxLength) {
      out.push(batch);
      batch = [];
      length = 0;
    }
    batch.push(m);
    length += size;
  }
  if (batch.length > 0) out.push(batch);
  return out;
}

/** The user's choice of sharing what they have seen with newcomers; on unless turned off. */
export function loadShareHistory() {
  try {
    return localStorage.getItem(SHARE_KEY) !== 'off';
  } catch {
    return true;
  }
}

export function saveShareHistory(on) {
  try {
    if (on) localStorage.removeItem(SHARE_KEY);
    else localStorage.setItem(SHARE_KEY, 'off');
  } catch {
    // storage disabled: the choice lasts for this page only
  }
}
