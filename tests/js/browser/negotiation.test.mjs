// Setting up a connection when signaling loses or crosses offers, in headless Chromium
// against the real binary: an offer lost on the way is sent again, one made under a peer
// id its page no longer has gives way, and offers that cross (each member offering to the
// other) end in one connection. The pages' test hook loses relays as a signaling
// connection being cut would.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../helpers/server.mjs';
import {
  WAIT_MS, launch, openPage, members, waitForOpenPeers, waitForRoom, say, waitForMessage,
  assertNoProblems, setName, explained, withHook,
} from '../helpers/browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

/** Opens Ada's page on `server` with the test hook, runs `prepare(ada)`, then Grace's. */
async function pair(t, server, prepare = async () => {}) {
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  pages.push(await openPage(browser, withHook(`${server.url}/`)));
  const link = await waitForRoom(pages[0]);
  await prepare(pages[0]);
  pages.push(await openPage(browser, withHook(link)));
  await Promise.all(pages.map((p, i) => setName(p, ['Ada', 'Grace'][i])));
  return pages;
}

const hook = (page, name, ...args) => page.evaluate(([name, args]) => window.meshchatTest[name](...args), [name, args]);

/** Cuts the page's signaling (offline emulation cuts websockets, not WebRTC) and brings it
 * back; without resume it rejoins under a new peer id, which this waits for and returns. */
async function rejoin(page) {
  const old = await hook(page, 'self');
  await page.context().setOffline(true);
  await page.waitForFunction(() => document.body.dataset.signaling === 'offline', null, { timeout: WAIT_MS });
  await page.context().setOffline(false);
  const handle = await explained(page, () => page.waitForFunction(
    (old) => {
      const self = window.meshchatTest.self();
      return self !== null && self !== old && self;
    },
    old,
    { timeout: WAIT_MS },
  ));
  return handle.jsonValue();
}

/** Both pages list each other, open, and chat both ways. */
async function chatBothWays(a, b) {
  await Promise.all([a, b].map((p) => explained(p, () => waitForOpenPeers(p, 1))));
  await say(a, 'hello Grace');
  await explained(b, () => waitForMessage(b, 'Ada', 'hello Grace'));
  await say(b, 'hello Ada');
  await explained(a, () => waitForMessage(a, 'Grace', 'hello Ada'));
}

test('an offer lost on the way is sent again: the newcomer connects although the first never came', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const [a, b] = await pair(t, server, (ada) => hook(ada, 'dropOutgoing', 'rtc-offer'));
  await chatBothWays(a, b);
  assert.deepEqual((await hook(a, 'dropped')).map((d) => d.kind), ['rtc-offer'], 'the first offer was lost');
  assertNoProblems([a, b]);
});

test('an offer lost while its sender rejoins under a new id gives way to the offer to that id', async (t) => {
  // Without resume, a page whose signaling drops comes back under a new peer id.
  const server = await startServer({ RESUME_GRACE_MS: '0' });
  t.after(() => server.stop());
  const [a, b] = await pair(t, server);
  await chatBothWays(a, b);

  // Grace rejoins: Ada offers to her new id, and that offer is lost, as one sent while
  // Ada's own signaling is being cut would be. Then Ada rejoins too, and Grace offers to
  // Ada's new id: Ada must not wait for an answer to her lost offer.
  await hook(a, 'dropOutgoing', 'rtc-offer');
  const grace = await rejoin(b);
  await explained(a, () => a.waitForFunction(() => window.meshchatTest.dropped().length === 1, null, { timeout: WAIT_MS }));
  const ada = await rejoin(a);
  await chatBothWays(a, b);
  assert.deepEqual((await members(a)).map((m) => [m.id, m.state]), [[grace, 'open']]);
  assert.deepEqual((await members(b)).map((m) => [m.id, m.state]), [[ada, 'open']]);
  assert.equal(await a.evaluate((id) => window.meshchatTest.peer(id).initiator, grace), false, "Grace's offer was answered");
  assertNoProblems([a, b], [/^console error: Failed to load resource: net::ERR_INTERNET_DISCONNECTED$/]);
});

test('offers that cross end in one connection: one page keeps its own, the other answers it', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  // Ada's offer to the newcomer is lost, so Grace has none when she offers to Ada herself
  // (as if each had been told that the other joined): Ada has her own offer out,
  // unanswered, when Grace's comes, and Grace hers when Ada's comes again.
  const [a, b] = await pair(t, server, (ada) => hook(ada, 'dropOutgoing', 'rtc-offer'));
  await explained(a, () => a.waitForFunction(() => window.meshchatTest.dropped().length === 1, null, { timeout: WAIT_MS }));
  const ada = await hook(a, 'self');
  const grace = await hook(b, 'self');
  await hook(b, 'peerJoined', ada);
  await chatBothWays(a, b);
  // The page with the greater peer id kept its own offer and dropped the other's.
  const kept = await Promise.all([[a, grace], [b, ada]].map(([page, id]) => page.evaluate((id) => window.meshchatTest.peer(id).initiator, id)));
  assert.deepEqual(kept, ada > grace ? [true, false] : [false, true]);
  assertNoProblems([a, b]);
});
