// Chat messages for a peer whose connection is being restored: kept in order, sent once
// it is back, or reported undelivered if it is not.
import { ChatEvent } from './events.js';
import { PeerState } from './peer.js';

/** The waiting messages by peer id. `emit(type, detail)` reports the ChatEvents SENT and
 * UNDELIVERED; `members` names who a message did not reach. */
export class Outbox {
  #peers;
  #members;
  #emit;
  #boxes = new Map(); // by peer id: [{id, data}] to send once its connection is back

  constructor(peers, members, emit) {
    this.#peers = peers;
    this.#members = members;
    this.#emit = emit;
  }

  /** Whether what we send `peer` must wait: its connection worked and is being restored,
   * or earlier messages wait for it. */
  holds(peer) {
    return this.#boxes.has(peer.id)
      || (peer.opened && (peer.state === PeerState.INTERRUPTED || peer.state === PeerState.RECONNECTING));
  }

  put(peerId, id, data) {
    const box = this.#boxes.get(peerId) ?? [];
    box.push({ id, data });
    this.#boxes.set(peerId, box);
  }

  /** Sends what waited for `fromId` on the channel of `toId` (a comeback's new id). */
  flush(fromId, toId) {
    const box = this.#boxes.get(fromId);
    if (!box) return;
    const channel = this.#peers.get(toId)?.sendChannel;
    if (!channel) return;
    this.#boxes.delete(fromId);
    for (const { data } of box) channel.send(data);
    this.#emit(ChatEvent.SENT, { peerId: toId, ids: box.map((m) => m.id) });
  }

  /** The peer is gone or failed: what waited for it will not get there. */
  drop(peerId) {
    const box = this.#boxes.get(peerId);
    if (!box) return;
    this.#boxes.delete(peerId);
    const member = this.#members.get(peerId);
    this.#emit(ChatEvent.UNDELIVERED, {
      peerId, name: member?.name ?? '', client: member?.client ?? null, ids: box.map((m) => m.id),
    });
  }
}
