// The peer connections: one RTCPeerConnection and one data channel per peer, negotiated
// as the protocol says (existing members offer to a newcomer, the newcomer answers, both
// sides trickle ICE candidates), and healed by ICE restarts when the network path breaks.
// What is said over the channels is chat.js's job.
import { SocketEvent } from './signaling.js';
import { PeerEvent, SignalingEvent } from './events.js';

/** Where a connection stands, as the member list shows it. */
export const PeerState = Object.freeze({
  CONNECTING: 'connecting',
  OPEN: 'open',
  INTERRUPTED: 'interrupted',
  RECONNECTING: 'reconnecting', // an ICE restart is under way
  FAILED: 'failed',
});

// The other side ignores the label; it names the channel in the browser's WebRTC tools.
const CHANNEL_LABEL = 'chat';
// Candidates held for a peer we have no connection for yet; a real peer sends a few dozen.
const MAX_EARLY_CANDIDATES = 200;
// A channel not open by then is reported as failed (ICE may keep trying for much longer).
const CONNECT_TIMEOUT_MS = 30_000;
// How long a replaced connection is kept for the other side to close it first.
const REPLACED_GRACE_MS = 10_000;
// How long a connection may stay `disconnected` before we restart ICE: it often recovers
// by itself within a second or two (a lost burst of packets).
const DISCONNECTED_GRACE_MS = 3_000;
// A restart not connected by then is tried again, up to MAX_RESTARTS times in a row.
const RESTART_TIMEOUT_MS = 5_000;
const MAX_RESTARTS = 6;

/** One connection to a remote peer. */
class Peer {
  constructor(id, pc) {
    this.id = id;
    this.pc = pc;
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
}

/**
 * The connections by peer id. Open channels outlive the signaling connection: when we
 * rejoin under a new id, the others offer to us again and each new connection replaces
 * the old one to the same peer id once it opens. Emits the PeerEvents of events.js.
 *
 * A connection whose network path breaks while both of us keep our peer ids is healed in
 * place: an ICE restart on the same RTCPeerConnection, so its data channel stays the same
 * object. Both sides may restart at once; "perfect negotiation" settles that glare: one
 * side is polite (it drops its own offer for the other's), the other ignores an offer
 * that collides with its own. Which is which the caller decides from what both sides
 * know (chat.js compares the client ids of the two pages; pages are not told their own
 * peer id).
 */
export class Peers extends EventTarget {
  #signaling;
  #rtcConfig = {};
  #peers = new Map();
  #earlyCandidates = new Map(); // by peer id, for peers we have no connection to yet
  // A field rather than the constant, so a browser test can keep one side from restarting
  // by itself while it watches the other.
  disconnectedGraceMs = DISCONNECTED_GRACE_MS;

  constructor(signaling) {
    super();
    this.#signaling = signaling;
    signaling.addEventListener(SignalingEvent.PEER_JOINED, (e) => this.#offerTo(e.detail.peerId));
    signaling.addEventListener(SignalingEvent.SIGNAL, (e) => this.#onSignal(e.detail));
    // Signaling can no longer reach it: no restarts (chat.js decides whether it is gone).
    signaling.addEventListener(SignalingEvent.PEER_LEFT, (e) => {
      const peer = this.#peers.get(e.detail.peerId);
      if (peer) peer.unreachable = true;
    });
  }

  /** The RTCConfiguration for connections made from now on. */
  setRtcConfig(config) {
    this.#rtcConfig = config;
  }

  get(peerId) {
    return this.#peers.get(peerId);
  }

  /** A restart gathers new candidates: with the ICE servers (and TURN credentials) of now,
   * not those the connection was made with, which may have expired since. */
  #useCurrentIceServers(pc) {
    if (!Array.isArray(this.#rtcConfig.iceServers)) return;
    try {
      pc.setConfiguration({ ...pc.getConfiguration(), iceServers: this.#rtcConfig.iceServers });
    } catch (err) {
      console.debug('meshchat: kept the ICE servers of the connection:', err.message);
    }
  }

  /** The member behind `peerId` told us its page takes ICE restarts; `polite` is our
   * side's role in a glare, the opposite of theirs. */
  setRestartable(peerId, { polite }) {
    const peer = this.#peers.get(peerId);
    if (!peer) return;
    peer.restartable = true;
    peer.polite = polite;
  }

  /** Looks at every connection now (the network or the page came back): those that are
   * not connected are restarted at once rather than after their timers. */
  check() {
    for (const peer of this.#peers.values()) {
      const s = peer.pc.connectionState;
      if (peer.opened && (s === 'disconnected' || s === 'failed')) this.restart(peer.id);
    }
  }

  /** Restarts ICE towards `peerId` if its page takes it and our signaling can carry it;
   * returns whether a restart was started. */
  restart(peerId) {
    const peer = this.#peers.get(peerId);
    if (!peer || !this.#canRestart(peer)) return false;
    clearTimeout(peer.restartTimer);
    if (peer.restarts >= MAX_RESTARTS) {
      this.#fail(peer);
      return false;
    }
    peer.restarts += 1;
    this.#setState(peer, PeerState.RECONNECTING);
    this.#retryLater(peer);
    this.#serially(peer, async () => {
      const { pc } = peer;
      // Our previous attempt went unanswered: take it back and make a new one.
      if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
      if (pc.signalingState !== 'stable') return;
      this.#useCurrentIceServers(pc);
      await pc.setLocalDescription(await pc.createOffer({ iceRestart: true }));
      this.#signaling.send(SocketEvent.OFFER, peer.id, pc.localDescription.toJSON());
    });
    return true;
  }

  /** Not connected within RESTART_TIMEOUT_MS: we try (again) ourselves, since the network
   * may have been down all along, or the side that restarted may have given up. */
  #retryLater(peer) {
    clearTimeout(peer.restartTimer);
    peer.restartTimer = setTimeout(() => {
      if (!this.#isCurrent(peer)) return;
      if (peer.pc.connectionState === 'connected') this.#healed(peer);
      else if (!this.restart(peer.id) && peer.pc.connectionState === 'failed') this.#fail(peer);
    }, RESTART_TIMEOUT_MS);
  }

  #canRestart(peer) {
    return this.#isCurrent(peer) && peer.restartable && peer.opened && !peer.unreachable
      && peer.channel?.readyState === 'open' && peer.pc.signalingState !== 'closed'
      // Under a new peer id of ours (a new signaling connection) the others offer us new
      // connections anyway.
      && this.#signaling.connected && this.#signaling.id === peer.socketId;
  }

  get list() {
    return [...this.#peers.values()];
  }

  /** Peers we can send to now. */
  get openCount() {
    return this.list.filter((p) => p.sendChannel).length;
  }

  /** Closes one peer's connections and forgets it; reported once, however often called. */
  remove(peerId) {
    const peer = this.#peers.get(peerId);
    this.#earlyCandidates.delete(peerId);
    if (!peer) return;
    this.#peers.delete(peerId);
    peer.closeWithPrevious();
    this.#emit(PeerEvent.REMOVED, { peerId });
  }

  /** Closes one peer's connections and forgets it without reporting it: the member is
   * still here, under another peer id. */
  discard(peerId) {
    this.#peers.get(peerId)?.closeWithPrevious();
    this.#peers.delete(peerId);
  }

  /** Closes everything without reporting each peer (we are leaving). */
  closeAll() {
    for (const peer of this.#peers.values()) peer.closeWithPrevious();
    this.#peers.clear();
    this.#earlyCandidates.clear();
  }

  #connect(peerId, initiator) {
    const pc = new RTCPeerConnection(this.#rtcConfig);
    const peer = new Peer(peerId, pc);
    peer.initiator = initiator;
    peer.socketId = this.#signaling.id;
    const older = this.#peers.get(peerId);
    if (older) {
      older.previous?.close();
      peer.previous = older;
      clearTimeout(older.connectTimer);
    }
    this.#peers.set(peerId, peer);
    pc.addEventListener('icecandidate', (e) => {
      // A null candidate means gathering is done: pass it on as the protocol's
      // end-of-candidates marker, an empty candidate string.
      const candidate = e.candidate ? e.candidate.toJSON() : { candidate: '' };
      this.#signaling.send(SocketEvent.CANDIDATE, peerId, candidate);
    });
    pc.addEventListener('connectionstatechange', () => this.#onConnectionState(peer));
    pc.addEventListener('icecandidateerror', (e) => this.#onIceError(e));
    peer.connectTimer = setTimeout(() => {
      if (this.#isCurrent(peer) && peer.state === PeerState.CONNECTING) this.#fail(peer);
    }, CONNECT_TIMEOUT_MS);
    this.#emit(PeerEvent.ADDED, { peerId, initiator, replacement: Boolean(older) });
    return peer;
  }

  #isCurrent(peer) {
    return this.#peers.get(peer.id) === peer;
  }

  /** An existing member's side: a connection and channel to the newcomer, and an offer. */
  #offerTo(peerId) {
    if (this.#peers.has(peerId)) return;
    const peer = this.#connect(peerId, true);
    this.#useChannel(peer, peer.pc.createDataChannel(CHANNEL_LABEL));
    this.#serially(peer, async () => {
      await peer.pc.setLocalDescription(await peer.pc.createOffer());
      this.#signaling.send(SocketEvent.OFFER, peerId, peer.pc.localDescription.toJSON());
    });
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
    const existing = this.#peers.get(from);
    if (existing && isRenegotiation(existing, offer)) {
      this.#onRestartOffer(existing, offer);
      return;
    }
    // One offer per pair: while the first is still connecting, another is a duplicate.
    if (existing && !existing.opened && existing.state === PeerState.CONNECTING) return;
    const peer = this.#connect(from, false);
    peer.pc.addEventListener('datachannel', (e) => this.#useChannel(peer, e.channel));
    for (const candidate of this.#earlyCandidates.get(from) ?? []) peer.pendingCandidates.push(candidate);
    this.#earlyCandidates.delete(from);
    this.#serially(peer, async () => {
      await peer.pc.setRemoteDescription(offer);
      this.#onRemoteDescription(peer);
      await peer.pc.setLocalDescription(await peer.pc.createAnswer());
      this.#signaling.send(SocketEvent.ANSWER, from, peer.pc.localDescription.toJSON());
    });
  }

  /** An ICE restart offer on a connection we have, perfect-negotiation style. Steps run
   * one at a time (#serially), so at the time this one runs an offer of ours is either out
   * (`have-local-offer`) or not started. */
  #onRestartOffer(peer, offer) {
    this.#serially(peer, async () => {
      const { pc } = peer;
      const collision = pc.signalingState !== 'stable';
      peer.ignoredOffer = collision && !peer.polite;
      if (peer.ignoredOffer) return; // ours wins: they roll theirs back and answer ours
      if (peer.state === PeerState.OPEN || peer.state === PeerState.INTERRUPTED) {
        this.#setState(peer, PeerState.RECONNECTING);
        this.#retryLater(peer);
      }
      this.#useCurrentIceServers(pc);
      // Our own offer, if any, is rolled back by the remote one (implicit rollback).
      await pc.setRemoteDescription(offer);
      await pc.setLocalDescription(await pc.createAnswer());
      this.#signaling.send(SocketEvent.ANSWER, peer.id, pc.localDescription.toJSON());
      // A restart over a path that still works never leaves `connected`.
      if (pc.connectionState === 'connected') this.#healed(peer);
    });
  }

  #onAnswer(from, answer) {
    const peer = this.#peers.get(from);
    if (!peer || !isDescription(answer, 'answer')) return;
    this.#serially(peer, async () => {
      if (peer.pc.signalingState !== 'have-local-offer') return;
      await peer.pc.setRemoteDescription(answer);
      this.#onRemoteDescription(peer);
      if (peer.opened && peer.pc.connectionState === 'connected') this.#healed(peer);
    });
  }

  #onCandidate(from, candidate) {
    if (candidate !== null && typeof candidate !== 'object') return;
    const peer = this.#peers.get(from);
    if (!peer) {
      // Before its offer: keep it for when the connection exists.
      const early = this.#earlyCandidates.get(from) ?? [];
      if (early.length < MAX_EARLY_CANDIDATES) early.push(candidate);
      this.#earlyCandidates.set(from, early);
      return;
    }
    if (!peer.hasRemoteDescription) {
      if (peer.pendingCandidates.length < MAX_EARLY_CANDIDATES) peer.pendingCandidates.push(candidate);
      return;
    }
    this.#addCandidate(peer, candidate);
  }

  #onRemoteDescription(peer) {
    peer.hasRemoteDescription = true;
    const pending = peer.pendingCandidates;
    peer.pendingCandidates = [];
    for (const candidate of pending) this.#addCandidate(peer, candidate);
  }

  #addCandidate(peer, candidate) {
    if (peer.pc.signalingState === 'closed') return;
    // In line with offers and answers: a candidate of a restart must wait for its offer.
    peer.negotiation = peer.negotiation.then(async () => {
      if (peer.pc.signalingState === 'closed') return;
      try {
        // An empty (or missing) candidate string is the end-of-candidates marker.
        if (!candidate || !candidate.candidate) await peer.pc.addIceCandidate();
        else await peer.pc.addIceCandidate(candidate);
      } catch (err) {
        // Those of an offer we dropped in a glare do not fit, as expected.
        if (!peer.ignoredOffer) console.warn(`meshchat: ICE candidate from ${peer.id} not used:`, err.message);
      }
    });
  }

  /** Runs offer/answer steps of one peer in order; a failure fails that peer only. */
  #serially(peer, step) {
    peer.negotiation = peer.negotiation.then(step).catch((err) => {
      if (!this.#isCurrent(peer)) return; // replaced or removed meanwhile
      console.warn(`meshchat: negotiation with ${peer.id} failed:`, err.message);
      this.#fail(peer);
    });
  }

  #useChannel(peer, channel) {
    if (peer.channel) return; // one channel per peer
    peer.channel = channel;
    channel.addEventListener('open', () => {
      if (!this.#isCurrent(peer)) return;
      clearTimeout(peer.connectTimer);
      peer.opened = true;
      const older = peer.previous;
      if (older) {
        // Ours now. The other side closes the old one when it sees our hello on this one
        // (chat.js); close it ourselves if it does not.
        peer.previous = null;
        setTimeout(() => older.close(), REPLACED_GRACE_MS);
      }
      this.#setState(peer, PeerState.OPEN);
      this.#emit(PeerEvent.OPEN, { peerId: peer.id });
    });
    // Also from a connection that has been replaced meanwhile: what was sent on it still
    // counts for its peer id.
    channel.addEventListener('message', (e) => this.#emit(PeerEvent.DATA, { peerId: peer.id, channel, data: e.data }));
    // The peer closed its side or went away: it has left, whether or not the server has
    // said so yet. A channel that never opened belongs to a failed connection, which
    // stays listed as failed until the server says the peer left.
    channel.addEventListener('close', () => {
      if (peer.opened && this.#isCurrent(peer)) this.remove(peer.id);
    });
  }

  /** A TURN server's answer with an error code says why relaying will not work, which the
   * page can tell the user. Unreachable servers (701) and STUN errors are routine: one
   * address family of the machine cannot reach them, say, while another can. */
  #onIceError(e) {
    const refused = e.errorCode >= 300 && e.errorCode < 700;
    if (!refused || !/^turns?:/.test(e.url ?? '')) return;
    this.#emit(PeerEvent.TURN_REFUSED, { url: e.url, code: e.errorCode, text: e.errorText ?? '' });
  }

  #onConnectionState(peer) {
    if (!this.#isCurrent(peer)) return;
    const s = peer.pc.connectionState;
    const broken = peer.state === PeerState.OPEN || peer.state === PeerState.INTERRUPTED
      || peer.state === PeerState.RECONNECTING;
    if (s === 'failed') {
      // While a restart is under way its own timer decides when to try again.
      if (peer.state === PeerState.RECONNECTING) return;
      if (!(broken && this.restart(peer.id))) this.#fail(peer);
    } else if (s === 'disconnected' && peer.state === PeerState.OPEN) {
      this.#setState(peer, PeerState.INTERRUPTED);
      clearTimeout(peer.restartTimer);
      peer.restartTimer = setTimeout(() => {
        if (this.#isCurrent(peer) && peer.pc.connectionState === 'disconnected') this.restart(peer.id);
      }, this.disconnectedGraceMs);
    } else if (s === 'connected' && broken) {
      this.#healed(peer);
    }
  }

  /** The connection works again after an interruption or a restart. */
  #healed(peer) {
    if (peer.state !== PeerState.INTERRUPTED && peer.state !== PeerState.RECONNECTING) return;
    clearTimeout(peer.restartTimer);
    peer.restarts = 0;
    this.#setState(peer, PeerState.OPEN);
  }

  #fail(peer) {
    if (peer.state === PeerState.FAILED) return;
    peer.previous?.close();
    peer.previous = null;
    this.#setState(peer, PeerState.FAILED);
    this.#emit(PeerEvent.FAILED, { peerId: peer.id });
  }

  #setState(peer, state) {
    if (peer.state === state) return;
    peer.state = state;
    this.#emit(PeerEvent.STATE, { peerId: peer.id, state });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** Whether `offer` comes from the RTCPeerConnection we already talk to (a restart) rather
 * than from a new one: each connection has its own certificate, so its own fingerprint. */
function isRenegotiation(peer, offer) {
  const current = peer.pc.remoteDescription?.sdp;
  if (!current) return false;
  const theirs = fingerprint(offer.sdp);
  return theirs !== null && theirs === fingerprint(current);
}

function fingerprint(sdp) {
  return /^a=fingerprint:(.+)$/m.exec(sdp)?.[1]?.trim() ?? null;
}

function isDescription(value, type) {
  return value !== null && typeof value === 'object' && value.type === type && typeof value.sdp === 'string';
}
