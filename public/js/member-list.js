// The member list: an entry per peer with its name and connection state (others add to an
// entry: safety.js, files-ui.js), our own entry, and the member count. A big room's list
// is compact and scrolls by itself, so what follows it in the panel stays in reach.
import { PeerState } from './peer.js';

// From this many entries (ours included) the list is compact (app.css: data-size="large").
const LARGE_LIST = 10;

const STATE_LABELS = {
  [PeerState.CONNECTING]: 'connecting…',
  [PeerState.OPEN]: 'connected',
  [PeerState.INTERRUPTED]: 'connection interrupted',
  [PeerState.RECONNECTING]: 'reconnecting…',
  [PeerState.FAILED]: 'could not connect',
};

export class MemberList {
  #doc;
  #list;
  #selfName;
  #counts; // in the side panel's heading, and on the members button of phones

  constructor(doc = document) {
    this.#doc = doc;
    this.#list = doc.getElementById('members');
    this.#selfName = doc.getElementById('self-name');
    this.#counts = ['member-count', 'members-toggle-count'].map((id) => doc.getElementById(id));
  }

  /** Adds or updates a member's entry. Its `data-state` is the connection state. */
  set(peerId, { name, state }) {
    let li = this.element(peerId);
    if (!li) {
      li = this.#doc.createElement('li');
      li.className = 'member';
      li.dataset.peerId = peerId;
      const n = this.#doc.createElement('span');
      n.className = 'member-name';
      const s = this.#doc.createElement('span');
      s.className = 'member-state';
      li.append(n, s);
      this.#list.append(li);
    }
    if (name !== undefined) li.querySelector('.member-name').textContent = name;
    if (state !== undefined) {
      li.dataset.state = state;
      li.querySelector('.member-state').textContent = STATE_LABELS[state] ?? state;
    }
    this.#updateCount();
  }

  /** A member's entry, for modules that add to it, or undefined. */
  element(peerId) {
    return [...this.#list.querySelectorAll('li[data-peer-id]')].find((li) => li.dataset.peerId === peerId);
  }

  remove(peerId) {
    this.element(peerId)?.remove();
    this.#updateCount();
  }

  clear() {
    for (const li of this.#list.querySelectorAll('li[data-peer-id]')) li.remove();
    this.#updateCount();
  }

  setOwnName(name) {
    this.#selfName.textContent = name ? `${name} (you)` : 'You';
  }

  #updateCount() {
    const count = this.#list.children.length;
    for (const el of this.#counts) el.textContent = String(count);
    const large = count >= LARGE_LIST;
    if (large === (this.#list.dataset.size === 'large')) return;
    if (large) {
      this.#list.dataset.size = 'large';
      // A region that scrolls is reachable with the keyboard.
      this.#list.tabIndex = 0;
      this.#list.setAttribute('aria-labelledby', 'members-heading');
    } else {
      delete this.#list.dataset.size;
      this.#list.removeAttribute('tabindex');
      this.#list.removeAttribute('aria-labelledby');
    }
  }
}
