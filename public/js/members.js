// Who is behind each connection, as their pages tell us: names, client ids and what their
// page can do (from its hello), the same page coming back under a new peer id, and whether
// a peer the server calls gone is still there.
import { Capability, ChatMessage } from './events.js';
import { isId } from './ids.js';
import { cleanName } from './names.js';

// How long a peer the server reported gone has to answer a ping over its open channel.
const PROBE_TIMEOUT_MS = 5_000;

/**
 * The members by peer id: {name, client, caps}. When a member's socket drops and it rejoins
 * under a new peer id, the others offer to it again: we know it is the same member, not a
 * newcomer, by the random client id each page sends in its hello.
 */
export class Members {
  #peers;
  #client; // ours
  #members = new Map(); // by peer id: {name, client, caps}, as the member told us
  #probes = new Map(); // by peer id: the timer of an unanswered ping

  constructor(peers, client) {
    this.#peers = peers;
    this.#client = client;
  }

  /** What the member behind `peerId` told us, {name, client, caps}; undefined before its
   * hello. */
  get(peerId) {
    return this.#members.get(peerId);
  }

  /** The member whose page has this client id, or undefined. */
  byClient(client) {
    return [...this.#members.values()].find((m) => m.client === client);
  }

  /** Every member we know, [{name, client, caps}]. */
  all() {
    return [...this.#members.values()];
  }

  /**
   * Takes a hello or name message from `peerId`. Returns {member, oldName, hello, oldId}:
   * `oldId` is the older peer id of the same page when a hello shows that it came back.
   */
  named(peerId, msg) {
    let member = this.#members.get(peerId);
    if (!member) {
      member = { name: '', client: null, caps: [] };
      this.#members.set(peerId, member);
    }
    const oldName = member.name;
    member.name = cleanName(msg.name);
    const hello = msg.type === ChatMessage.HELLO;
    // What the member's page can do besides chat (files.js, restarts, history); older
    // pages send none.
    if (hello) {
      member.caps = Array.isArray(msg.caps) ? msg.caps.filter((c) => typeof c === 'string').slice(0, 16) : [];
      // The page with the smaller client id gives way in a glare: both compare the same two.
      if (member.caps.includes(Capability.ICE_RESTART) && isId(msg.client) && msg.client !== this.#client) {
        this.#peers.setRestartable(peerId, { polite: this.#client < msg.client });
      }
    }
    const oldId = hello ? this.#comebackOf(peerId, member, msg.client) : undefined;
    return { member, oldName, hello, oldId };
  }

  /** Forgets `peerId` (it left, or came back under another id). */
  forget(peerId) {
    this.#stopProbe(peerId);
    this.#members.delete(peerId);
  }

  /** The server says the peer's signaling connection ended. A peer whose channel is still
   * open is still here (its socket may come back); its channel closing removes it. That
   * may be the channel of the connection a new one is replacing: the new one may never
   * open now, and the peer is no less here. */
  onPeerLeft(peerId) {
    const peer = this.#peers.get(peerId);
    const channel = peer?.sendChannel;
    if (!channel) return this.#peers.remove(peerId);
    // A closed tab does not always close its channels: ask, and drop it if it is silent.
    this.#stopProbe(peerId);
    this.#probes.set(peerId, setTimeout(() => {
      if (this.#peers.get(peerId) === peer) this.#peers.remove(peerId);
    }, PROBE_TIMEOUT_MS));
    channel.send(JSON.stringify({ type: ChatMessage.PING }));
  }

  /** The peer answered our ping: it is still here. */
  answered(peerId) {
    this.#stopProbe(peerId);
  }

  /** The older peer id of the member with `client` (the page behind `peerId`), if any. */
  #comebackOf(peerId, member, client) {
    if (typeof client !== 'string' || client.length > 64) return undefined;
    // A channel speaks for one page: a second hello on it cannot take another page's
    // client id (and with it the right to edit that page's messages).
    if (member.client !== null && member.client !== client) return undefined;
    member.client = client;
    return [...this.#members.keys()].find((id) => id !== peerId && this.#members.get(id).client === client);
  }

  #stopProbe(peerId) {
    clearTimeout(this.#probes.get(peerId));
    this.#probes.delete(peerId);
  }
}
