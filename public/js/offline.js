// Installability and offline start: registers the service worker (sw.js), which keeps a
// copy of the page's files, and hands it the files this page loaded before it took over.

/** Registers sw.js and has it keep every file this page loaded; then the page would open
 * offline, which `data-offline-ready` on <html> says. */
export async function registerServiceWorker() {
  if (!('serviceWorker' in navigator)) return;
  try {
    await navigator.serviceWorker.register('/sw.js');
    const { active } = await navigator.serviceWorker.ready;
    const urls = [location.pathname, ...performance.getEntriesByType('resource').map((e) => e.name)];
    await new Promise((resolve) => {
      const channel = new MessageChannel();
      channel.port1.onmessage = resolve;
      active.postMessage({ type: 'cache', urls }, [channel.port2]);
    });
    document.documentElement.dataset.offlineReady = 'true';
  } catch (err) {
    // The page works without it (private windows may refuse it), only not offline.
    console.info('meshchat: no service worker, so no offline start:', err.message);
  }
}
