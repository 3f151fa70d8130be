// The names of the DOM events the page's modules send each other, one list per sender,
// with what each carries in `detail`. They never leave the page.

/** From Signaling. */
export const SignalingEvent = Object.freeze({
  ONLINE: 'online', // {rejoin}: connected; `rejoin` after a reconnect
  UNREACHABLE: 'unreachable', // {}: an attempt to connect failed (server down, or no network)
  OFFLINE: 'offline', // {}: the connection to the server dropped
  // {roomId, created, requested, rejoin}: we are in `roomId`; `created` means a new room,
  // so when `requested` differs the link was stale
  ROOM: 'room',
  ROOM_FULL: 'room-full', // {roomId}
  REFUSED: 'refused', // {event, error, reason}: the server turned down `event` (`reason`: its stable name)
  PEER_JOINED: 'peer-joined', // {peerId}
  PEER_LEFT: 'peer-left', // {peerId}: its signaling connection ended
  SIGNAL: 'signal', // {kind, from, payload}: an offer, answer or ICE candidate
  // {from, sealed}: signaling dropped because it was sealed with a room key we lack, or
  // (in a private room) not sealed with ours
  UNREADABLE: 'signal-unreadable',
});

/** From Peers. `state` is a PeerState. */
export const PeerEvent = Object.freeze({
  // {peerId, initiator, replacement}: a new connection; `replacement` when it replaces an
  // older one to the same peer id, which stays in use until this one opens
  ADDED: 'peer-added',
  STATE: 'peer-state', // {peerId, state}
  OPEN: 'peer-open', // {peerId}: its data channel opened
  FAILED: 'peer-failed', // {peerId}
  REMOVED: 'peer-removed', // {peerId}
  DATA: 'peer-data', // {peerId, channel, data}: a message on one of its channels
  // {url, code, text}: a TURN server turned a request down (`code` 300-699); the
  // connection may still work through another route
  TURN_REFUSED: 'turn-refused',
});

/** From Chat: the members behind the connections and what they say. */
export const ChatEvent = Object.freeze({
  // {peerId, name, oldName, hello}: the member told us its name; `hello` when it came
  // with the channel's greeting rather than a change of name
  NAMED: 'member-named',
  REJOINED: 'member-rejoined', // {peerId, oldId}: the member behind `oldId` came back as `peerId`
  LEFT: 'member-left', // {peerId, name, client}
  MESSAGE: 'message', // {peerId, text, at}
  TYPING: 'member-typing', // {peerId}: the member is typing a message
  MESSAGE: 'message', // {peerId, id, text, at}
  // {peerId, messages: [{id, at, name, client, text}], done, refused}: messages from
  // before we joined that we did not have (`at` in ms, by the sender's clock), oldest first
  HISTORY: 'history',
  SENT: 'sent', // {peerId, ids}: our queued messages went out once its connection was back
  UNDELIVERED: 'undelivered', // {peerId, name, client, ids}: queued ones that will not
});

/** From UI: what the user asked for. */
export const UserEvent = Object.freeze({
  SEND: 'send', // {text}
  RENAME: 'rename', // {name}
  LEAVE: 'leave', // {}
  TYPING: 'typing', // {}: the user typed in the message box
  NOTIFY_DESKTOP: 'notify-desktop', // {on}: desktop notifications wanted or not (from a click)
  NOTIFY_PRIVATE: 'notify-private', // {on}: notifications without names and text
  SHARE_HISTORY: 'share-history', // {on}: give newcomers the messages we have seen
});
