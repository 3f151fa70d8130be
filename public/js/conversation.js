// The conversation as the page runs it: sending what the user writes and showing how it
// went, replies, edits, deletes and reactions, showing others' messages and those from
// before we joined, who is typing, and getting the user's attention (unread count,
// notifications, mentions).
import { ChatEvent, TypingEvent, UserEvent } from './events.js';
import { nameOf, updateComposer } from './app.js';
import { loadShareHistory, saveShareHistory } from './history.js';
import { MAX_TEXT_LENGTH } from './messages.js';
import { fallbackName } from './names.js';

/** Hooks the conversation into the page of `app` (app.js). */
export function installConversation(app) {
  const { ui, chat } = app;
  const share = loadShareHistory();
  ui.setShareHistory(share);
  chat.shareHistory = share;
  ui.addEventListener(UserEvent.SHARE_HISTORY, (e) => {
    chat.shareHistory = e.detail.on;
    saveShareHistory(e.detail.on);
  });
  followOurs(app);
  followChanges(app);
  followTheirs(app);
  followAttention(app);
}

/** What the user writes: sent, and marked until every peer has it. */
function followOurs(app) {
  const { ui, chat } = app;
  ui.addEventListener(UserEvent.SEND, (e) => {
    const text = e.detail.text.slice(0, MAX_TEXT_LENGTH);
    const { replyTo } = e.detail;
    const { id, at, sent, queued } = chat.sendText(text, replyTo);
    if (sent + queued === 0) return updateComposer(app);
    if (queued > 0) app.pending.set(id, queued);
    const status = queued > 0 ? 'Waiting for a connection to come back…' : '';
    ui.log.addMessage({ author: app.myName, text, at, own: true, id, status, replyTo, rich: true });
    ui.composer.clear();
    app.typing.reset();
  });
  ui.addEventListener(UserEvent.TYPING, () => {
    if (app.typing.typed()) chat.sendTyping();
  });
  chat.addEventListener(ChatEvent.SENT, (e) => {
    for (const id of e.detail.ids) {
      const left = (app.pending.get(id) ?? 1) - 1;
      if (left > 0) {
        app.pending.set(id, left);
      } else if (app.pending.delete(id)) {
        ui.log.setMessageStatus(id, '');
      }
    }
  });
  chat.addEventListener(ChatEvent.UNDELIVERED, (e) => {
    const { name, client, peerId, ids } = e.detail;
    const who = name || fallbackName(client ?? peerId);
    for (const id of ids) {
      app.pending.delete(id);
      ui.log.setMessageStatus(id, `Not delivered to ${who}.`, { problem: true });
    }
  });
}

/** Replies, edits, deletes and reactions: the user's, and everyone's as they come. */
function followChanges(app) {
  const { ui, chat } = app;
  ui.composer.setNames(() => app.peers.list.map((p) => chat.member(p.id)?.name).filter(Boolean));
  ui.addEventListener(UserEvent.REPLY_TO, (e) => {
    const quoted = ui.log.quoteOf(e.detail.id);
    if (quoted) ui.composer.replyTo({ id: e.detail.id, author: quoted.author, text: quoted.text });
  });
  ui.addEventListener(UserEvent.START_EDIT, (e) => {
    const id = e.detail.id || ui.log.lastOwnId();
    const quoted = id && ui.log.quoteOf(id);
    if (quoted && !quoted.deleted) ui.composer.startEdit({ id, text: quoted.text });
  });
  ui.addEventListener(UserEvent.EDIT, (e) => {
    chat.editText(e.detail.id, e.detail.text.slice(0, MAX_TEXT_LENGTH));
    ui.composer.clear();
  });
  ui.addEventListener(UserEvent.DELETE, (e) => chat.deleteMessage(e.detail.id));
  ui.addEventListener(UserEvent.REACT, (e) => chat.react(e.detail.id, e.detail.emoji));
  chat.addEventListener(ChatEvent.CHANGED, (e) => ui.log.updateMessage(e.detail.id, view(app, e.detail)));
}

/** A message's state from Chat as the log shows it: reactors by name. */
function view(app, state) {
  const { chat } = app;
  const nameOfClient = (c) => (c === chat.client ? 'You' : chat.nameOfClient(c) || fallbackName(c));
  return {
    ...state,
    me: app.myName,
    reactions: (state.reactions ?? []).map(({ emoji, clients }) => ({
      emoji, names: clients.map(nameOfClient).sort((a, b) => a.localeCompare(b)), mine: clients.includes(chat.client),
    })),
  };
}

/** What the others write, now and from before we joined. */
function followTheirs(app) {
  const { ui, chat } = app;
  chat.addEventListener(ChatEvent.MESSAGE, (e) => {
    const { peerId, id, at } = e.detail;
    app.typing.stopped(peerId);
    const author = nameOf(app, peerId);
    ui.log.addMessage({ ...view(app, e.detail), author, id, at, own: false });
    if (e.detail.mentionsMe) app.notifier.mentioned(author, e.detail.text, id);
    else app.notifier.message(author, e.detail.text);
  });
  chat.addEventListener(ChatEvent.TYPING, (e) => app.typing.heard(e.detail.peerId));
  chat.addEventListener(ChatEvent.HISTORY, (e) => showHistory(app, e.detail));
}

/** Messages from before we joined, as a peer gave them to us. */
function showHistory(app, { peerId, messages, done, refused }) {
  const { ui, chat } = app;
  for (const m of messages) {
    const own = m.client === chat.client;
    const author = own ? app.myName : (m.name || fallbackName(m.client ?? m.id));
    ui.log.addMessage({ ...view(app, m), author, at: new Date(m.at), own, id: m.id, history: true });
  }
  if (messages.length > 0 && !app.historyShown) {
    app.historyShown = true;
    ui.log.addSystem(`Earlier messages of the room, from before you joined, came from ${nameOf(app, peerId)}; they are marked "before you joined".`);
  }
  if (done && refused) ui.log.addSystem(`${nameOf(app, peerId)} does not share earlier messages with newcomers.`);
}

/** What helps the user notice the room while looking elsewhere: who is typing, the unread
 * count, and desktop notifications if wanted. */
function followAttention(app) {
  const { ui, notifier, typing } = app;
  typing.addEventListener(TypingEvent.CHANGE, (e) => ui.composer.setTyping(e.detail.peerIds.map((id) => nameOf(app, id))));
  ui.setNotificationSettings(notifier.settings);
  ui.addEventListener(UserEvent.NOTIFY_DESKTOP, async (e) => ui.setNotificationSettings(await notifier.setDesktop(e.detail.on)));
  ui.addEventListener(UserEvent.NOTIFY_PRIVATE, (e) => ui.setNotificationSettings(notifier.setPrivate(e.detail.on)));
}
