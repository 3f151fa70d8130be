// The page's frame: the top bar (status, room link and buttons), notices, the offline
// banner, the side panel with its settings, and the parts inside it: the conversation
// (message-log.js), the message box (composer.js) and the member list (member-list.js).
// All text from peers and the server goes in as text, never as HTML.
import { UserEvent } from './events.js';
import { Composer } from './composer.js';
import { MemberList } from './member-list.js';
import { MessageLog } from './message-log.js';

/** Emits the UserEvents of events.js, its parts' included. */
export class UI extends EventTarget {
  #doc;
  #status;
  #notice;
  #noticeText;
  #noticeActions;
  #nameInput;
  #linkInput;
  #shareButton;
  #shareResult;
  #leaveButton;
  #lastRoom;
  #lastRoomLink;
  #membersToggle;
  #offline;
  #notifyDesktop;
  #notifyPrivate;
  #notifyHint;
  #shareHistory;

  constructor(doc = document) {
    super();
    const $ = (id) => doc.getElementById(id);
    this.#doc = doc;
    this.#status = $('status');
    this.#notice = $('notice');
    this.#noticeText = $('notice-text');
    this.#noticeActions = $('notice-actions');
    this.#nameInput = $('name');
    this.#linkInput = $('link');
    this.#shareButton = $('share');
    this.#shareResult = $('share-result');
    this.#leaveButton = $('leave');
    this.#lastRoom = $('last-room');
    this.#lastRoomLink = $('last-room-link');
    this.#membersToggle = $('members-toggle');
    this.#offline = $('offline');
    this.#notifyDesktop = $('notify-desktop');
    this.#notifyPrivate = $('notify-private');
    this.#notifyHint = $('notify-hint');
    this.#shareHistory = $('share-history');
    // The parts: the conversation, the message box and the member list.
    this.log = new MessageLog(doc, (type, detail) => this.#emit(type, detail));
    this.composer = new Composer(doc, (type, detail) => this.#emit(type, detail));
    this.members = new MemberList(doc);

    $('name-form').addEventListener('submit', (e) => {
      e.preventDefault();
      this.#emit(UserEvent.RENAME, { name: this.#nameInput.value });
    });
    this.#shareButton.addEventListener('click', () => this.#copyLink());
    this.#leaveButton.addEventListener('click', () => this.#emit(UserEvent.LEAVE, {}));
    this.#linkInput.addEventListener('focus', () => this.#linkInput.select());
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
    this.members.setOwnName(name);
  }

  disableRoomControls() {
    this.#shareButton.disabled = true;
    this.#leaveButton.disabled = true;
  }

  /** On phones the member list is a panel over the conversation, opened from the top bar. */
  #showMembers(open) {
    this.#membersToggle.ariaExpanded = String(open);
    this.#doc.body.dataset.members = open ? 'open' : 'closed';
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
