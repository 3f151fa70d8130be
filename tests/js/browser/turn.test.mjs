// The embedded TURN relay in real Chromium: with ICE_TRANSPORT_POLICY=relay two pages
// connect only through it and chat, and with expired or forged credentials they do not
// connect and say why.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { freeUdpPort, startServer } from '../helpers/server.mjs';
import {
  recordPeerConnections, launch, openPage, waitForOpenPeers, waitForRoom, say, waitForMessage, waitForSystemLine,
  assertNoProblems, setName, explained, WAIT_MS,
} from '../helpers/browser.mjs';

const SECRET = 'browser-test-turn-secret';
const REFUSED = 'The relay (TURN) server refused this page';

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

/** A server whose STUN port also relays, for relay-only browsers. */
async function relayServer(t) {
  const server = await startServer({
    STUN_PORT: String(await freeUdpPort()),
    UDP_HOST: '127.0.0.1',
    TURN_EMBEDDED: 'true',
    TURN_SECRET: SECRET,
    TURN_PUBLIC_IP: '127.0.0.1',
    ICE_TRANSPORT_POLICY: 'relay',
  });
  t.after(() => server.stop());
  return server;
}

/** The local and remote candidate types of every selected candidate pair on the page. */
function selectedPairTypes(page) {
  return page.evaluate(async () => {
    const types = [];
    for (const pc of window.peerConnections) {
      if (pc.connectionState !== 'connected') continue;
      const stats = [...(await pc.getStats()).values()];
      const byId = new Map(stats.map((s) => [s.id, s]));
      for (const transport of stats.filter((s) => s.type === 'transport' && s.selectedCandidatePairId)) {
        const pair = byId.get(transport.selectedCandidatePairId);
        types.push([byId.get(pair.localCandidateId).candidateType, byId.get(pair.remoteCandidateId).candidateType]);
      }
    }
    return types;
  });
}

async function metric(server, name) {
  const body = await (await fetch(`${server.url}/metrics`)).text();
  const line = body.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(' ')[1]);
}

test('with ICE_TRANSPORT_POLICY=relay two pages connect only through the embedded relay and chat', async (t) => {
  const server = await relayServer(t);
  const prepare = recordPeerConnections;
  const a = await openPage(browser, `${server.url}/`, { prepare });
  t.after(() => a.context().close());
  const link = await waitForRoom(a);
  const b = await openPage(browser, link, { prepare });
  t.after(() => b.context().close());
  await Promise.all([setName(a, 'Ada'), setName(b, 'Bob')]);
  await Promise.all([waitForOpenPeers(a, 1), waitForOpenPeers(b, 1)]);

  for (const page of [a, b]) {
    const types = await selectedPairTypes(page);
    assert.deepEqual(types, [['relay', 'relay']], `selected candidate pairs of ${page.url()}`);
  }
  await say(a, 'hello through the relay');
  await waitForMessage(b, 'Ada', 'hello through the relay');
  await say(b, 'and back');
  await waitForMessage(a, 'Bob', 'and back');

  assert.ok(await metric(server, 'meshchat_turn_relayed_bytes_total') > 0, 'relayed bytes counted');
  assert.ok(await metric(server, 'meshchat_turn_allocations') >= 2, 'each page holds an allocation');
  for (const page of [a, b]) {
    const refused = await page.$$eval('#log .system', (lis, text) => lis.some((li) => li.textContent.includes(text)), REFUSED);
    assert.equal(refused, false, 'no refusal line with good credentials');
  }
  assertNoProblems([a, b]);
});

/** Serves the page an RTC configuration whose TURN credentials `spoil` changed. */
function spoiledCredentials(spoil) {
  return async (context) => {
    await context.route('**/api/rtc-config', async (route) => {
      const response = await route.fetch();
      const config = await response.json();
      config.iceServers = config.iceServers.map((s) => (s.username ? { ...s, ...spoil(s) } : s));
      await route.fulfill({ response, json: config });
    });
  };
}

test('with expired or forged TURN credentials the pages do not connect and say why', async (t) => {
  const server = await relayServer(t);
  // Expired: a past expiry, signed with the right secret, as the server would have minted it.
  const expired = spoiledCredentials((s) => {
    const username = `${Math.floor(Date.now() / 1000) - 3600}:${s.username.split(':')[1]}`;
    return { username, credential: createHmac('sha1', SECRET).update(username).digest('base64') };
  });
  const forged = spoiledCredentials(() => ({ credential: 'forged' }));
  const a = await openPage(browser, `${server.url}/`, { prepare: expired });
  t.after(() => a.context().close());
  const link = await waitForRoom(a);
  const b = await openPage(browser, link, { prepare: forged });
  t.after(() => b.context().close());

  for (const page of [a, b]) {
    await explained(page, () => waitForSystemLine(page, REFUSED));
  }
  // Relay-only pages without a relay have no route: the connection fails, and says so.
  await explained(a, () => waitForSystemLine(a, 'Could not connect to', WAIT_MS * 2));
  const open = await a.$$eval('#members li[data-peer-id]', (lis) => lis.filter((li) => li.dataset.state === 'open').length);
  assert.equal(open, 0, 'no channel opened');
  assert.equal(await metric(server, 'meshchat_turn_allocations'), 0, 'no relay allocated');
  // Chromium logs the refused allocations itself.
  assertNoProblems([a, b], [/TURN|turn|allocat|401|400/]);
});
