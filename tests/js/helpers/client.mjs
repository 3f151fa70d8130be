// socket.io-client helpers shared by the tests and the soak and latency scripts: a client
// that never reconnects by itself, and waits that fail after a timeout instead of hanging.
import { io } from 'socket.io-client';
import assert from 'node:assert/strict';

/** A new socket to `server` (anything with a `url`) that never reconnects by itself;
 * `options` go to io(). */
export function client(server, options = {}) {
  return io(server.url, { forceNew: true, reconnection: false, ...options });
}

/**
 * A client of `server` on `transports` (websocket only by default; `null`: the client's
 * default, long-polling first and then the upgrade), closed when the test `t` ends.
 */
export function connect(t, server, transports = ['websocket']) {
  const socket = client(server, transports === null ? {} : { transports });
  t.after(() => socket.close());
  return socket;
}

/** Connects and waits for the connection. */
export async function connected(t, server, transports) {
  const socket = connect(t, server, transports);
  if (!socket.connected) await next(socket, 'connect');
  return socket;
}

/** Resolves with the arguments of the next `event` on `socket`, or fails after `ms`. */
export function next(socket, event, ms = 10_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    socket.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args);
    });
  });
}

/** Emits with an ack callback and resolves with the ack's body. */
export function request(socket, event, ...args) {
  return socket.timeout(10_000).emitWithAck(event, ...args);
}

/** Asserts that `ack` answers a join of the existing room `roomId`, and returns the peer id it gives the joiner. */
export function joined(ack, roomId) {
  const { peerId, resume, ...rest } = ack;
  assert.deepEqual(rest, { roomId, created: false });
  assert.match(peerId, /^[A-Za-z0-9_-]{16}$/);
  // The resume token, when the server has resume on (docs/PROTOCOL.md, "Resuming").
  if (resume !== undefined) assert.match(resume, /^[A-Za-z0-9_-]+$/);
  return peerId;
}
