// File transfer between peers: offers that the receiver accepts or declines, then the
// bytes in chunks on a data channel of their own, checked with SHA-256 at the end. Nothing
// of a file passes through the server.
import { sha256 } from '/vendor/noble-hashes/sha2.js';
import { ChatEvent, PeerEvent } from './events.js';

/** The capability a page names in its hello when it takes part in file transfers. */
export const FILES_CAPABILITY = 'files';
export const MAX_FILE_BYTES = 2 * 1024 ** 3;
/** Files one offer (a pick, drop or paste) may hold. */
export const MAX_FILES_AT_ONCE = 10;
// Offers from one peer waiting for our answer; more are declined at once.
const MAX_WAITING_OFFERS = 20;
// A negotiated channel, created by both sides with this id: no `datachannel` event, so
// the reference app's client, which takes the first such event's channel for its chat,
// never sees it. Above the ids the browser hands out for the chat channel.
const CHANNEL_ID = 1000;
const CHANNEL_LABEL = 'files';
// Bytes of file per message (plus a 4-byte transfer number), well below the 256 KiB that
// browsers accept in one data-channel message.
const CHUNK_BYTES = 64 * 1024;
// Read from the file this much at a time.
const READ_BYTES = 1024 * 1024;
// The sender queues at most this much on the channel, and resumes below the low mark.
const BUFFER_HIGH = 1024 * 1024;
const BUFFER_LOW = 256 * 1024;
// The receiver turns received chunks into a Blob every this many bytes, so that chunks are
// not held both as chunks and in the Blob until the end.
const FLUSH_BYTES = 8 * 1024 * 1024;
// Progress is reported at most this often per transfer.
const PROGRESS_MS = 100;
const MAX_NAME_LENGTH = 200;
const MAX_CONTROL_LENGTH = 2048;

/** Where a transfer stands. */
export const TransferState = Object.freeze({
  OFFERED: 'offered', // waiting for the receiver's answer
  ACTIVE: 'active', // bytes on the way
  VERIFYING: 'verifying', // all sent; the receiver is checking the SHA-256
  DONE: 'done', // received, checked
  DECLINED: 'declined',
  CANCELLED: 'cancelled',
  FAILED: 'failed', // the connection ended, or the file did not arrive intact
});

/** Control messages on the files channel (JSON text; chunks are binary). */
const Msg = Object.freeze({
  OFFER: 'offer', // sender: {n, name, size, mime}
  ACCEPT: 'accept', // receiver: {n}
  DECLINE: 'decline', // receiver: {n, reason?}
  END: 'end', // sender, after the last chunk: {n, sha256}
  DONE: 'done', // receiver: {n, ok}
  CANCEL_SEND: 'cancel-send', // sender: {n}
  CANCEL_RECEIVE: 'cancel-receive', // receiver: {n}
});

/** Events of Files; each carries {transfer}. */
export const FilesEvent = Object.freeze({
  TRANSFER: 'transfer', // a new transfer, or a change of its state
  PROGRESS: 'transfer-progress', // more bytes moved
  CAPABLE: 'files-capable', // {peerId}: the peer can receive files now
});

let nextTransferId = 1;

/** One file going to, or coming from, one peer. */
class Transfer {
  constructor(link, direction, n, { name, size, mime, file = null }) {
    this.id = `t${nextTransferId++}`;
    this.link = link;
    this.peerId = link.peerId;
    this.direction = direction; // 'out' or 'in'
    this.n = n; // the sender's number for it on this channel
    this.name = name;
    this.size = size;
    this.mime = mime;
    this.file = file;
    this.state = TransferState.OFFERED;
    this.bytes = 0;
    this.startedAt = 0;
    this.reason = ''; // why it ended, if not done; 'left' and 'closed' name no one
    this.sha256 = '';
    this.url = null; // the received file, once checked
    this.hash = null;
    this.blob = null;
    this.parts = [];
    this.partBytes = 0;
    this.reportedAt = 0;
  }

  get finished() {
    return [TransferState.DONE, TransferState.DECLINED, TransferState.CANCELLED, TransferState.FAILED]
      .includes(this.state);
  }
}

/** The files channel of one connection (one RTCPeerConnection) and its transfers. */
class Link {
  constructor(peerId, peer, channel) {
    this.peerId = peerId;
    this.peer = peer;
    this.channel = channel;
    this.capable = false; // the peer's hello named FILES_CAPABILITY
    this.out = new Map(); // by n
    this.in = new Map(); // by the sender's n
    this.nextN = 1;
    this.closed = false;
  }

  get usable() {
    return this.capable && this.channel.readyState === 'open';
  }

  send(msg) {
    if (this.channel.readyState === 'open') this.channel.send(JSON.stringify(msg));
  }
}

/**
 * File transfers with every peer whose page can do them. Emits FilesEvents. `nameOf` is
 * only for the reasons given in transfers.
 */
export class Files extends EventTarget {
  #peers;
  #chat;
  #links = new Map(); // by Peer (a connection; a peer id may have an old and a new one)
  #transfers = new Map(); // by transfer id

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
      for (const target of targets) offered.push(this.#offerTo(this.#link(target), file));
    }
    return { offered, refused };
  }

  /** Receives an offered file. */
  accept(id) {
    const t = this.#transfers.get(id);
    if (!t || t.direction !== 'in' || t.state !== TransferState.OFFERED) return;
    t.hash = sha256.create();
    t.blob = new Blob([]);
    this.#setState(t, TransferState.ACTIVE);
    t.startedAt = performance.now();
    t.link.send({ type: Msg.ACCEPT, n: t.n });
  }

  /** Turns an offered file down. */
  decline(id) {
    const t = this.#transfers.get(id);
    if (!t || t.direction !== 'in' || t.state !== TransferState.OFFERED) return;
    t.link.send({ type: Msg.DECLINE, n: t.n });
    this.#end(t, TransferState.DECLINED, 'you declined');
  }

  /** Stops a transfer, from either side. */
  cancel(id) {
    const t = this.#transfers.get(id);
    if (!t || t.finished) return;
    t.link.send({ type: t.direction === 'out' ? Msg.CANCEL_SEND : Msg.CANCEL_RECEIVE, n: t.n });
    this.#end(t, TransferState.CANCELLED, 'you cancelled');
  }

  /** Forgets a finished transfer and frees what it received. */
  dismiss(id) {
    const t = this.#transfers.get(id);
    if (!t?.finished) return;
    if (t.url) URL.revokeObjectURL(t.url);
    this.#transfers.delete(id);
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
    if (!link || !Array.isArray(caps) || !caps.includes(FILES_CAPABILITY)) return;
    // The member is on this connection now: what ran on an older one is over.
    this.#endAll(peerId, 'closed');
    link.capable = true;
    this.#announce(link);
  }

  #announce(link) {
    if (link.usable) this.#emit(FilesEvent.CAPABLE, { peerId: link.peerId });
  }

  #offerTo(link, file) {
    const n = link.nextN++;
    const t = new Transfer(link, 'out', n, {
      name: cleanFileName(file.name), size: file.size, mime: cleanMime(file.type), file,
    });
    link.out.set(n, t);
    this.#transfers.set(t.id, t);
    link.send({ type: Msg.OFFER, n, name: t.name, size: t.size, mime: t.mime });
    this.#emit(FilesEvent.TRANSFER, { transfer: t });
    return t;
  }

  #onMessage(link, data) {
    if (data instanceof ArrayBuffer) return this.#onChunk(link, data);
    if (typeof data !== 'string' || data.length > MAX_CONTROL_LENGTH) return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (!Number.isSafeInteger(msg?.n) || msg.n < 1) return;
    const out = link.out.get(msg.n);
    const inc = link.in.get(msg.n);
    switch (msg.type) {
      case Msg.OFFER: return this.#onOffer(link, msg);
      case Msg.ACCEPT:
        if (out?.state === TransferState.OFFERED) this.#send(out);
        return;
      case Msg.DECLINE:
        if (out?.state === TransferState.OFFERED) this.#end(out, TransferState.DECLINED, 'declined');
        return;
      case Msg.CANCEL_RECEIVE:
        if (out && !out.finished) this.#end(out, TransferState.CANCELLED, 'cancelled by the receiver');
        return;
      case Msg.DONE:
        if (out?.state !== TransferState.VERIFYING) return;
        if (msg.ok === true) this.#end(out, TransferState.DONE, '');
        else this.#end(out, TransferState.FAILED, 'the receiver found the file damaged');
        return;
      case Msg.CANCEL_SEND:
        if (inc && !inc.finished) this.#end(inc, TransferState.CANCELLED, 'cancelled by the sender');
        return;
      case Msg.END: return inc && this.#onEnd(inc, msg);
      default:
    }
  }

  #onOffer(link, msg) {
    if (link.in.has(msg.n) || typeof msg.name !== 'string' || !Number.isSafeInteger(msg.size) || msg.size < 0) return;
    const t = new Transfer(link, 'in', msg.n, {
      name: cleanFileName(msg.name), size: msg.size, mime: cleanMime(msg.mime),
    });
    link.in.set(msg.n, t);
    this.#transfers.set(t.id, t);
    this.#emit(FilesEvent.TRANSFER, { transfer: t });
    const waiting = [...link.in.values()].filter((x) => x.state === TransferState.OFFERED).length;
    let refusal = '';
    if (t.size > MAX_FILE_BYTES) refusal = `refused: larger than ${formatBytes(MAX_FILE_BYTES)}, the most one file may be`;
    else if (waiting > MAX_WAITING_OFFERS) refusal = `refused: more than ${MAX_WAITING_OFFERS} files were waiting for an answer`;
    if (refusal) {
      link.send({ type: Msg.DECLINE, n: t.n });
      this.#end(t, TransferState.DECLINED, refusal);
    }
  }

  /** Streams the file: never more than BUFFER_HIGH queued on the channel, hashing as it goes. */
  async #send(t) {
    const { channel } = t.link;
    this.#setState(t, TransferState.ACTIVE);
    t.startedAt = performance.now();
    const hash = sha256.create();
    try {
      for (let offset = 0; offset < t.size; offset += READ_BYTES) {
        const block = new Uint8Array(await t.file.slice(offset, offset + READ_BYTES).arrayBuffer());
        for (let i = 0; i < block.length; i += CHUNK_BYTES) {
          await drained(channel);
          if (t.state !== TransferState.ACTIVE || channel.readyState !== 'open') return;
          const piece = block.subarray(i, i + CHUNK_BYTES);
          const frame = new Uint8Array(4 + piece.length);
          new DataView(frame.buffer).setUint32(0, t.n);
          frame.set(piece, 4);
          channel.send(frame);
          hash.update(piece);
          t.bytes += piece.length;
          this.#progress(t);
        }
      }
    } catch (err) {
      // The file could not be read (removed from disk meanwhile, say).
      if (!t.finished) {
        t.link.send({ type: Msg.CANCEL_SEND, n: t.n });
        this.#end(t, TransferState.FAILED, `could not read the file (${err.message})`);
      }
      return;
    }
    if (t.state !== TransferState.ACTIVE) return;
    t.sha256 = hex(hash.digest());
    t.link.send({ type: Msg.END, n: t.n, sha256: t.sha256 });
    this.#setState(t, TransferState.VERIFYING);
  }

  #onChunk(link, data) {
    if (data.byteLength < 4) return;
    const t = link.in.get(new DataView(data).getUint32(0));
    if (t?.state !== TransferState.ACTIVE) return; // declined or cancelled: still in flight
    const piece = new Uint8Array(data, 4);
    if (t.bytes + piece.length > t.size) {
      link.send({ type: Msg.CANCEL_RECEIVE, n: t.n });
      return this.#end(t, TransferState.FAILED, 'the sender sent more than the file\'s size');
    }
    t.hash.update(piece);
    t.parts.push(piece);
    t.partBytes += piece.length;
    t.bytes += piece.length;
    if (t.partBytes >= FLUSH_BYTES) flush(t);
    this.#progress(t);
  }

  #onEnd(t, msg) {
    if (t.state !== TransferState.ACTIVE) return;
    const digest = hex(t.hash.digest());
    const ok = t.bytes === t.size && typeof msg.sha256 === 'string' && msg.sha256 === digest;
    t.link.send({ type: Msg.DONE, n: t.n, ok });
    t.sha256 = digest;
    if (!ok) {
      t.parts = [];
      t.blob = null;
      return this.#end(t, TransferState.FAILED, t.bytes === t.size
        ? 'the file arrived damaged (its SHA-256 does not match), so it was thrown away'
        : 'the file arrived incomplete, so it was thrown away');
    }
    flush(t, t.mime);
    t.url = URL.createObjectURL(t.blob);
    this.#end(t, TransferState.DONE, '');
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
      if (!t.finished) this.#end(t, TransferState.FAILED, reason);
    }
  }

  #end(t, state, reason) {
    t.reason = reason;
    if (state !== TransferState.DONE) {
      t.parts = [];
      t.blob = null;
    }
    if (state === TransferState.DONE) t.bytes = t.size;
    t.file = null;
    t.hash = null;
    this.#setState(t, state);
  }

  #setState(t, state) {
    t.state = state;
    this.#emit(FilesEvent.TRANSFER, { transfer: t });
  }

  #progress(t) {
    const now = performance.now();
    if (now - t.reportedAt < PROGRESS_MS && t.bytes < t.size) return;
    t.reportedAt = now;
    this.#emit(FilesEvent.PROGRESS, { transfer: t });
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** Resolves once the channel can take more (or has closed). */
function drained(channel) {
  if (channel.bufferedAmount <= BUFFER_HIGH || channel.readyState !== 'open') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      channel.removeEventListener('bufferedamountlow', done);
      channel.removeEventListener('close', done);
      resolve();
    };
    channel.addEventListener('bufferedamountlow', done);
    channel.addEventListener('close', done);
  });
}

/** Moves received chunks into the transfer's Blob. */
function flush(t, type) {
  t.blob = new Blob([t.blob, ...t.parts], type ? { type } : undefined);
  t.parts = [];
  t.partBytes = 0;
}

/** A file name without paths or control characters, of a sensible length. */
export function cleanFileName(name) {
  const cleaned = String(name ?? '').replace(/[\u0000-\u001f\u007f/\\]/g, '_').trim().slice(0, MAX_NAME_LENGTH);
  return cleaned || 'file';
}

/** A MIME type as `type/subtype`, or '' for anything else. */
function cleanMime(mime) {
  return typeof mime === 'string' && /^[\w.+-]{1,64}\/[\w.+-]{1,128}$/.test(mime) ? mime.toLowerCase() : '';
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u += 1;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

function hex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}
