// With `?test=1` only: lets browser tests reach into the page and start what a network
// change would.
import { ChatEvent, SignalingEvent } from './events.js';

export function exposeTestHook({ peers, chat, signaling }) {
  if (new URLSearchParams(location.search).get('test') !== '1') return;
  const historyFrom = []; // peer ids whose history answer is complete, in order
  chat.addEventListener(ChatEvent.HISTORY, (e) => e.detail.done && historyFrom.push(e.detail.peerId));
  const relays = lossyRelays(signaling);
  window.meshchatTest = {
    peer: (peerId) => peers.get(peerId),
    restartIce: (peerId) => peers.restart(peerId),
    setRtcConfig: (config) => peers.setRtcConfig(config),
    setDisconnectedGrace: (ms) => { peers.disconnectedGraceMs = ms; },
    requestHistory: (peerId) => chat.requestHistory(peerId),
    askedForHistory: () => historyFrom[0] ?? null,
    historyAnswers: () => historyFrom.length,
    // Chat protocol messages as any page could send them (a forged edit, say), and our own
    // changes applied without sending (concurrent edits staged by hand).
    sendRaw: (peerId, msg) => peers.get(peerId).channel.send(JSON.stringify(msg)),
    applyOwn: (msg) => chat.applyOwn(msg),
    client: () => chat.client,
    self: () => signaling.self,
    // The server's word that `peerId` joined, as a cluster race can bring it to a member
    // that the newcomer itself is offering to.
    peerJoined: (peerId) => signaling.dispatchEvent(new CustomEvent(SignalingEvent.PEER_JOINED, { detail: { peerId } })),
    // Where each connection stands, for a failing test's log.
    connections: () => peers.list.map((p) => ({
      id: p.id,
      state: p.state,
      initiator: p.initiator,
      opened: p.opened,
      signaling: p.pc.signalingState,
      ice: p.pc.connectionState,
      previous: p.previous ? p.previous.channel?.readyState ?? 'none' : null,
    })),
    ...relays,
  };
}

/** Relays lost as a signaling connection being cut loses them, on demand:
 * dropOutgoing(kind, n) loses the next n relays of that kind we send; dropped() lists them. */
function lossyRelays(signaling) {
  const drops = new Map();
  const dropped = [];
  const send = signaling.send.bind(signaling);
  signaling.send = (kind, peerId, payload) => {
    const left = drops.get(kind) ?? 0;
    if (left === 0) return send(kind, peerId, payload);
    drops.set(kind, left - 1);
    dropped.push({ kind, to: peerId });
    return undefined;
  };
  return {
    dropOutgoing: (kind, n = 1) => drops.set(kind, n),
    dropped: () => dropped,
  };
}
