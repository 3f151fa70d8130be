// The page's parts and the little state their handlers share, made once by main.js, and
// what several handlers ask of them: how a member is called, and what the message box says.
import { Chat } from './chat.js';
import { loadName, fallbackName } from './names.js';
import { Notifier } from './notify.js';
import { PeerState } from './peer.js';
import { Peers } from './peers.js';
import { RtcConfigSource } from './rtc-config.js';
import { Signaling } from './signaling.js';
import { Typing } from './typing.js';
import { UI } from './ui.js';

export function createApp() {
  const signaling = new Signaling();
  const peers = new Peers(signaling);
  return {
    ui: new UI(),
    signaling,
    peers,
    chat: new Chat(peers, signaling),
    notifier: new Notifier(),
    typing: new Typing(),
    // The ICE servers for the connections made from now on, kept fresh.
    rtcConfig: new RtcConfigSource((config) => peers.setRtcConfig(config)),
    myName: loadName(),
    left: false, // the user pressed Leave: the page stays, out of the room
    announced: new Set(), // peers whose "connected" line is out
    joiners: new Set(), // peers that joined after us, whose arrival is news
    healing: new Set(), // peers whose "reconnecting" line is out
    pending: new Map(), // by message id: how many peers it still waits for
    historyShown: false, // the "before you joined" line is out
    turnRefused: false, // the line saying why the relay server refused us is out
  };
}

/** How a member is shown. Unnamed ones are called after their page's client id, which
 * survives reconnects. */
export function nameOf({ chat }, peerId) {
  const member = chat.member(peerId);
  return member?.name || fallbackName(member?.client ?? peerId);
}

/** Enables the message box when someone can receive, or says why not. */
export function updateComposer({ ui, signaling, peers, left }) {
  const set = (enabled, hint) => ui.composer.set(enabled, hint);
  if (left) return set(false, 'You left the room.');
  const open = peers.openCount;
  const waiting = peers.list.filter((p) => p.state === PeerState.CONNECTING).length;
  const failed = peers.list.filter((p) => p.state === PeerState.FAILED).length;
  if (open > 0) return set(true, waiting > 0 ? `Still connecting to ${waiting} more.` : '');
  if (!signaling.roomId) return set(false, 'You can write once you are in a room and someone has connected.');
  if (waiting > 0) return set(false, `Connecting to ${waiting} ${waiting === 1 ? 'person' : 'people'}… you can write once a connection is open.`);
  if (failed > 0) return set(false, 'No connection could be made to anyone in the room, so there is nobody to send to.');
  set(false, 'Nobody else is here yet. Share the invite link; you can write once someone connects.');
}
