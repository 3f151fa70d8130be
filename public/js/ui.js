// The page: renders the conversation, the member list and the controls, and reports what
// the user does. All text from peers and the server goes in as text, never as HTML.
import { UserEvent } from './events.js';
import { PeerState } from './peers.js';

const STATE_LABELS = {
  [PeerState.CONNECTING]: 'connecting…',
  [PeerState.OPEN]: 'connected',
  [PeerState.INTERRUPTED]: 'connection interrupted',
  [PeerState.RECONNECTING]: 'reconnecting…',
  [PeerState.FAILED]: 'could not connect',
};

/** Emits the UserEvents of events.js. */
export class UI extends EventTarget {
  #doc;
  #status;
  #notice;
  #noticeText;
  #noticeActions;
  #log;
  #messageInput;
  #sendButton;
  #hint;
  #memberList;
  #memberCount;
  #selfName;
  #nameInput;
  #linkInput;
  #shareButton;
  #shareResult;
  #leaveButton;
  #lastRoom;
  #lastRoomLink;
  #membersToggle;
  #membersToggleCount;
  #typing;
  #offline;
  #notifyDesktop;
  #notifyPrivate;
  #notifyHint;
  #pinned = true; // the log shows its end, and keeps showing it as lines come
  #shareHistory;

  constructor(doc = document) {
    super();
    const $ = (id) => doc.getElementById(id);
    this.#doc = doc;
    this.#status = $('status');
    this.#notice = $('notice');
    this.#noticeText = $('notice-text');
    this.#noticeActions = $('notice-actions');
    this.#log = $('log');
    this.#messageInput = $('message');
    this.#sendButton = $('send');
    this.#hint = $('message-hint');
    this.#memberList = $('members');
    this.#memberCount = $('member-count');
    this.#selfName = $('self-name');
    this.#nameInput = $('name');
    this.#linkInput = $('link');
    this.#shareButton = $('share');
    this.#shareResult = $('share-result');
    this.#leaveButton = $('leave');
    this.#lastRoom = $('last-room');
    this.#lastRoomLink = $('last-room-link');
    this.#membersToggle = $('members-toggle');
    this.#membersToggleCount = $('members-toggle-count');
    this.#typing = $('typing');
    this.#offline = $('offline');
    this.#notifyDesktop = $('notify-desktop');
    this.#notifyPrivate = $('notify-private');
    this.#notifyHint = $('notify-hint');
    this.#shareHistory = $('share-history');

    $('composer').addEventListener('submit', (e) => {
      e.preventDefault();
      const text = this.#messageInput.value;
      if (!text.trim() || this.#messageInput.disabled) return;
      this.#emit(UserEvent.SEND, { text });
    });
    $('name-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.#emit(UserEvent.RENAME, { name: this.#nameInput.value });
    });
    this.#shareButton.addEventListener('click', () => this.#copyLink());
    this.#leaveButton.addEventListener('click', () => this.#emit(UserEvent.LEAVE, {}));
    this.#linkInput.addEventListener('focus', () => this.#linkInput.select());
    this.#messageInput.addEventListener('input', () => {
      if (this.#messageInput.value.trim()) this.#emit(UserEvent.TYPING, {});
    });
    this.#membersToggle.addEventListener('click', () => this.#showMembers(this.#membersToggle.ariaExpanded !== 'true'));
    doc.addEventListener('keydown', (e) => {
      if (e.key === 'Escape' && this.#membersToggle.ariaExpanded === 'true') {
        this.#showMembers(false);
        this.#membersToggle.focus();
      }
    });
    this.#notifyDesktop.addEventListener('change', () => this.#emit(UserEvent.NOTIFY_DESKTOP, { on: this.#notifyDesktop.checked }));
    this.#notifyPrivate.addEventListener('change', () => this.#emit(UserEvent.NOTIFY_PRIVATE, { on: this.#notifyPrivate.checked }));
    followKeyboard(doc);
    this.#log.addEventListener('scroll', () => {
      this.#pinned = this.#log.scrollHeight - this.#log.scrollTop - this.#log.clientHeight < 40;
    }, { passive: true });
    // The on-screen keyboard coming up shrinks the log: its end stays in view.
    new ResizeObserver(() => {
      if (this.#pinned) this.#log.scrollTop = this.#log.scrollHeight;
    }).observe(this.#log);
    this.#shareHistory.addEventListener('change', () => this.#emit(UserEvent.SHARE_HISTORY, { on: this.#shareHistory.checked }));
  }

  setShareHistory(on) {
    this.#shareHistory.checked = on;
  }

  setStatus(text) {
    this.#status.textContent = text;
  }

  /** Shows an explanation with optional links: [{text, href}] or buttons: [{text, onClick}]. */
  showNotice(text, actions = []) {
    this.#noticeText.textContent = text;
    this.#noticeActions.replaceChildren(...actions.map((a) => {
      const el = this.#doc.createElement(a.href ? 'a' : 'button');
      el.textContent = a.text;
      if (a.href) el.href = a.href;
      else {
        el.type = 'button';
        el.addEventListener('click', a.onClick);
      }
      return el;
    }));
    this.#notice.hidden = false;
  }

  hideNotice() {
    this.#notice.hidden = true;
  }

  /** Shows or hides the banner saying that the server cannot be reached. */
  setOffline(offline) {
    this.#offline.hidden = !offline;
    this.#doc.body.dataset.offline = String(offline);
  }

  /** "Ada is typing…" for the names given; nothing for none. */
  setTyping(names) {
    const [a, b] = names;
    let text = '';
    if (names.length === 1) text = `${a} is typing…`;
    else if (names.length === 2) text = `${a} and ${b} are typing…`;
    else if (names.length > 2) text = `${names.length} people are typing…`;
    this.#typing.textContent = text;
  }

  /** The notification choices as the notifier holds them: {desktop, private, permission}. */
  setNotificationSettings({ desktop, private: hidden, permission }) {
    this.#notifyDesktop.checked = desktop;
    this.#notifyDesktop.disabled = permission === 'unsupported' || permission === 'denied';
    this.#notifyPrivate.checked = hidden;
    const hints = {
      unsupported: 'This browser offers no notifications here (on iPhone, add meshchat to the home screen first).',
      denied: 'Notifications are blocked for this site in the browser\'s settings.',
    };
    this.#notifyHint.textContent = hints[permission] ?? (desktop
      ? 'You get a notification for each message and join while this tab is in the background.'
      : 'While this tab is in the background, its title counts new messages.');
  }

  setRoom(link) {
    this.#linkInput.value = link;
    this.#shareButton.disabled = false;
    this.#leaveButton.disabled = false;
    this.#doc.body.dataset.roomLink = link;
  }

  /** Offers the last room this browser was in (when it is not the current one). */
  offerLastRoom(link) {
    this.#lastRoomLink.href = link;
    this.#lastRoom.hidden = false;
  }

  setOwnName(name) {
    this.#nameInput.value = name;
    this.#selfName.textContent = name ? `${name} (you)` : 'You';
  }

  /** Appends a chat message; `own` marks ours, `id` lets its status be set later. One
   * from before we joined (`history`) goes among the others of its kind, by time, above
   * everything that happened since. */
  addMessage({ author, text, at, own, id, history = false, status = '' }) {
    const li = this.#doc.createElement('li');
    li.className = own ? 'message own' : 'message';
    if (id) li.dataset.messageId = id;
    const meta = this.#doc.createElement('p');
    meta.className = 'meta';
    const who = this.#doc.createElement('span');
    who.className = 'author';
    who.textContent = own ? (author ? `${author} (you)` : 'You') : author;
    const time = this.#doc.createElement('time');
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    meta.append(who, time);
    const body = this.#doc.createElement('p');
    body.className = 'text';
    body.textContent = text;
    const state = this.#doc.createElement('p');
    state.className = 'delivery';
    state.textContent = status;
    li.append(meta, body, state);
    if (!history) return this.#append(li);
    li.classList.add('history');
    li.dataset.at = String(at.getTime());
    const mark = this.#doc.createElement('span');
    mark.className = 'history-mark';
    mark.textContent = 'before you joined';
    meta.append(mark);
    const older = [...this.#log.querySelectorAll('li.history')];
    const later = older.find((el) => Number(el.dataset.at) > at.getTime());
    if (later) later.before(li);
    else if (older.length > 0) older[older.length - 1].after(li);
    else this.#log.prepend(li);
  }

  /** Says what became of one of our messages ('' once it went out everywhere). */
  setMessageStatus(id, text, { problem = false } = {}) {
    const li = [...this.#log.querySelectorAll('li[data-message-id]')].find((el) => el.dataset.messageId === id);
    if (!li) return;
    const state = li.querySelector('.delivery');
    state.textContent = text;
    state.classList.toggle('problem', problem);
  }

  /** Appends a system line; `problem` marks failures. */
  addSystem(text, { problem = false } = {}) {
    const li = this.#doc.createElement('li');
    li.className = problem ? 'system problem' : 'system';
    li.textContent = text;
    this.#append(li);
  }

  /** Adds or updates a member's entry. Its `data-state` is the connection state. */
  setMember(peerId, { name, state }) {
    let li = this.#member(peerId);
    if (!li) {
      li = this.#doc.createElement('li');
      li.className = 'member';
      li.dataset.peerId = peerId;
      const n = this.#doc.createElement('span');
      n.className = 'member-name';
      const s = this.#doc.createElement('span');
      s.className = 'member-state';
      li.append(n, s);
      this.#memberList.append(li);
    }
    if (name !== undefined) li.querySelector('.member-name').textContent = name;
    if (state !== undefined) {
      li.dataset.state = state;
      li.querySelector('.member-state').textContent = STATE_LABELS[state] ?? state;
    }
    this.#updateCount();
  }

  /** A member's entry, for modules that add to it (safety.js, files-ui.js), or undefined. */
  memberElement(peerId) {
    return this.#member(peerId);
  }

  removeMember(peerId) {
    this.#member(peerId)?.remove();
    this.#updateCount();
  }

  clearMembers() {
    for (const li of this.#memberList.querySelectorAll('li[data-peer-id]')) li.remove();
    this.#updateCount();
  }

  /** Enables the message box, or disables it and says why. */
  setComposer(enabled, hint) {
    this.#messageInput.disabled = !enabled;
    this.#sendButton.disabled = !enabled;
    this.#hint.textContent = hint;
  }

  clearMessage() {
    this.#messageInput.value = '';
    this.#messageInput.focus();
  }

  disableRoomControls() {
    this.#shareButton.disabled = true;
    this.#leaveButton.disabled = true;
  }

  #member(peerId) {
    return [...this.#memberList.querySelectorAll('li[data-peer-id]')].find((li) => li.dataset.peerId === peerId);
  }

  #updateCount() {
    const count = String(this.#memberList.children.length);
    this.#memberCount.textContent = count;
    this.#membersToggleCount.textContent = count;
  }

  /** On phones the member list is a panel over the conversation, opened from the top bar. */
  #showMembers(open) {
    this.#membersToggle.ariaExpanded = String(open);
    this.#doc.body.dataset.members = open ? 'open' : 'closed';
  }

  #append(li) {
    this.#log.append(li);
    if (this.#pinned) this.#log.scrollTop = this.#log.scrollHeight;
  }

  async #copyLink() {
    const link = this.#linkInput.value;
    let copied = false;
    try {
      await navigator.clipboard.writeText(link);
      copied = true;
    } catch {
      // No clipboard API or no permission (plain http on another host): copy the
      // selected link field the old way.
      this.#linkInput.focus();
      this.#linkInput.select();
      try {
        copied = this.#doc.execCommand('copy');
      } catch {
        copied = false;
      }
    }
    this.#shareResult.textContent = copied
      ? 'Invite link copied. Send it to the people you want to chat with.'
      : 'Could not copy automatically: the invite link is selected in the box, copy it from there.';
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/** Keeps the page as tall as what the on-screen keyboard leaves visible, for browsers
 * that only shrink the visual viewport (Safari on iPhone), so the composer stays in view. */
function followKeyboard(doc) {
  const viewport = doc.defaultView.visualViewport;
  if (!viewport) return;
  // Times the scale: zooming in with two fingers must not shrink the page.
  const fit = () => doc.documentElement.style.setProperty('--app-height', `${Math.round(viewport.height * viewport.scale)}px`);
  viewport.addEventListener('resize', fit);
  fit();
}
