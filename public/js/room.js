// The room in the address bar and the last room this browser was in.
import { secretFragment, secretFromUrl } from './seal.js';

const LAST_ROOM_KEY = 'meshchat.roomId';

/** The `?roomId=` of the page's address, or null. */
export function roomIdFromUrl() {
  const id = new URLSearchParams(location.search).get('roomId');
  return id ? id : null;
}

/** The link that brings someone into `roomId`, with the key of a private room. */
export function shareLink(roomId) {
  const url = new URL(location.href);
  url.search = '';
  url.hash = secretFragment(secretFromUrl());
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
  } catch {
    // storage disabled
  }
}

export function lastRoom() {
  try {
    return localStorage.getItem(LAST_ROOM_KEY);
  } catch {
    return null;
  }
}
