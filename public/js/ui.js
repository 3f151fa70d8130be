// The page: renders the conversation, the member list and the controls, and reports what
// the user does. All text from peers and the server goes in as text, never as HTML.

const STATE_LABELS = {
  connecting: 'connecting…',
  open: 'connected',
  interrupted: 'connection interrupted',
  failed: 'could not connect',
};

export class UI extends EventTarget {
  constructor(doc = document) {
    super();
    const $ = (id) => doc.getElementById(id);
    this.doc = doc;
    this.status = $('status');
    this.notice = $('notice');
    this.noticeText = $('notice-text');
    this.noticeActions = $('notice-actions');
    this.log = $('log');
    this.composer = $('composer');
    this.message = $('message');
    this.send = $('send');
    this.hint = $('message-hint');
    this.members = $('members');
    this.count = $('member-count');
    this.selfName = $('self-name');
    this.nameForm = $('name-form');
    this.name = $('name');
    this.link = $('link');
    this.share = $('share');
    this.shareResult = $('share-result');
    this.leave = $('leave');
    this.lastRoom = $('last-room');
    this.lastRoomLink = $('last-room-link');

    this.composer.addEventListener('submit', (e) => {
      e.preventDefault();
      const text = this.message.value;
      if (!text.trim() || this.message.disabled) return;
      this.#emit('send', { text });
    });
    this.nameForm.addEventListener('submit', (e) => {
      e.preventDefault();
      this.#emit('name', { name: this.name.value });
    });
    this.share.addEventListener('click', () => this.#copyLink());
    this.leave.addEventListener('click', () => this.#emit('leave', {}));
    this.link.addEventListener('focus', () => this.link.select());
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  /** Shows an explanation with optional links: [{text, href}] or buttons: [{text, onClick}]. */
  showNotice(text, actions = []) {
    this.noticeText.textContent = text;
    this.noticeActions.replaceChildren(...actions.map((a) => {
      const el = this.doc.createElement(a.href ? 'a' : 'button');
      el.textContent = a.text;
      if (a.href) el.href = a.href;
      else {
        el.type = 'button';
        el.addEventListener('click', a.onClick);
      }
      return el;
    }));
    this.notice.hidden = false;
  }

  hideNotice() {
    this.notice.hidden = true;
  }

  setRoom(link) {
    this.link.value = link;
    this.share.disabled = false;
    this.leave.disabled = false;
    this.doc.body.dataset.roomLink = link;
  }

  /** Offers the last room this browser was in (when it is not the current one). */
  offerLastRoom(link) {
    this.lastRoomLink.href = link;
    this.lastRoom.hidden = false;
  }

  setOwnName(name) {
    this.name.value = name;
    this.selfName.textContent = name ? `${name} (you)` : 'You';
  }

  /** Appends a chat message; `own` marks ours. */
  addMessage({ author, text, at, own }) {
    const li = this.doc.createElement('li');
    li.className = own ? 'message own' : 'message';
    const meta = this.doc.createElement('p');
    meta.className = 'meta';
    const who = this.doc.createElement('span');
    who.className = 'author';
    who.textContent = own ? (author ? `${author} (you)` : 'You') : author;
    const time = this.doc.createElement('time');
    time.dateTime = at.toISOString();
    time.textContent = at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    meta.append(who, time);
    const body = this.doc.createElement('p');
    body.className = 'text';
    body.textContent = text;
    li.append(meta, body);
    this.#append(li);
  }

  /** Appends a system line; `problem` marks failures. */
  addSystem(text, { problem = false } = {}) {
    const li = this.doc.createElement('li');
    li.className = problem ? 'system problem' : 'system';
    li.textContent = text;
    this.#append(li);
  }

  /** Adds or updates a member's entry. Its `data-state` is the connection state. */
  setMember(peerId, { name, state }) {
    let li = this.#member(peerId);
    if (!li) {
      li = this.doc.createElement('li');
      li.className = 'member';
      li.dataset.peerId = peerId;
      const n = this.doc.createElement('span');
      n.className = 'member-name';
      const s = this.doc.createElement('span');
      s.className = 'member-state';
      li.append(n, s);
      this.members.append(li);
    }
    if (name !== undefined) li.querySelector('.member-name').textContent = name;
    if (state !== undefined) {
      li.dataset.state = state;
      li.querySelector('.member-state').textContent = STATE_LABELS[state] ?? state;
    }
    this.#count();
  }

  removeMember(peerId) {
    this.#member(peerId)?.remove();
    this.#count();
  }

  clearMembers() {
    for (const li of this.members.querySelectorAll('li[data-peer-id]')) li.remove();
    this.#count();
  }

  /** Enables the message box, or disables it and says why. */
  setComposer(enabled, hint) {
    this.message.disabled = !enabled;
    this.send.disabled = !enabled;
    this.hint.textContent = hint;
  }

  clearMessage() {
    this.message.value = '';
    this.message.focus();
  }

  disableRoomControls() {
    this.share.disabled = true;
    this.leave.disabled = true;
  }

  #member(peerId) {
    return [...this.members.querySelectorAll('li[data-peer-id]')].find((li) => li.dataset.peerId === peerId);
  }

  #count() {
    this.count.textContent = String(this.members.children.length);
  }

  #append(li) {
    const atBottom = this.log.scrollHeight - this.log.scrollTop - this.log.clientHeight < 40;
    this.log.append(li);
    if (atBottom) this.log.scrollTop = this.log.scrollHeight;
  }

  async #copyLink() {
    const link = this.link.value;
    let copied = false;
    try {
      await navigator.clipboard.writeText(link);
      copied = true;
    } catch {
      // No clipboard API or no permission (plain http on another host): copy the
      // selected link field the old way.
      this.link.focus();
      this.link.select();
      try {
        copied = this.doc.execCommand('copy');
      } catch {
        copied = false;
      }
    }
    this.shareResult.textContent = copied
      ? 'Invite link copied. Send it to the people you want to chat with.'
      : 'Could not copy automatically: the invite link is selected in the box, copy it from there.';
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
