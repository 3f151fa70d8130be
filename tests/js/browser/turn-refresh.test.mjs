// Short-lived TURN credentials in real Chromium: the page fetches new ones before those it
// has expire, and the connections it makes afterwards use the new ones (through the
// embedded relay, relay-only). The page's clock is Playwright's, moved forward by the test.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freeUdpPort, startServer, until } from '../helpers/server.mjs';
import {
  recordPeerConnections, launch, openPage, waitForOpenPeers, waitForRoom, say, waitForMessage, setName, assertNoProblems,
} from '../helpers/browser.mjs';

const TTL_SECS = 60;

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

/** The expiry, in unix seconds, that a TURN username starts with. */
const expiry = (username) => Number(username.split(':')[0]);

test('the page fetches fresh TURN credentials before they expire, and later connections use them', async (t) => {
  const server = await startServer({
    STUN_PORT: String(await freeUdpPort()),
    UDP_HOST: '127.0.0.1',
    TURN_EMBEDDED: 'true',
    TURN_SECRET: 'browser-test-turn-refresh',
    TURN_PUBLIC_IP: '127.0.0.1',
    ICE_TRANSPORT_POLICY: 'relay',
    TURN_TTL: String(TTL_SECS),
    // The test moves the page's clock by most of a TTL: the Socket.IO heartbeat must not
    // time out meanwhile.
    PING_INTERVAL_MS: '100000',
    PING_TIMEOUT_MS: '100000',
  });
  t.after(() => server.stop());

  const minted = []; // the TURN usernames page `a` was given, in order
  const prepareA = async (context) => {
    await context.clock.install();
    await recordPeerConnections(context);
    context.on('response', async (res) => {
      if (!res.url().endsWith('/api/rtc-config')) return;
      const { iceServers } = await res.json();
      minted.push(iceServers.find((s) => s.username).username);
    });
  };
  const a = await openPage(browser, `${server.url}/`, { prepare: prepareA });
  t.after(() => a.context().close());
  const link = await waitForRoom(a);
  await until(() => minted.length === 1, 'the first RTC configuration');

  // Most of the credentials' life passes: the page renews them while they are still valid.
  await a.clock.fastForward((TTL_SECS - 10) * 1000);
  await until(() => minted.length === 2, 'a second RTC configuration before the first expired');
  const pageNow = await a.evaluate(() => Date.now());
  assert.ok(pageNow < expiry(minted[0]) * 1000, 'renewed before the first credentials expired');
  assert.notEqual(minted[1], minted[0]);
  assert.ok(expiry(minted[1]) >= expiry(minted[0]), `${minted}`);

  // A member joins: `a` offers to it on a new connection, which carries the new credentials
  // and connects through the relay.
  const b = await openPage(browser, link);
  t.after(() => b.context().close());
  await Promise.all([setName(a, 'Ada'), setName(b, 'Bob')]);
  await Promise.all([waitForOpenPeers(a, 1), waitForOpenPeers(b, 1)]);
  const used = await a.evaluate(() =>
    window.peerConnections.flatMap((pc) => pc.getConfiguration().iceServers.map((s) => s.username).filter(Boolean)),
  );
  assert.deepEqual(used, [minted[1]]);
  await say(a, 'on fresh credentials');
  await waitForMessage(b, 'Ada', 'on fresh credentials');
  assertNoProblems([a, b]);
});

