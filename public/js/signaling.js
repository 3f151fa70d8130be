// The signaling connection: Socket.IO to our server (its protocol: docs/PROTOCOL.md), rooms,
// and the relayed WebRTC messages. It turns the protocol's events into SignalingEvents and
// rejoins the room after a reconnect.
import { io } from '/vendor/socket.io.esm.min.js';
import { SignalingEvent, SocketEvent } from './events.js';
import { isId } from './ids.js';
import { isSealed } from './seal.js';

// Longest wait for the answer to a join, which says our peer id, before sealed signaling
// goes without it.
const SELF_WAIT_MS = 10_000;

/** Emits the SignalingEvents of events.js. */
export class Signaling extends EventTarget {
  #socket;
  #roomId = null;
  #requested = null;
  #everConnected = false;
  #closed = false;
  // The latest resume token from the server (docs/PROTOCOL.md, "Resuming"): presented on
  // reconnect, it gives us back our peer id and room, and the mesh stays as it is.
  #resume = null;
  #resumeWait = null;
  // Private rooms (seal.js): signaling payloads sealed and opened one at a time, in order.
  #seal = null;
  #sealedOut = Promise.resolve();
  // Relays, joins and leaves of others, passed on one at a time, in order (#inOrder).
  #signalsIn = Promise.resolve();
  // Our peer id as the answer to our latest join or create says it (null from an older
  // server, which does not): sealed signaling is bound to it (seal.js), and it decides
  // who gives way when offers cross (negotiation.js).
  #self = Promise.resolve(null);
  #selfNow = null;
  #learnSelf = () => {};

  constructor() {
    super();
    // Same origin, default path: the page is served by the signaling server itself.
    this.#socket = io({ autoConnect: false, auth: (cb) => cb(this.#resume ? { resume: this.#resume } : {}) });
    const s = this.#socket;
    // `connect` and `disconnect` are the Socket.IO client's own events, not our server's.
    s.on('connect', () => this.#onConnect());
    // A page going away says goodbye, so its room hears at once that it left (a connection
    // that just drops is held for a resume instead); one back from the page cache reconnects.
    addEventListener('pagehide', () => s.connected && s.disconnect());
    addEventListener('pageshow', (e) => e.persisted && !this.#closed && s.connect());
    s.on('connect_error', () => this.#emit(SignalingEvent.UNREACHABLE, {}));
    s.on('disconnect', (reason) => {
      this.#emit(SignalingEvent.OFFLINE, {});
      // The client retries by itself after anything but a server-side disconnect (a
      // restart, or a flood); retry that too, once and not at once.
      if (reason === 'io server disconnect' && !this.#closed) {
        setTimeout(() => this.#closed || s.connect(), 2000 + Math.random() * 3000);
      }
    });
    // Told right after a reconnect that presented a token: resumed (nothing to redo), or
    // refused (we are a new peer, so enter the room again as before).
    s.on('resumed', (body) => {
      clearTimeout(this.#resumeWait);
      this.#resume = typeof body?.resume === 'string' ? body.resume : null;
    });
    s.on('resume-refused', () => {
      clearTimeout(this.#resumeWait);
      this.#resume = null;
      this.#enter(true);
    });
    s.on(SocketEvent.ROOM_CREATED, (roomId) => {
      if (typeof roomId !== 'string') return;
      const requested = this.#requested;
      const rejoin = this.#roomId !== null;
      this.#roomId = roomId;
      this.#emit(SignalingEvent.ROOM, { roomId, created: true, requested, rejoin });
    });
    s.on(SocketEvent.ROOM_FULL, (roomId) => this.#emit(SignalingEvent.ROOM_FULL, { roomId: String(roomId) }));
    s.on(SocketEvent.REQUEST_ERROR, (body) => this.#emit(SignalingEvent.REFUSED, {
      event: String(body?.event ?? ''),
      error: String(body?.error ?? 'refused'),
      reason: String(body?.reason ?? ''),
    }));
    // In the order they came, with the relays (#onSignal): no relay from a peer is handled
    // after its leave.
    s.on(SocketEvent.NEW_USER_JOINED, (peerId) => isId(peerId) && this.#inOrder(() => this.#emit(SignalingEvent.PEER_JOINED, { peerId })));
    s.on(SocketEvent.USER_DISCONNECTED, (peerId) => isId(peerId) && this.#inOrder(() => this.#emit(SignalingEvent.PEER_LEFT, { peerId })));
    for (const kind of [SocketEvent.OFFER, SocketEvent.ANSWER, SocketEvent.CANDIDATE]) {
      s.on(kind, (from, payload) => isId(from) && this.#onSignal(kind, from, payload));
    }
  }

  get roomId() {
    return this.#roomId;
  }

  /** The id of our signaling connection now, a new one after each reconnect (our peer id,
   * which the acks give us, survives a reconnect only when the server resumes it). */
  get id() {
    return this.#socket.id ?? null;
  }

  /** Our peer id now, as `peerId()` resolves it; null while a join is under way. */
  get self() {
    return this.#selfNow;
  }

  get connected() {
    return this.#socket.connected;
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
    this.#entering();
    this.#socket.emit(SocketEvent.CREATE_ROOM, (ack) => this.#checkAck(SocketEvent.CREATE_ROOM, ack));
  }

  /** Relays an offer, answer or candidate to `peerId`. Dropped while offline: peer ids
   * belong to one connection, so buffered signals would reach nobody after a reconnect. */
  send(kind, peerId, payload) {
    if (this.#seal) return this.#sendSealed(kind, peerId, payload);
    if (this.#socket.connected) this.#socket.emit(kind, peerId, payload);
  }

  /** Seals what we send from now on, and takes only sealed payloads (a private room). */
  setSeal(seal) {
    this.#seal = seal;
  }

  #sendSealed(kind, peerId, payload) {
    const { id } = this.#socket;
    const roomId = this.#roomId;
    this.#sealedOut = this.#sealedOut
      .then(() => this.#self)
      .then((self) => this.#seal.seal(roomId, kind, payload, self && { from: self, to: peerId }))
      .then((sealed) => this.#socket.id === id && this.#socket.connected && this.#socket.emit(kind, peerId, sealed))
      .catch((err) => console.warn('meshchat: could not seal signaling:', err.message));
  }

  /** Runs `step(self)` after those before it, once our peer id is known: a member's offer
   * may come before the answer to our join, and sealing and negotiation both need it. */
  #inOrder(step) {
    this.#signalsIn = this.#signalsIn.then(() => this.#self).then(step);
  }

  /** A relay, for the room we asked for (the answer to our join may still be on its way). */
  #onSignal(kind, from, payload) {
    const seal = this.#seal;
    const roomId = this.#roomId ?? this.#requested;
    this.#inOrder(async (self) => {
      if (!seal) {
        if (isSealed(payload)) this.#emit(SignalingEvent.UNREADABLE, { from, sealed: true });
        else this.#emit(SignalingEvent.SIGNAL, { kind, from, payload });
        return;
      }
      let opened;
      try {
        opened = await seal.open(roomId, kind, payload, self && { from, to: self });
      } catch {
        this.#emit(SignalingEvent.UNREADABLE, { from, sealed: isSealed(payload) });
        return;
      }
      this.#emit(SignalingEvent.SIGNAL, { kind, from, payload: opened });
    });
  }

  /** Leaves for good: the server tells the room we are gone. */
  close() {
    this.#closed = true;
    this.#socket.disconnect();
  }

  #onConnect() {
    const rejoin = this.#everConnected;
    this.#everConnected = true;
    this.#emit(SignalingEvent.ONLINE, { rejoin });
    // With a token, `resumed` or `resume-refused` comes next and says what to do.
    // A server that says neither (an older version) gets the rejoin after a few seconds.
    if (rejoin && this.#resume) {
      this.#resumeWait = setTimeout(() => this.#enter(true), 3000);
      return;
    }
    this.#enter(rejoin);
  }

  #enter(rejoin) {
    // After a reconnect the server knows us under a new peer id: entering the same room
    // again makes its members offer to us, and the mesh heals.
    const roomId = this.#roomId ?? this.#requested;
    if (roomId) {
      this.#requested = roomId;
      this.#entering();
      this.#socket.emit(SocketEvent.JOIN_ROOM, roomId, (ack) => {
        if (this.#checkAck(SocketEvent.JOIN_ROOM, ack) && ack.created === false) {
          this.#roomId = ack.roomId;
          this.#emit(SignalingEvent.ROOM, { roomId: ack.roomId, created: false, requested: roomId, rejoin });
        } else if (ack?.reason === 'unavailable') {
          // The cluster's store did not answer in time (a node restarting, say): again soon.
          const { id } = this.#socket;
          setTimeout(() => this.#socket.id === id && this.#socket.connected && this.#enter(rejoin), 1000 + Math.random() * 1000);
        }
      });
    } else {
      this.#entering();
      this.#socket.emit(SocketEvent.CREATE_ROOM, (ack) => this.#checkAck(SocketEvent.CREATE_ROOM, ack));
    }
  }

  /** Resolves with our peer id once the answer to our latest join or create is in; null
   * if the server did not say it (an older server) or did not answer in time. */
  peerId() {
    return this.#self;
  }

  /** We ask to enter a room: what needs our peer id waits for the answer. */
  #entering() {
    this.#learnSelf(null);
    this.#selfNow = null;
    this.#self = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(null), SELF_WAIT_MS);
      this.#learnSelf = (id) => {
        clearTimeout(timer);
        this.#learnSelf = () => {};
        this.#selfNow = id;
        resolve(id);
      };
    });
  }

  /** True for a success ack; reports an `{error}` ack. */
  #checkAck(event, ack) {
    this.#learnSelf(typeof ack?.peerId === 'string' && ack.peerId ? ack.peerId : null);
    if (ack && typeof ack.error === 'string') {
      this.#emit(SignalingEvent.REFUSED, { event, error: ack.error, reason: String(ack.reason ?? '') });
      return false;
    }
    if (typeof ack?.resume === 'string') this.#resume = ack.resume;
    return Boolean(ack && typeof ack.roomId === 'string');
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
