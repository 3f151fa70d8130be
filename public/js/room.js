// The room in the address bar and the last room this browser was in.
import { secretFragment, secretFromUrl } from './seal.js';

const LAST_ROOM_KEY = 'meshchat.roomId';
// The key of the last room, when it was private: its link is no use without it.
const LAST_SECRET_KEY = 'meshchat.roomKey';

/** The `?roomId=` of the page's address, or null. */
export function roomIdFromUrl() {
  const id = new URLSearchParams(location.search).get('roomId');
  return id ? id : null;
}

/** The link that brings someone into `roomId`, with the key of a private room (by default
 * the key in the page's address). */
export function shareLink(roomId, secret = secretFromUrl()) {
  const url = new URL(location.href);
  url.search = '';
  url.hash = secretFragment(secret);
  url.searchParams.set('roomId', roomId);
  return url.href;
}

/** Makes the address bar the share link, without a reload or a history entry. */
export function showRoomInAddressBar(roomId) {
  history.replaceState(null, '', shareLink(roomId));
}

export function rememberRoom(roomId) {
  try {
    localStorage.setItem(LAST_ROOM_KEY, roomId);
    const secret = secretFromUrl();
    if (secret) localStorage.setItem(LAST_SECRET_KEY, secret);
    else localStorage.removeItem(LAST_SECRET_KEY);
  } catch {
    // storage disabled
  }
}

/** The key of the last room if it was private, or null. */
export function lastRoomSecret() {
  try {
    return localStorage.getItem(LAST_SECRET_KEY);
  } catch {
    return null;
  }
}

export function lastRoom() {
  try {
    return localStorage.getItem(LAST_ROOM_KEY);
  } catch {
    return null;
  }
}
