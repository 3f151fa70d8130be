// The chat protocol spoken over the peers' data channels: greetings, names, messages, the
// ping that asks a peer the server calls gone whether it is still there, and the recent
// messages a newcomer asks one peer for.
import { ChatEvent, PeerEvent, SignalingEvent } from './events.js';
import { cleanName } from './names.js';
import { FILES_CAPABILITY } from './files.js';
import { PeerState } from './peers.js';
import { History, batches, isId, parseHistoryItem, randomId } from './history.js';

export const MAX_TEXT_LENGTH = 2000;
// Longest data-channel message read, in UTF-16 code units (String.length): a chat message
// of MAX_TEXT_LENGTH, JSON-escaped, stays well below.
const MAX_DATA_LENGTH = 16 * 1024;
// How long a peer the server reported gone has to answer a ping over its open channel.
const PROBE_TIMEOUT_MS = 5_000;
// What this page can do beyond the first version of the protocol, said in its hello.
const Capability = Object.freeze({
  ICE_RESTART: 'ice-restart', // takes an ICE restart offer on an open connection
  HISTORY: 'history', // answers history-request
});

/**
 * Messages are JSON objects with a `type`: {type:'hello', name, client, caps} when a
 * channel opens, {type:'name', name}, {type:'chat', id, at, text} (`at` in ms since the
 * epoch, by the sender's clock; pages before ids send only `text`), {type:'typing'} while
 * its sender types, {type:'ping'} answered by {type:'pong'}, and {type:'history-request'}
 * answered by one or more {type:'history', messages: [{id, at, name, client, text}], done}
 * (the last with `done: true`, or only {type:'history', messages: [], done: true,
 * refused: true}).
 */
const MessageType = Object.freeze({
  HELLO: 'hello',
  NAME: 'name',
  CHAT: 'chat',
  PING: 'ping',
  PONG: 'pong',
  TYPING: 'typing',
  HISTORY_REQUEST: 'history-request',
  HISTORY: 'history',
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
  #history = new History();
  #shareHistory = true;
  #outbox = new Map(); // by peer id: [{id, data}] to send once its connection is back
  #backfill = {
    asking: null, // the peer id asked, until it is done
    asked: new Set(), // peer ids asked that have not finished: history from others is not taken
    done: false, // a peer gave us the room's history
    refusedBy: new Set(), // peers that refused, or had nothing to give
    given: 0, // messages the peer asked gave us so far
    answered: new Set(), // peer ids we gave history to (once each)
  };

  constructor(peers, signaling) {
    super();
    this.#peers = peers;
    peers.addEventListener(PeerEvent.OPEN, (e) => this.#greet(e.detail.peerId));
    peers.addEventListener(PeerEvent.DATA, (e) => this.#onData(e.detail));
    peers.addEventListener(PeerEvent.REMOVED, (e) => this.#onRemoved(e.detail.peerId));
    peers.addEventListener(PeerEvent.STATE, (e) => this.#onPeerState(e.detail));
    peers.addEventListener(PeerEvent.FAILED, (e) => this.#dropOutbox(e.detail.peerId));
    signaling.addEventListener(SignalingEvent.PEER_LEFT, (e) => this.#onPeerLeft(e.detail.peerId));
  }

  /** This page's client id (see the class comment). */
  get client() {
    return this.#client;
  }

  /** Whether we give newcomers the messages we have seen when they ask. */
  set shareHistory(on) {
    this.#shareHistory = Boolean(on);
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

  /**
   * Sends a chat message to every open channel, and queues it for peers whose connection
   * is being restored (sent in order once it is back; ChatEvent.UNDELIVERED if it is not).
   * Returns {id, at, sent, queued}: `at` a Date, the counts in peers.
   */
  sendText(text) {
    const msg = { type: MessageType.CHAT, id: randomId(), at: Date.now(), text };
    const data = JSON.stringify(msg);
    let sent = 0;
    let queued = 0;
    for (const peer of this.#peers.list) {
      if (this.#isHealing(peer) || this.#outbox.has(peer.id)) {
        const box = this.#outbox.get(peer.id) ?? [];
        box.push({ id: msg.id, data });
        this.#outbox.set(peer.id, box);
        queued += 1;
      } else if (peer.sendChannel) {
        peer.sendChannel.send(data);
        sent += 1;
      }
    }
    if (sent + queued > 0) {
      this.#history.add({ id: msg.id, at: msg.at, name: this.#myName, client: this.#client, text });
    }
    return { id: msg.id, at: new Date(msg.at), sent, queued };
  }

  /** Asks `peerId` for the room's recent messages (once we know it can answer). */
  requestHistory(peerId) {
    const peer = this.#peers.get(peerId);
    if (!peer?.isOpen) return false;
    this.#backfill.asking = peerId;
    this.#backfill.asked.add(peerId);
    this.#backfill.given = 0;
    peer.channel.send(JSON.stringify({ type: MessageType.HISTORY_REQUEST }));
    return true;
  }

  /** Says we are typing, to the members whose hello shows they speak this protocol. */
  sendTyping() {
    return this.#broadcast({ type: MessageType.TYPING }, (peer) => this.#members.get(peer.id)?.client);
  }

  #greet(peerId) {
    const hello = {
      type: MessageType.HELLO,
      name: this.#myName,
      client: this.#client,
      caps: [FILES_CAPABILITY, Capability.ICE_RESTART, Capability.HISTORY],
    };
    this.#peers.get(peerId).channel.send(JSON.stringify(hello));
  }

  /** A connection that worked and is being restored: what we send it waits. */
  #isHealing(peer) {
    return peer.opened && (peer.state === PeerState.INTERRUPTED || peer.state === PeerState.RECONNECTING);
  }

  #onPeerState({ peerId, state }) {
    if (state === PeerState.OPEN) this.#flushOutbox(peerId, peerId);
  }

  /** Sends what waited for `fromId` on the channel of `toId` (a comeback's new id). */
  #flushOutbox(fromId, toId) {
    const box = this.#outbox.get(fromId);
    if (!box) return;
    const channel = this.#peers.get(toId)?.sendChannel;
    if (!channel) return;
    this.#outbox.delete(fromId);
    for (const { data } of box) channel.send(data);
    this.#emit(ChatEvent.SENT, { peerId: toId, ids: box.map((m) => m.id) });
  }

  /** The peer is gone or failed: what waited for it will not get there. */
  #dropOutbox(peerId) {
    const box = this.#outbox.get(peerId);
    if (!box) return;
    this.#outbox.delete(peerId);
    const member = this.#members.get(peerId);
    this.#emit(ChatEvent.UNDELIVERED, {
      peerId, name: member?.name ?? '', client: member?.client ?? null, ids: box.map((m) => m.id),
    });
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
      this.#onChat(peerId, msg);
    } else if (msg?.type === MessageType.HISTORY_REQUEST) {
      this.#giveHistory(peerId, channel);
    } else if (msg?.type === MessageType.HISTORY) {
      this.#onHistory(peerId, msg);
    }
  }

  #onChat(peerId, msg) {
    // Pages from before message ids send none: such a message is new each time.
    const id = isId(msg.id) ? msg.id : randomId();
    if (this.#history.has(id)) return; // already here, from a backfill
    const text = msg.text.slice(0, MAX_TEXT_LENGTH);
    const member = this.#members.get(peerId);
    const at = Number.isFinite(msg.at) ? msg.at : Date.now();
    this.#history.add({ id, at, name: member?.name ?? '', client: member?.client ?? null, text });
    // Shown at the time it arrived: the sender's clock may be off.
    this.#emit(ChatEvent.MESSAGE, { peerId, id, text, at: new Date() });
  }

  /** Answers a newcomer once, unless the user turned sharing off. */
  #giveHistory(peerId, channel) {
    if (this.#backfill.answered.has(peerId) || channel.readyState !== 'open') return;
    this.#backfill.answered.add(peerId);
    const send = (m) => channel.send(JSON.stringify({ type: MessageType.HISTORY, ...m }));
    if (!this.#shareHistory) return send({ messages: [], done: true, refused: true });
    // Room for the envelope around each batch.
    const parts = batches(this.#history.recent(), MAX_DATA_LENGTH - 100);
    if (parts.length === 0) return send({ messages: [], done: true });
    parts.forEach((messages, i) => send({ messages, done: i === parts.length - 1 }));
  }

  /** A batch of the room's recent messages: the new ones go to the page, the ones we have
   * (given by another peer, or seen live meanwhile) are dropped. */
  #onHistory(peerId, msg) {
    if (!this.#backfill.asked.has(peerId)) return;
    const fresh = [];
    for (const raw of Array.isArray(msg.messages) ? msg.messages : []) {
      const item = parseHistoryItem(raw, { maxText: MAX_TEXT_LENGTH, cleanName });
      if (item && this.#history.add(item)) fresh.push(item);
    }
    const done = msg.done === true;
    const refused = done && msg.refused === true;
    if (done) this.#backfill.asked.delete(peerId);
    if (fresh.length > 0 || done) {
      this.#emit(ChatEvent.HISTORY, { peerId, messages: fresh.sort((a, b) => a.at - b.at), done, refused });
    }
    if (this.#backfill.asking !== peerId) return;
    this.#backfill.given += Array.isArray(msg.messages) ? msg.messages.length : 0;
    if (!done) return;
    this.#backfill.asking = null;
    // A peer with nothing to give may have joined just before us: ask another.
    if (refused || this.#backfill.given === 0) {
      this.#backfill.refusedBy.add(peerId);
      this.#askForHistory();
    } else {
      this.#backfill.done = true;
    }
  }

  /** Asks one peer that can answer for the room's recent messages, if nobody has given
   * them yet. Only a page that joined asks: the members it joined offered to it. */
  #askForHistory() {
    const b = this.#backfill;
    if (b.done || b.asking !== null) return;
    const candidate = this.#peers.list.find((peer) => !peer.initiator && peer.isOpen
      && !b.refusedBy.has(peer.id) && this.#members.get(peer.id)?.caps?.includes(Capability.HISTORY));
    if (candidate) this.requestHistory(candidate.id);
  }

  #onName(peerId, msg) {
    let member = this.#members.get(peerId);
    if (!member) {
      member = { name: '', client: null, caps: [] };
      this.#members.set(peerId, member);
    }
    const oldName = member.name;
    member.name = cleanName(msg.name);
    const hello = msg.type === MessageType.HELLO;
    // What the member's page can do besides chat (files.js, restarts, history); older
    // pages send none.
    if (hello) {
      member.caps = Array.isArray(msg.caps) ? msg.caps.filter((c) => typeof c === 'string').slice(0, 16) : [];
      // The page with the smaller client id gives way in a glare: both compare the same two.
      if (member.caps.includes(Capability.ICE_RESTART) && isId(msg.client) && msg.client !== this.#client) {
        this.#peers.setRestartable(peerId, { polite: this.#client < msg.client });
      }
    }
    if (hello && this.#adopt(peerId, member, msg.client)) return;
    this.#emit(ChatEvent.NAMED, { peerId, name: member.name, oldName, hello });
    if (hello) this.#askForHistory();
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
    this.#flushOutbox(oldId, peerId);
    if (this.#backfill.asking === oldId) this.#backfill.asking = null;
    this.#askForHistory();
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
    this.#dropOutbox(peerId);
    this.#forget(peerId);
    if (this.#backfill.asking === peerId) {
      this.#backfill.asking = null;
      this.#askForHistory();
    }
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

