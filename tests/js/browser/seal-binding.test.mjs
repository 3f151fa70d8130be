// Private rooms in real headless Chromium: each sealed signaling payload is bound to its
// sender and receiver, so a member that replays what it was sent to another member (the
// socket.io-client below, a member without the key) gets nothing through, and neither
// could the server.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connected, request } from '../helpers/client.mjs';
import { startServer } from '../helpers/server.mjs';
import {
  WAIT_MS, launch, openPage, members, waitForOpenPeers, waitForRoom, setName, explained, assertNoProblems,
} from '../helpers/browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

test('a sealed payload opens only between the two members it was sealed for', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const page = await openPage(browser, `${server.url}/`);
  t.after(() => page.context().close());
  const results = await page.evaluate(async () => {
    const { Seal, newSecret } = await import('/js/seal.js');
    const seal = new Seal(newSecret());
    const candidate = { candidate: 'candidate:1 1 udp 2122260223 a.local 5000 typ host', sdpMid: '0' };
    const route = { from: 'AdaAdaAdaAdaAdaA', to: 'GraceGraceGraceG' };
    const sealed = await seal.seal('room1', 'ice-candidate', candidate, route);
    const attempt = (p) => p.then((v) => JSON.stringify(v), (err) => `refused: ${err.name}`);
    return {
      same: await attempt(seal.open('room1', 'ice-candidate', sealed, { ...route })),
      toAnother: await attempt(seal.open('room1', 'ice-candidate', sealed, { from: route.from, to: 'LinusLinusLinusL' })),
      fromAnother: await attempt(seal.open('room1', 'ice-candidate', sealed, { from: 'LinusLinusLinusL', to: route.to })),
      reversed: await attempt(seal.open('room1', 'ice-candidate', sealed, { from: route.to, to: route.from })),
      unbound: await attempt(seal.open('room1', 'ice-candidate', sealed)),
      // Sealed without a route (pages on a server that does not say their peer id): opens
      // only without one.
      oldStyle: await attempt(seal.seal('room1', 'ice-candidate', candidate).then((s) => seal.open('room1', 'ice-candidate', s))),
      oldStyleBound: await attempt(seal.seal('room1', 'ice-candidate', candidate).then((s) => seal.open('room1', 'ice-candidate', s, route))),
      candidate: JSON.stringify(candidate),
    };
  });
  assert.equal(results.same, results.candidate);
  assert.equal(results.toAnother, 'refused: OperationError', 'replayed to another member');
  assert.equal(results.fromAnother, 'refused: OperationError', 'passed off as another member\'s');
  assert.equal(results.reversed, 'refused: OperationError');
  assert.equal(results.unbound, 'refused: OperationError');
  assert.equal(results.oldStyle, results.candidate);
  assert.equal(results.oldStyleBound, 'refused: OperationError');
  assertNoProblems([page]);
});

test('a member replaying a sealed payload it was sent to another member gets it dropped', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const ada = await openPage(browser, `${server.url}/`);
  pages.push(ada);
  await waitForRoom(ada);
  await ada.getByRole('button', { name: 'New private room' }).click();
  await ada.waitForFunction(() => document.body.dataset.roomLink?.includes('#k='), null, { timeout: WAIT_MS });
  const link = await ada.evaluate(() => document.body.dataset.roomLink);
  const grace = await openPage(browser, link);
  pages.push(grace);
  const dropped = [];
  grace.on('console', (msg) => msg.text().startsWith('meshchat: dropped signaling from') && dropped.push(msg.text()));
  await setName(ada, 'Ada');
  await setName(grace, 'Grace');
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 1)));
  // Both pages know their peer ids, so what they seal is bound to them.
  for (const page of pages) {
    await explained(page, () => page.waitForFunction(() => document.body.dataset.sealBinding === 'peers', null, { timeout: WAIT_MS }));
  }
  const adaId = (await members(grace))[0].id;
  const graceId = (await members(ada))[0].id;

  // A member without the key: it is sent offers and candidates sealed for it.
  const spy = await connected(t, server);
  const roomId = new URL(link).searchParams.get('roomId');
  const fromAda = [];
  const answers = [];
  spy.on('rtc-offer', (from, payload) => from === adaId && fromAda.push(['rtc-offer', payload]));
  spy.on('ice-candidate', (from, payload) => from === adaId && fromAda.push(['ice-candidate', payload]));
  spy.on('rtc-answer', (from) => answers.push(from));
  const { peerId: spyId } = await request(spy, 'join-room', roomId);
  await explained(ada, async () => {
    const deadline = Date.now() + WAIT_MS;
    while (!(fromAda.some(([k]) => k === 'rtc-offer') && fromAda.some(([k]) => k === 'ice-candidate'))) {
      if (Date.now() > deadline) throw new Error(`Ada sent the spy ${JSON.stringify(fromAda.map(([k]) => k))}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  assert.ok(fromAda.every(([, payload]) => typeof payload.sealed === 'string'), 'sealed');

  // The spy passes what Ada sealed for it on to Grace: the server relays it as the spy's.
  for (const [kind, payload] of fromAda) assert.deepEqual(await request(spy, kind, graceId, payload), { ok: true });
  await explained(grace, () => grace.waitForFunction(() => document.body.dataset.sealProblem === 'wrong-key', null, { timeout: WAIT_MS }));
  await explained(grace, async () => {
    const deadline = Date.now() + WAIT_MS;
    while (dropped.length < fromAda.length) {
      if (Date.now() > deadline) throw new Error(`dropped: ${JSON.stringify(dropped)}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  assert.ok(dropped.every((line) => line.includes(spyId)), JSON.stringify(dropped));
  // Grace answered nothing of it, and Ada and Grace still talk.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  assert.deepEqual(answers, []);
  assert.deepEqual((await members(grace)).find((m) => m.id === adaId)?.state, 'open');
  assert.ok((await members(grace)).every((m) => m.id !== spyId || m.state !== 'open'));
  assertNoProblems(pages);
});

test('against a server whose acks lack the peer id, a private room still connects, sealed as before', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  // An older server: its create-room and join-room acks say no peerId. Both transports
  // (long-polling first, then the websocket) are rewritten on their way to the page.
  const strip = (text) => text.replace(/,"peerId":"[A-Za-z0-9_-]+"/g, '');
  const prepare = async (context) => {
    await context.route('**/socket.io/**', async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, body: strip(await response.text()) });
    });
    await context.routeWebSocket(/\/socket\.io\//, (ws) => {
      const upstream = ws.connectToServer();
      upstream.onMessage((message) => ws.send(typeof message === 'string' ? strip(message) : message));
    });
  };
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const ada = await openPage(browser, `${server.url}/`, { prepare });
  pages.push(ada);
  await waitForRoom(ada);
  await ada.getByRole('button', { name: 'New private room' }).click();
  await ada.waitForFunction(() => document.body.dataset.roomLink?.includes('#k='), null, { timeout: WAIT_MS });
  const grace = await openPage(browser, await ada.evaluate(() => document.body.dataset.roomLink), { prepare });
  pages.push(grace);
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 1)));
  for (const page of pages) {
    await explained(page, () => page.waitForFunction(() => document.body.dataset.sealBinding === 'room', null, { timeout: WAIT_MS }));
  }
  assertNoProblems(pages);
});
