// What a file transfer is: one file to or from one peer (Transfer), the files channel of
// one connection (Link), where a transfer stands, and Transfers, which keeps them all and
// reports each change as a FilesEvent.
import { FilesEvent } from './events.js';

export const MAX_FILE_BYTES = 2 * 1024 ** 3;
// Progress is reported at most this often per transfer.
const PROGRESS_MS = 100;
const MAX_NAME_LENGTH = 200;

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

let nextTransferId = 1;

/** One file going to, or coming from, one peer. */
export class Transfer {
  constructor(link, direction, n, { name, size, mime, file = null }) {
    this.id = `t${nextTransferId++}`;
    this.link = link;
    this.peerId = link.peerId;
    this.direction = direction; // 'out' or 'in'
    this.n = n; // the sender's number for it on this channel
    this.name = cleanFileName(name);
    this.size = size;
    this.mime = cleanMime(mime);
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
export class Link {
  constructor(peerId, peer, channel) {
    this.peerId = peerId;
    this.peer = peer;
    this.channel = channel;
    this.capable = false; // the peer's hello named Capability.FILES
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

/** Every transfer by id, until dismissed. `emit(type, detail)` reports the FilesEvents. */
export class Transfers {
  #byId = new Map();
  #emit;

  constructor(emit) {
    this.#emit = emit;
  }

  get(id) {
    return this.#byId.get(id);
  }

  /** Keeps a new transfer (on its link too) and reports it. */
  add(t) {
    (t.direction === 'out' ? t.link.out : t.link.in).set(t.n, t);
    this.#byId.set(t.id, t);
    this.#emit(FilesEvent.TRANSFER, { transfer: t });
  }

  /** Forgets a finished transfer and frees what it received. */
  dismiss(id) {
    const t = this.#byId.get(id);
    if (!t?.finished) return;
    if (t.url) URL.revokeObjectURL(t.url);
    this.#byId.delete(id);
  }

  setState(t, state) {
    t.state = state;
    this.#emit(FilesEvent.TRANSFER, { transfer: t });
  }

  /** Ends `t` in `state` for `reason`, letting go of the file and of what it received
   * unless it is done. */
  end(t, state, reason) {
    t.reason = reason;
    if (state !== TransferState.DONE) {
      t.parts = [];
      t.blob = null;
    }
    if (state === TransferState.DONE) t.bytes = t.size;
    t.file = null;
    t.hash = null;
    this.setState(t, state);
  }

  /** More bytes moved: reported now and then, and at the last one. */
  progress(t) {
    const now = performance.now();
    if (now - t.reportedAt < PROGRESS_MS && t.bytes < t.size) return;
    t.reportedAt = now;
    this.#emit(FilesEvent.PROGRESS, { transfer: t });
  }
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
