// The signaling connection: Socket.IO to our server, rooms, and the relayed WebRTC messages.
// It turns the protocol's events into DOM events and rejoins the room after a reconnect.
import { io } from '/vendor/socket.io.esm.min.js';

export const OFFER = 'rtc-offer';
export const ANSWER = 'rtc-answer';
export const CANDIDATE = 'ice-candidate';

/**
 * Events (CustomEvent, data in `detail`):
 * - `online`, `offline` {reason}: the signaling connection came up or went down;
 * - `room` {roomId, created, requested, rejoin}: we are in `roomId`; `created` means a new
 *   room, so when `requested` differs the link was stale;
 * - `room-full` {roomId}, `refused` {event, error}: a request was turned down;
 * - `peer-joined` {peerId}, `peer-left` {peerId};
 * - `signal` {kind, from, payload} for offers, answers and candidates.
 */
export class Signaling extends EventTarget {
  #socket;
  #roomId = null;
  #requested = null;
  #everConnected = false;
  #closed = false;

  constructor() {
    super();
    // Same origin, default path: the page is served by the signaling server itself.
    this.#socket = io({ autoConnect: false });
    const s = this.#socket;
    s.on('connect', () => this.#onConnect());
    s.on('disconnect', (reason) => {
      this.#emit('offline', { reason });
      // The client retries by itself after anything but a server-side disconnect (a
      // restart, or a flood); retry that too, once and not at once.
      if (reason === 'io server disconnect' && !this.#closed) {
        setTimeout(() => this.#closed || s.connect(), 2000 + Math.random() * 3000);
      }
    });
    s.on('room-created', (roomId) => {
      if (typeof roomId !== 'string') return;
      const requested = this.#requested;
      const rejoin = this.#roomId !== null;
      this.#roomId = roomId;
      this.#emit('room', { roomId, created: true, requested, rejoin });
    });
    s.on('room-full', (roomId) => this.#emit('room-full', { roomId: String(roomId) }));
    s.on('request-error', (body) => this.#emit('refused', {
      event: String(body?.event ?? ''),
      error: String(body?.error ?? 'refused'),
    }));
    s.on('new-user-joined', (peerId) => isId(peerId) && this.#emit('peer-joined', { peerId }));
    s.on('user-disconnected', (peerId) => isId(peerId) && this.#emit('peer-left', { peerId }));
    for (const kind of [OFFER, ANSWER, CANDIDATE]) {
      s.on(kind, (from, payload) => isId(from) && this.#emit('signal', { kind, from, payload }));
    }
  }

  get roomId() {
    return this.#roomId;
  }

  /** Connects and enters `roomId`, or a new room when it is null. */
  start(roomId) {
    this.#requested = roomId;
    this.#socket.connect();
  }

  /** Asks for a brand-new room (after a refused join, say). */
  createRoom() {
    this.#requested = null;
    this.#roomId = null;
    this.#socket.emit('create-room', (ack) => this.#checkAck('create-room', ack));
  }

  /** Relays an offer, answer or candidate to `peerId`. Dropped while offline: peer ids
   * belong to one connection, so buffered signals would reach nobody after a reconnect. */
  send(kind, peerId, payload) {
    if (this.#socket.connected) this.#socket.emit(kind, peerId, payload);
  }

  /** Leaves for good: the server tells the room we are gone. */
  close() {
    this.#closed = true;
    this.#socket.disconnect();
  }

  #onConnect() {
    const rejoin = this.#everConnected;
    this.#everConnected = true;
    this.#emit('online', { rejoin });
    // After a reconnect the server knows us under a new peer id: entering the same room
    // again makes its members offer to us, and the mesh heals.
    const roomId = this.#roomId ?? this.#requested;
    if (roomId) {
      this.#requested = roomId;
      this.#socket.emit('join-room', roomId, (ack) => {
        if (this.#checkAck('join-room', ack) && ack.created === false) {
          this.#roomId = ack.roomId;
          this.#emit('room', { roomId: ack.roomId, created: false, requested: roomId, rejoin });
        }
      });
    } else {
      this.#socket.emit('create-room', (ack) => this.#checkAck('create-room', ack));
    }
  }

  /** True for a success ack; reports an `{error}` ack. */
  #checkAck(event, ack) {
    if (ack && typeof ack.error === 'string') {
      this.#emit('refused', { event, error: ack.error });
      return false;
    }
    return Boolean(ack && typeof ack.roomId === 'string');
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

function isId(value) {
  return typeof value === 'string' && value.length > 0 && value.length <= 64;
}
