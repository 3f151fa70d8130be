// Wires the page together: what the signaling connection, the peer connections and the
// chat over them report goes to the page, and what the user does goes back to them.
import { Signaling, SocketEvent } from './signaling.js';
import { Peers, PeerState } from './peers.js';
import { Chat, MAX_TEXT_LENGTH } from './chat.js';
import { ChatEvent, PeerEvent, SignalingEvent, UserEvent } from './events.js';
import { UI } from './ui.js';
import { Notifier } from './notify.js';
import { Typing } from './typing.js';
import { registerServiceWorker } from './offline.js';
import { cleanName, fallbackName, loadName, saveName } from './names.js';
import { loadShareHistory, saveShareHistory } from './history.js';
import { lastRoom, lastRoomSecret, rememberRoom, roomIdFromUrl, shareLink, showRoomInAddressBar } from './room.js';
// Files, safety codes and private rooms: each module hooks itself into the page.
import { installFiles } from './files-ui.js';
import { installSafety } from './safety.js';
import { installSeal } from './seal.js';

const TURN_HINT = 'If you are on different networks, this server may need a TURN server (see ICE_SERVERS in the README).';
// A peer's hello, which names it, brings the "connected" line; should none come, the line
// comes this long after the channel opened, without the name.
const CONNECTED_LINE_DELAY_MS = 3000;

// TURN credentials expire (their username starts with the expiry, in unix seconds): the
// page fetches new ones once this share of their remaining life has passed, measured on
// the server's clock (the response's Date header), as the relay measures it. Never sooner
// than RTC_CONFIG_RETRY_MS, which is also the wait after a failed fetch; setTimeout takes
// at most 2^31-1 ms.
const RTC_CONFIG_REFRESH_AT = 0.8;
const RTC_CONFIG_RETRY_MS = 30_000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** The RTCConfiguration the operator set, and the server's time when it was made; null if
 * it cannot be had. */
async function loadRtcConfig() {
  try {
    const res = await fetch('/api/rtc-config', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const config = await res.json();
    if (!Array.isArray(config?.iceServers)) throw new Error('no iceServers in it');
    return { config, serverTime: Date.parse(res.headers.get('date')) || Date.now() };
  } catch (err) {
    console.warn('meshchat: could not fetch the RTC configuration, keeping the last one:', err.message);
    return null;
  }
}

/** Milliseconds from `now` until the first TURN credentials of `config` expire; null if
 * none do. */
function credentialsLeftMs(config, now) {
  const expiries = (config.iceServers ?? [])
    .map((server) => Number(String(server.username ?? '').split(':')[0]))
    .filter((t) => Number.isInteger(t) && t > 1e9);
  return expiries.length ? Math.min(...expiries) * 1000 - now : null;
}

/** Gives the peer connections made from now on a fresh RTCConfiguration, and schedules the
 * next one before its TURN credentials expire (or a retry, if this one failed). */
async function refreshRtcConfig(app) {
  clearTimeout(app.rtcRefresh);
  const loaded = await loadRtcConfig();
  let wait = RTC_CONFIG_RETRY_MS;
  if (loaded) {
    app.peers.setRtcConfig(loaded.config);
    const left = credentialsLeftMs(loaded.config, loaded.serverTime);
    if (left === null) return;
    wait = Math.max(left * RTC_CONFIG_REFRESH_AT, RTC_CONFIG_RETRY_MS);
  }
  app.rtcRefresh = setTimeout(() => refreshRtcConfig(app), Math.min(wait, MAX_TIMER_MS));
}

async function main() {
  const app = createApp();
  const requested = roomIdFromUrl();
  showStart(app, requested);
  followConnection(app);
  followRoom(app);
  followPeers(app);
  followMembers(app);
  followUser(app);
  followAttention(app);
  registerServiceWorker();
  installSeal(app);
  installSafety(app, (peerId) => nameOf(app, peerId));
  installFiles(app, (peerId) => nameOf(app, peerId));
  followNetwork(app);
  exposeTestHook(app);
  await enterRoom(app, requested);
}

/** The page's parts, and the little state their handlers share. */
function createApp() {
  const signaling = new Signaling();
  const peers = new Peers(signaling);
  return {
    ui: new UI(),
    signaling,
    peers,
    chat: new Chat(peers, signaling),
    notifier: new Notifier(),
    typing: new Typing(),
    myName: loadName(),
    left: false, // the user pressed Leave: the page stays, out of the room
    announced: new Set(), // peers whose "connected" line is out
    joiners: new Set(), // peers that joined after us, whose arrival is news
    healing: new Set(), // peers whose "reconnecting" line is out
    pending: new Map(), // by message id: how many peers it still waits for
    historyShown: false, // the "before you joined" line is out
    turnRefused: false, // the line saying why the relay server refused us is out
    rtcRefresh: null, // the timer that fetches the next RTCConfiguration
  };
}

/** Our name, and a way back to the last room when the address names none. */
function showStart({ ui, chat, myName }, requested) {
  ui.setOwnName(myName);
  chat.setName(myName);
  const share = loadShareHistory();
  ui.setShareHistory(share);
  chat.shareHistory = share;
  document.body.dataset.signaling = 'connecting';
  const last = lastRoom();
  if (!requested && last) ui.offerLastRoom(shareLink(last, lastRoomSecret()));
}

/** The connection to the server coming and going. */
function followConnection(app) {
  const { ui, signaling } = app;
  signaling.addEventListener(SignalingEvent.ONLINE, (e) => {
    document.body.dataset.signaling = 'online';
    ui.setOffline(false);
    ui.setStatus('Connected to the server.');
    if (e.detail.rejoin) {
      ui.addSystem('Reconnected to the server; rejoining the room.');
      // ICE server credentials may be short-lived: take fresh ones for the new connections.
      refreshRtcConfig(app);
    }
  });
  // Only a page that never reached the server says so at once: one that lost it says
  // so below, and Socket.IO keeps trying either way.
  signaling.addEventListener(SignalingEvent.UNREACHABLE, () => {
    if (document.body.dataset.signaling !== 'connecting' || app.left) return;
    ui.setOffline(true);
    ui.setStatus('Offline: cannot reach the server; trying again…');
  });
  if (!navigator.onLine) ui.setOffline(true);
  addEventListener('offline', () => app.left || ui.setOffline(true));
  addEventListener('online', () => document.body.dataset.signaling === 'online' && ui.setOffline(false));
  signaling.addEventListener(SignalingEvent.OFFLINE, () => {
    document.body.dataset.signaling = 'offline';
    if (app.left) return;
    ui.setStatus('Lost the server; reconnecting…');
    ui.addSystem('Lost the connection to the server. Open chats keep working; reconnecting…', { problem: true });
  });
}

/** The room we are in, and the requests about rooms that the server turned down. */
function followRoom(app) {
  const { ui, signaling } = app;
  signaling.addEventListener(SignalingEvent.ROOM, (e) => showRoom(app, e.detail));
  signaling.addEventListener(SignalingEvent.ROOM_FULL, () => {
    ui.showNotice('That room is full: it already has as many members as this server allows.', [
      { text: 'Start a new room', onClick: () => { ui.hideNotice(); signaling.createRoom(); } },
    ]);
    ui.setStatus('The room is full.');
  });
  signaling.addEventListener(SignalingEvent.REFUSED, (e) => {
    const { event, error, reason } = e.detail;
    if (event === SocketEvent.JOIN_ROOM || event === SocketEvent.CREATE_ROOM) {
      if (reason === 'room_full') return; // explained by room-full
      ui.addSystem(`The server refused to ${event === SocketEvent.JOIN_ROOM ? 'join the room' : 'create a room'}: ${error}.`, { problem: true });
    } else if (reason === 'not_in_your_rooms' || reason === 'undeliverable') {
      // A relay to a peer that has just left, or whose tab stopped reading: a normal race.
      console.debug(`meshchat: server refused ${event}: ${error}`);
    } else {
      console.warn(`meshchat: server refused ${event}: ${error}`);
    }
  });
}

/** Puts the room in the address bar and the invite link, and says how we got there. */
function showRoom(app, { roomId, created, requested, rejoin }) {
  const { ui } = app;
  const link = shareLink(roomId);
  showRoomInAddressBar(roomId);
  rememberRoom(roomId);
  ui.setRoom(link);
  document.body.dataset.roomId = roomId;
  ui.setStatus(created ? 'You are in a new room.' : 'You are in the room.');
  if (created && requested && requested !== roomId) {
    ui.showNotice(rejoin
      ? 'The room was gone when we reconnected (the server may have restarted), so here is a new one. Share its link again.'
      : 'That room no longer exists (everyone left it), so here is a new one. Share its link to invite people.');
  } else if (!rejoin) {
    ui.hideNotice();
  }
  if (!rejoin) ui.addSystem(created ? 'Room created. Share the invite link to bring people in.' : 'You joined the room; its members are connecting to you.');
  updateComposer(app);
}

/** Each connection to a peer: connecting, open, interrupted, failed. */
function followPeers(app) {
  const { ui, peers } = app;
  peers.addEventListener(PeerEvent.ADDED, (e) => {
    const { peerId, initiator, replacement } = e.detail;
    if (replacement) return; // we came back: the old connection works until this one opens
    if (initiator) app.joiners.add(peerId);
    ui.setMember(peerId, { name: fallbackName(peerId), state: PeerState.CONNECTING });
    ui.addSystem(initiator ? 'Someone joined; connecting…' : 'Connecting to a member…');
    updateComposer(app);
  });
  peers.addEventListener(PeerEvent.STATE, (e) => {
    const { peerId, state } = e.detail;
    ui.setMember(peerId, { state });
    if (state === PeerState.RECONNECTING && !app.healing.has(peerId)) {
      app.healing.add(peerId);
      ui.addSystem(`The connection to ${nameOf(app, peerId)} was interrupted; reconnecting… Messages to them wait until it is back.`, { problem: true });
    } else if (state !== PeerState.RECONNECTING && state !== PeerState.INTERRUPTED && app.healing.delete(peerId)) {
      if (state === PeerState.OPEN) ui.addSystem(`Connected to ${nameOf(app, peerId)} again.`);
    }
    updateComposer(app);
  });
  peers.addEventListener(PeerEvent.OPEN, (e) => {
    setTimeout(() => announceConnected(app, e.detail.peerId), CONNECTED_LINE_DELAY_MS);
  });
  peers.addEventListener(PeerEvent.FAILED, (e) => {
    ui.addSystem(`Could not connect to ${nameOf(app, e.detail.peerId)}. ${TURN_HINT}`, { problem: true });
  });
  peers.addEventListener(PeerEvent.TURN_REFUSED, (e) => explainTurnRefusal(app, e.detail));
}

/** Says once per page why the relay (TURN) server cannot be used. */
function explainTurnRefusal(app, { code, text }) {
  if (app.turnRefused) return;
  app.turnRefused = true;
  const detail = text ? `${code} ${text}` : `${code}`;
  app.ui.addSystem(
    `The relay (TURN) server refused this page (${detail}): its credentials may have expired or be wrong. Reload the page to get new ones.`,
    { problem: true },
  );
}

/** The members behind the connections: their names, comebacks, leaving and messages. */
function followMembers(app) {
  const { ui, chat } = app;
  chat.addEventListener(ChatEvent.NAMED, (e) => {
    const { peerId, name, oldName, hello } = e.detail;
    const shown = nameOf(app, peerId);
    ui.setMember(peerId, { name: shown });
    if (hello) announceConnected(app, peerId);
    else if (name !== oldName) ui.addSystem(`${oldName || 'A member without a name'} is now called ${shown}.`);
  });
  chat.addEventListener(ChatEvent.REJOINED, (e) => {
    const { peerId, oldId } = e.detail;
    ui.removeMember(oldId);
    app.announced.delete(oldId);
    app.announced.add(peerId);
    ui.setMember(peerId, { name: nameOf(app, peerId) });
    ui.addSystem(`${nameOf(app, peerId)} reconnected.`);
    updateComposer(app);
  });
  chat.addEventListener(ChatEvent.LEFT, (e) => {
    const { peerId, name, client } = e.detail;
    ui.removeMember(peerId);
    app.announced.delete(peerId);
    app.joiners.delete(peerId);
    app.typing.stopped(peerId);
    if (!app.left) ui.addSystem(`${name || fallbackName(client ?? peerId)} left.`);
    updateComposer(app);
  });
  chat.addEventListener(ChatEvent.MESSAGE, (e) => {
    const { peerId, id, text, at } = e.detail;
    app.typing.stopped(peerId);
    ui.addMessage({ author: nameOf(app, peerId), id, text, at, own: false });
    app.notifier.message(nameOf(app, peerId), text);
  });
  chat.addEventListener(ChatEvent.TYPING, (e) => app.typing.heard(e.detail.peerId));
  chat.addEventListener(ChatEvent.HISTORY, (e) => showHistory(app, e.detail));
  chat.addEventListener(ChatEvent.SENT, (e) => {
    for (const id of e.detail.ids) {
      const left = (app.pending.get(id) ?? 1) - 1;
      if (left > 0) {
        app.pending.set(id, left);
      } else if (app.pending.delete(id)) {
        ui.setMessageStatus(id, '');
      }
    }
  });
  chat.addEventListener(ChatEvent.UNDELIVERED, (e) => {
    const { name, client, peerId, ids } = e.detail;
    const who = name || fallbackName(client ?? peerId);
    for (const id of ids) {
      app.pending.delete(id);
      ui.setMessageStatus(id, `Not delivered to ${who}.`, { problem: true });
    }
  });
}

/** Messages from before we joined, as a peer gave them to us. */
function showHistory(app, { peerId, messages, done, refused }) {
  const { ui, chat } = app;
  for (const m of messages) {
    const own = m.client === chat.client;
    const author = own ? app.myName : (m.name || fallbackName(m.client ?? m.id));
    ui.addMessage({ author, text: m.text, at: new Date(m.at), own, id: m.id, history: true });
  }
  if (messages.length > 0 && !app.historyShown) {
    app.historyShown = true;
    ui.addSystem(`Earlier messages of the room, from before you joined, came from ${nameOf(app, peerId)}; they are marked "before you joined".`);
  }
  if (done && refused) ui.addSystem(`${nameOf(app, peerId)} does not share earlier messages with newcomers.`);
}

/** What the user does: send, rename, leave, close the page. */
function followUser(app) {
  const { ui, chat, peers } = app;
  ui.addEventListener(UserEvent.SEND, (e) => {
    const text = e.detail.text.slice(0, MAX_TEXT_LENGTH);
    const { id, at, sent, queued } = chat.sendText(text);
    if (sent + queued === 0) return updateComposer(app);
    if (queued > 0) app.pending.set(id, queued);
    const status = queued > 0 ? 'Waiting for a connection to come back…' : '';
    ui.addMessage({ author: app.myName, text, at, own: true, id, status });
    ui.clearMessage();
    app.typing.reset();
  });
  ui.addEventListener(UserEvent.TYPING, () => {
    if (app.typing.typed()) chat.sendTyping();
  });
  ui.addEventListener(UserEvent.SHARE_HISTORY, (e) => {
    chat.shareHistory = e.detail.on;
    saveShareHistory(e.detail.on);
  });
  ui.addEventListener(UserEvent.RENAME, (e) => {
    app.myName = cleanName(e.detail.name);
    saveName(app.myName);
    ui.setOwnName(app.myName);
    chat.setName(app.myName);
    ui.addSystem(app.myName ? `You are now called ${app.myName}.` : 'You are anonymous now.');
  });
  ui.addEventListener(UserEvent.LEAVE, () => leaveRoom(app));
  // Closing our connections as the page goes tells peers at once, instead of after
  // their ICE checks time out.
  addEventListener('pagehide', () => peers.closeAll());
}

/** What helps the user notice the room while looking elsewhere: who is typing, the unread
 * count, and desktop notifications if wanted. */
function followAttention(app) {
  const { ui, notifier, typing } = app;
  typing.addEventListener('change', (e) => ui.setTyping(e.detail.peerIds.map((id) => nameOf(app, id))));
  ui.setNotificationSettings(notifier.settings);
  ui.addEventListener(UserEvent.NOTIFY_DESKTOP, async (e) => ui.setNotificationSettings(await notifier.setDesktop(e.detail.on)));
  ui.addEventListener(UserEvent.NOTIFY_PRIVATE, (e) => ui.setNotificationSettings(notifier.setPrivate(e.detail.on)));
}

/** The network or the page coming back: connections that broke meanwhile are checked
 * and restarted at once, rather than after their timers. */
function followNetwork({ signaling, peers }) {
  addEventListener('online', () => peers.check());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') peers.check();
  });
  signaling.addEventListener(SignalingEvent.ONLINE, () => peers.check());
}

/** With `?test=1` only: lets browser tests start what a network change would. */
function exposeTestHook({ peers, chat }) {
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
  };
}

/** Closes every connection and offers a way back in. */
function leaveRoom(app) {
  const { ui, peers, signaling } = app;
  app.left = true;
  peers.closeAll();
  signaling.close();
  ui.clearMembers();
  ui.disableRoomControls();
  updateComposer(app);
  ui.setStatus('You left the room.');
  ui.addSystem('You left the room.');
  const actions = [{ text: 'Start a new room', href: '/' }];
  if (signaling.roomId) actions.unshift({ text: 'Rejoin the room', href: shareLink(signaling.roomId) });
  ui.showNotice('You left the room. The others no longer see you.', actions);
}

/** Connects once the ICE servers are known, and enters `requested` or a new room. */
async function enterRoom(app, requested) {
  updateComposer(app);
  await refreshRtcConfig(app);
  app.signaling.start(requested);
}

/** Enables the message box when someone can receive, or says why not. */
function updateComposer({ ui, signaling, peers, left }) {
  if (left) return ui.setComposer(false, 'You left the room.');
  const open = peers.openCount;
  const waiting = peers.list.filter((p) => p.state === PeerState.CONNECTING).length;
  const failed = peers.list.filter((p) => p.state === PeerState.FAILED).length;
  if (open > 0) return ui.setComposer(true, waiting > 0 ? `Still connecting to ${waiting} more.` : '');
  if (!signaling.roomId) return ui.setComposer(false, 'You can write once you are in a room and someone has connected.');
  if (waiting > 0) return ui.setComposer(false, `Connecting to ${waiting} ${waiting === 1 ? 'person' : 'people'}… you can write once a connection is open.`);
  if (failed > 0) return ui.setComposer(false, 'No connection could be made to anyone in the room, so there is nobody to send to.');
  ui.setComposer(false, 'Nobody else is here yet. Share the invite link; you can write once someone connects.');
}

/** Says "connected" once per peer, and only once its channel has opened. */
function announceConnected(app, peerId) {
  if (app.announced.has(peerId) || !app.peers.get(peerId)?.opened) return;
  app.announced.add(peerId);
  app.ui.addSystem(`Connected to ${nameOf(app, peerId)}.`);
  if (app.joiners.delete(peerId)) app.notifier.joined(nameOf(app, peerId));
}

/** How a member is shown. Unnamed ones are called after their page's client id, which
 * survives reconnects. */
function nameOf({ chat }, peerId) {
  const member = chat.member(peerId);
  return member?.name || fallbackName(member?.client ?? peerId);
}

main();
