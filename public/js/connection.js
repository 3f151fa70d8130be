// The server connection and the room as the page tells them: connecting, going offline
// and back, the room we are in (in the address bar and the invite link), refusals, and
// leaving. Network changes make the peer connections look at themselves at once.
import { SignalingEvent, SocketEvent, UserEvent } from './events.js';
import { updateComposer } from './app.js';
import { lastRoom, lastRoomSecret, rememberRoom, shareLink, showRoomInAddressBar } from './room.js';

/** Hooks the connection and the room into the page of `app` (app.js); `requested` is the
 * room the address names, or null. */
export function installConnection(app, requested) {
  const { ui, signaling, peers } = app;
  document.body.dataset.signaling = 'connecting';
  const last = lastRoom();
  if (!requested && last) ui.offerLastRoom(shareLink(last, lastRoomSecret()));
  followServer(app);
  followRoom(app);
  ui.addEventListener(UserEvent.LEAVE, () => leaveRoom(app));
  // Closing our connections as the page goes tells peers at once, instead of after
  // their ICE checks time out.
  addEventListener('pagehide', () => peers.closeAll());
  // The network or the page coming back: connections that broke meanwhile are checked
  // and restarted at once, rather than after their timers.
  addEventListener('online', () => peers.check());
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') peers.check();
  });
  signaling.addEventListener(SignalingEvent.ONLINE, () => peers.check());
}

/** Connects once the ICE servers are known, and enters `requested` or a new room. */
export async function enterRoom(app, requested) {
  updateComposer(app);
  await app.rtcConfig.refresh();
  app.signaling.start(requested);
}

/** The connection to the server coming and going. */
function followServer(app) {
  const { ui, signaling } = app;
  signaling.addEventListener(SignalingEvent.ONLINE, (e) => {
    document.body.dataset.signaling = 'online';
    ui.setOffline(false);
    ui.setStatus('Connected to the server.');
    if (e.detail.rejoin) {
      ui.log.addSystem('Reconnected to the server; rejoining the room.');
      // ICE server credentials may be short-lived: take fresh ones for the new connections.
      app.rtcConfig.refresh();
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
    ui.log.addSystem('Lost the connection to the server. Open chats keep working; reconnecting…', { problem: true });
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
      if (reason === 'unavailable' && event === SocketEvent.JOIN_ROOM) return; // signaling.js tries again
      ui.log.addSystem(`The server refused to ${event === SocketEvent.JOIN_ROOM ? 'join the room' : 'create a room'}: ${error}.`, { problem: true });
    } else if (reason === 'not_in_your_rooms' || reason === 'undeliverable' || reason === 'unavailable') {
      // A relay to a peer that has just left, or whose tab stopped reading: a normal race.
      // One the cluster could not take for a moment is as lost as one sent while our
      // signaling was cut: an unanswered offer goes again (negotiation.js), and its answer.
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
  if (!rejoin) ui.log.addSystem(created ? 'Room created. Share the invite link to bring people in.' : 'You joined the room; its members are connecting to you.');
  updateComposer(app);
}

/** Closes every connection and offers a way back in. */
function leaveRoom(app) {
  const { ui, peers, signaling } = app;
  app.left = true;
  peers.closeAll();
  signaling.close();
  ui.members.clear();
  ui.disableRoomControls();
  updateComposer(app);
  ui.setStatus('You left the room.');
  ui.log.addSystem('You left the room.');
  const actions = [{ text: 'Start a new room', href: '/' }];
  if (signaling.roomId) actions.unshift({ text: 'Rejoin the room', href: shareLink(signaling.roomId) });
  ui.showNotice('You left the room. The others no longer see you.', actions);
}
