// Getting noticed while the user looks elsewhere: the unread count in the title and on the
// favicon, and opt-in desktop notifications (with the text left out when kept private).

const SETTINGS_KEY = 'meshchat.notifications';
const BADGE_SIZE = 64;
const NOTIFICATION_ICON = '/icons/icon-192.png';

/** Whether the browser can show notifications to this page at all. */
export const notificationsSupported = typeof Notification !== 'undefined';

/**
 * Counts the messages that came while the page was hidden or out of focus, shows the count
 * in the title and on the favicon, clears it when the page gets the focus back, and shows
 * desktop notifications when the user turned them on.
 */
export class Notifier {
  #doc;
  #baseTitle;
  #icon;
  #iconHref;
  #iconImage = null;
  #unread = 0;
  #settings;

  constructor(doc = document) {
    this.#doc = doc;
    this.#baseTitle = doc.title;
    this.#icon = doc.querySelector('link[rel="icon"]');
    this.#iconHref = this.#icon?.getAttribute('href') ?? '/favicon.svg';
    this.#settings = loadSettings();
    const back = () => {
      if (!this.away) this.#setUnread(0);
    };
    doc.defaultView.addEventListener('focus', back);
    doc.addEventListener('visibilitychange', back);
  }

  /** True while the user is not looking at the page: hidden tab, or another window in front. */
  get away() {
    return this.#doc.visibilityState === 'hidden' || !this.#doc.hasFocus();
  }

  get unread() {
    return this.#unread;
  }

  /** {desktop, private, permission}: what the user chose, and what the browser allows. */
  get settings() {
    const permission = notificationsSupported ? Notification.permission : 'unsupported';
    // Permission taken back in the browser's settings turns them off here too.
    return { desktop: this.#settings.desktop && permission === 'granted', private: this.#settings.private, permission };
  }

  /** Turns desktop notifications on or off; turning on asks the browser, so call it from
   * the user's click. Resolves to the new settings. */
  async setDesktop(on) {
    if (on && notificationsSupported && Notification.permission === 'default') {
      await Notification.requestPermission();
    }
    this.#settings.desktop = on && notificationsSupported && Notification.permission === 'granted';
    saveSettings(this.#settings);
    return this.settings;
  }

  /** Private notifications say that something happened, not who said what. */
  setPrivate(on) {
    this.#settings.private = Boolean(on);
    saveSettings(this.#settings);
    return this.settings;
  }

  /** A message from someone else arrived. */
  message(author, text) {
    if (!this.away) return;
    this.#setUnread(this.#unread + 1);
    if (this.#settings.private) this.#notify('meshchat', 'New message', 'message');
    else this.#notify(author, text, 'message');
  }

  /** A message that mentions the user arrived. It gets a notification of its own (a tag
   * per message), so that in a busy room it is not replaced by the next message's. */
  mentioned(author, text, id) {
    if (!this.away) return;
    this.#setUnread(this.#unread + 1);
    if (this.#settings.private) this.#notify('meshchat', 'You were mentioned', `mention-${id}`);
    else this.#notify(`${author} mentioned you`, text, `mention-${id}`);
  }

  /** Someone joined the room after us. */
  joined(name) {
    if (!this.away) return;
    if (this.#settings.private) this.#notify('meshchat', 'Someone joined the room', 'join');
    else this.#notify('meshchat', `${name} joined the room`, 'join');
  }

  #setUnread(n) {
    if (n === this.#unread) return;
    this.#unread = n;
    this.#doc.title = n > 0 ? `(${n}) ${this.#baseTitle}` : this.#baseTitle;
    this.#doc.documentElement.dataset.unread = String(n);
    this.#drawBadge(n);
  }

  /** The favicon with the count in a red dot, or the plain favicon for none. */
  async #drawBadge(n) {
    if (!this.#icon) return;
    if (n === 0) {
      this.#icon.href = this.#iconHref;
      return;
    }
    try {
      this.#iconImage ??= await loadImage(this.#iconHref);
    } catch {
      return; // the title still shows the count
    }
    if (n !== this.#unread) return; // a newer count drew (or clears) it
    const canvas = this.#doc.createElement('canvas');
    canvas.width = BADGE_SIZE;
    canvas.height = BADGE_SIZE;
    const g = canvas.getContext('2d');
    g.drawImage(this.#iconImage, 0, 0, BADGE_SIZE, BADGE_SIZE);
    const r = BADGE_SIZE * 0.3;
    g.beginPath();
    g.arc(BADGE_SIZE - r, r, r, 0, 2 * Math.PI);
    g.fillStyle = '#c53030';
    g.fill();
    g.fillStyle = '#fff';
    g.font = `bold ${Math.round(r * 1.3)}px system-ui, sans-serif`;
    g.textAlign = 'center';
    g.textBaseline = 'middle';
    g.fillText(n > 9 ? '9+' : String(n), BADGE_SIZE - r, r + 1);
    this.#icon.href = canvas.toDataURL('image/png');
  }

  /** A desktop notification, through the service worker where there is one: phones
   * (Chrome on Android) only show notifications that way. */
  async #notify(title, body, tag) {
    if (!this.#settings.desktop || !notificationsSupported || Notification.permission !== 'granted') return;
    // `data.url` lets a click bring this room's tab to the front (see sw.js).
    const options = { body, tag, icon: NOTIFICATION_ICON, data: { url: location.href } };
    try {
      const registration = await navigator.serviceWorker?.getRegistration();
      if (registration?.active) {
        await registration.showNotification(title, options);
        return;
      }
      const shown = new Notification(title, options);
      shown.addEventListener('click', () => {
        this.#doc.defaultView.focus();
        shown.close();
      });
    } catch (err) {
      console.info('meshchat: could not show a notification:', err.message);
    }
  }
}

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`could not load ${src}`));
    img.src = src;
  });
}

function loadSettings() {
  try {
    const saved = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? '{}');
    return { desktop: saved?.desktop === true, private: saved?.private === true };
  } catch {
    return { desktop: false, private: false };
  }
}

function saveSettings({ desktop, private: hidden }) {
  try {
    localStorage.setItem(SETTINGS_KEY, JSON.stringify({ desktop, private: hidden }));
  } catch {
    // storage disabled: the choice lasts as long as the page
  }
}
