// The chat protocol over the peers' data channels (its messages: ChatMessage in events.js):
// greets each new channel, reads what comes in and hands each kind to the part that keeps
// it (members.js, messages.js, backfill.js), and reports it all as ChatEvents.
import { Capability, ChatEvent, ChatMessage, PeerEvent, SignalingEvent } from './events.js';
import { Backfill } from './backfill.js';
import { History } from './history.js';
import { randomId } from './ids.js';
import { Members } from './members.js';
import { MAX_DATA_LENGTH, Messages } from './messages.js';
import { findMentions } from './mentions.js';
import { Outbox } from './outbox.js';
import { PeerState } from './peer.js';

/**
 * The members behind the connections of Peers: what they are called and what they say.
 * Emits the ChatEvents of events.js. A member that comes back under a new peer id (its
 * socket dropped) is known by its page's client id, and its new connection replaces the
 * old one quietly.
 */
export class Chat extends EventTarget {
  #peers;
  #myName = '';
  #client = randomId();
  #members;
  #outbox;
  #messages;
  #backfill;

  constructor(peers, signaling) {
    super();
    this.#peers = peers;
    const emit = (type, detail) => this.#emit(type, detail);
    const history = new History();
    this.#members = new Members(peers, this.#client);
    this.#outbox = new Outbox(peers, this.#members, emit);
    this.#messages = new Messages({
      peers, members: this.#members, history, outbox: this.#outbox, emit,
      me: () => ({ name: this.#myName, client: this.#client }),
    });
    this.#backfill = new Backfill({
      peers, members: this.#members, history, emit, state: (record) => this.#messages.settled(record),
    });
    peers.addEventListener(PeerEvent.OPEN, (e) => this.#greet(e.detail.peerId));
    peers.addEventListener(PeerEvent.DATA, (e) => this.#onData(e.detail));
    peers.addEventListener(PeerEvent.REMOVED, (e) => this.#onRemoved(e.detail.peerId));
    peers.addEventListener(PeerEvent.STATE, (e) => {
      if (e.detail.state === PeerState.OPEN) this.#outbox.flush(e.detail.peerId, e.detail.peerId);
    });
    peers.addEventListener(PeerEvent.FAILED, (e) => this.#outbox.drop(e.detail.peerId));
    signaling.addEventListener(SignalingEvent.PEER_LEFT, (e) => this.#members.onPeerLeft(e.detail.peerId));
  }

  /** This page's client id (see the class comment). */
  get client() {
    return this.#client;
  }

  /** Whether we give newcomers the messages we have seen when they ask. */
  set shareHistory(on) {
    this.#backfill.share = on;
  }

  /** What the member behind `peerId` told us, {name, client, caps}; undefined before its
   * hello. */
  member(peerId) {
    return this.#members.get(peerId);
  }

  /** Our display name: sent to every open channel now and to new ones when they open. */
  setName(name) {
    this.#myName = name;
    this.#broadcast({ type: ChatMessage.NAME, name });
  }

  /** The name the member with this client id goes by now, or undefined. */
  nameOfClient(client) {
    return this.#members.byClient(client)?.name;
  }

  /** Sends a chat message (see Messages.send), answering `replyTo` (a message id) if
   * given; the members it names after `@` are told they are mentioned. {id, at, sent,
   * queued}. */
  sendText(text, replyTo = null) {
    const mentions = findMentions(text, this.#members.all());
    return this.#messages.send(text, { replyTo, mentions });
  }

  /** New text for one of our messages; returns whether it changed. */
  editText(id, text) {
    return this.#messages.edit(id, text);
  }

  /** Takes back one of our messages; returns whether it did. */
  deleteMessage(id) {
    return this.#messages.remove(id);
  }

  /** Adds our reaction to a message, or takes it back. */
  react(id, emoji) {
    return this.#messages.react(id, emoji);
  }

  /** Applies a change of ours without sending it (for the test hook). */
  applyOwn(msg) {
    this.#messages.applyOwn(msg);
  }

  /** Asks `peerId` for the room's recent messages (once we know it can answer). */
  requestHistory(peerId) {
    return this.#backfill.request(peerId);
  }

  /** Says we are typing, to the members whose hello shows they speak this protocol. */
  sendTyping() {
    return this.#broadcast({ type: ChatMessage.TYPING }, (peer) => this.#members.get(peer.id)?.client);
  }

  #greet(peerId) {
    const hello = {
      type: ChatMessage.HELLO,
      name: this.#myName,
      client: this.#client,
      caps: [Capability.FILES, Capability.ICE_RESTART, Capability.HISTORY, Capability.CHAT_2],
    };
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
    if (msg?.type === ChatMessage.HELLO || msg?.type === ChatMessage.NAME) {
      this.#onName(peerId, msg);
    } else if (msg?.type === ChatMessage.PING) {
      if (channel.readyState === 'open') channel.send(JSON.stringify({ type: ChatMessage.PONG }));
    } else if (msg?.type === ChatMessage.PONG) {
      this.#members.answered(peerId);
    } else if (msg?.type === ChatMessage.TYPING) {
      this.#emit(ChatEvent.TYPING, { peerId });
    } else if (msg?.type === ChatMessage.CHAT && typeof msg.text === 'string' && msg.text.trim()) {
      this.#messages.received(peerId, msg);
    } else if (msg?.type === ChatMessage.EDIT || msg?.type === ChatMessage.DELETE || msg?.type === ChatMessage.REACT) {
      this.#messages.changed(peerId, msg);
    } else if (msg?.type === ChatMessage.HISTORY_REQUEST) {
      this.#backfill.give(peerId, channel);
    } else if (msg?.type === ChatMessage.HISTORY) {
      this.#backfill.received(peerId, msg);
    }
  }

  #onName(peerId, msg) {
    const { member, oldName, hello, oldId } = this.#members.named(peerId, msg);
    if (oldId !== undefined) return this.#rejoined(peerId, oldId);
    this.#emit(ChatEvent.NAMED, { peerId, name: member.name, oldName, hello });
    if (hello) this.#backfill.ask();
  }

  /** `peerId` is the comeback of `oldId` (the same page): the older connection is closed
   * without a "left". */
  #rejoined(peerId, oldId) {
    this.#members.forget(oldId);
    this.#peers.discard(oldId);
    this.#outbox.flush(oldId, peerId);
    this.#backfill.stopAsking(oldId);
    this.#backfill.ask();
    this.#emit(ChatEvent.REJOINED, { peerId, oldId });
  }

  #onRemoved(peerId) {
    const member = this.#members.get(peerId);
    this.#outbox.drop(peerId);
    this.#members.forget(peerId);
    if (this.#backfill.stopAsking(peerId)) this.#backfill.ask();
    this.#emit(ChatEvent.LEFT, { peerId, name: member?.name ?? '', client: member?.client ?? null });
  }

  /** Sends to every peer we can send to now (of those `to` accepts); for names and
   * typing, which matter only when current. */
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
