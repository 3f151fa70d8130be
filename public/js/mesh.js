// The peer mesh: one RTCPeerConnection and one data channel per peer, built as the
// protocol says (existing members offer to a newcomer, the newcomer answers, both sides
// trickle ICE candidates), and the small chat protocol spoken over the channels.
import { OFFER, ANSWER, CANDIDATE } from './signaling.js';
import { cleanName } from './names.js';

export const MAX_TEXT_LENGTH = 2000;
const MAX_WIRE_BYTES = 16 * 1024;
// Candidates held for a peer we have no connection for yet; a real peer sends a few dozen.
const MAX_EARLY_CANDIDATES = 200;
// A channel not open by then is reported as failed (ICE may keep trying for much longer).
const CONNECT_TIMEOUT_MS = 30_000;

/** One remote member. `state`: connecting, open, interrupted or failed. */
class Peer {
  constructor(id, pc) {
    this.id = id;
    this.pc = pc;
    this.channel = null;
    this.state = 'connecting';
    this.name = '';
    this.remoteSet = false;
    this.pending = []; // candidates that came before the remote description
    this.queue = Promise.resolve(); // offers and answers, applied one at a time
    this.timer = null;
    this.opened = false;
  }
}

/**
 * Events (CustomEvent, data in `detail`):
 * - `peer-added` {peerId, initiator}, `peer-state` {peerId, state}, `peer-open` {peerId},
 *   `peer-failed` {peerId}, `peer-removed` {peerId, name, wasOpen};
 * - `peer-name` {peerId, name, previous};
 * - `message` {peerId, text, at}.
 */
export class Mesh extends EventTarget {
  #signaling;
  #rtcConfig;
  #peers = new Map();
  #early = new Map();
  #myName = '';

  constructor(signaling, rtcConfig) {
    super();
    this.#signaling = signaling;
    this.#rtcConfig = rtcConfig;
    signaling.addEventListener('peer-joined', (e) => this.#offerTo(e.detail.peerId));
    signaling.addEventListener('peer-left', (e) => this.remove(e.detail.peerId));
    signaling.addEventListener('signal', (e) => this.#onSignal(e.detail));
  }

  get peers() {
    return [...this.#peers.values()];
  }

  get openCount() {
    return this.peers.filter((p) => p.state === 'open' || p.state === 'interrupted').length;
  }

  setRtcConfig(config) {
    this.#rtcConfig = config;
  }

  /** Our display name: sent to every open channel now and to new ones when they open. */
  setName(name) {
    this.#myName = name;
    this.#broadcast({ type: 'name', name });
  }

  /** Sends a chat message to every open channel; returns how many peers it went to. */
  sendText(text) {
    return this.#broadcast({ type: 'chat', text });
  }

  /** Closes one peer's connection and forgets it; reported once, however often called. */
  remove(peerId) {
    const peer = this.#peers.get(peerId);
    this.#early.delete(peerId);
    if (!peer) return;
    this.#peers.delete(peerId);
    clearTimeout(peer.timer);
    const wasOpen = peer.channel?.readyState === 'open';
    peer.channel?.close();
    peer.pc.close();
    this.#emit('peer-removed', { peerId, name: peer.name, wasOpen });
  }

  /** Closes everything without reporting each peer (we are leaving). */
  closeAll() {
    for (const peer of this.#peers.values()) {
      clearTimeout(peer.timer);
      peer.channel?.close();
      peer.pc.close();
    }
    this.#peers.clear();
    this.#early.clear();
  }

  #add(peerId, initiator) {
    const pc = new RTCPeerConnection(this.#rtcConfig);
    const peer = new Peer(peerId, pc);
    this.#peers.set(peerId, peer);
    pc.addEventListener('icecandidate', (e) => {
      // A null candidate means gathering is done: pass it on as the protocol's
      // end-of-candidates marker, an empty candidate string.
      const candidate = e.candidate ? e.candidate.toJSON() : { candidate: '' };
      this.#signaling.send(CANDIDATE, peerId, candidate);
    });
    pc.addEventListener('connectionstatechange', () => this.#onConnectionState(peer));
    peer.timer = setTimeout(() => {
      if (this.#peers.get(peerId) === peer && peer.state === 'connecting') this.#fail(peer);
    }, CONNECT_TIMEOUT_MS);
    this.#emit('peer-added', { peerId, initiator });
    return peer;
  }

  /** An existing member's side: a connection and channel to the newcomer, and an offer. */
  #offerTo(peerId) {
    if (this.#peers.has(peerId)) return;
    const peer = this.#add(peerId, true);
    this.#useChannel(peer, peer.pc.createDataChannel('chat'));
    this.#serially(peer, async () => {
      await peer.pc.setLocalDescription(await peer.pc.createOffer());
      this.#signaling.send(OFFER, peerId, peer.pc.localDescription.toJSON());
    });
  }

  #onSignal({ kind, from, payload }) {
    if (kind === OFFER) this.#onOffer(from, payload);
    else if (kind === ANSWER) this.#onAnswer(from, payload);
    else if (kind === CANDIDATE) this.#onCandidate(from, payload);
  }

  /** The newcomer's side: an offer from a member we did not know yet. */
  #onOffer(from, offer) {
    if (!isDescription(offer, 'offer')) return;
    if (this.#peers.has(from)) return; // the protocol has one offer per pair
    const peer = this.#add(from, false);
    peer.pc.addEventListener('datachannel', (e) => this.#useChannel(peer, e.channel));
    for (const candidate of this.#early.get(from) ?? []) peer.pending.push(candidate);
    this.#early.delete(from);
    this.#serially(peer, async () => {
      await peer.pc.setRemoteDescription(offer);
      this.#remoteSet(peer);
      await peer.pc.setLocalDescription(await peer.pc.createAnswer());
      this.#signaling.send(ANSWER, from, peer.pc.localDescription.toJSON());
    });
  }

  #onAnswer(from, answer) {
    const peer = this.#peers.get(from);
    if (!peer || !isDescription(answer, 'answer')) return;
    this.#serially(peer, async () => {
      if (peer.pc.signalingState !== 'have-local-offer') return;
      await peer.pc.setRemoteDescription(answer);
      this.#remoteSet(peer);
    });
  }

  #onCandidate(from, candidate) {
    if (candidate !== null && typeof candidate !== 'object') return;
    const peer = this.#peers.get(from);
    if (!peer) {
      // Before its offer: keep it for when the connection exists.
      const early = this.#early.get(from) ?? [];
      if (early.length < MAX_EARLY_CANDIDATES) early.push(candidate);
      this.#early.set(from, early);
      return;
    }
    if (!peer.remoteSet) {
      if (peer.pending.length < MAX_EARLY_CANDIDATES) peer.pending.push(candidate);
      return;
    }
    this.#addCandidate(peer, candidate);
  }

  #remoteSet(peer) {
    peer.remoteSet = true;
    const pending = peer.pending;
    peer.pending = [];
    for (const candidate of pending) this.#addCandidate(peer, candidate);
  }

  #addCandidate(peer, candidate) {
    if (peer.pc.signalingState === 'closed') return;
    // An empty (or missing) candidate string is the end-of-candidates marker.
    const added = !candidate || !candidate.candidate
      ? peer.pc.addIceCandidate()
      : peer.pc.addIceCandidate(candidate);
    added.catch((err) => console.warn(`meshchat: ICE candidate from ${peer.id} not used:`, err.message));
  }

  /** Runs offer/answer steps of one peer in order; a failure fails that peer only. */
  #serially(peer, step) {
    peer.queue = peer.queue.then(step).catch((err) => {
      if (this.#peers.get(peer.id) !== peer) return; // removed meanwhile
      console.warn(`meshchat: negotiation with ${peer.id} failed:`, err.message);
      this.#fail(peer);
    });
  }

  #useChannel(peer, channel) {
    if (peer.channel) return; // one channel per peer
    peer.channel = channel;
    channel.addEventListener('open', () => {
      if (this.#peers.get(peer.id) !== peer) return;
      clearTimeout(peer.timer);
      peer.opened = true;
      channel.send(JSON.stringify({ type: 'hello', name: this.#myName }));
      this.#setState(peer, 'open');
      this.#emit('peer-open', { peerId: peer.id });
    });
    channel.addEventListener('message', (e) => this.#onData(peer, e.data));
    // The peer closed its side or went away: it has left, whether or not the server
    // has said so yet.
    // A channel that never opened belongs to a failed connection, which stays listed as
    // failed until the server says the peer left.
    channel.addEventListener('close', () => {
      if (peer.opened && this.#peers.get(peer.id) === peer) this.remove(peer.id);
    });
  }

  #onData(peer, data) {
    if (this.#peers.get(peer.id) !== peer) return;
    if (typeof data !== 'string' || data.length > MAX_WIRE_BYTES) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg?.type === 'hello' || msg?.type === 'name') {
      const previous = peer.name;
      peer.name = cleanName(msg.name);
      this.#emit('peer-name', { peerId: peer.id, name: peer.name, previous, hello: msg.type === 'hello' });
    } else if (msg?.type === 'chat' && typeof msg.text === 'string' && msg.text.trim()) {
      this.#emit('message', { peerId: peer.id, text: msg.text.slice(0, MAX_TEXT_LENGTH), at: new Date() });
    }
  }

  #onConnectionState(peer) {
    if (this.#peers.get(peer.id) !== peer) return;
    const s = peer.pc.connectionState;
    if (s === 'failed') this.#fail(peer);
    else if (s === 'disconnected' && peer.state === 'open') this.#setState(peer, 'interrupted');
    else if (s === 'connected' && peer.state === 'interrupted') this.#setState(peer, 'open');
  }

  #fail(peer) {
    if (peer.state === 'failed') return;
    this.#setState(peer, 'failed');
    this.#emit('peer-failed', { peerId: peer.id });
  }

  #setState(peer, state) {
    if (peer.state === state) return;
    peer.state = state;
    this.#emit('peer-state', { peerId: peer.id, state });
  }

  #broadcast(msg) {
    const data = JSON.stringify(msg);
    let sent = 0;
    for (const peer of this.#peers.values()) {
      if (peer.channel?.readyState === 'open') {
        peer.channel.send(data);
        sent += 1;
      }
    }
    return sent;
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function isDescription(value, type) {
  return value !== null && typeof value === 'object' && value.type === type && typeof value.sdp === 'string';
}
