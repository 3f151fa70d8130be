// The chat protocol spoken over the peers' data channels: greetings, names, messages, and
// the ping that asks a peer the server calls gone whether it is still there.
import { ChatEvent, PeerEvent, SignalingEvent } from './events.js';
import { cleanName } from './names.js';
import { FILES_CAPABILITY } from './files.js';

export const MAX_TEXT_LENGTH = 2000;
// Longest data-channel message read, in UTF-16 code units (String.length): a chat message
// of MAX_TEXT_LENGTH, JSON-escaped, stays well below.
const MAX_DATA_LENGTH = 16 * 1024;
// How long a peer the server reported gone has to answer a ping over its open channel.
const PROBE_TIMEOUT_MS = 5_000;

/**
 * Messages are JSON objects with a `type`: {type:'hello', name, client, caps} when a
 * channel opens, {type:'name', name}, {type:'chat', text}, {type:'typing'} while its
 * sender types, and {type:'ping'} answered by {type:'pong'}.
 */
const MessageType = Object.freeze({
  HELLO: 'hello',
  NAME: 'name',
  CHAT: 'chat',
  PING: 'ping',
  PONG: 'pong',
  TYPING: 'typing',
});

/**
 * The members behind the connections of Peers: what they are called and what they say.
 * Emits the ChatEvents of events.js.
 *
 * When a member's socket drops and it rejoins under a new peer id, the others offer to it
 * again: we know it is the same member, not a newcomer, by the random client id each page
 * sends in its hello, and its new connection replaces the old one quietly.
 */
export class Chat extends EventTarget {
  #peers;
  #members = new Map(); // by peer id: {name, client}, as the member told us
  #probes = new Map(); // by peer id: the timer of an unanswered ping
  #myName = '';
  #client = randomId();

  constructor(peers, signaling) {
    super();
    this.#peers = peers;
    peers.addEventListener(PeerEvent.OPEN, (e) => this.#greet(e.detail.peerId));
    peers.addEventListener(PeerEvent.DATA, (e) => this.#onData(e.detail));
    peers.addEventListener(PeerEvent.REMOVED, (e) => this.#onRemoved(e.detail.peerId));
    signaling.addEventListener(SignalingEvent.PEER_LEFT, (e) => this.#onPeerLeft(e.detail.peerId));
  }

  /** What the member behind `peerId` told us, {name, client}; undefined before its hello. */
  member(peerId) {
    return this.#members.get(peerId);
  }

  /** Our display name: sent to every open channel now and to new ones when they open. */
  setName(name) {
    this.#myName = name;
    this.#broadcast({ type: MessageType.NAME, name });
  }

  /** Sends a chat message to every open channel; returns how many peers it went to. */
  sendText(text) {
    return this.#broadcast({ type: MessageType.CHAT, text });
  }

  /** Says we are typing, to the members whose hello shows they speak this protocol. */
  sendTyping() {
    return this.#broadcast({ type: MessageType.TYPING }, (peer) => this.#members.get(peer.id)?.client);
  }

  #greet(peerId) {
    const hello = { type: MessageType.HELLO, name: this.#myName, client: this.#client, caps: [FILES_CAPABILITY] };
    this.#peers.get(peerId).channel.send(JSON.stringify(hello));
  }

  #onData({ peerId, channel, data }) {
    // A peer removed or adopted may still deliver what was in flight on its channel: a
    // name from it would list it again.
    if (!this.#peers.get(peerId)) return;
    if (typeof data !== 'string' || data.length > MAX_DATA_LENGTH) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg?.type === MessageType.HELLO || msg?.type === MessageType.NAME) {
      this.#onName(peerId, msg);
    } else if (msg?.type === MessageType.PING) {
      if (channel.readyState === 'open') channel.send(JSON.stringify({ type: MessageType.PONG }));
    } else if (msg?.type === MessageType.PONG) {
      this.#stopProbe(peerId);
    } else if (msg?.type === MessageType.TYPING) {
      this.#emit(ChatEvent.TYPING, { peerId });
    } else if (msg?.type === MessageType.CHAT && typeof msg.text === 'string' && msg.text.trim()) {
      this.#emit(ChatEvent.MESSAGE, { peerId, text: msg.text.slice(0, MAX_TEXT_LENGTH), at: new Date() });
    }
  }

  #onName(peerId, msg) {
    let member = this.#members.get(peerId);
    if (!member) {
      member = { name: '', client: null };
      this.#members.set(peerId, member);
    }
    const oldName = member.name;
    member.name = cleanName(msg.name);
    const hello = msg.type === MessageType.HELLO;
    // What the member's page can do besides chat (files.js); older pages send none.
    if (hello) member.caps = Array.isArray(msg.caps) ? msg.caps.filter((c) => typeof c === 'string').slice(0, 16) : [];
    if (hello && this.#adopt(peerId, member, msg.client)) return;
    this.#emit(ChatEvent.NAMED, { peerId, name: member.name, oldName, hello });
  }

  /** Takes `peerId` as the comeback of an older peer id with the same client id, if any:
   * the older connection is closed without a "left". */
  #adopt(peerId, member, client) {
    if (typeof client !== 'string' || client.length > 64) return false;
    member.client = client;
    const oldId = [...this.#members.keys()].find((id) => id !== peerId && this.#members.get(id).client === client);
    if (oldId === undefined) return false;
    this.#forget(oldId);
    this.#peers.discard(oldId);
    this.#emit(ChatEvent.REJOINED, { peerId, oldId });
    return true;
  }

  /** The server says the peer's signaling connection ended. A peer whose channel is still
   * open is still here (its socket may come back); its channel closing removes it. */
  #onPeerLeft(peerId) {
    const peer = this.#peers.get(peerId);
    if (!peer?.isOpen) return this.#peers.remove(peerId);
    // A closed tab does not always close its channels: ask, and drop it if it is silent.
    this.#stopProbe(peerId);
    this.#probes.set(peerId, setTimeout(() => {
      if (this.#peers.get(peerId) === peer) this.#peers.remove(peerId);
    }, PROBE_TIMEOUT_MS));
    peer.channel.send(JSON.stringify({ type: MessageType.PING }));
  }

  #onRemoved(peerId) {
    const member = this.#members.get(peerId);
    this.#forget(peerId);
    this.#emit(ChatEvent.LEFT, { peerId, name: member?.name ?? '', client: member?.client ?? null });
  }

  #forget(peerId) {
    this.#stopProbe(peerId);
    this.#members.delete(peerId);
  }

  #stopProbe(peerId) {
    clearTimeout(this.#probes.get(peerId));
    this.#probes.delete(peerId);
  }

  #broadcast(msg, to = () => true) {
    const data = JSON.stringify(msg);
    let sent = 0;
    for (const peer of this.#peers.list.filter(to)) {
      const channel = peer.sendChannel;
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

/** A page's client id, new with every page load: a page that reconnects keeps it. */
function randomId() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}
