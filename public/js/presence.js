// Who is here, as the page tells it: the member list, the lines about members connecting,
// reconnecting, failing, renaming, coming back and leaving, and our own name.
import { ChatEvent, PeerEvent, UserEvent } from './events.js';
import { nameOf, updateComposer } from './app.js';
import { PeerState } from './peer.js';
import { cleanName, fallbackName, saveName } from './names.js';

const TURN_HINT = 'If you are on different networks, this server may need a TURN server (see docs/turn.md in the meshchat repository).';
// A peer's hello, which names it, brings the "connected" line; should none come, the line
// comes this long after the channel opened, without the name.
const CONNECTED_LINE_DELAY_MS = 3000;
// Lines of one kind that come in a burst (a newcomer meeting a room of 30, many arriving
// or leaving at once) share a line: the first is said at once, those of the next
// GROUP_WINDOW_MS together ("Connected to Ann, Bo and 5 others.").
const GROUP_WINDOW_MS = 2000;

/** "Ann", "Ann and Bo", "Ann, Bo and Cy", "Ann, Bo and 5 others". */
export function listNames(names) {
  if (names.length <= 1) return names[0] ?? '';
  if (names.length === 2) return `${names[0]} and ${names[1]}`;
  if (names.length === 3) return `${names[0]}, ${names[1]} and ${names[2]}`;
  return `${names[0]}, ${names[1]} and ${names.length - 2} others`;
}

/** One kind of system line about members, grouped when they come in a burst. `say(names)`
 * makes the line for the names (or other items) given, or null to say nothing. */
class LineGroup {
  #log;
  #say;
  #problem;
  #waiting = [];
  #timer = null;
  #quietAt = 0; // until then, what comes waits for the group's line

  constructor(log, say, { problem = false } = {}) {
    this.#log = log;
    this.#say = say;
    this.#problem = problem;
  }

  add(name) {
    const now = performance.now();
    if (this.#timer === null && now >= this.#quietAt) {
      this.#quietAt = now + GROUP_WINDOW_MS;
      this.#line([name]);
      return;
    }
    this.#waiting.push(name);
    this.#timer ??= setTimeout(() => this.#flush(), Math.max(0, this.#quietAt - now));
  }

  #flush() {
    const names = this.#waiting;
    this.#waiting = [];
    this.#timer = null;
    this.#quietAt = performance.now() + GROUP_WINDOW_MS;
    this.#line(names);
  }

  #line(names) {
    const text = this.#say(names);
    if (text) this.#log.addSystem(text, { problem: this.#problem });
  }
}

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
  const said = (say, options) => new LineGroup(ui.log, (names) => (app.left ? null : say(names)), options);
  app.lines = {
    joined: said((ids) => (ids.length === 1 ? 'Someone joined; connecting…' : `${ids.length} people joined; connecting…`)),
    connecting: said((ids) => (ids.length === 1 ? 'Connecting to a member…' : `Connecting to ${ids.length} members…`)),
    connected: said((names) => `Connected to ${listNames(names)}.`),
    failed: said((names) => `Could not connect to ${listNames(names)}. ${TURN_HINT}`, { problem: true }),
    reconnected: said((names) => `${listNames(names)} reconnected.`),
    left: said((names) => `${listNames(names)} left.`),
  };
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
    (initiator ? app.lines.joined : app.lines.connecting).add(peerId);
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
    app.lines.failed.add(nameOf(app, e.detail.peerId));
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
    app.lines.reconnected.add(nameOf(app, peerId));
    updateComposer(app);
  });
  chat.addEventListener(ChatEvent.LEFT, (e) => {
    const { peerId, name, client } = e.detail;
    ui.members.remove(peerId);
    app.announced.delete(peerId);
    app.joiners.delete(peerId);
    app.typing.stopped(peerId);
    app.lines.left.add(name || fallbackName(client ?? peerId));
    updateComposer(app);
  });
}

/** Says "connected" once per peer, and only once its channel has opened. */
function announceConnected(app, peerId) {
  if (app.announced.has(peerId) || !app.peers.get(peerId)?.opened) return;
  app.announced.add(peerId);
  app.lines.connected.add(nameOf(app, peerId));
  if (app.joiners.delete(peerId)) app.notifier.joined(nameOf(app, peerId));
}
