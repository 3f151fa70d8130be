// File transfer between peers: offers that the receiver accepts or declines, then the
// bytes in chunks on a data channel of their own, checked with SHA-256 at the end. Nothing
// of a file passes through the server. This module keeps a files channel per connection
// and hands what comes on it to file-send.js or file-receive.js.
import { Capability, ChatEvent, FileMessage, FilesEvent, PeerEvent } from './events.js';
import { Receiver } from './file-receive.js';
import { Sender } from './file-send.js';
import { Link, MAX_FILE_BYTES, TransferState, Transfers, formatBytes } from './transfer.js';

/** Files one offer (a pick, drop or paste) may hold. */
export const MAX_FILES_AT_ONCE = 10;
// A negotiated channel, created by both sides with this id: no `datachannel` event, so
// the reference app's client, which takes the first such event's channel for its chat,
// never sees it. Above the ids the browser hands out for the chat channel.
const CHANNEL_ID = 1000;
const CHANNEL_LABEL = 'files';
// The sender resumes below this much queued on the channel (see file-send.js).
const BUFFER_LOW = 256 * 1024;
const MAX_CONTROL_LENGTH = 2048;

/**
 * File transfers with every peer whose page can do them. Emits the FilesEvents of
 * events.js.
 */
export class Files extends EventTarget {
  #peers;
  #chat;
  #links = new Map(); // by Peer (a connection; a peer id may have an old and a new one)
  #transfers = new Transfers((type, detail) => this.dispatchEvent(new CustomEvent(type, { detail })));
  #sender = new Sender(this.#transfers);
  #receiver = new Receiver(this.#transfers);

  constructor(peers, chat) {
    super();
    this.#peers = peers;
    this.#chat = chat;
    peers.addEventListener(PeerEvent.ADDED, (e) => this.#onAdded(e.detail.peerId));
    peers.addEventListener(PeerEvent.REMOVED, (e) => this.#endAll(e.detail.peerId, 'left'));
    chat.addEventListener(ChatEvent.NAMED, (e) => e.detail.hello && this.#onHello(e.detail.peerId));
    chat.addEventListener(ChatEvent.REJOINED, (e) => {
      this.#endAll(e.detail.oldId, 'the member reconnected');
      this.#onHello(e.detail.peerId);
    });
  }

  /** Whether `peerId` can receive files now. */
  canReceive(peerId) {
    return Boolean(this.#link(peerId)?.usable);
  }

  /** Peer ids that can receive files now. */
  get receivers() {
    return this.#peers.list.map((p) => p.id).filter((id) => this.canReceive(id));
  }

  transfer(id) {
    return this.#transfers.get(id);
  }

  /**
   * Offers `files` to `peerId`, or to everyone who can receive files when it is null.
   * Returns {offered: Transfer[], refused: string[]}: the reasons for what was not offered.
   */
  offer(files, peerId = null) {
    const list = [...files];
    const refused = [];
    if (list.length > MAX_FILES_AT_ONCE) {
      refused.push(`You can offer at most ${MAX_FILES_AT_ONCE} files at once; none of the ${list.length} were offered.`);
      return { offered: [], refused };
    }
    const targets = peerId === null ? this.receivers : [peerId].filter((id) => this.canReceive(id));
    if (targets.length === 0) {
      refused.push(peerId === null
        ? 'Nobody here can receive files yet: no one is connected, or their page cannot take files.'
        : 'That member cannot receive files: not connected, or their page cannot take files.');
      return { offered: [], refused };
    }
    const offered = [];
    for (const file of list) {
      if (file.size > MAX_FILE_BYTES) {
        refused.push(`${file.name} is larger than ${formatBytes(MAX_FILE_BYTES)}, the most one file may be.`);
        continue;
      }
      for (const target of targets) offered.push(this.#sender.offer(this.#link(target), file));
    }
    return { offered, refused };
  }

  /** Receives an offered file. */
  accept(id) {
    const t = this.#transfers.get(id);
    if (t) this.#receiver.accept(t);
  }

  /** Turns an offered file down. */
  decline(id) {
    const t = this.#transfers.get(id);
    if (t) this.#receiver.decline(t);
  }

  /** Stops a transfer, from either side. */
  cancel(id) {
    const t = this.#transfers.get(id);
    if (!t || t.finished) return;
    t.link.send({ type: t.direction === 'out' ? FileMessage.CANCEL_SEND : FileMessage.CANCEL_RECEIVE, n: t.n });
    this.#transfers.end(t, TransferState.CANCELLED, 'you cancelled');
  }

  /** Forgets a finished transfer and frees what it received. */
  dismiss(id) {
    this.#transfers.dismiss(id);
  }

  #link(peerId) {
    const peer = this.#peers.get(peerId);
    return peer ? this.#links.get(peer) : undefined;
  }

  #onAdded(peerId) {
    const peer = this.#peers.get(peerId);
    const channel = peer.pc.createDataChannel(CHANNEL_LABEL, { negotiated: true, id: CHANNEL_ID });
    channel.binaryType = 'arraybuffer';
    channel.bufferedAmountLowThreshold = BUFFER_LOW;
    const link = new Link(peerId, peer, channel);
    this.#links.set(peer, link);
    channel.addEventListener('open', () => this.#announce(link));
    channel.addEventListener('message', (e) => this.#onMessage(link, e.data));
    channel.addEventListener('close', () => {
      link.closed = true;
      this.#links.delete(peer);
      this.#endLink(link, 'closed');
    });
  }

  /** The peer's hello came: it may say that the peer takes files. A hello that comes on a
   * new connection to the same member (it came back) is for that connection. */
  #onHello(peerId) {
    const link = this.#link(peerId);
    const caps = this.#chat.member(peerId)?.caps;
    if (!link || !Array.isArray(caps) || !caps.includes(Capability.FILES)) return;
    // The member is on this connection now: what ran on an older one is over.
    this.#endAll(peerId, 'closed');
    link.capable = true;
    this.#announce(link);
  }

  #announce(link) {
    if (link.usable) this.dispatchEvent(new CustomEvent(FilesEvent.CAPABLE, { detail: { peerId: link.peerId } }));
  }

  #onMessage(link, data) {
    if (data instanceof ArrayBuffer) return this.#receiver.onChunk(link, data);
    if (typeof data !== 'string' || data.length > MAX_CONTROL_LENGTH) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!Number.isSafeInteger(msg?.n) || msg.n < 1) return;
    if (!this.#sender.onControl(link, msg)) this.#receiver.onControl(link, msg);
  }

  /** Ends the transfers of the connections to `peerId` that Peers closed, and forgets
   * them (a closed connection does not always report its channels closing). */
  #endAll(peerId, reason) {
    for (const [peer, link] of this.#links) {
      if (link.peerId !== peerId || this.#peers.get(peerId) === peer) continue;
      this.#links.delete(peer);
      this.#endLink(link, reason);
    }
  }

  #endLink(link, reason) {
    for (const t of [...link.out.values(), ...link.in.values()]) {
      if (!t.finished) this.#transfers.end(t, TransferState.FAILED, reason);
    }
  }
}
