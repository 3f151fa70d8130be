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

/** The reactions a message can get, in the order they show. */
export const REACTION_EMOJI = Object.freeze(['👍', '❤️', '😂', '😮', '😢', '🎉']);
// Bounds on what a peer can make us keep per message.
const MAX_MENTIONS = 32;
const MAX_REACTION_ENTRIES = 200;

/**
 * The messages by id, each with its current state: {id, at, name, client, text, rev,
 * deleted, replyTo, mentions, rich, reactions}. `client` is the author's page (taken from
 * the channel it came on, or from the backfill that gave it), `rev` counts its edits,
 * `reactions` maps emoji to a Map of client id -> {n, on}.
 */
export class History {
  #messages = [];
  #byId = new Map();
  #seen = new Set();

  /** Whether a message with this id has been kept or shown already. */
  has(id) {
    return this.#seen.has(id);
  }

  /** The kept message with this id, or undefined. */
  get(id) {
    return this.#byId.get(id);
  }

  /** Keeps `message` unless its id is known; returns the kept record, or null. */
  add(message) {
    if (this.#seen.has(message.id)) return null;
    this.#seen.add(message.id);
    if (this.#seen.size > MAX_SEEN_IDS) this.#seen.delete(this.#seen.values().next().value);
    const record = {
      rev: 0, deleted: false, replyTo: null, mentions: [], rich: true, ...message, reactions: new Map(),
    };
    for (const [emoji, client, n, on] of message.reactions ?? []) setReaction(record, emoji, client, n, on, { backfilled: true });
    if (record.deleted) record.text = '';
    // Mostly appended; a backfill's older messages go where their time puts them.
    let i = this.#messages.length;
    while (i > 0 && this.#messages[i - 1].at > record.at) i -= 1;
    this.#messages.splice(i, 0, record);
    this.#byId.set(record.id, record);
    if (this.#messages.length > MAX_MESSAGES) this.#byId.delete(this.#messages.shift().id);
    return record;
  }

  /** What a newcomer may be given now, oldest first, as sent (see toWire). */
  recent(now = Date.now()) {
    return this.#messages.filter((m) => now - m.at <= MAX_AGE_MS).map(toWire);
  }
}

/**
 * Applies an edit or delete, {rev, text, deleted}, to `record` if it wins; returns whether
 * it did. The rule, the same on every page whatever the order things arrive in: a delete
 * is final; otherwise the higher `rev` wins, and of two with the same `rev` the greater
 * text (compared as UTF-16 code units, like `>` on strings).
 */
export function applyEdit(record, { rev, text, deleted }) {
  if (record.deleted) return false;
  if (!deleted && (rev < record.rev || (rev === record.rev && !(text > record.text)))) return false;
  record.rev = Math.max(rev, record.rev);
  record.deleted = deleted;
  record.text = deleted ? '' : text;
  return true;
}

/**
 * Applies an edit or delete that came on the author's own channel to a message whose state
 * we only have from a backfill: that state, which the member who gave it could have made
 * up, yields to it whatever its `rev`. From then on applyEdit's rule holds. (An honest
 * backfill never runs ahead of the author for long: the author's later changes follow on
 * the same channel, in order.)
 */
export function confirmEdit(record, { rev, text, deleted }) {
  record.backfilled = false;
  record.rev = rev;
  record.deleted = deleted;
  record.text = deleted ? '' : text;
  return true;
}

/** Sets `client`'s reaction with `emoji` on `record` to `on` if its counter `n` is newer
 * than what we have (a removal wins a tie); returns whether anything changed. A reaction
 * known only from a backfill yields to the reactor's own (`backfilled` marks the former). */
export function setReaction(record, emoji, client, n, on, { backfilled = false } = {}) {
  if (!REACTION_EMOJI.includes(emoji) || !isId(client) || !Number.isSafeInteger(n)) return false;
  let byClient = record.reactions.get(emoji);
  const had = byClient?.get(client);
  const yields = had?.backfilled && !backfilled;
  if (had && !yields && (n < had.n || (n === had.n && (had.on === on || !had.on)))) return false;
  if (!had && countReactions(record) >= MAX_REACTION_ENTRIES) return false;
  if (!byClient) {
    byClient = new Map();
    record.reactions.set(emoji, byClient);
  }
  byClient.set(client, { n, on: Boolean(on), backfilled });
  return true;
}

function countReactions(record) {
  let count = 0;
  for (const byClient of record.reactions.values()) count += byClient.size;
  return count;
}

/** What the page shows of a message: {text, edited, deleted, replyTo, mentions, rich,
 * reactions: [{emoji, clients}]} (emoji in REACTION_EMOJI order, none without clients;
 * clients sorted). */
export function messageState(record) {
  const reactions = [];
  for (const emoji of REACTION_EMOJI) {
    // Sorted, so every page lists them alike whatever order the reactions came in.
    const clients = [...(record.reactions.get(emoji) ?? new Map())].filter(([, r]) => r.on).map(([c]) => c).sort();
    if (clients.length > 0) reactions.push({ emoji, clients });
  }
  return {
    text: record.text,
    edited: record.rev > 0,
    deleted: record.deleted,
    replyTo: record.replyTo,
    mentions: record.mentions,
    rich: record.rich,
    reactions,
  };
}

/** A record as a history item on the wire: older pages read {id, at, name, client, text}
 * (and skip a deleted one, whose text is empty). */
function toWire(record) {
  const { id, at, name, client, text, rev, deleted, replyTo, mentions, rich } = record;
  const reactions = [];
  for (const [emoji, byClient] of record.reactions) {
    for (const [c, { n, on }] of byClient) reactions.push([emoji, c, n, on]);
  }
  return { id, at, name, client, text, rev, deleted, replyTo, mentions, rich, reactions };
}

/** A message of a backfill from a peer, checked and trimmed; null when unusable. */
export function parseHistoryItem(raw, { maxText, cleanName }) {
  if (raw === null || typeof raw !== 'object') return null;
  const { id, at, name, client, text } = raw;
  const deleted = raw.deleted === true;
  if (!isId(id) || !Number.isFinite(at) || typeof text !== 'string' || (!deleted && !text.trim())) return null;
  return {
    id,
    at,
    name: cleanName(name),
    client: isId(client) ? client : null,
    text: deleted ? '' : text.slice(0, maxText),
    rev: Number.isSafeInteger(raw.rev) && raw.rev >= 0 ? raw.rev : 0,
    deleted,
    replyTo: isId(raw.replyTo) ? raw.replyTo : null,
    mentions: parseMentions(raw.mentions),
    // Pages before CHAT_2 send none of these: their messages stay plain text.
    rich: raw.rich === true,
    backfilled: true, // see confirmEdit
    reactions: (Array.isArray(raw.reactions) ? raw.reactions : []).slice(0, MAX_REACTION_ENTRIES)
      .filter((r) => Array.isArray(r) && r.length === 4 && typeof r[3] === 'boolean'),
  };
}

/** The client ids a chat message says it mentions. */
export function parseMentions(raw) {
  return Array.isArray(raw) ? raw.filter(isId).slice(0, MAX_MENTIONS) : [];
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
