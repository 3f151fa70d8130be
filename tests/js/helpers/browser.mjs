// Headless Chromium for the browser tests: Debian's /usr/bin/chromium driven by
// playwright-core, one browser context per page, every request and console error recorded.
import { chromium } from 'playwright-core';
import assert from 'node:assert/strict';

/** Longest any single wait in a browser test may take. Generous: CI machines are slow. */
export const WAIT_MS = 30_000;

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      // Host candidates stay hidden behind .local mDNS names, as for real users; the
      // pages resolve each other's names on this machine. Should a CI box block that,
      // '--disable-features=WebRtcHideLocalIpsWithMdns' exposes the real addresses.
    ],
  });
}

/** A phone in portrait: the context options for openPage. */
export const PHONE = Object.freeze({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });

/**
 * Opens `url` in a fresh context of `browser` (made with `contextOptions`, PHONE say),
 * after `prepare(context)` if given (a test's routes and init scripts). The returned page
 * has `problems`: requests to other origins, console errors, the client's own warnings and
 * uncaught exceptions, all of which tests expect empty.
 */
export async function openPage(browser, url, { origin, viewport, prepare, contextOptions } = {}) {
  const context = await browser.newContext({ viewport: viewport ?? { width: 1000, height: 700 }, ...contextOptions });
  // A test's own routes and init scripts, in place before the page loads.
  await prepare?.(context);
  const page = await context.newPage();
  const expected = origin ?? new URL(url).origin;
  page.problems = [];
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.origin !== expected) page.problems.push(`request to another origin: ${req.url()}`);
  });
  page.on('websocket', (ws) => {
    const u = new URL(ws.url());
    if (u.host !== new URL(expected).host) page.problems.push(`websocket to another host: ${ws.url()}`);
  });
  page.on('console', (msg) => {
    if (msg.type() === 'error') page.problems.push(`console error: ${msg.text()}`);
    // The client warns about signaling it could not use (a rejected ICE candidate, say).
    if (msg.type() === 'warning' && msg.text().startsWith('meshchat:')) page.problems.push(`warning: ${msg.text()}`);
  });
  page.on('pageerror', (err) => page.problems.push(`page error: ${err.message}`));
  await page.goto(url);
  return page;
}

/** Peer entries of the member list, as {id, state, name}. */
export function members(page) {
  return page.$$eval('#members li[data-peer-id]', (lis) =>
    lis.map((li) => ({
      id: li.dataset.peerId,
      state: li.dataset.state,
      name: li.querySelector('.member-name').textContent,
    })));
}

/** The peer id under which `page` lists the member called `name`, once it does: a name
 * travels over the data channel, so it can arrive just after the channel shows open. */
export async function peerIdOf(page, name, timeout = WAIT_MS) {
  const handle = await explained(page, () => page.waitForFunction(
    (name) => [...document.querySelectorAll('#members li[data-peer-id]')]
      .find((li) => li.querySelector('.member-name').textContent === name)?.dataset.peerId,
    name,
    { timeout },
  ));
  return handle.jsonValue();
}

/** Waits until the page lists exactly `n` peers, all with open data channels. */
export async function waitForOpenPeers(page, n, timeout = WAIT_MS) {
  await explained(page, () => page.waitForFunction(
    (n) => {
      const lis = [...document.querySelectorAll('#members li[data-peer-id]')];
      return lis.length === n && lis.every((li) => li.dataset.state === 'open');
    },
    n,
    { timeout },
  ));
}

/** Runs `wait`; if it fails, adds what `page` shows to the error, for the test log. */
export async function explained(page, wait) {
  try {
    return await wait();
  } catch (err) {
    err.message += `\n${await shows(page)}`;
    throw err;
  }
}

/** What `page` shows (and, with the test hook, where its connections stand), for a log. */
export async function shows(page) {
  const state = await page.evaluate(() => ({
    signaling: document.body.dataset.signaling,
    status: document.getElementById('status')?.textContent,
    members: [...document.querySelectorAll('#members li[data-peer-id]')].map((li) => `${li.dataset.peerId}:${li.dataset.state}`),
    log: document.getElementById('log')?.innerText,
    self: window.meshchatTest?.self(),
    connections: window.meshchatTest?.connections(),
  })).catch(() => ({}));
  return `${page.url()}: ${JSON.stringify(state)}; problems: ${JSON.stringify(page.problems)}`;
}

/** Waits until the page is in a room and returns the room's share link. */
export async function waitForRoom(page, timeout = WAIT_MS) {
  await explained(page, () => page.waitForFunction(() => Boolean(document.body.dataset.roomId), null, { timeout }));
  return page.evaluate(() => document.body.dataset.roomLink);
}

/** Sends `text` from `page` by typing it and pressing Enter. */
export async function say(page, text) {
  await page.locator('#message').fill(text);
  await page.locator('#message').press('Enter');
}

/** Waits until the log of `page` holds a message with this author and text. */
export async function waitForMessage(page, author, text, timeout = WAIT_MS) {
  await page.waitForFunction(
    ([author, text]) => [...document.querySelectorAll('#log .message')].some(
      (li) => li.querySelector('.author').textContent === author && li.querySelector('.text').textContent === text,
    ),
    [author, text],
    { timeout },
  );
}

/** Sets a display name with the keyboard: type it and press Enter. */
export async function setName(page, name) {
  await page.locator('#name').fill(name);
  await page.locator('#name').press('Enter');
  await waitForSystemLine(page, `You are now called ${name}.`);
}

/** Waits for a system line containing `text`. */
export async function waitForSystemLine(page, text, timeout = WAIT_MS) {
  await page.waitForFunction(
    (text) => [...document.querySelectorAll('#log .system')].some((li) => li.textContent.includes(text)),
    text,
    { timeout },
  );
}

/** Fails on any recorded problem but those matching `expected` (network errors that
 * Chromium logs itself while a test has cut the network on purpose). */
export function assertNoProblems(pages, expected = []) {
  for (const page of pages) {
    const problems = page.problems.filter((p) => !expected.some((re) => re.test(p)));
    assert.deepEqual(problems, [], `page ${page.url()}`);
  }
}

/** Keeps the page's RTCPeerConnections in `window.peerConnections`, so the test can ask
 * them for their stats (the page itself exposes nothing). */
export async function recordPeerConnections(context) {
  await context.addInitScript(() => {
    const Original = window.RTCPeerConnection;
    window.peerConnections = [];
    window.RTCPeerConnection = class extends Original {
      constructor(...args) {
        super(...args);
        window.peerConnections.push(this);
      }
    };
  });
}

/** The page's address with the test hook (`window.meshchatTest`) turned on. */
export function withHook(url) {
  const u = new URL(url);
  u.searchParams.set('test', '1');
  return u.href;
}

/** Puts another tab of `page`'s window in front, so `page` loses the focus for real;
 * returns a function that brings `page` back. */
export async function sendToBackground(page) {
  const real = async (p) => (await p.context().newCDPSession(p)).send('Emulation.setFocusEmulationEnabled', { enabled: false });
  await real(page);
  const other = await page.context().newPage();
  await real(other);
  await other.bringToFront();
  await page.waitForFunction(() => !document.hasFocus(), null, { timeout: WAIT_MS });
  return async () => {
    await page.bringToFront();
    await page.waitForFunction(() => document.hasFocus(), null, { timeout: WAIT_MS });
  };
}
