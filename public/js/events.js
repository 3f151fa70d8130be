// Every name of an event or message kind the page uses, one list per sender: first what
// goes over the wire (to the server, and to peers over data channels), then the DOM events
// the page's modules send each other (with what each carries in `detail`), which never
// leave the page.

// On the wire.

/** The Socket.IO events of our server (docs/PROTOCOL.md), named as it names them. */
export const SocketEvent = Object.freeze({
  CREATE_ROOM: 'create-room',
  JOIN_ROOM: 'join-room',
  ROOM_CREATED: 'room-created',
  ROOM_FULL: 'room-full',
  REQUEST_ERROR: 'request-error',
  NEW_USER_JOINED: 'new-user-joined',
  USER_DISCONNECTED: 'user-disconnected',
  OFFER: 'rtc-offer',
  ANSWER: 'rtc-answer',
  CANDIDATE: 'ice-candidate',
});

/**
 * The chat channel's messages, JSON objects with a `type`: {type:'hello', name, client,
 * caps} when a channel opens, {type:'name', name}, {type:'chat', id, at, text} (`at` in ms
 * since the epoch, by the sender's clock; pages before ids send only `text`), {type:'typing'}
 * while its sender types, {type:'ping'} answered by {type:'pong'}, and
 * {type:'history-request'} answered by one or more {type:'history', messages: [{id, at,
 * name, client, text}], done} (the last with `done: true`, or only {type:'history',
 * messages: [], done: true, refused: true}).
 *
 * To pages whose hello has Capability.CHAT_2 only (docs/web-client.md, "The chat
 * protocol"): a chat message may add `replyTo` (a message id) and `mentions` (client ids);
 * {type:'edit', id, rev, text} and {type:'delete', id, rev} from the message's author;
 * {type:'react', id, emoji, on, n}; history items add {rev, deleted, replyTo, mentions,
 * rich, reactions: [[emoji, client, n, on]]}.
 */
export const ChatMessage = Object.freeze({
  HELLO: 'hello',
  NAME: 'name',
  CHAT: 'chat',
  PING: 'ping',
  PONG: 'pong',
  TYPING: 'typing',
  HISTORY_REQUEST: 'history-request',
  HISTORY: 'history',
  EDIT: 'edit',
  DELETE: 'delete',
  REACT: 'react',
});

/** What a page can do beyond the first version of the chat protocol, said in its hello. */
export const Capability = Object.freeze({
  FILES: 'files', // takes part in file transfers (files.js)
  ICE_RESTART: 'ice-restart', // takes an ICE restart offer on an open connection
  HISTORY: 'history', // answers history-request
  CHAT_2: 'chat-2', // replies, mentions, edits, deletes and reactions (ChatMessage above)
});

/** Control messages on the files channel (JSON text; chunks are binary). */
export const FileMessage = Object.freeze({
  OFFER: 'offer', // sender: {n, name, size, mime}
  ACCEPT: 'accept', // receiver: {n}
  DECLINE: 'decline', // receiver: {n, reason?}
  END: 'end', // sender, after the last chunk: {n, sha256}
  DONE: 'done', // receiver: {n, ok}
  CANCEL_SEND: 'cancel-send', // sender: {n}
  CANCEL_RECEIVE: 'cancel-receive', // receiver: {n}
});

// Within the page.

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
  TYPING: 'member-typing', // {peerId}: the member is typing a message
  // {peerId, id, text, at, ...state}: a new message; `state` is what messageState() of
  // history.js gives (edits or reactions that came before it already applied)
  MESSAGE: 'message',
  // {peerId, messages: [{id, at, name, client, text, ...state}], done, refused}: messages
  // from before we joined that we did not have (`at` in ms, by the sender's clock), oldest
  // first
  HISTORY: 'history',
  CHANGED: 'message-changed', // {id, ...state}: a message was edited, deleted or reacted to
  SENT: 'sent', // {peerId, ids}: our queued messages went out once its connection was back
  // {peerId, name, client, ids}: queued ones that will not get there (the peer left, or
  // its connection failed)
  UNDELIVERED: 'undelivered',
});

/** From Files; each carries {transfer} unless said otherwise. */
export const FilesEvent = Object.freeze({
  TRANSFER: 'transfer', // a new transfer, or a change of its state
  PROGRESS: 'transfer-progress', // more bytes moved
  CAPABLE: 'files-capable', // {peerId}: the peer can receive files now
});

/** From Typing. */
export const TypingEvent = Object.freeze({
  CHANGE: 'change', // {peerIds}: those typing now, in the order they started
});

/** From UI: what the user asked for. */
export const UserEvent = Object.freeze({
  SEND: 'send', // {text, replyTo}: replyTo the id of the message answered, or null
  EDIT: 'edit', // {id, text}: new text for one of our messages
  DELETE: 'delete', // {id}: take back one of our messages
  REACT: 'react', // {id, emoji}: add our reaction, or take it back if it is there
  REPLY_TO: 'reply-to', // {id}: the user wants to answer this message
  START_EDIT: 'start-edit', // {id}: the user wants to edit this message of ours ('' for the last)
  RENAME: 'rename', // {name}
  LEAVE: 'leave', // {}
  TYPING: 'typing', // {}: the user typed in the message box
  NOTIFY_DESKTOP: 'notify-desktop', // {on}: desktop notifications wanted or not (from a click)
  NOTIFY_PRIVATE: 'notify-private', // {on}: notifications without names and text
  SHARE_HISTORY: 'share-history', // {on}: give newcomers the messages we have seen
});
