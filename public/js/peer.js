// One connection to a remote peer: its RTCPeerConnection and chat channel, where it
// stands, and the offer/answer/candidate steps on it, which run one at a time.

/** Where a connection stands, as the member list shows it. */
export const PeerState = Object.freeze({
  CONNECTING: 'connecting',
  OPEN: 'open',
  INTERRUPTED: 'interrupted',
  RECONNECTING: 'reconnecting', // an ICE restart is under way
  FAILED: 'failed',
});

// Candidates held for a connection before its remote description (or, in negotiation.js,
// for a peer we have no connection to yet); a real peer sends a few dozen.
export const MAX_EARLY_CANDIDATES = 200;

/** One connection to a remote peer. `onStepFailed(err)` hears of a failed step. */
export class Peer {
  #onStepFailed;

  constructor(id, pc, onStepFailed) {
    this.id = id;
    this.pc = pc;
    this.#onStepFailed = onStepFailed;
    this.channel = null;
    this.state = PeerState.CONNECTING;
    this.opened = false; // the channel has opened at least once
    this.hasRemoteDescription = false;
    this.pendingCandidates = []; // those that came before the remote description
    this.negotiation = Promise.resolve(); // offers and answers, applied one at a time
    this.connectTimer = null;
    this.previous = null; // the connection this one replaces, used until this one opens
    this.initiator = false; // we made the first offer
    this.socketId = null; // our signaling connection when this connection was made
    // ICE restarts, only towards pages whose hello says they take one (setRestartable):
    // the reference client answers any offer with a brand-new connection.
    this.restartable = false;
    this.polite = false; // in a glare, we give way
    this.unreachable = false; // the server said its signaling connection ended
    this.restarts = 0; // attempts since the connection last worked
    this.restartTimer = null;
    this.ignoredOffer = false; // perfect negotiation: we last dropped an offer of theirs
  }

  get isOpen() {
    return this.channel?.readyState === 'open';
  }

  /** The channel to send on: ours once open, until then the one we replace, if open. */
  get sendChannel() {
    if (this.isOpen) return this.channel;
    return this.previous?.isOpen ? this.previous.channel : null;
  }

  close() {
    clearTimeout(this.connectTimer);
    clearTimeout(this.restartTimer);
    this.channel?.close();
    this.pc.close();
  }

  /** Closes this connection and the one it replaces. */
  closeWithPrevious() {
    this.previous?.close();
    this.close();
  }

  /** Runs an offer/answer step after those before it; a failure fails this peer only. */
  serially(step) {
    this.negotiation = this.negotiation.then(step).catch((err) => this.#onStepFailed(err));
  }

  /** A remote candidate: used once the remote description is set, kept until then. */
  takeCandidate(candidate) {
    if (this.hasRemoteDescription) this.#addCandidate(candidate);
    else if (this.pendingCandidates.length < MAX_EARLY_CANDIDATES) this.pendingCandidates.push(candidate);
  }

  /** The remote description is set: the candidates that waited for it are used. */
  remoteDescriptionSet() {
    this.hasRemoteDescription = true;
    const pending = this.pendingCandidates;
    this.pendingCandidates = [];
    for (const candidate of pending) this.#addCandidate(candidate);
  }

  /** A restart gathers new candidates: with the ICE servers (and TURN credentials) of now,
   * not those the connection was made with, which may have expired since. */
  useIceServers(iceServers) {
    if (!Array.isArray(iceServers)) return;
    try {
      this.pc.setConfiguration({ ...this.pc.getConfiguration(), iceServers });
    } catch (err) {
      console.debug('meshchat: kept the ICE servers of the connection:', err.message);
    }
  }

  #addCandidate(candidate) {
    if (this.pc.signalingState === 'closed') return;
    // In line with offers and answers: a candidate of a restart must wait for its offer.
    this.negotiation = this.negotiation.then(async () => {
      if (this.pc.signalingState === 'closed') return;
      try {
        // An empty (or missing) candidate string is the end-of-candidates marker.
        if (!candidate || !candidate.candidate) await this.pc.addIceCandidate();
        else await this.pc.addIceCandidate(candidate);
      } catch (err) {
        // Those of an offer we dropped in a glare do not fit, as expected.
        if (!this.ignoredOffer) console.warn(`meshchat: ICE candidate from ${this.id} not used:`, err.message);
      }
    });
  }
}

/** Whether `offer` comes from the RTCPeerConnection we already talk to (a restart) rather
 * than from a new one: each connection has its own certificate, so its own fingerprint. */
export function isRenegotiation(peer, offer) {
  const current = peer.pc.remoteDescription?.sdp;
  if (!current) return false;
  const theirs = fingerprint(offer.sdp);
  return theirs !== null && theirs === fingerprint(current);
}

function fingerprint(sdp) {
  return /^a=fingerprint:(.+)$/m.exec(sdp)?.[1]?.trim() ?? null;
}

export function isDescription(value, type) {
  return value !== null && typeof value === 'object' && value.type === type && typeof value.sdp === 'string';
}
