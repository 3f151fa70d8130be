// Chat messages out and in: ours go to every open channel (or wait in the outbox for a
// connection being restored), others' are taken once each; both are kept in the History,
// with the edits, deletes and reactions that change them (rules in history.js).
import { Capability, ChatEvent, ChatMessage } from './events.js';
import { applyEdit, confirmEdit, messageState, parseMentions, setReaction } from './history.js';
import { isId, randomId } from './ids.js';
import { mentionsName } from './mentions.js';

export const MAX_TEXT_LENGTH = 2000;
// Longest data-channel message read, in UTF-16 code units (String.length): a chat message
// of MAX_TEXT_LENGTH, JSON-escaped, stays well below.
export const MAX_DATA_LENGTH = 16 * 1024;
// Edits and reactions for messages not seen yet are kept this long (message ids, and
// changes per id), for the message to come.
const MAX_PARKED_IDS = 500;
const MAX_PARKED_PER_ID = 20;

/** `me()` is {name, client} of this page; `emit(type, detail)` reports ChatEvent.MESSAGE
 * and ChatEvent.CHANGED. */
export class Messages {
  #peers;
  #members;
  #history;
  #outbox;
  #me;
  #emit;
  #parked = new Map(); // by message id: [{msg, client}] that came before the message

  constructor({ peers, members, history, outbox, me, emit }) {
    this.#peers = peers;
    this.#members = members;
    this.#history = history;
    this.#outbox = outbox;
    this.#me = me;
    this.#emit = emit;
  }

  /**
   * Sends a chat message to every open channel, and queues it for peers whose connection
   * is being restored (sent in order once it is back; ChatEvent.UNDELIVERED if it is not).
   * `replyTo` (a message id) and `mentions` (client ids) go only to pages that read them.
   * Returns {id, at, sent, queued}: `at` a Date, the counts in peers.
   */
  send(text, { replyTo = null, mentions = [] } = {}) {
    const plain = { type: ChatMessage.CHAT, id: randomId(), at: Date.now(), text };
    const rich = { ...plain, ...(replyTo ? { replyTo } : {}), ...(mentions.length ? { mentions } : {}) };
    const data = { plain: JSON.stringify(plain), rich: JSON.stringify(rich) };
    const { sent, queued } = this.#sendAll(plain.id, (peer) => (this.#speaks2(peer.id) ? data.rich : data.plain));
    if (sent + queued > 0) {
      const { name, client } = this.#me();
      this.#history.add({ id: plain.id, at: plain.at, name, client, text, replyTo, mentions });
    }
    return { id: plain.id, at: new Date(plain.at), sent, queued };
  }

  /** A chat message from `peerId`, unless we have it already (from a backfill). */
  received(peerId, msg) {
    // Pages from before message ids send none: such a message is new each time.
    const id = isId(msg.id) ? msg.id : randomId();
    if (this.#history.has(id)) return;
    const text = msg.text.slice(0, MAX_TEXT_LENGTH);
    const member = this.#members.get(peerId);
    const at = Number.isFinite(msg.at) ? msg.at : Date.now();
    // An older page's message is plain text: no links, no mentions.
    const rich = this.#speaks2(peerId);
    const record = this.#history.add({
      id, at, name: member?.name ?? '', client: member?.client ?? null, text, rich,
      replyTo: rich && isId(msg.replyTo) ? msg.replyTo : null,
      mentions: rich ? parseMentions(msg.mentions) : [],
    });
    this.settle(record);
    // Shown at the time it arrived: the sender's clock may be off.
    this.#emit(ChatEvent.MESSAGE, { peerId, id, at: new Date(), ...this.#state(record) });
  }

  /** Applies what came for `record` before it did (edits, deletes, reactions). */
  settle(record) {
    const parked = this.#parked.get(record.id);
    if (!parked) return;
    this.#parked.delete(record.id);
    for (const { msg, client } of parked) this.#apply(record, msg, client);
  }

  /** An edit, delete or reaction from `peerId`. Only the author's page may edit or delete:
   * the author is the member behind the channel it came on, never a field of the message. */
  changed(peerId, msg) {
    const client = this.#members.get(peerId)?.client;
    if (!isId(client) || !isId(msg.id)) return;
    const record = this.#history.get(msg.id);
    if (record) {
      if (this.#apply(record, msg, client)) this.#emit(ChatEvent.CHANGED, { id: record.id, ...this.#state(record) });
      return;
    }
    if (this.#history.has(msg.id)) return; // too old to keep
    const parked = this.#parked.get(msg.id) ?? [];
    if (parked.length >= MAX_PARKED_PER_ID) return;
    parked.push({ msg, client });
    this.#parked.set(msg.id, parked);
    if (this.#parked.size > MAX_PARKED_IDS) this.#parked.delete(this.#parked.keys().next().value);
  }

  /** New text for one of our messages. Returns whether it changed. */
  edit(id, text) {
    const record = this.#ownRecord(id);
    if (!record || !text.trim() || text === record.text) return false;
    return this.#local({ type: ChatMessage.EDIT, id, rev: record.rev + 1, text: text.slice(0, MAX_TEXT_LENGTH) });
  }

  /** Takes back one of our messages: the others show "message deleted". */
  remove(id) {
    const record = this.#ownRecord(id);
    return Boolean(record) && this.#local({ type: ChatMessage.DELETE, id, rev: record.rev + 1 });
  }

  /** Adds our reaction with `emoji` to a message, or takes it back if it is there. */
  react(id, emoji) {
    const record = this.#history.get(id);
    if (!record || record.deleted) return false;
    const had = record.reactions.get(emoji)?.get(this.#me().client);
    return this.#local({ type: ChatMessage.REACT, id, emoji, on: !had?.on, n: (had?.n ?? 0) + 1 });
  }

  /** Applies one of our changes as if sent, without sending it (the test hook stages
   * concurrent edits with it). */
  applyOwn(msg) {
    const record = this.#history.get(msg.id);
    if (record && this.#apply(record, msg, this.#me().client)) {
      this.#emit(ChatEvent.CHANGED, { id: record.id, ...this.#state(record) });
    }
  }

  #ownRecord(id) {
    const record = this.#history.get(id);
    return record && !record.deleted && record.client === this.#me().client ? record : null;
  }

  #local(msg) {
    const record = this.#history.get(msg.id);
    if (!this.#apply(record, msg, this.#me().client)) return false;
    const data = JSON.stringify(msg);
    this.#sendAll(randomId(), (peer) => (this.#speaks2(peer.id) ? data : null));
    this.#emit(ChatEvent.CHANGED, { id: record.id, ...this.#state(record) });
    return true;
  }

  /** Applies an edit, delete or reaction of `client` to `record`; returns whether it
   * changed anything. */
  #apply(record, msg, client) {
    if (msg.type === ChatMessage.REACT) {
      if (record.deleted || typeof msg.on !== 'boolean') return false;
      return setReaction(record, msg.emoji, client, msg.n, msg.on);
    }
    // Edits and deletes: only from the author's page.
    if (record.client === null || client !== record.client) return false;
    if (!Number.isSafeInteger(msg.rev) || msg.rev < 1) return false;
    let change;
    if (msg.type === ChatMessage.DELETE) change = { rev: msg.rev, text: '', deleted: true };
    else if (typeof msg.text === 'string' && msg.text.trim()) change = { rev: msg.rev, text: msg.text.slice(0, MAX_TEXT_LENGTH), deleted: false };
    else return false;
    // What a backfill said of the message yields to its author's own word.
    return record.backfilled ? confirmEdit(record, change) : applyEdit(record, change);
  }

  /** What the page shows of `record`, with whether it mentions us. */
  #state(record) {
    const { name, client } = this.#me();
    const state = messageState(record);
    const mentionsMe = record.client !== client && state.rich && !state.deleted
      && (state.mentions.includes(client) || mentionsName(state.text, name));
    return { ...state, mentionsMe };
  }

  /** Whether the page behind `peerId` reads replies, mentions, edits and reactions. */
  #speaks2(peerId) {
    return Boolean(this.#members.get(peerId)?.caps?.includes(Capability.CHAT_2));
  }

  /** Sends `dataFor(peer)` (skipped when null) to every peer we can send to, queued for
   * those being reconnected under `outboxId`. */
  #sendAll(outboxId, dataFor) {
    let sent = 0;
    let queued = 0;
    for (const peer of this.#peers.list) {
      const data = dataFor(peer);
      if (data === null) continue;
      if (this.#outbox.holds(peer)) {
        this.#outbox.put(peer.id, outboxId, data);
        queued += 1;
      } else if (peer.sendChannel) {
        peer.sendChannel.send(data);
        sent += 1;
      }
    }
    return { sent, queued };
  }

  /** A message given by a backfill: what came for it before applied, and its state for
   * the page. */
  settled(record) {
    this.settle(record);
    return this.#state(record);
  }
}
