// The sending side of file transfers: offering a file on a link, then streaming it in
// chunks without flooding the channel, hashing it as it goes, and hearing how it ended.
import { sha256 } from '/vendor/noble-hashes/sha2.js';
import { FileMessage } from './events.js';
import { toHex } from './ids.js';
import { Transfer, TransferState } from './transfer.js';

// Bytes of file per message (plus a 4-byte transfer number), well below the 256 KiB that
// browsers accept in one data-channel message.
const CHUNK_BYTES = 64 * 1024;
// Read from the file this much at a time.
const READ_BYTES = 1024 * 1024;
// The sender queues at most this much on the channel, and resumes below BUFFER_LOW (set
// on the channel by files.js).
const BUFFER_HIGH = 1024 * 1024;

/** Our outgoing transfers, kept in `transfers` (a Transfers). */
export class Sender {
  #transfers;

  constructor(transfers) {
    this.#transfers = transfers;
  }

  /** Offers `file` on `link`; returns its Transfer. */
  offer(link, file) {
    const n = link.nextN++;
    const t = new Transfer(link, 'out', n, { name: file.name, size: file.size, mime: file.type, file });
    link.send({ type: FileMessage.OFFER, n, name: t.name, size: t.size, mime: t.mime });
    this.#transfers.add(t);
    return t;
  }

  /** The receiver's answer about a transfer of ours; false for messages not for us. */
  onControl(link, msg) {
    const out = link.out.get(msg.n);
    switch (msg.type) {
      case FileMessage.ACCEPT:
        if (out?.state === TransferState.OFFERED) this.#send(out);
        return true;
      case FileMessage.DECLINE:
        if (out?.state === TransferState.OFFERED) this.#transfers.end(out, TransferState.DECLINED, 'declined');
        return true;
      case FileMessage.CANCEL_RECEIVE:
        if (out && !out.finished) this.#transfers.end(out, TransferState.CANCELLED, 'cancelled by the receiver');
        return true;
      case FileMessage.DONE:
        if (out?.state !== TransferState.VERIFYING) return true;
        if (msg.ok === true) this.#transfers.end(out, TransferState.DONE, '');
        else this.#transfers.end(out, TransferState.FAILED, 'the receiver found the file damaged');
        return true;
      default:
        return false;
    }
  }

  /** Streams the file: never more than BUFFER_HIGH queued on the channel, hashing as it goes. */
  async #send(t) {
    const { channel } = t.link;
    this.#transfers.setState(t, TransferState.ACTIVE);
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
          this.#transfers.progress(t);
        }
      }
    } catch (err) {
      // The file could not be read (removed from disk meanwhile, say).
      if (!t.finished) {
        t.link.send({ type: FileMessage.CANCEL_SEND, n: t.n });
        this.#transfers.end(t, TransferState.FAILED, `could not read the file (${err.message})`);
      }
      return;
    }
    if (t.state !== TransferState.ACTIVE) return;
    t.sha256 = toHex(hash.digest());
    t.link.send({ type: FileMessage.END, n: t.n, sha256: t.sha256 });
    this.#transfers.setState(t, TransferState.VERIFYING);
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
