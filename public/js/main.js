// Wires the page together: fetches the RTC configuration, enters a room, builds the mesh
// and keeps the page's text in step with what happens.
import { Signaling, SocketEvent } from './signaling.js';
import { Peers, PeerState } from './peers.js';
import { Chat, MAX_TEXT_LENGTH } from './chat.js';
import { ChatEvent, PeerEvent, SignalingEvent, UserEvent } from './events.js';
import { UI } from './ui.js';
import { cleanName, fallbackName, loadName, saveName } from './names.js';
import { lastRoom, rememberRoom, roomIdFromUrl, shareLink, showRoomInAddressBar } from './room.js';

const TURN_HINT = 'If you are on different networks, this server may need a TURN server (see ICE_SERVERS in the README).';
const CONNECTED_LINE_DELAY_MS = 3000;

/** The RTCConfiguration the operator set; no ICE servers if it cannot be had. */
async function loadRtcConfig() {
  try {
    const res = await fetch('/api/rtc-config', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const config = await res.json();
    return Array.isArray(config?.iceServers) ? config : {};
  } catch (err) {
    console.warn('meshchat: no RTC configuration, using host candidates only:', err.message);
    return {};
  }
}

async function main() {
  const ui = new UI();
  const signaling = new Signaling();
  const peers = new Peers(signaling);
  const chat = new Chat(peers, signaling);
  let myName = loadName();
  let left = false;
  const announced = new Set(); // peers whose "connected" line is out
  // Unnamed peers are called after their page's client id, which survives reconnects.
  const nameOf = (peerId) => {
    const member = chat.member(peerId);
    return member?.name || fallbackName(member?.client ?? peerId);
  };

  ui.setOwnName(myName);
  chat.setName(myName);
  document.body.dataset.signaling = 'connecting';

  const requested = roomIdFromUrl();
  const last = lastRoom();
  if (!requested && last) ui.offerLastRoom(shareLink(last));

  function updateComposer() {
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

  // ---- signaling ----
  signaling.addEventListener(SignalingEvent.ONLINE, (e) => {
    document.body.dataset.signaling = 'online';
    ui.setStatus('Connected to the server.');
    if (e.detail.rejoin) {
      ui.addSystem('Reconnected to the server; rejoining the room.');
      // ICE server credentials may be short-lived: take fresh ones for the new connections.
      loadRtcConfig().then((config) => peers.setRtcConfig(config));
    }
  });
  signaling.addEventListener(SignalingEvent.OFFLINE, () => {
    document.body.dataset.signaling = 'offline';
    if (left) return;
    ui.setStatus('Lost the server; reconnecting…');
    ui.addSystem('Lost the connection to the server. Open chats keep working; reconnecting…', { problem: true });
  });
  signaling.addEventListener(SignalingEvent.ROOM, (e) => {
    const { roomId, created, requested: asked, rejoin } = e.detail;
    const link = shareLink(roomId);
    showRoomInAddressBar(roomId);
    rememberRoom(roomId);
    ui.setRoom(link);
    document.body.dataset.roomId = roomId;
    ui.setStatus(created ? 'You are in a new room.' : 'You are in the room.');
    if (created && asked && asked !== roomId) {
      ui.showNotice(rejoin
        ? 'The room was gone when we reconnected (the server may have restarted), so here is a new one. Share its link again.'
        : 'That room no longer exists (everyone left it), so here is a new one. Share its link to invite people.');
    } else if (!rejoin) {
      ui.hideNotice();
    }
    if (!rejoin) ui.addSystem(created ? 'Room created. Share the invite link to bring people in.' : 'You joined the room; its members are connecting to you.');
    updateComposer();
  });
  signaling.addEventListener(SignalingEvent.ROOM_FULL, (e) => {
    ui.showNotice('That room is full: it already has as many members as this server allows.', [
      { text: 'Start a new room', onClick: () => { ui.hideNotice(); signaling.createRoom(); } },
    ]);
    ui.setStatus('The room is full.');
    document.body.dataset.roomFull = e.detail.roomId;
  });
  signaling.addEventListener(SignalingEvent.REFUSED, (e) => {
    const { event, error } = e.detail;
    // Relays to a peer that has just left are refused in normal races: not worth a line.
    if (event === SocketEvent.JOIN_ROOM || event === SocketEvent.CREATE_ROOM) {
      if (/full/.test(error)) return; // explained by room-full
      ui.addSystem(`The server refused to ${event === SocketEvent.JOIN_ROOM ? 'join the room' : 'create a room'}: ${error}.`, { problem: true });
    } else {
      console.warn(`meshchat: server refused ${event}: ${error}`);
    }
  });

  // ---- peers ----
  peers.addEventListener(PeerEvent.ADDED, (e) => {
    const { peerId, initiator, replacement } = e.detail;
    if (replacement) return; // we came back: the old connection works until this one opens
    ui.setMember(peerId, { name: fallbackName(peerId), state: PeerState.CONNECTING });
    ui.addSystem(initiator ? 'Someone joined; connecting…' : 'Connecting to a member…');
    updateComposer();
  });
  peers.addEventListener(PeerEvent.STATE, (e) => {
    ui.setMember(e.detail.peerId, { state: e.detail.state });
    updateComposer();
  });
  peers.addEventListener(PeerEvent.OPEN, (e) => {
    const { peerId } = e.detail;
    // Say "connected" with the peer's name, which its hello brings right after opening.
    setTimeout(() => announceConnected(peerId), CONNECTED_LINE_DELAY_MS);
  });
  chat.addEventListener(ChatEvent.NAMED, (e) => {
    const { peerId, name, oldName, hello } = e.detail;
    const shown = nameOf(peerId);
    ui.setMember(peerId, { name: shown });
    if (hello) announceConnected(peerId);
    else if (name !== oldName) ui.addSystem(`${oldName || 'A member without a name'} is now called ${shown}.`);
  });
  chat.addEventListener(ChatEvent.REJOINED, (e) => {
    const { peerId, oldId } = e.detail;
    ui.removeMember(oldId);
    announced.delete(oldId);
    announced.add(peerId);
    ui.setMember(peerId, { name: nameOf(peerId) });
    ui.addSystem(`${nameOf(peerId)} reconnected.`);
    updateComposer();
  });
  peers.addEventListener(PeerEvent.FAILED, (e) => {
    ui.addSystem(`Could not connect to ${nameOf(e.detail.peerId)}. ${TURN_HINT}`, { problem: true });
  });
  chat.addEventListener(ChatEvent.LEFT, (e) => {
    const { peerId, name, client } = e.detail;
    ui.removeMember(peerId);
    announced.delete(peerId);
    if (!left) ui.addSystem(`${name || fallbackName(client ?? peerId)} left.`);
    updateComposer();
  });
  chat.addEventListener(ChatEvent.MESSAGE, (e) => {
    const { peerId, text, at } = e.detail;
    ui.addMessage({ author: nameOf(peerId), text, at, own: false });
  });

  function announceConnected(peerId) {
    if (announced.has(peerId) || !peers.get(peerId)?.opened) return;
    announced.add(peerId);
    ui.addSystem(`Connected to ${nameOf(peerId)}.`);
  }

  // ---- the user ----
  ui.addEventListener(UserEvent.SEND, (e) => {
    const text = e.detail.text.slice(0, MAX_TEXT_LENGTH);
    if (chat.sendText(text) === 0) return updateComposer();
    ui.addMessage({ author: myName, text, at: new Date(), own: true });
    ui.clearMessage();
  });
  ui.addEventListener(UserEvent.RENAME, (e) => {
    myName = cleanName(e.detail.name);
    saveName(myName);
    ui.setOwnName(myName);
    chat.setName(myName);
    ui.addSystem(myName ? `You are now called ${myName}.` : 'You are anonymous now.');
  });
  ui.addEventListener(UserEvent.LEAVE, () => {
    left = true;
    peers.closeAll();
    signaling.close();
    ui.clearMembers();
    ui.disableRoomControls();
    updateComposer();
    ui.setStatus('You left the room.');
    ui.addSystem('You left the room.');
    const actions = [{ text: 'Start a new room', href: '/' }];
    if (signaling.roomId) actions.unshift({ text: 'Rejoin the room', href: shareLink(signaling.roomId) });
    ui.showNotice('You left the room. The others no longer see you.', actions);
  });

  // Closing our connections as the page goes tells peers at once, instead of after
  // their ICE checks time out.
  addEventListener('pagehide', () => peers.closeAll());

  updateComposer();
  peers.setRtcConfig(await loadRtcConfig());
  signaling.start(requested);
}

main();
