// Installability and offline start: the manifest, service worker and icons are served with
// their types under the CSP, and a page opened again with the server down starts from the
// service worker's copy, says it is offline, and reconnects once the server is back.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, until } from '../helpers/server.mjs';
import { WAIT_MS, launch, openPage, waitForRoom, explained, assertNoProblems } from '../helpers/browser.mjs';

let browser;
after(() => browser?.close());

test('the manifest, the service worker and the icons are served with their content types', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const get = async (path) => {
    const res = await fetch(server.url + path);
    assert.equal(res.status, 200, path);
    return res;
  };

  const manifestRes = await get('/manifest.webmanifest');
  assert.equal(manifestRes.headers.get('content-type'), 'application/manifest+json');
  const manifest = await manifestRes.json();
  assert.equal(manifest.start_url, '/');
  assert.equal(manifest.display, 'standalone');
  const page = await (await get('/')).text();
  assert.match(page, /<link rel="manifest" href="\/manifest.webmanifest">/);
  assert.ok(page.includes(`<meta name="theme-color" content="${manifest.theme_color}">`), 'one theme colour');

  // Chrome installs with a 192 px and a 512 px icon; each is there, with its type.
  const sizes = manifest.icons.map((i) => i.sizes);
  assert.ok(sizes.includes('192x192') && sizes.includes('512x512'), JSON.stringify(sizes));
  for (const icon of manifest.icons) {
    const res = await get(icon.src);
    assert.equal(res.headers.get('content-type'), icon.type, icon.src);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (icon.type === 'image/png') {
      // The PNG's own width and height match what the manifest says.
      assert.equal(`${bytes.readUInt32BE(16)}x${bytes.readUInt32BE(20)}`, icon.sizes, icon.src);
    }
  }

  // A service worker script must be JavaScript (the server sends nosniff), and it must be
  // revalidated so that a new one is found after a deploy.
  const sw = await get('/sw.js');
  assert.equal(sw.headers.get('content-type'), 'text/javascript');
  assert.equal(sw.headers.get('cache-control'), 'no-cache');
  assert.equal(sw.headers.get('x-content-type-options'), 'nosniff');
  // The CSP lets the worker and the manifest load from our origin (default-src), and the
  // favicon badge be a data: image, without opening anything else.
  const csp = sw.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /img-src 'self' data:/);
});

test('with the server down, a reload starts from the cached page, says it is offline, and reconnects later', async (t) => {
  browser = await launch();
  let server = await startServer();
  t.after(() => server.stop());
  const page = await openPage(browser, `${server.url}/`);
  t.after(() => page.context().close());
  await waitForRoom(page);
  await explained(page, () => page.waitForFunction(
    () => document.documentElement.dataset.offlineReady === 'true' && navigator.serviceWorker.controller?.state === 'activated',
    null,
    { timeout: WAIT_MS },
  ));
  // Chromium's own installability check finds nothing missing: manifest, icons, service
  // worker. (Test contexts are incognito-like, which alone keeps them from installing.)
  const cdp = await page.context().newCDPSession(page);
  const { installabilityErrors } = await cdp.send('Page.getInstallabilityErrors');
  assert.deepEqual(installabilityErrors.filter((e) => e.errorId !== 'in-incognito'), []);
  assert.deepEqual((await cdp.send('Page.getAppManifest')).errors, []);

  const cached = await page.evaluate(async () => {
    const keys = await (await caches.open('meshchat-shell-v1')).keys();
    return keys.map((r) => new URL(r.url).pathname);
  });
  // Every module main.js imports, however deep: one missing and the page does not start.
  for (const path of ['/', '/app.css', '/files.css', '/js/main.js', '/js/ui.js', '/js/notify.js', '/js/files.js', '/vendor/socket.io.esm.min.js', '/vendor/noble-hashes/sha2.js']) {
    assert.ok(cached.includes(path), `${path} is kept: ${cached}`);
  }
  assert.ok(!cached.some((p) => p.startsWith('/socket.io/') || p.startsWith('/api/')), `nothing live is kept: ${cached}`);
  assert.equal(await page.locator('#offline').isVisible(), false);

  // Online, the worker asks the server first (a deploy shows on the next load): the page
  // is the server's answer of now, and the copy is renewed with it.
  const copyDate = () => page.evaluate(async () => (await caches.match('/')).headers.get('date'));
  const before = await copyDate();
  await until(() => new Date().toUTCString() !== before, 'the clock to pass the copy\'s second');
  const response = await page.reload();
  assert.ok(response.fromServiceWorker(), 'the service worker answered');
  assert.notEqual(response.headers().date, before, 'the page came from the server, not the copy');
  assert.equal(await copyDate(), response.headers().date, 'the copy was renewed');
  await waitForRoom(page);

  const { port } = server;
  await server.stop();
  await page.reload();
  await explained(page, () => page.waitForFunction(() => document.body.dataset.offline === 'true', null, { timeout: WAIT_MS }));
  assert.equal(await page.locator('#offline').isVisible(), true, 'the offline banner shows');
  assert.match(await page.locator('#offline').textContent(), /You are offline/);
  assert.match(await page.locator('#status').textContent(), /^Offline: cannot reach the server/);
  // The page itself works: its modules ran (the notification settings are filled in).
  assert.match(await page.locator('#notify-hint').textContent(), /title counts new messages/);
  assert.equal(await page.locator('#message').isDisabled(), true);

  // The server comes back on the same address: the page finds it by itself.
  server = await startServer({ PORT: String(port) });
  await explained(page, () => page.waitForFunction(
    () => document.body.dataset.signaling === 'online' && document.body.dataset.offline === 'false' && Boolean(document.body.dataset.roomId),
    null,
    { timeout: WAIT_MS },
  ));
  assert.equal(await page.locator('#offline').isVisible(), false, 'the offline banner is gone');

  // While the server was down the browser logged its failed requests, and the page said
  // it could not fetch the RTC configuration: nothing else.
  assertNoProblems([page], [
    /console error: Failed to load resource: net::ERR_CONNECTION_REFUSED/,
    /warning: meshchat: could not fetch the RTC configuration/,
  ]);
});

test('losing the network shows the offline state at once, and getting it back clears it', async (t) => {
  browser ??= await launch();
  const server = await startServer();
  t.after(() => server.stop());
  const page = await openPage(browser, `${server.url}/`);
  t.after(() => page.context().close());
  await waitForRoom(page);
  assert.equal(await page.locator('#offline').isVisible(), false);

  await page.context().setOffline(true);
  await explained(page, () => page.waitForFunction(() => document.body.dataset.offline === 'true', null, { timeout: WAIT_MS }));
  assert.equal(await page.locator('#offline').isVisible(), true);

  await page.context().setOffline(false);
  await explained(page, () => page.waitForFunction(
    () => document.body.dataset.offline === 'false' && document.body.dataset.signaling === 'online',
    null,
    { timeout: WAIT_MS },
  ));
  assert.equal(await page.locator('#offline').isVisible(), false);
  assertNoProblems([page], [/console error: Failed to load resource: net::ERR_INTERNET_DISCONNECTED/]);
});
