// The peer mesh: one RTCPeerConnection and one data channel per peer, built as the
// protocol says (existing members offer to a newcomer, the newcomer answers, both sides
// trickle ICE candidates), and the small chat protocol spoken over the channels.
//
// Open channels outlive the signaling connection. When a member's socket drops and it
// rejoins under a new peer id, the others offer to it again; the new channel replaces the
// old one quietly, matched by the random client id each page sends in its hello.
import { OFFER, ANSWER, CANDIDATE } from './signaling.js';
import { cleanName } from './names.js';

export const MAX_TEXT_LENGTH = 2000;
// Longest data-channel message read, in UTF-16 code units (String.length): a chat message
// of MAX_TEXT_LENGTH, JSON-escaped, stays well below.
const MAX_DATA_LENGTH = 16 * 1024;
// Candidates held for a peer we have no connection for yet; a real peer sends a few dozen.
const MAX_EARLY_CANDIDATES = 200;
// A channel not open by then is reported as failed (ICE may keep trying for much longer).
const CONNECT_TIMEOUT_MS = 30_000;
// How long a replaced connection is kept for the other side to close it first.
const REPLACED_GRACE_MS = 10_000;
// How long a peer the server reported gone has to answer a ping over its open channel.
const PROBE_TIMEOUT_MS = 5_000;

/** One remote member. `state`: connecting, open, interrupted or failed. */
class Peer {
  constructor(id, pc) {
    this.id = id;
    this.pc = pc;
    this.channel = null;
    this.state = 'connecting';
    this.name = '';
    this.client = null; // the peer page's random id, from its hello
    this.opened = false;
    this.remoteSet = false;
    this.pending = []; // candidates that came before the remote description
    this.queue = Promise.resolve(); // offers and answers, applied one at a time
    this.timer = null;
    this.previous = null; // the connection this one replaces, used until this one opens
    this.probe = null;
  }

  get isOpen() {
    return this.channel?.readyState === 'open';
  }

  close() {
    clearTimeout(this.timer);
    clearTimeout(this.probe);
    this.channel?.close();
    this.pc.close();
  }
}

/**
 * Data channel messages, JSON: {type:'hello', name, client} when a channel opens,
 * {type:'name', name}, {type:'chat', text}, and {type:'ping'} answered by {type:'pong'}.
 *
 * Events (CustomEvent, data in `detail`):
 * - `peer-added` {peerId, initiator, replacement}, `peer-state` {peerId, state},
 *   `peer-open` {peerId}, `peer-failed` {peerId}, `peer-removed` {peerId, name};
 * - `peer-replaced` {peerId, oldId}: the member behind `oldId` came back as `peerId`;
 * - `peer-name` {peerId, name, oldName, hello};
 * - `message` {peerId, text, at}.
 */
export class Mesh extends EventTarget {
  #signaling;
  #rtcConfig;
  #peers = new Map();
  #early = new Map();
  #myName = '';
  #client = randomId();

  constructor(signaling, rtcConfig) {
    super();
    this.#signaling = signaling;
    this.#rtcConfig = rtcConfig;
    signaling.addEventListener('peer-joined', (e) => this.#offerTo(e.detail.peerId));
    signaling.addEventListener('peer-left', (e) => this.#onPeerLeft(e.detail.peerId));
    signaling.addEventListener('signal', (e) => this.#onSignal(e.detail));
  }

  get peers() {
    return [...this.#peers.values()];
  }

  /** Peers we can send to now. */
  get openCount() {
    return this.peers.filter((p) => p.isOpen || p.previous?.isOpen).length;
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
    peer.previous?.close();
    peer.close();
    this.#emit('peer-removed', { peerId, name: peer.name, client: peer.client });
  }

  /** Closes everything without reporting each peer (we are leaving). */
  closeAll() {
    for (const peer of this.#peers.values()) {
      peer.previous?.close();
      peer.close();
    }
    this.#peers.clear();
    this.#early.clear();
  }

  /** The server says the peer's signaling connection ended. A peer whose channel is still
   * open is still here (its socket may come back); its channel closing removes it. */
  #onPeerLeft(peerId) {
    const peer = this.#peers.get(peerId);
    if (!peer?.isOpen) return this.remove(peerId);
    // A closed tab does not always close its channels: ask, and drop it if it is silent.
    clearTimeout(peer.probe);
    peer.probe = setTimeout(() => {
      if (this.#isCurrent(peer)) this.remove(peerId);
    }, PROBE_TIMEOUT_MS);
    peer.channel.send(JSON.stringify({ type: 'ping' }));
  }

  #add(peerId, initiator) {
    const pc = new RTCPeerConnection(this.#rtcConfig);
    const peer = new Peer(peerId, pc);
    const older = this.#peers.get(peerId);
    if (older) {
      older.previous?.close();
      peer.previous = older;
      clearTimeout(older.timer);
    }
    this.#peers.set(peerId, peer);
    pc.addEventListener('icecandidate', (e) => {
      // A null candidate means gathering is done: pass it on as the protocol's
      // end-of-candidates marker, an empty candidate string.
      const candidate = e.candidate ? e.candidate.toJSON() : { candidate: '' };
      this.#signaling.send(CANDIDATE, peerId, candidate);
    });
    pc.addEventListener('connectionstatechange', () => this.#onConnectionState(peer));
    peer.timer = setTimeout(() => {
      if (this.#isCurrent(peer) && peer.state === 'connecting') this.#fail(peer);
    }, CONNECT_TIMEOUT_MS);
    this.#emit('peer-added', { peerId, initiator, replacement: Boolean(older) });
    return peer;
  }

  #isCurrent(peer) {
    return this.#peers.get(peer.id) === peer;
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

  /** The newcomer's side. An offer from a peer we already have means we rejoined under
   * a new id: the new connection replaces the old one once it opens. */
  #onOffer(from, offer) {
    if (!isDescription(offer, 'offer')) return;
    const existing = this.#peers.get(from);
    // One offer per pair: while the first is still connecting, another is a duplicate.
    if (existing && !existing.opened && existing.state === 'connecting') return;
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
      clearTimeout(peer.timer);
      peer.opened = true;
      channel.send(JSON.stringify({ type: 'hello', name: this.#myName, client: this.#client }));
      const older = peer.previous;
      if (older) {
        // Ours now. The other side closes the old one when it sees our hello; close it
        // ourselves if it does not.
        peer.name ||= older.name;
        peer.client ||= older.client;
        peer.previous = null;
        setTimeout(() => older.close(), REPLACED_GRACE_MS);
      }
      this.#setState(peer, 'open');
      this.#emit('peer-open', { peerId: peer.id });
    });
    channel.addEventListener('message', (e) => this.#onData(peer, e.data));
    // The peer closed its side or went away: it has left, whether or not the server has
    // said so yet. A channel that never opened belongs to a failed connection, which
    // stays listed as failed until the server says the peer left.
    channel.addEventListener('close', () => {
      if (peer.opened && this.#isCurrent(peer)) this.remove(peer.id);
    });
  }

  #onData(peer, data) {
    // A replaced connection may still deliver what was sent on it: it counts for the
    // connection that replaced it (same peer id).
    const current = this.#peers.get(peer.id);
    if (!current) return;
    if (typeof data !== 'string' || data.length > MAX_DATA_LENGTH) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg?.type === 'hello' || msg?.type === 'name') {
      const oldName = current.name;
      current.name = cleanName(msg.name);
      if (msg.type === 'hello' && this.#adopt(current, msg.client)) return;
      this.#emit('peer-name', { peerId: current.id, name: current.name, oldName, hello: msg.type === 'hello' });
    } else if (msg?.type === 'ping') {
      if (peer.isOpen) peer.channel.send(JSON.stringify({ type: 'pong' }));
    } else if (msg?.type === 'pong') {
      clearTimeout(peer.probe);
    } else if (msg?.type === 'chat' && typeof msg.text === 'string' && msg.text.trim()) {
      this.#emit('message', { peerId: current.id, text: msg.text.slice(0, MAX_TEXT_LENGTH), at: new Date() });
    }
  }

  /** Takes `peer` as the comeback of an older peer id with the same client id, if any:
   * the older connection is closed without a "left". */
  #adopt(peer, client) {
    if (typeof client !== 'string' || client.length > 64) return false;
    peer.client = client;
    const older = this.peers.find((p) => p !== peer && p.client === client);
    if (!older) return false;
    this.#peers.delete(older.id);
    older.previous?.close();
    older.close();
    this.#emit('peer-replaced', { peerId: peer.id, oldId: older.id });
    return true;
  }

  #onConnectionState(peer) {
    if (!this.#isCurrent(peer)) return;
    const s = peer.pc.connectionState;
    if (s === 'failed') this.#fail(peer);
    else if (s === 'disconnected' && peer.state === 'open') this.#setState(peer, 'interrupted');
    else if (s === 'connected' && peer.state === 'interrupted') this.#setState(peer, 'open');
  }

  #fail(peer) {
    if (peer.state === 'failed') return;
    peer.previous?.close();
    peer.previous = null;
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
      const channel = peer.isOpen ? peer.channel : peer.previous?.isOpen ? peer.previous.channel : null;
      if (channel) {
        channel.send(data);
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

function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}
