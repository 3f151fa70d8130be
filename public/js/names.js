// Display names: the user's own, remembered in this browser, and how peers are shown.

const NAME_KEY = 'meshchat.name';
export const MAX_NAME_LENGTH = 40;

/** Trims a name from the user or a peer to one short line of printable text. */
export function cleanName(raw) {
  if (typeof raw !== 'string') return '';
  return raw
    .replace(/[\p{Cc}\p{Cf}]/gu, '')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, MAX_NAME_LENGTH);
}

export function loadName() {
  try {
    return cleanName(localStorage.getItem(NAME_KEY) ?? '');
  } catch {
    return ''; // storage disabled: the name lasts for this page only
  }
}

export function saveName(name) {
  try {
    if (name) localStorage.setItem(NAME_KEY, name);
    else localStorage.removeItem(NAME_KEY);
  } catch {
    // storage disabled: nothing to remember it in
  }
}

/** What a peer is called until it tells us its name. */
export function fallbackName(peerId) {
  return `Guest ${peerId.slice(0, 4)}`;
}
