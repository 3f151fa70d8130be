// Setting connections up over signaling, as the protocol says: existing members offer to a
// newcomer, the newcomer answers, both sides trickle ICE candidates. A restart offer on a
// connection we have goes to healing.js.
import { SignalingEvent, SocketEvent } from './events.js';
import { MAX_EARLY_CANDIDATES, PeerState, isDescription, isRenegotiation } from './peer.js';

/**
 * Turns the offers, answers and candidates that signaling relays into steps on the right
 * Peer. `roster` is Peers' side: get(peerId), connect(peerId, initiator) → Peer (with its
 * chat channel set up), and healing.
 */
export class Negotiation {
  #signaling;
  #roster;
  #earlyCandidates = new Map(); // by peer id, for peers we have no connection to yet

  constructor(signaling, roster) {
    this.#signaling = signaling;
    this.#roster = roster;
    signaling.addEventListener(SignalingEvent.PEER_JOINED, (e) => this.#offerTo(e.detail.peerId));
    signaling.addEventListener(SignalingEvent.SIGNAL, (e) => this.#onSignal(e.detail));
  }

  /** Drops what was kept for `peerId`, or for everyone. */
  forget(peerId = null) {
    if (peerId === null) this.#earlyCandidates.clear();
    else this.#earlyCandidates.delete(peerId);
  }

  /** An existing member's side: a connection and channel to the newcomer, and an offer. */
  #offerTo(peerId) {
    if (this.#roster.get(peerId)) return;
    const peer = this.#roster.connect(peerId, true);
    peer.serially(async () => peer.describe(await peer.pc.createOffer()));
  }

  #onSignal({ kind, from, payload }) {
    if (kind === SocketEvent.OFFER) this.#onOffer(from, payload);
    else if (kind === SocketEvent.ANSWER) this.#onAnswer(from, payload);
    else if (kind === SocketEvent.CANDIDATE) this.#onCandidate(from, payload);
  }

  /** The newcomer's side. An offer from a peer we already have means we rejoined under
   * a new id: the new connection replaces the old one once it opens; unless it comes from
   * the same connection of theirs (the same DTLS fingerprint), which restarts ICE. */
  #onOffer(from, offer) {
    if (!isDescription(offer, 'offer')) return;
    const existing = this.#roster.get(from);
    if (existing && isRenegotiation(existing, offer)) {
      this.#roster.healing.onRestartOffer(existing, offer);
      return;
    }
    // One offer per pair: while the first is still connecting, another is a duplicate.
    if (existing && !existing.opened && existing.state === PeerState.CONNECTING) return;
    const peer = this.#roster.connect(from, false);
    for (const candidate of this.#earlyCandidates.get(from) ?? []) peer.pendingCandidates.push(candidate);
    this.#earlyCandidates.delete(from);
    peer.serially(async () => {
      await peer.pc.setRemoteDescription(offer);
      peer.remoteDescriptionSet();
      await peer.describe(await peer.pc.createAnswer());
    });
  }

  #onAnswer(from, answer) {
    const peer = this.#roster.get(from);
    if (!peer || !isDescription(answer, 'answer')) return;
    peer.serially(async () => {
      if (peer.pc.signalingState !== 'have-local-offer') return;
      await peer.pc.setRemoteDescription(answer);
      peer.remoteDescriptionSet();
      if (peer.opened && peer.pc.connectionState === 'connected') this.#roster.healing.healed(peer);
    });
  }

  #onCandidate(from, candidate) {
    if (candidate !== null && typeof candidate !== 'object') return;
    const peer = this.#roster.get(from);
    if (peer) {
      peer.takeCandidate(candidate);
      return;
    }
    // Before its offer: keep it for when the connection exists.
    const early = this.#earlyCandidates.get(from) ?? [];
    if (early.length < MAX_EARLY_CANDIDATES) early.push(candidate);
    this.#earlyCandidates.set(from, early);
  }
}
