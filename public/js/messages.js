// Chat messages out and in: ours go to every open channel (or wait in the outbox for a
// connection being restored), others' are taken once each; both are kept in the History.
import { ChatEvent, ChatMessage } from './events.js';
import { isId, randomId } from './ids.js';

export const MAX_TEXT_LENGTH = 2000;
// Longest data-channel message read, in UTF-16 code units (String.length): a chat message
// of MAX_TEXT_LENGTH, JSON-escaped, stays well below.
export const MAX_DATA_LENGTH = 16 * 1024;

/** `me()` is {name, client} of this page; `emit(type, detail)` reports ChatEvent.MESSAGE. */
export class Messages {
  #peers;
  #members;
  #history;
  #outbox;
  #me;
  #emit;

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
   * Returns {id, at, sent, queued}: `at` a Date, the counts in peers.
   */
  send(text) {
    const msg = { type: ChatMessage.CHAT, id: randomId(), at: Date.now(), text };
    const data = JSON.stringify(msg);
    let sent = 0;
    let queued = 0;
    for (const peer of this.#peers.list) {
      if (this.#outbox.holds(peer)) {
        this.#outbox.put(peer.id, msg.id, data);
        queued += 1;
      } else if (peer.sendChannel) {
        peer.sendChannel.send(data);
        sent += 1;
      }
    }
    if (sent + queued > 0) {
      const { name, client } = this.#me();
      this.#history.add({ id: msg.id, at: msg.at, name, client, text });
    }
    return { id: msg.id, at: new Date(msg.at), sent, queued };
  }

  /** A chat message from `peerId`, unless we have it already (from a backfill). */
  received(peerId, msg) {
    // Pages from before message ids send none: such a message is new each time.
    const id = isId(msg.id) ? msg.id : randomId();
    if (this.#history.has(id)) return;
    const text = msg.text.slice(0, MAX_TEXT_LENGTH);
    const member = this.#members.get(peerId);
    const at = Number.isFinite(msg.at) ? msg.at : Date.now();
    this.#history.add({ id, at, name: member?.name ?? '', client: member?.client ?? null, text });
    // Shown at the time it arrived: the sender's clock may be off.
    this.#emit(ChatEvent.MESSAGE, { peerId, id, text, at: new Date() });
  }
}
