// The web client in real headless Chromium against the real binary: rooms, the full mesh,
// messages and names, leaving, reloading and reconnecting. Every page lives in its own
// browser context (its own storage, like a separate person) and must neither load
// anything from another origin nor log a console error.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../helpers/server.mjs';
import {
  WAIT_MS, launch, openPage, members, waitForOpenPeers, waitForRoom, say, waitForMessage,
  waitForSystemLine, assertNoProblems, setName,
} from '../helpers/browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

/** Starts a server and opens a room with `n` pages, each named; returns {server, pages, link}. */
async function room(t, names, env = {}) {
  const server = await startServer(env);
  t.after(() => server.stop());
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const first = await openPage(browser, `${server.url}/`);
  pages.push(first);
  try {
    const link = await waitForRoom(first);
    for (let i = 1; i < names.length; i += 1) pages.push(await openPage(browser, link));
    await Promise.all(pages.map((p, i) => setName(p, names[i])));
    await Promise.all(pages.map((p) => waitForOpenPeers(p, names.length - 1)));
    return { server, pages, link };
  } catch (err) {
    err.message += `\nserver log:\n${server.logs.map((l) => JSON.stringify(l)).join('\n')}`;
    throw err;
  }
}

/** Waits until every page lists the others by name. */
async function waitForNames(pages, names) {
  await Promise.all(pages.map((page, i) => page.waitForFunction(
    (expected) => {
      const shown = [...document.querySelectorAll('#members li[data-peer-id] .member-name')].map((n) => n.textContent);
      return shown.length === expected.length && expected.every((n) => shown.includes(n));
    },
    names.filter((_, j) => j !== i),
    { timeout: WAIT_MS },
  )));
}

function countLines(page, text) {
  return page.$$eval('#log .system', (lis, text) => lis.filter((li) => li.textContent === text).length, text);
}

test('four pages form a full mesh; every message reaches every other page, names show', async (t) => {
  // Debug logs show each relay's size: the end-of-candidates marker is `{"candidate":""}`.
  const server = await startServer({ RUST_LOG: 'meshchat=debug' });
  t.after(() => server.stop());
  const first = await openPage(browser, `${server.url}/`);
  t.after(() => first.context().close());
  const link = await waitForRoom(first);
  assert.match(link, new RegExp(`^${server.url}/\\?roomId=[A-Za-z0-9_-]{10}$`));
  assert.equal(first.url(), link, 'the address bar is the share link');
  // Alone in the room: the message box is disabled and says why.
  assert.equal(await first.locator('#message').isDisabled(), true);
  assert.match(await first.locator('#message-hint').textContent(), /Nobody else is here yet/);

  const names = ['Ada', 'Grace', 'Linus', 'Barbara'];
  const pages = [first];
  for (let i = 1; i < 4; i += 1) {
    const page = await openPage(browser, link);
    t.after(() => page.context().close());
    pages.push(page);
  }
  await Promise.all(pages.map((p, i) => setName(p, names[i])));
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 3)));
  for (const page of pages) {
    assert.equal(await page.locator('#member-count').textContent(), '4');
    assert.equal(await page.locator('#message').isDisabled(), false);
  }
  // Each page is connected to three distinct peers: 4·3/2 = 6 connections in all.
  const ids = await Promise.all(pages.map(members));
  assert.equal(new Set(ids.flat().map((m) => m.id)).size, 4, 'one peer id per page');
  await waitForNames(pages, names);

  for (const [i, page] of pages.entries()) await say(page, `hello from ${names[i]} <b>not bold</b>`);
  for (const [i, page] of pages.entries()) {
    for (const [j, other] of names.entries()) {
      const author = i === j ? `${other} (you)` : other;
      await waitForMessage(page, author, `hello from ${other} <b>not bold</b>`);
    }
    assert.equal(await page.locator('#log .message').count(), 4, 'each message once');
    assert.equal(await page.locator('#log b').count(), 0, 'message text is text, not HTML');
    assert.equal(await page.locator('#log .message.own').count(), 1);
  }
  // Both ends of all 6 connections sent the end-of-candidates marker, and the receivers
  // took it (a rejected candidate would be a warning, see assertNoProblems).
  const markers = server.logs.filter((l) => l.message === 'relayed' && l.event === 'ice-candidate'
    && l.bytes === JSON.stringify({ candidate: '' }).length);
  assert.ok(markers.length >= 12, `${markers.length} end-of-candidates markers`);
  assertNoProblems(pages);
});

test('a page that closes is gone from the others at once, with one line; a reload rejoins', async (t) => {
  // Heartbeats every 25 s (the default): a departure seen within 10 s comes from the
  // closed transport or channel, not from a heartbeat timeout.
  const names = ['Ada', 'Grace', 'Linus'];
  const { pages } = await room(t, names);
  const [a, b, c] = pages;
  const before = await members(a);

  await c.close();
  await Promise.all([a, b].map((p) => waitForOpenPeers(p, 1, 10_000)));
  for (const p of [a, b]) await waitForSystemLine(p, 'Linus left.');
  // A message after the leave proves the pages are past any late duplicate.
  await say(a, 'still here');
  await waitForMessage(b, 'Ada', 'still here');
  for (const p of [a, b]) assert.equal(await countLines(p, 'Linus left.'), 1, 'one line per leave');

  // B reloads: same link, same stored name, new peer id; the mesh re-forms.
  const oldB = (await members(a)).find((m) => m.name === 'Grace');
  await b.reload();
  assert.equal(new URL(b.url()).searchParams.get('roomId'), new URL(a.url()).searchParams.get('roomId'));
  await Promise.all([a, b].map((p) => waitForOpenPeers(p, 1)));
  await waitForNames([a, b], ['Ada', 'Grace']);
  const newB = (await members(a)).find((m) => m.name === 'Grace');
  assert.notEqual(newB.id, oldB.id, 'the reloaded page has a new peer id');
  assert.ok(before.some((m) => m.id === oldB.id));
  await say(b, 'back again');
  await waitForMessage(a, 'Grace', 'back again');
  assertNoProblems([a, b]);
});

test('the Leave button leaves: the others drop the member, the page offers to rejoin', async (t) => {
  const { pages } = await room(t, ['Ada', 'Grace', 'Linus']);
  const [a, b, c] = pages;
  await c.getByRole('button', { name: 'Leave' }).click();
  await Promise.all([a, b].map((p) => waitForOpenPeers(p, 1, 10_000)));
  for (const p of [a, b]) await waitForSystemLine(p, 'Linus left.');
  assert.equal(await c.locator('#members li[data-peer-id]').count(), 0);
  assert.equal(await c.locator('#message').isDisabled(), true);
  assert.match(await c.locator('#notice').textContent(), /You left the room/);
  const rejoin = c.getByRole('link', { name: 'Rejoin the room' });
  assert.equal(await rejoin.getAttribute('href'), a.url());
  await rejoin.click();
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));
  assertNoProblems(pages);
});

/**
 * Cuts B's signaling socket (offline emulation cuts websockets, not WebRTC, so the data
 * channels stay up), checks that chat goes on meanwhile, and brings B back. Returns the
 * peer ids A knows before and after.
 */
async function signalingOutage(t, env) {
  const names = ['Ada', 'Grace', 'Linus'];
  const { pages } = await room(t, names, env);
  const [a, b, c] = pages;
  const oldIds = (await members(a)).map((m) => m.id).sort();

  await b.context().setOffline(true);
  await b.waitForFunction(() => document.body.dataset.signaling === 'offline', null, { timeout: WAIT_MS });
  await say(a, 'during the outage');
  await waitForMessage(b, 'Ada', 'during the outage');
  await say(b, 'still reading you');
  await waitForMessage(c, 'Grace', 'still reading you');

  await b.context().setOffline(false);
  await b.waitForFunction(() => document.body.dataset.signaling === 'online', null, { timeout: WAIT_MS });
  return { pages, names, oldIds };
}

/** Chat from B reaches the others after the outage, and nobody saw a problem. */
async function chatAfterOutage(pages) {
  const [a, b, c] = pages;
  await say(b, 'after the outage');
  await waitForMessage(a, 'Grace', 'after the outage');
  await waitForMessage(c, 'Grace', 'after the outage');
  assertNoProblems(pages, [/^console error: Failed to load resource: net::ERR_INTERNET_DISCONNECTED$/]);
}

test('when the signaling socket drops, open channels keep working and the page resumes its peer id unseen', async (t) => {
  const { pages, names, oldIds } = await signalingOutage(t);
  const [a, , c] = pages;
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));
  await waitForNames(pages, names);
  assert.deepEqual((await members(a)).map((m) => m.id).sort(), oldIds, 'B keeps its peer id');
  await chatAfterOutage(pages);
  for (const p of [a, c]) {
    assert.equal(await countLines(p, 'Grace left.'), 0, 'no leave for a resume');
    assert.equal(await countLines(p, 'Grace reconnected.'), 0, 'a resume is not a reconnect to the others');
  }
});

test('without resume (RESUME_GRACE_MS=0), a page whose signaling socket dropped rejoins under a new peer id', async (t) => {
  const { pages, names, oldIds } = await signalingOutage(t, { RESUME_GRACE_MS: '0' });
  const [a, , c] = pages;
  await waitForSystemLine(a, 'Grace reconnected.');
  await waitForSystemLine(c, 'Grace reconnected.');
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));
  await waitForNames(pages, names);
  const newIds = (await members(a)).map((m) => m.id).sort();
  assert.notDeepEqual(newIds, oldIds, 'B is known under a new peer id');
  for (const p of [a, c]) assert.equal(await countLines(p, 'Grace left.'), 0, 'no leave for a reconnect');
  await chatAfterOutage(pages);
});

test('a stale ?roomId= gets a new room and says so; the room is remembered', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const page = await openPage(browser, `${server.url}/?roomId=goneRoom42`);
  t.after(() => page.context().close());
  const link = await waitForRoom(page);
  const roomId = new URL(link).searchParams.get('roomId');
  assert.notEqual(roomId, 'goneRoom42');
  assert.equal(page.url(), link);
  assert.match(await page.locator('#notice').textContent(), /That room no longer exists.*here is a new one/);
  assert.equal(await page.evaluate(() => localStorage.getItem('meshchat.roomId')), roomId);

  // A new tab of the same browser without a link makes a new room and offers the last one.
  const again = await page.context().newPage();
  await again.goto(`${server.url}/`);
  const second = await waitForRoom(again);
  assert.notEqual(second, link);
  assert.equal(await again.getByRole('link', { name: 'Go back to your last room' }).getAttribute('href'), link);
  assertNoProblems([page]);
});

test('a full room is explained and a new room is one click away', async (t) => {
  const { server, link } = await room(t, ['Ada', 'Grace'], { MAX_ROOM_SIZE: '2' });
  const page = await openPage(browser, link);
  t.after(() => page.context().close());
  await page.locator('#notice').getByText('That room is full').waitFor({ timeout: WAIT_MS });
  assert.equal(await page.locator('#message').isDisabled(), true);
  await page.getByRole('button', { name: 'Start a new room' }).click();
  const fresh = await waitForRoom(page);
  assert.notEqual(fresh, link);
  assert.ok(fresh.startsWith(server.url));
  assertNoProblems([page]);
});

test('the share button copies the link and says so', async (t) => {
  const { pages } = await room(t, ['Ada', 'Grace']);
  const [a] = pages;
  await a.context().grantPermissions(['clipboard-read', 'clipboard-write']);
  await a.getByRole('button', { name: 'Copy invite link' }).click();
  await a.locator('#share-result').getByText('copied').waitFor({ timeout: WAIT_MS });
  assert.equal(await a.evaluate(() => navigator.clipboard.readText()), a.url());
  assertNoProblems(pages);
});

test('while the server is down, open channels keep working; after a restart the page explains its new room', async (t) => {
  const { server, pages, link } = await room(t, ['Ada', 'Grace']);
  const [a, b] = pages;
  await server.stop();
  await Promise.all(pages.map((p) => p.waitForFunction(
    () => document.body.dataset.signaling === 'offline', null, { timeout: WAIT_MS },
  )));
  await say(a, 'nobody in the middle');
  await waitForMessage(b, 'Ada', 'nobody in the middle');

  // A new server on the same address knows no rooms: the pages reconnect, ask for their
  // room and are given new ones, which they explain.
  const again = await startServer({ PORT: String(server.port) });
  t.after(() => again.stop());
  for (const page of pages) {
    await page.locator('#notice').getByText('The room was gone when we reconnected').waitFor({ timeout: WAIT_MS });
    assert.notEqual(page.url(), link);
  }
  await say(b, 'still connected');
  await waitForMessage(a, 'Grace', 'still connected');
  // Chromium logs the refused reconnection attempts, the draining server's 503 to one
  // made before it exited, and the new server's 400 to a polling request of the old session.
  assertNoProblems(pages, [
    /^console error: Failed to load resource: net::ERR_CONNECTION_REFUSED$/,
    /^console error: Failed to load resource: the server responded with a status of (400 \(Bad Request\)|503 \(Service Unavailable\))$/,
    /^console error: WebSocket connection to '[^']+' failed/,
  ]);
});

test('a peer that cannot be reached is marked failed, with the TURN hint', async (t) => {
  // Relay-only ICE without any TURN server: the browsers gather no candidates at all, so
  // the pages give up after their 30 s connection timeout.
  const server = await startServer({ ICE_TRANSPORT_POLICY: 'relay' });
  t.after(() => server.stop());
  const a = await openPage(browser, `${server.url}/`);
  t.after(() => a.context().close());
  const b = await openPage(browser, await waitForRoom(a));
  t.after(() => b.context().close());
  for (const page of [a, b]) {
    await waitForSystemLine(page, 'may need a TURN server', 90_000);
    assert.deepEqual((await members(page)).map((m) => m.state), ['failed']);
    assert.equal(await page.locator('#message').isDisabled(), true);
    assert.match(await page.locator('#message-hint').textContent(), /No connection could be made/);
  }
  assertNoProblems([a, b]);
});
