// The receiving side of file transfers: offers to accept or decline (some declined at
// once), the chunks gathered into a Blob, and the SHA-256 checked against the sender's.
import { sha256 } from '/vendor/noble-hashes/sha2.js';
import { FileMessage } from './events.js';
import { toHex } from './ids.js';
import { MAX_FILE_BYTES, Transfer, TransferState, formatBytes } from './transfer.js';

// Offers from one peer waiting for our answer; more are declined at once.
const MAX_WAITING_OFFERS = 20;
// The receiver turns received chunks into a Blob every this many bytes, so that chunks are
// not held both as chunks and in the Blob until the end.
const FLUSH_BYTES = 8 * 1024 * 1024;

/** Our incoming transfers, kept in `transfers` (a Transfers). */
export class Receiver {
  #transfers;

  constructor(transfers) {
    this.#transfers = transfers;
  }

  /** Receives an offered file. */
  accept(t) {
    if (t.direction !== 'in' || t.state !== TransferState.OFFERED) return;
    t.hash = sha256.create();
    t.blob = new Blob([]);
    this.#transfers.setState(t, TransferState.ACTIVE);
    t.startedAt = performance.now();
    t.link.send({ type: FileMessage.ACCEPT, n: t.n });
  }

  /** Turns an offered file down. */
  decline(t) {
    if (t.direction !== 'in' || t.state !== TransferState.OFFERED) return;
    t.link.send({ type: FileMessage.DECLINE, n: t.n });
    this.#transfers.end(t, TransferState.DECLINED, 'you declined');
  }

  /** The sender's word about a transfer to us; false for messages not for us. */
  onControl(link, msg) {
    const inc = link.in.get(msg.n);
    switch (msg.type) {
      case FileMessage.OFFER:
        this.#onOffer(link, msg);
        return true;
      case FileMessage.CANCEL_SEND:
        if (inc && !inc.finished) this.#transfers.end(inc, TransferState.CANCELLED, 'cancelled by the sender');
        return true;
      case FileMessage.END:
        if (inc) this.#onEnd(inc, msg);
        return true;
      default:
        return false;
    }
  }

  /** A binary message: a chunk of one of our transfers, after its 4-byte number. */
  onChunk(link, data) {
    if (data.byteLength < 4) return;
    const t = link.in.get(new DataView(data).getUint32(0));
    if (t?.state !== TransferState.ACTIVE) return; // declined or cancelled: still in flight
    const piece = new Uint8Array(data, 4);
    if (t.bytes + piece.length > t.size) {
      link.send({ type: FileMessage.CANCEL_RECEIVE, n: t.n });
      this.#transfers.end(t, TransferState.FAILED, 'the sender sent more than the file\'s size');
      return;
    }
    t.hash.update(piece);
    t.parts.push(piece);
    t.partBytes += piece.length;
    t.bytes += piece.length;
    if (t.partBytes >= FLUSH_BYTES) flush(t);
    this.#transfers.progress(t);
  }

  #onOffer(link, msg) {
    if (link.in.has(msg.n) || typeof msg.name !== 'string' || !Number.isSafeInteger(msg.size) || msg.size < 0) return;
    const t = new Transfer(link, 'in', msg.n, { name: msg.name, size: msg.size, mime: msg.mime });
    this.#transfers.add(t);
    const waiting = [...link.in.values()].filter((x) => x.state === TransferState.OFFERED).length;
    let refusal = '';
    if (t.size > MAX_FILE_BYTES) refusal = `refused: larger than ${formatBytes(MAX_FILE_BYTES)}, the most one file may be`;
    else if (waiting > MAX_WAITING_OFFERS) refusal = `refused: more than ${MAX_WAITING_OFFERS} files were waiting for an answer`;
    if (refusal) {
      link.send({ type: FileMessage.DECLINE, n: t.n });
      this.#transfers.end(t, TransferState.DECLINED, refusal);
    }
  }

  #onEnd(t, msg) {
    if (t.state !== TransferState.ACTIVE) return;
    const digest = toHex(t.hash.digest());
    const ok = t.bytes === t.size && typeof msg.sha256 === 'string' && msg.sha256 === digest;
    t.link.send({ type: FileMessage.DONE, n: t.n, ok });
    t.sha256 = digest;
    if (!ok) {
      t.parts = [];
      t.blob = null;
      this.#transfers.end(t, TransferState.FAILED, t.bytes === t.size
        ? 'the file arrived damaged (its SHA-256 does not match), so it was thrown away'
        : 'the file arrived incomplete, so it was thrown away');
      return;
    }
    flush(t, t.mime);
    t.url = URL.createObjectURL(t.blob);
    this.#transfers.end(t, TransferState.DONE, '');
  }
}

/** Moves received chunks into the transfer's Blob. */
function flush(t, type) {
  t.blob = new Blob([t.blob, ...t.parts], type ? { type } : undefined);
  t.parts = [];
  t.partBytes = 0;
}
