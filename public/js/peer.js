// One connection to a remote peer: its RTCPeerConnection and chat channel, where it
// stands, and the offer/answer/candidate steps on it, which run one at a time.
import { SocketEvent } from './events.js';

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

// Our offer or answer waits this long at most for ICE gathering to finish: the candidates
// gathered by then travel in its SDP instead of one ice-candidate message each. Host
// candidates take milliseconds and STUN ones a round trip; later ones (a slow TURN server)
// still trickle. A join into a room of N costs 2(N-1) fewer relayed messages or more.
export const GATHER_WAIT_MS = 250;

/** One connection to a remote peer. `signal(kind, payload)` relays an offer, answer or
 * candidate to it; `onStepFailed(err)` hears of a failed step. */
export class Peer {
  #onStepFailed;
  #signal;
  // Our side of ICE since our last offer or answer was made: whether it went out, the SDP
  // it went out with, the candidates trickled since, and whether gathering is done.
  #described = false;
  #sentSdp = '';
  #trickled = new Set();
  #gathered = false;
  #onGathered = null;

  constructor(id, pc, signal, onStepFailed) {
    this.id = id;
    this.pc = pc;
    this.#signal = signal;
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
    this.selfId = null; // our peer id then (a rejoin gives us a new one)
    // ICE restarts, only towards pages whose hello says they take one (setRestartable):
    // the reference client answers any offer with a brand-new connection.
    this.restartable = false;
    this.polite = false; // in a glare, we give way
    this.unreachable = false; // the server said its signaling connection ended
    this.restarts = 0; // attempts since the connection last worked
    this.restartTimer = null;
    this.ignoredOffer = false; // perfect negotiation: we last dropped an offer of theirs
    this.resendTimer = null; // our first offer, sent again while unanswered (negotiation.js)
    // The DTLS fingerprint of their offer, from when we took it (before it is applied): a
    // later offer with the same one comes from the same connection of theirs.
    this.remoteFingerprint = null;
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
    clearTimeout(this.resendTimer);
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

  /** Makes `description` (of createOffer or createAnswer) ours and sends it once ICE
   * gathering is done, or after GATHER_WAIT_MS, with the candidates gathered by then in its
   * SDP; then what was gathered meanwhile but is not in it. Runs inside a serially() step. */
  async describe(description) {
    this.#described = false;
    this.#gathered = false;
    this.#trickled.clear();
    await this.pc.setLocalDescription(description);
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, GATHER_WAIT_MS);
      this.#onGathered = () => {
        clearTimeout(timer);
        resolve();
      };
      if (this.#gathered) this.#onGathered();
    });
    this.#onGathered = null;
    if (this.pc.signalingState === 'closed') return;
    const local = this.pc.localDescription.toJSON();
    this.#signal(local.type === 'offer' ? SocketEvent.OFFER : SocketEvent.ANSWER, local);
    this.#sentSdp = local.sdp;
    this.#described = true;
    // Those gathered meanwhile are in the SDP sent (a candidate joins the description
    // before its event fires); only the end-of-candidates marker is left to send.
    if (this.#gathered) this.localCandidate(null);
  }

  /** Sends our current offer or answer again, with the candidates gathered since it was
   * made: the first one, or the answer to it, may have been lost with a signaling
   * connection that was being cut. */
  resendDescription() {
    const local = this.pc.localDescription;
    if (!this.#described || !local || this.pc.signalingState === 'closed') return;
    this.#signal(local.type === 'offer' ? SocketEvent.OFFER : SocketEvent.ANSWER, local.toJSON());
  }

  /** A candidate we gathered (null: gathering is done). It goes to the peer unless our
   * description carried it or it went before; the end-of-candidates marker (an empty
   * candidate string) goes once per gathering, after the description. */
  localCandidate(candidate) {
    if (!this.#described) {
      if (!candidate?.candidate) {
        this.#gathered = true;
        this.#onGathered?.();
      }
      return;
    }
    const line = candidate?.candidate ?? '';
    if (this.#trickled.has(line)) return;
    this.#trickled.add(line);
    if (line && this.#sentSdp.includes(`a=${line}\r\n`)) return;
    // A null candidate means gathering is done: passed on as the protocol's marker.
    this.#signal(SocketEvent.CANDIDATE, line ? candidate.toJSON() : { candidate: '' });
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
  const known = peer.remoteFingerprint ?? fingerprint(peer.pc.remoteDescription?.sdp ?? '');
  const theirs = fingerprint(offer.sdp);
  return theirs !== null && theirs === known;
}

/** Whether `offer` is the offer `peer` already took, sent again (its sender had no answer
 * in time), rather than an ICE restart, which changes the ICE credentials. */
export function isResent(peer, offer) {
  const taken = peer.pc.remoteDescription;
  return taken?.type === 'offer' && iceUfrag(taken.sdp) !== null && iceUfrag(taken.sdp) === iceUfrag(offer.sdp);
}

export function fingerprint(sdp) {
  return /^a=fingerprint:(.+)$/m.exec(sdp)?.[1]?.trim() ?? null;
}

function iceUfrag(sdp) {
  return /^a=ice-ufrag:(.+)$/m.exec(sdp)?.[1]?.trim() ?? null;
}

export function isDescription(value, type) {
  return value !== null && typeof value === 'object' && value.type === type && typeof value.sdp === 'string';
}
