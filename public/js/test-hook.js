// With `?test=1` only: lets browser tests reach into the page and start what a network
// change would.
import { ChatEvent } from './events.js';

export function exposeTestHook({ peers, chat }) {
  if (new URLSearchParams(location.search).get('test') !== '1') return;
  const historyFrom = []; // peer ids whose history answer is complete, in order
  chat.addEventListener(ChatEvent.HISTORY, (e) => e.detail.done && historyFrom.push(e.detail.peerId));
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
  };
}
