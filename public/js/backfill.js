// The messages from before a page joined: a newcomer asks one peer for the room's recent
// messages (another, if that one refuses or has none), and a member gives them once.
import { Capability, ChatEvent, ChatMessage } from './events.js';
import { batches, parseHistoryItem } from './history.js';
import { MAX_DATA_LENGTH, MAX_TEXT_LENGTH } from './messages.js';
import { cleanName } from './names.js';

/** Asks for and gives the History's messages, each as it stands now (edits, deletes and
 * reactions applied; see History.recent). `emit(type, detail)` reports ChatEvent.HISTORY;
 * `state(record)` applies what came before a message and says how it shows. */
export class Backfill {
  #peers;
  #members;
  #history;
  #emit;
  #state;
  #share = true;
  #asking = null; // the peer id asked, until it is done
  #asked = new Set(); // peer ids asked that have not finished: history from others is not taken
  #done = false; // a peer gave us the room's history
  #refusedBy = new Set(); // peers that refused, or had nothing to give
  #given = 0; // messages the peer asked gave us so far
  #answered = new Set(); // peer ids we gave history to (once each)

  constructor({ peers, members, history, emit, state }) {
    this.#state = state;
    this.#peers = peers;
    this.#members = members;
    this.#history = history;
    this.#emit = emit;
  }

  /** Whether we give newcomers the messages we have seen when they ask. */
  set share(on) {
    this.#share = Boolean(on);
  }

  /** Asks `peerId` for the room's recent messages (once we know it can answer). */
  request(peerId) {
    const peer = this.#peers.get(peerId);
    if (!peer?.isOpen) return false;
    this.#asking = peerId;
    this.#asked.add(peerId);
    this.#given = 0;
    peer.channel.send(JSON.stringify({ type: ChatMessage.HISTORY_REQUEST }));
    return true;
  }

  /** Asks one peer that can answer for the room's recent messages, if nobody has given
   * them yet. Only a page that joined asks: the members it joined offered to it. */
  ask() {
    if (this.#done || this.#asking !== null) return;
    const candidate = this.#peers.list.find((peer) => !peer.initiator && peer.isOpen
      && !this.#refusedBy.has(peer.id) && this.#members.get(peer.id)?.caps?.includes(Capability.HISTORY));
    if (candidate) this.request(candidate.id);
  }

  /** `peerId` is gone: it is no longer asked. Returns whether it was. */
  stopAsking(peerId) {
    if (this.#asking !== peerId) return false;
    this.#asking = null;
    return true;
  }

  /** Answers a newcomer once, unless the user turned sharing off. */
  give(peerId, channel) {
    if (this.#answered.has(peerId) || channel.readyState !== 'open') return;
    this.#answered.add(peerId);
    const send = (m) => channel.send(JSON.stringify({ type: ChatMessage.HISTORY, ...m }));
    if (!this.#share) return send({ messages: [], done: true, refused: true });
    // Room for the envelope around each batch.
    const parts = batches(this.#history.recent(), MAX_DATA_LENGTH - 100);
    if (parts.length === 0) return send({ messages: [], done: true });
    parts.forEach((messages, i) => send({ messages, done: i === parts.length - 1 }));
  }

  /** A batch of the room's recent messages: the new ones go to the page, the ones we have
   * (given by another peer, or seen live meanwhile) are dropped. */
  received(peerId, msg) {
    if (!this.#asked.has(peerId)) return;
    const fresh = [];
    for (const raw of Array.isArray(msg.messages) ? msg.messages : []) {
      const item = parseHistoryItem(raw, { maxText: MAX_TEXT_LENGTH, cleanName });
      // The item's author (`client`) is who may edit or delete it from now on; one we
      // have already keeps the state we have.
      const record = item && this.#history.add(item);
      if (record) {
        const { id, at, name, client } = record;
        fresh.push({ id, at, name, client, ...this.#state(record) });
      }
    }
    const done = msg.done === true;
    const refused = done && msg.refused === true;
    if (done) this.#asked.delete(peerId);
    if (fresh.length > 0 || done) {
      this.#emit(ChatEvent.HISTORY, { peerId, messages: fresh.sort((a, b) => a.at - b.at), done, refused });
    }
    if (this.#asking !== peerId) return;
    this.#given += Array.isArray(msg.messages) ? msg.messages.length : 0;
    if (!done) return;
    this.#asking = null;
    // A peer with nothing to give may have joined just before us: ask another.
    if (refused || this.#given === 0) {
      this.#refusedBy.add(peerId);
      this.ask();
    } else {
      this.#done = true;
    }
  }
}
