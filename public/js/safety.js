// Safety codes: a short number per peer, derived from both ends' DTLS certificate
// fingerprints, that two members compare out of band to know nobody relays their channel.
import { ChatEvent, PeerEvent } from './events.js';

const CODE_DIGITS = 12;

/** The `a=fingerprint` of an SDP, as "algorithm HEX:…" in upper case, or null. */
export function fingerprintOf(sdp) {
  const m = /^a=fingerprint:(\S+) ([0-9A-Fa-f:]+)\s*$/m.exec(sdp ?? '');
  return m ? `${m[1].toLowerCase()} ${m[2].toUpperCase()}` : null;
}

/** The code both ends of a connection compute: the fingerprints are sorted, so it does not
 * matter which is local. */
export async function safetyCode(fingerprintA, fingerprintB) {
  const text = ['meshchat safety code v1', ...[fingerprintA, fingerprintB].sort()].join('\n');
  const digest = new DataView(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  const digits = (digest.getBigUint64(0) % 10n ** BigInt(CODE_DIGITS)).toString().padStart(CODE_DIGITS, '0');
  return digits.match(/.{4}/g).join(' ');
}

/**
 * Computes each peer's code when its channel opens, shows it in the member list behind a
 * "verify" toggle, and says when a rebuilt connection changed it. `nameOf(peerId)` is how
 * the page names a member.
 */
export function installSafety({ ui, peers, chat }, nameOf) {
  const codes = new Map(); // by peer id
  // The old code of a member that came back under a new id before its new code was known.
  const rejoined = new Map();

  const show = (peerId, code) => {
    const li = ui.members.element(peerId);
    if (!li) return;
    let box = li.querySelector('.verify');
    if (!box) {
      box = document.createElement('details');
      box.className = 'verify';
      const summary = document.createElement('summary');
      summary.textContent = 'verify';
      const text = document.createElement('p');
      text.className = 'verify-text';
      const value = document.createElement('strong');
      value.className = 'safety-code';
      box.append(summary, value, text);
      li.append(box);
    }
    box.dataset.safetyCode = code;
    box.querySelector('.safety-code').textContent = code;
    box.querySelector('.verify-text').textContent = `is your safety code with ${nameOf(peerId)}. `
      + 'Compare it with theirs by phone or in person: if both match, nobody sits between you. '
      + 'It changes whenever your connection is rebuilt.';
  };

  const changed = (peerId, before, after) => {
    if (before && before !== after) {
      ui.log.addSystem(`Your connection to ${nameOf(peerId)} was rebuilt, so its safety code changed: compare it again.`);
    }
  };

  // Computed when the channel opens, and again on every later sign of the member (its
  // state, its name): the member's entry or a description may not be in place yet when the
  // channel opens, and the code would then never show.
  const refresh = async (peerId) => {
    const peer = peers.get(peerId);
    if (!peer?.opened) return;
    const local = fingerprintOf(peer.pc.currentLocalDescription?.sdp);
    const remote = fingerprintOf(peer.pc.currentRemoteDescription?.sdp);
    if (!local || !remote) return;
    const code = await safetyCode(local, remote);
    if (peers.get(peerId) !== peer) return;
    const before = codes.get(peerId) ?? rejoined.get(peerId);
    rejoined.delete(peerId);
    codes.set(peerId, code);
    show(peerId, code);
    changed(peerId, before, code);
  };
  peers.addEventListener(PeerEvent.OPEN, (e) => refresh(e.detail.peerId));
  peers.addEventListener(PeerEvent.STATE, (e) => refresh(e.detail.peerId));
  // The member came back under a new peer id: its new connection has a new code.
  chat.addEventListener(ChatEvent.REJOINED, (e) => {
    const { peerId, oldId } = e.detail;
    const before = codes.get(oldId);
    codes.delete(oldId);
    const code = codes.get(peerId);
    if (code) {
      show(peerId, code);
      changed(peerId, before, code);
    } else if (before) {
      rejoined.set(peerId, before);
    }
  });
  chat.addEventListener(ChatEvent.NAMED, (e) => {
    const code = codes.get(e.detail.peerId);
    if (code) show(e.detail.peerId, code);
    refresh(e.detail.peerId);
  });
  peers.addEventListener(PeerEvent.REMOVED, (e) => {
    codes.delete(e.detail.peerId);
    rejoined.delete(e.detail.peerId);
  });
}
