// The peer connections by peer id: one RTCPeerConnection and one chat channel per peer,
// made, replaced and closed here and reported as PeerEvents. How they are negotiated is
// negotiation.js's job, how they heal healing.js's; what is said over them chat.js's.
import { PeerEvent, SignalingEvent } from './events.js';
import { Healing } from './healing.js';
import { Negotiation } from './negotiation.js';
import { Peer, PeerState } from './peer.js';

// The other side ignores the label; it names the channel in the browser's WebRTC tools.
const CHANNEL_LABEL = 'chat';
// A channel not open by then is reported as failed (ICE may keep trying for much longer).
const CONNECT_TIMEOUT_MS = 30_000;
// How long a replaced connection is kept for the other side to close it first.
const REPLACED_GRACE_MS = 10_000;

/**
 * The connections by peer id. Open channels outlive the signaling connection: when we
 * rejoin under a new id, the others offer to us again and each new connection replaces
 * the old one to the same peer id once it opens. Emits the PeerEvents of events.js.
 */
export class Peers extends EventTarget {
  #signaling;
  #rtcConfig = {};
  #peers = new Map();
  #healing;
  #negotiation;

  constructor(signaling) {
    super();
    this.#signaling = signaling;
    this.#healing = new Healing(signaling, {
      isCurrent: (peer) => this.#isCurrent(peer),
      setState: (peer, state) => this.#setState(peer, state),
      fail: (peer) => this.#fail(peer),
      iceServers: () => this.#rtcConfig.iceServers,
    });
    this.#negotiation = new Negotiation(signaling, {
      get: (peerId) => this.#peers.get(peerId),
      connect: (peerId, initiator) => this.#connect(peerId, initiator),
      healing: this.#healing,
    });
    // Signaling can no longer reach it: no restarts (members.js decides whether it is gone).
    signaling.addEventListener(SignalingEvent.PEER_LEFT, (e) => {
      const peer = this.#peers.get(e.detail.peerId);
      if (peer) peer.unreachable = true;
    });
  }

  /** The RTCConfiguration for connections made from now on. */
  setRtcConfig(config) {
    this.#rtcConfig = config;
  }

  /** For a browser test: how long a connection may stay `disconnected` before a restart. */
  set disconnectedGraceMs(ms) {
    this.#healing.disconnectedGraceMs = ms;
  }

  get(peerId) {
    return this.#peers.get(peerId);
  }

  get list() {
    return [...this.#peers.values()];
  }

  /** Peers we can send to now. */
  get openCount() {
    return this.list.filter((p) => p.sendChannel).length;
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
    this.#healing.check(this.list);
  }

  /** Restarts ICE towards `peerId` if its page takes it and our signaling can carry it;
   * returns whether a restart was started. */
  restart(peerId) {
    const peer = this.#peers.get(peerId);
    return peer ? this.#healing.restart(peer) : false;
  }

  /** Closes one peer's connections and forgets it; reported once, however often called. */
  remove(peerId) {
    const peer = this.#peers.get(peerId);
    this.#negotiation.forget(peerId);
    if (!peer) return;
    this.#peers.delete(peerId);
    peer.closeWithPrevious();
    this.#emit(PeerEvent.REMOVED, { peerId });
  }

  /** Forgets one peer without reporting it: the member is still here, under another peer
   * id. Its connections close a while later: when both pages rejoined under new ids, the
   * other may not have seen yet that it is us, and would take the close for our leaving. */
  discard(peerId) {
    const peer = this.#peers.get(peerId);
    if (!peer) return;
    this.#peers.delete(peerId);
    setTimeout(() => peer.closeWithPrevious(), REPLACED_GRACE_MS);
  }

  /** Closes everything without reporting each peer (we are leaving). */
  closeAll() {
    for (const peer of this.#peers.values()) peer.closeWithPrevious();
    this.#peers.clear();
    this.#negotiation.forget();
  }

  /** A new connection to `peerId`, replacing any older one once it opens; the initiator
   * makes the chat channel, the other side takes it from the first offer. */
  #connect(peerId, initiator) {
    const pc = new RTCPeerConnection(this.#rtcConfig);
    const signal = (kind, payload) => this.#signaling.send(kind, peerId, payload);
    const peer = new Peer(peerId, pc, signal, (err) => {
      if (!this.#isCurrent(peer)) return; // replaced or removed meanwhile
      console.warn(`meshchat: negotiation with ${peerId} failed:`, err.message);
      this.#fail(peer);
    });
    peer.initiator = initiator;
    peer.socketId = this.#signaling.id;
    peer.selfId = this.#signaling.self;
    const older = this.#peers.get(peerId);
    if (older?.opened) {
      older.previous?.close();
      peer.previous = older;
      clearTimeout(older.connectTimer);
    } else if (older) {
      // It never opened (an offer given up, or one that went unanswered): it carries
      // nothing, and the connection it was to replace, if any, still does until this opens.
      peer.previous = older.previous;
      older.close();
    }
    this.#peers.set(peerId, peer);
    pc.addEventListener('icecandidate', (e) => peer.localCandidate(e.candidate));
    pc.addEventListener('connectionstatechange', () => this.#healing.onConnectionState(peer));
    pc.addEventListener('icecandidateerror', (e) => this.#onIceError(e));
    peer.connectTimer = setTimeout(() => {
      if (this.#isCurrent(peer) && peer.state === PeerState.CONNECTING) this.#fail(peer);
    }, CONNECT_TIMEOUT_MS);
    this.#emit(PeerEvent.ADDED, { peerId, initiator, replacement: Boolean(older) });
    if (initiator) this.#useChannel(peer, pc.createDataChannel(CHANNEL_LABEL));
    else pc.addEventListener('datachannel', (e) => this.#useChannel(peer, e.channel));
    return peer;
  }

  #isCurrent(peer) {
    return this.#peers.get(peer.id) === peer;
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
