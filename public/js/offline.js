// Installability and offline start: registers the service worker (sw.js), which keeps a
// copy of the page's files, and hands it the files this page loaded before it took over.

/** Registers sw.js; once it controls the page, it is told which files the page loaded. */
export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return null;
  try {
    const registration = await navigator.serviceWorker.register('/sw.js');
    await navigator.serviceWorker.ready;
    if (!navigator.serviceWorker.controller) {
      await new Promise((resolve) => navigator.serviceWorker.addEventListener('controllerchange', resolve, { once: true }));
    }
    const urls = [location.pathname, ...performance.getEntriesByType('resource').map((e) => e.name)];
    await new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = resolve;
      navigator.serviceWorker.controller.postMessage({ type: 'cache', urls }, [channel.port2]);
    });
    // Every file of this page is kept: it would open offline now.
    document.documentElement.dataset.offlineReady = 'true';
    return registration;
  } catch (err) {
    // The page works without it (private windows may refuse it), only not offline.
    console.info('meshchat: no service worker, so no offline start:', err.message);
    return null;
  }
}
