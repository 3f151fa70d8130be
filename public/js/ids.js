// Ids: what counts as a peer, page (client) or message id from the network, and how this
// page makes its own.

/** A peer, client or message id as another page or the server may send it. */
export function isId(value) {
  return typeof value === 'string' && value.length > 0 && value.length <= 64;
}

/** A random id for a message or a page, 24 hex digits. */
export function randomId() {
  return toHex(crypto.getRandomValues(new Uint8Array(12)));
}

/** Bytes as lower-case hex digits (ids, and the SHA-256 of files). */
export function toHex(bytes) {
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}
