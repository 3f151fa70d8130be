// Setting connections up over signaling, as the protocol says: existing members offer to a
// newcomer, the newcomer answers, both sides trickle ICE candidates. A restart offer on a
// connection we have goes to healing.js.
import { SignalingEvent, SocketEvent } from './events.js';
import { MAX_EARLY_CANDIDATES, PeerState, fingerprint, isDescription, isRenegotiation } from './peer.js';

// Our first offer to a peer, unanswered by then, goes again: it (or the answer) may have
// been lost with a signaling connection being cut, ours or theirs, during a rolling restart
// say. Until the connection times out (peers.js); an answer that was only late is harmless.
// Not once we have rejoined under a new peer id: the others offer to that one themselves
// (and one that took the first offer would answer it twice, on two connections).
const OFFER_RESEND_MS = 3_000;

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
    peer.serially(async () => {
      await peer.describe(await peer.pc.createOffer());
      this.#resendLater(peer);
    });
  }

  #resendLater(peer) {
    clearTimeout(peer.resendTimer);
    peer.resendTimer = setTimeout(() => {
      const unanswered = peer.pc.signalingState === 'have-local-offer' && !peer.opened;
      if (this.#roster.get(peer.id) !== peer || peer.state !== PeerState.CONNECTING || !unanswered) return;
      const self = this.#signaling.self; // null while a join is under way
      if (self !== null && self !== peer.selfId) return;
      if (self === peer.selfId) peer.resendDescription();
      this.#resendLater(peer);
    }, OFFER_RESEND_MS);
  }

  #onSignal({ kind, from, payload }) {
    if (kind === SocketEvent.OFFER) this.#onOffer(from, payload);
    else if (kind === SocketEvent.ANSWER) this.#onAnswer(from, payload);
    else if (kind === SocketEvent.CANDIDATE) this.#onCandidate(from, payload);
  }

  /** The newcomer's side. An offer from a peer we already have means we rejoined under
   * a new id: the new connection replaces the old one once it opens; unless it comes from
   * the same connection of theirs (the same DTLS fingerprint), which restarts ICE (or is
   * their offer sent again). While a connection is still being set up, the latest offer
   * from its peer is the one it waits on, except when it crosses our own offer. */
  #onOffer(from, offer) {
    if (!isDescription(offer, 'offer')) return;
    const existing = this.#roster.get(from);
    if (existing && isRenegotiation(existing, offer)) {
      this.#roster.healing.onRestartOffer(existing, offer);
      return;
    }
    if (existing && !existing.opened && this.#keepsOwnOffer(existing, from)) {
      existing.ignoredOffer = true; // the candidates of theirs that follow do not fit
      return;
    }
    // The polite side gives its own offer up for a new connection that answers theirs
    // (rather than rolling it back: that connection already made its chat channel).
    const peer = this.#roster.connect(from, false);
    peer.remoteFingerprint = fingerprint(offer.sdp);
    for (const candidate of this.#earlyCandidates.get(from) ?? []) peer.pendingCandidates.push(candidate);
    this.#earlyCandidates.delete(from);
    peer.serially(async () => {
      await peer.pc.setRemoteDescription(offer);
      peer.remoteDescriptionSet();
      await peer.describe(await peer.pc.createAnswer());
    });
  }

  /** Offers crossed ("perfect negotiation" for a new connection): both pages offered to
   * each other, each on a new connection. The one with the greater peer id keeps its own
   * and drops theirs; the other answers it. Both compare the same two ids, so exactly one
   * offer gets answered, whichever was lost or came first. An offer we made under an
   * earlier peer id of ours always gives way (theirs is to our new one), and so do we
   * without a peer id (a server that does not say it). */
  #keepsOwnOffer(existing, from) {
    const self = this.#signaling.self;
    const ours = existing.initiator && !existing.hasRemoteDescription && existing.selfId === self;
    return ours && existing.state === PeerState.CONNECTING && self !== null && self > from;
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
