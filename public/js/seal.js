// Private rooms: the room key in the link's #fragment (which browsers never send to the
// server) and the AES-GCM sealing of offers, answers and ICE candidates with it, so the
// server relays them without reading addresses or being able to swap DTLS fingerprints.
import { SignalingEvent } from './events.js';

const KEY_PARAM = 'k';
const KEY_BYTES = 16;
// Ties the derived keys to this use, so the secret in the link is good for nothing else.
const HKDF_SALT = new TextEncoder().encode('meshchat sealed signaling v1');

/** The room secret in the address's fragment (`#k=…`), or null. */
export function secretFromUrl(href = location.href) {
  const hash = new URL(href).hash.slice(1);
  const secret = new URLSearchParams(hash).get(KEY_PARAM);
  if (!secret || !/^[A-Za-z0-9_-]{22,64}$/.test(secret)) return null;
  try {
    return fromBase64Url(secret).length >= KEY_BYTES ? secret : null;
  } catch {
    return null; // a damaged link: not base64
  }
}

/** The fragment that carries `secret` in a link, e.g. `#k=…`. */
export function secretFragment(secret) {
  return secret ? `#${KEY_PARAM}=${secret}` : '';
}

/** A new random room secret, URL-safe. */
export function newSecret() {
  return toBase64Url(crypto.getRandomValues(new Uint8Array(KEY_BYTES)));
}

/** True for a payload in the shape `Seal.seal` makes. */
export function isSealed(payload) {
  return payload !== null && typeof payload === 'object' && typeof payload.sealed === 'string'
    && typeof payload.iv === 'string';
}

/**
 * Seals and opens signaling payloads with a key derived from the room secret and the room
 * id (HKDF-SHA-256). The additional data binds each payload to its kind, so the server
 * cannot pass an answer off as an offer, and, given `route` ({from, to}: the peer ids of
 * sender and receiver), to the two members it goes between, so a payload replayed to
 * another member, or passed off as another member's, does not open. A page learns its own
 * peer id from the server's answer to its join; against an older server, whose answers
 * lack it, pages seal without a route, as before (signaling.js).
 */
export class Seal {
  #base;
  #keys = new Map(); // by room id: Promise<CryptoKey>

  constructor(secret) {
    this.#base = crypto.subtle.importKey('raw', fromBase64Url(secret), 'HKDF', false, ['deriveKey']);
  }

  /** `{sealed, iv}` (base64) in place of `payload`, a JSON object as the server expects. */
  async seal(roomId, kind, payload, route = null) {
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const plain = new TextEncoder().encode(JSON.stringify(payload));
    const sealed = await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv, additionalData: aad(kind, route) },
      await this.#key(roomId),
      plain,
    );
    return { sealed: toBase64Url(new Uint8Array(sealed)), iv: toBase64Url(iv) };
  }

  /** The payload inside a sealed one; throws if it is not sealed, not with our key, or
   * not for this kind and `route`. */
  async open(roomId, kind, payload, route = null) {
    if (!isSealed(payload)) throw new Error('not sealed');
    const plain = await crypto.subtle.decrypt(
      { name: 'AES-GCM', iv: fromBase64Url(payload.iv), additionalData: aad(kind, route) },
      await this.#key(roomId),
      fromBase64Url(payload.sealed),
    );
    return JSON.parse(new TextDecoder().decode(plain));
  }

  #key(roomId) {
    let key = this.#keys.get(roomId);
    if (!key) {
      key = this.#base.then((base) => crypto.subtle.deriveKey(
        { name: 'HKDF', hash: 'SHA-256', salt: HKDF_SALT, info: new TextEncoder().encode(`room ${roomId}`) },
        base,
        { name: 'AES-GCM', length: 256 },
        false,
        ['encrypt', 'decrypt'],
      ));
      this.#keys.set(roomId, key);
    }
    return key;
  }
}

/** What a payload is bound to: its kind, and its sender and receiver when known (as JSON,
 * so that no two routes give the same text, whatever the ids hold). */
function aad(kind, route) {
  const text = route ? JSON.stringify(['meshchat', kind, String(route.from), String(route.to)]) : `meshchat ${kind}`;
  return new TextEncoder().encode(text);
}

function toBase64Url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromBase64Url(text) {
  const s = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}

/**
 * Makes the page of `app` (main.js) private-room aware: seals its signaling when the
 * address holds a key, offers to create a private room, and explains signaling it could
 * not open (a link without the key, or with another key) instead of waiting forever.
 */
export function installSeal({ ui, signaling }) {
  const secret = secretFromUrl();
  document.getElementById('private-room').addEventListener('click', () => {
    // A new room: the server gives it an id; the key stays in the fragment.
    history.replaceState(null, '', `/${secretFragment(newSecret())}`);
    location.reload();
  });
  if (secret) {
    signaling.setSeal(new Seal(secret));
    document.body.dataset.sealed = 'true';
    const badge = document.getElementById('seal-state');
    badge.textContent = 'Private room: connection details are sealed with the key in your link, which the server never sees.';
    badge.hidden = false;
    // Bound to sender and receiver once the server says our peer id; an older server
    // does not, and then only to the room and the kind, as before.
    signaling.addEventListener(SignalingEvent.ROOM, () => signaling.peerId().then((id) => {
      document.body.dataset.sealBinding = id ? 'peers' : 'room';
      if (!id) console.info('meshchat: the server does not say our peer id: sealed signaling is bound to the room only');
    }));
  }
  let explained = false;
  signaling.addEventListener(SignalingEvent.UNREADABLE, (e) => {
    console.info(`meshchat: dropped signaling from ${e.detail.from} that this page cannot open`);
    if (explained) return;
    explained = true;
    document.body.dataset.sealProblem = secret ? 'wrong-key' : 'no-key';
    ui.showNotice(secret
      ? 'A member\'s connection request could not be opened with this room\'s key: their link has a different key, or none. No connection is made to them; make sure everyone uses the same complete invite link.'
      : 'This is a private room, and your link lacks its key (the part after # in the invite link), so nobody can connect to you. Ask for the complete invite link.',
    [{ text: 'Start a new room', href: '/' }]);
    ui.setStatus(secret ? 'Someone in the room has a different key.' : 'This private room needs the complete link.');
  });
}
