// The service worker: keeps a copy of the page's own files so that it opens without a
// network, and shows desktop notifications. Chat and signaling never go through its cache.

// Bump to drop every copy made by an older worker (the copies refresh on each online load
// anyway: the shell is fetched network-first).
const CACHE = 'meshchat-shell-v1';
// What the page needs to start; modules found later are added as the page loads them.
const SHELL = [
  '/',
  '/app.css',
  '/files.css',
  '/favicon.svg',
  '/manifest.webmanifest',
  '/icons/icon.svg',
  '/icons/icon-192.png',
  '/js/main.js',
  '/vendor/socket.io.esm.min.js',
];
// The page's own files. Not Socket.IO, the API, health checks or metrics: those are live.
const SHELL_PATH = /^\/(?:$|index\.html$|(?:app|files)\.css$|favicon\.svg$|manifest\.webmanifest$|(?:js|icons)\/[\w.-]+$|vendor\/(?:[\w-]+\/)?[\w.-]+$)/;

self.addEventListener('install', (event) => {
  // One missing file must not cost the whole copy: keep what could be had.
  event.waitUntil(caches.open(CACHE).then((cache) => Promise.allSettled(SHELL.map((url) => cache.add(url)))));
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil((async () => {
    for (const name of await caches.keys()) if (name !== CACHE) await caches.delete(name);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (event) => {
  const { request } = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== self.location.origin || !SHELL_PATH.test(url.pathname)) return;
  event.respondWith(networkFirst(request, url));
});

// The page tells us what it loaded before this worker controlled it, so all of it is kept.
self.addEventListener('message', (event) => {
  if (event.data?.type !== 'cache' || !Array.isArray(event.data.urls)) return;
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    for (const href of event.data.urls) {
      const url = new URL(href, self.location.origin);
      if (url.origin !== self.location.origin || !SHELL_PATH.test(url.pathname)) continue;
      if (!(await cache.match(url.pathname))) await cache.add(url.pathname).catch(() => {});
    }
    event.ports[0]?.postMessage('cached');
  })());
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
    const page = windows.find((w) => w.url === event.notification.data?.url) ?? windows[0];
    if (page) return page.focus();
    return self.clients.openWindow(event.notification.data?.url ?? '/');
  })());
});

/** The server's copy when it answers (kept for later), else ours: a deploy shows at once,
 * and a page opened offline still starts. The room is in the query, the file is not. */
async function networkFirst(request, url) {
  const key = url.pathname;
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key, response.clone());
    return response;
  } catch (err) {
    const copy = await cache.match(key);
    if (copy) return copy;
    throw err;
  }
}
