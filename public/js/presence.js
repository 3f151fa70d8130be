// Who is here, as the page tells it: the member list, the lines about members connecting,
// reconnecting, failing, renaming, coming back and leaving, and our own name.
import { ChatEvent, PeerEvent, UserEvent } from './events.js';
import { nameOf, updateComposer } from './app.js';
import { PeerState } from './peer.js';
import { cleanName, fallbackName, saveName } from './names.js';

const TURN_HINT = 'If you are on different networks, this server may need a TURN server (see ICE_SERVERS in the README).';
// A peer's hello, which names it, brings the "connected" line; should none come, the line
// comes this long after the channel opened, without the name.
const CONNECTED_LINE_DELAY_MS = 3000;

/** Hooks the members into the page of `app` (app.js). */
export function installPresence(app) {
  const { ui, chat } = app;
  ui.setOwnName(app.myName);
  chat.setName(app.myName);
  ui.addEventListener(UserEvent.RENAME, (e) => {
    app.myName = cleanName(e.detail.name);
    saveName(app.myName);
    ui.setOwnName(app.myName);
    chat.setName(app.myName);
    ui.log.addSystem(app.myName ? `You are now called ${app.myName}.` : 'You are anonymous now.');
  });
  followConnections(app);
  followMembers(app);
}

/** Each connection to a peer: connecting, open, interrupted, failed. */
function followConnections(app) {
  const { ui, peers } = app;
  peers.addEventListener(PeerEvent.ADDED, (e) => {
    const { peerId, initiator, replacement } = e.detail;
    if (replacement) return; // we came back: the old connection works until this one opens
    if (initiator) app.joiners.add(peerId);
    ui.members.set(peerId, { name: fallbackName(peerId), state: PeerState.CONNECTING });
    ui.log.addSystem(initiator ? 'Someone joined; connecting…' : 'Connecting to a member…');
    updateComposer(app);
  });
  peers.addEventListener(PeerEvent.STATE, (e) => {
    const { peerId, state } = e.detail;
    ui.members.set(peerId, { state });
    if (state === PeerState.RECONNECTING && !app.healing.has(peerId)) {
      app.healing.add(peerId);
      ui.log.addSystem(`The connection to ${nameOf(app, peerId)} was interrupted; reconnecting… Messages to them wait until it is back.`, { problem: true });
    } else if (state !== PeerState.RECONNECTING && state !== PeerState.INTERRUPTED && app.healing.delete(peerId)) {
      if (state === PeerState.OPEN) ui.log.addSystem(`Connected to ${nameOf(app, peerId)} again.`);
    }
    updateComposer(app);
  });
  peers.addEventListener(PeerEvent.OPEN, (e) => {
    setTimeout(() => announceConnected(app, e.detail.peerId), CONNECTED_LINE_DELAY_MS);
  });
  peers.addEventListener(PeerEvent.FAILED, (e) => {
    ui.log.addSystem(`Could not connect to ${nameOf(app, e.detail.peerId)}. ${TURN_HINT}`, { problem: true });
  });
  peers.addEventListener(PeerEvent.TURN_REFUSED, (e) => explainTurnRefusal(app, e.detail));
}

/** Says once per page why the relay (TURN) server cannot be used. */
function explainTurnRefusal(app, { code, text }) {
  if (app.turnRefused) return;
  app.turnRefused = true;
  const detail = text ? `${code} ${text}` : `${code}`;
  app.ui.log.addSystem(
    `The relay (TURN) server refused this page (${detail}): its credentials may have expired or be wrong. Reload the page to get new ones.`,
    { problem: true },
  );
}

/** The members behind the connections: their names, comebacks and leaving. */
function followMembers(app) {
  const { ui, chat } = app;
  chat.addEventListener(ChatEvent.NAMED, (e) => {
    const { peerId, name, oldName, hello } = e.detail;
    const shown = nameOf(app, peerId);
    ui.members.set(peerId, { name: shown });
    if (hello) announceConnected(app, peerId);
    else if (name !== oldName) ui.log.addSystem(`${oldName || 'A member without a name'} is now called ${shown}.`);
  });
  chat.addEventListener(ChatEvent.REJOINED, (e) => {
    const { peerId, oldId } = e.detail;
    ui.members.remove(oldId);
    app.announced.delete(oldId);
    app.announced.add(peerId);
    ui.members.set(peerId, { name: nameOf(app, peerId) });
    ui.log.addSystem(`${nameOf(app, peerId)} reconnected.`);
    updateComposer(app);
  });
  chat.addEventListener(ChatEvent.LEFT, (e) => {
    const { peerId, name, client } = e.detail;
    ui.members.remove(peerId);
    app.announced.delete(peerId);
    app.joiners.delete(peerId);
    app.typing.stopped(peerId);
    if (!app.left) ui.log.addSystem(`${name || fallbackName(client ?? peerId)} left.`);
    updateComposer(app);
  });
}

/** Says "connected" once per peer, and only once its channel has opened. */
function announceConnected(app, peerId) {
  if (app.announced.has(peerId) || !app.peers.get(peerId)?.opened) return;
  app.announced.add(peerId);
  app.ui.log.addSystem(`Connected to ${nameOf(app, peerId)}.`);
  if (app.joiners.delete(peerId)) app.notifier.joined(nameOf(app, peerId));
}
