// Healing and history in real headless Chromium against the real binary: a broken peer
// connection restarts ICE on the same RTCPeerConnection (the data channel stays the same
// object), both sides restarting at once converge, and a late joiner is given the room's
// recent messages by a peer, once each, marked as from before it joined.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { freeUdpPort, startServer, until } from '../helpers/server.mjs';
import {
  WAIT_MS, launch, openPage, members, waitForOpenPeers, waitForRoom, say, waitForMessage,
  waitForSystemLine, assertNoProblems, setName, explained, withHook, peerIdOf,
} from '../helpers/browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

/** Opens pages named `names` in one room of `server`, with the test hook; all connected. */
async function room(t, server, names) {
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  pages.push(await openPage(browser, withHook(`${server.url}/`)));
  const link = await waitForRoom(pages[0]);
  for (let i = 1; i < names.length; i += 1) pages.push(await openPage(browser, withHook(link)));
  await Promise.all(pages.map((p, i) => setName(p, names[i])));
  await Promise.all(pages.map((p) => waitForOpenPeers(p, names.length - 1)));
  return { pages, link };
}

/** Marks the page's current data channel and ICE username fragment towards `peerId`, so
 * that `sameChannel` can tell later whether they are still the same / changed. */
function markConnection(page, peerId) {
  return page.evaluate((id) => {
    const peer = window.meshchatTest.peer(id);
    window.marked = { channel: peer.channel, pc: peer.pc, ufrag: ufrag(peer.pc) };
    function ufrag(pc) {
      return /^a=ice-ufrag:(\S+)/m.exec(pc.localDescription.sdp)[1];
    }
  }, peerId);
}

/** {sameChannel, samePc, restarted}: compared with what markConnection saw. */
function compareConnection(page, peerId) {
  return page.evaluate((id) => {
    const peer = window.meshchatTest.peer(id);
    const ufrag = /^a=ice-ufrag:(\S+)/m.exec(peer.pc.localDescription.sdp)[1];
    return {
      sameChannel: peer.channel === window.marked.channel,
      samePc: peer.pc === window.marked.pc,
      restarted: ufrag !== window.marked.ufrag,
      channelState: peer.channel.readyState,
    };
  }, peerId);
}

/** Waits until `page` lists the member called `name` in `state`. */
function waitForMemberState(page, name, state, timeout = WAIT_MS) {
  return explained(page, () => page.waitForFunction(
    ([name, state]) => [...document.querySelectorAll('#members li[data-peer-id]')].some(
      (li) => li.querySelector('.member-name').textContent === name && li.dataset.state === state,
    ),
    [name, state],
    { timeout },
  ));
}

test('both sides restarting ICE at once converge; the same channels carry messages again', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { pages } = await room(t, server, ['Ada', 'Grace']);
  const [a, b] = pages;
  const bAtA = await peerIdOf(a, 'Grace');
  const aAtB = await peerIdOf(b, 'Ada');
  await markConnection(a, bAtA);
  await markConnection(b, aAtB);

  // The glare case: each side sends a restart offer before it sees the other's. Both pages
  // start theirs at the same moment of the shared clock; a round where one offer still got
  // through before the other was made is repeated (each round must converge anyway).
  let glares = 0;
  for (let round = 1; round <= 5 && glares === 0; round += 1) {
    const at = Date.now() + 300;
    const restart = (page, id) => page.evaluate(([id, at]) => {
      window.meshchatTest.peer(id).ignoredOffer = false;
      return new Promise((resolve) => {
        setTimeout(() => resolve(window.meshchatTest.restartIce(id)), at - Date.now());
      });
    }, [id, at]);
    assert.deepEqual(await Promise.all([restart(a, bAtA), restart(b, aAtB)]), [true, true]);
    const t0 = Date.now();
    await Promise.all([a, b].map((p) => waitForOpenPeers(p, 1, 10_000)));
    await say(a, `after restart ${round}, from Ada`);
    await say(b, `after restart ${round}, from Grace`);
    await waitForMessage(b, 'Ada', `after restart ${round}, from Ada`, 10_000);
    await waitForMessage(a, 'Grace', `after restart ${round}, from Grace`, 10_000);
    assert.ok(Date.now() - t0 < 10_000, `healed in ${Date.now() - t0} ms`);
    for (const [page, id] of [[a, bAtA], [b, aAtB]]) {
      assert.deepEqual(await compareConnection(page, id), {
        sameChannel: true, samePc: true, restarted: true, channelState: 'open',
      });
      await markConnection(page, id);
    }
    // The impolite side dropped the polite side's offer: the offers did cross.
    const ignored = [
      await a.evaluate((id) => window.meshchatTest.peer(id).ignoredOffer, bAtA),
      await b.evaluate((id) => window.meshchatTest.peer(id).ignoredOffer, aAtB),
    ];
    assert.ok(!(ignored[0] && ignored[1]), 'at most one side ignores');
    if (ignored[0] || ignored[1]) glares += 1;
    console.log(`# round ${round}: healed in ${Date.now() - t0} ms, offers ${glares ? 'crossed' : 'did not cross'}`);
  }
  assert.equal(glares, 1, 'a round with crossing offers');
  // Neither page took the other for someone new, nor left and came back.
  assert.equal(await a.locator('#log .system', { hasText: 'Grace left.' }).count(), 0);
  assert.deepEqual(await members(a), [{ id: bAtA, state: 'open', name: 'Grace' }]);
  assertNoProblems(pages);
});

const SECRET = 'heal-test-turn-secret';

/** A second meshchat that only relays (its embedded TURN on `udpPort`). */
function startRelay(udpPort) {
  return startServer({
    STUN_PORT: String(udpPort),
    UDP_HOST: '127.0.0.1',
    TURN_EMBEDDED: 'true',
    TURN_SECRET: SECRET,
    TURN_PUBLIC_IP: '127.0.0.1',
  });
}

/**
 * Two relay-only pages whose every packet goes through a TURN relay run by another
 * process: stopping that process is, to the pages, a real loss of the network path
 * (nothing answers their connectivity checks any more) while signaling stays up.
 * Returns {pages, stopRelay(), startRelay()}.
 */
async function relayedRoom(t) {
  const udpPort = await freeUdpPort();
  let relay = await startRelay(udpPort);
  t.after(() => relay.stop());
  const server = await startServer({
    TURN_SECRET: SECRET,
    TURN_URLS: `turn:127.0.0.1:${udpPort}?transport=udp`,
    ICE_TRANSPORT_POLICY: 'relay',
  });
  t.after(() => server.stop());
  const { pages } = await room(t, server, ['Ada', 'Grace']);
  return {
    pages,
    stopRelay: () => relay.stop(),
    startRelay: async () => { relay = await startRelay(udpPort); },
  };
}

test('when the relay carrying a connection goes away and comes back, ICE restarts heal it', async (t) => {
  const { pages, stopRelay, startRelay: restartRelay } = await relayedRoom(t);
  const [a, b] = pages;
  const bAtA = await peerIdOf(a, 'Grace');
  const aAtB = await peerIdOf(b, 'Ada');
  await markConnection(a, bAtA);
  await markConnection(b, aAtB);

  await stopRelay();
  const lost = Date.now();
  for (const page of pages) {
    await waitForMemberState(page, page === a ? 'Grace' : 'Ada', 'reconnecting');
    await waitForSystemLine(page, 'was interrupted; reconnecting…');
  }
  const noticedMs = Date.now() - lost;
  // Typed while the path is down: kept, and marked as waiting.
  await say(a, 'written during the outage');
  await explained(a, () => a.locator('#log .message.own .delivery', { hasText: 'Waiting for a connection' })
    .waitFor({ timeout: WAIT_MS }));
  await say(a, 'second during the outage');

  await restartRelay();
  const t0 = Date.now();
  await waitForMessage(b, 'Ada', 'written during the outage', 10_000);
  await waitForMessage(b, 'Ada', 'second during the outage', 10_000);
  const healedMs = Date.now() - t0;
  assert.ok(healedMs < 10_000, `delivered ${healedMs} ms after the relay came back`);
  const texts = await b.$$eval('#log .message .text', (els) => els.map((el) => el.textContent));
  assert.deepEqual(texts, ['written during the outage', 'second during the outage'], 'in order, once');
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 1)));
  for (const page of pages) await waitForSystemLine(page, 'again.');
  // Sent everywhere: the "waiting" notes are gone.
  await explained(a, () => a.waitForFunction(() => {
    const notes = [...document.querySelectorAll('#log .message.own .delivery')];
    return notes.length === 2 && notes.every((n) => n.textContent === '');
  }, null, { timeout: WAIT_MS }));
  await say(b, 'and back');
  await waitForMessage(a, 'Grace', 'and back', 10_000);
  for (const [page, id] of [[a, bAtA], [b, aAtB]]) {
    assert.deepEqual(await compareConnection(page, id), {
      sameChannel: true, samePc: true, restarted: true, channelState: 'open',
    });
  }
  console.log(`# relay gone: both pages reconnecting after ${noticedMs} ms; queued messages delivered ${healedMs} ms after it came back`);
  // The relay's absence is seen by Chromium as unanswered TURN requests, which it does not
  // log as console errors; nothing else may show.
  assertNoProblems(pages);
});

/** On `page`, once the member `peerId` shows "connection interrupted", fires `event` at
 * `target` ('window' or 'document') and resolves with how many ICE restarts the page has
 * begun towards it by the time the event's listeners have run. */
function restartsOnEvent(page, peerId, target, event) {
  return page.evaluate(([id, target, event, waitMs]) => new Promise((resolve) => {
    const li = [...document.querySelectorAll('#members li[data-peer-id]')].find((el) => el.dataset.peerId === id);
    const seen = [];
    // Bounded: should the member never show "interrupted", the test fails with the states
    // it went through instead of waiting forever.
    const timer = setTimeout(() => {
      observer.disconnect();
      resolve(`never interrupted within ${waitMs} ms; states: ${seen.join(' → ')}`);
    }, waitMs);
    // Every state the member passed through, including one already replaced when the
    // callback runs (a record's new value is the next record's old value).
    const observer = new MutationObserver((records) => {
      const states = records.slice(1).map((r) => r.oldValue).concat(li.dataset.state);
      seen.push(...states);
      if (!states.includes('interrupted')) return;
      clearTimeout(timer);
      observer.disconnect();
      (target === 'window' ? window : document).dispatchEvent(new Event(event));
      resolve(window.meshchatTest.peer(id).restarts);
    });
    observer.observe(li, { attributes: true, attributeFilter: ['data-state'], attributeOldValue: true });
  }), [peerId, target, event, WAIT_MS]);
}

test('coming back online or to the tab restarts an interrupted connection at once', async (t) => {
  const { pages, stopRelay, startRelay: restartRelay } = await relayedRoom(t);
  const [a, b] = pages;
  const ids = new Map([[a, await peerIdOf(a, 'Grace')], [b, await peerIdOf(b, 'Ada')]]);
  const setGrace = (page, ms) => page.evaluate((ms) => window.meshchatTest.setDisconnectedGrace(ms), ms);
  // One page at a time: the other never restarts by itself (it would otherwise, when it
  // notices first, send its restart offer before the watched page sees "interrupted").
  // Without the check, the watched page would wait out its grace period (seconds) first.
  for (const [watched, other, target, event] of [[a, b, 'window', 'online'], [b, a, 'document', 'visibilitychange']]) {
    await setGrace(other, 600_000);
    await setGrace(watched, 3_000);
    const restarts = restartsOnEvent(watched, ids.get(watched), target, event);
    await stopRelay();
    assert.equal(await restarts, 1, `${event}: restarts begun once the listeners ran`);
    await restartRelay();
    await Promise.all(pages.map((p) => waitForOpenPeers(p, 1)));
    await say(other, `back via ${event}`);
    await waitForMessage(watched, other === a ? 'Ada' : 'Grace', `back via ${event}`, 10_000);
  }
  assertNoProblems(pages);
});

test('an ICE restart gathers with the ICE servers of now (fresh TURN credentials), on both sides', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { pages } = await room(t, server, ['Ada', 'Grace']);
  const [ada, grace] = pages;
  const ids = [await peerIdOf(ada, 'Grace'), await peerIdOf(grace, 'Ada')];
  // What a credential refresh hands the pages: servers the connection was not made with.
  const fresh = [{ urls: 'stun:127.0.0.1:9' }];
  for (const page of pages) {
    await page.evaluate((servers) => window.meshchatTest.setRtcConfig({ iceServers: servers }), fresh);
  }
  const urls = (page, id) => page.evaluate(
    (peerId) => window.meshchatTest.peer(peerId).pc.getConfiguration().iceServers.flatMap((s) => [s.urls].flat()),
    id,
  );
  assert.deepEqual(await urls(ada, ids[0]), [], 'before the restart: the servers it was made with');
  await ada.evaluate((id) => window.meshchatTest.restartIce(id), ids[0]);
  await Promise.all(pages.map((page, i) => until(
    async () => (await urls(page, ids[i])).includes('stun:127.0.0.1:9'),
    'the restarted connection to use the fresh ICE servers',
  )));
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 1)));
  await say(ada, 'after the restart');
  await waitForMessage(grace, 'Ada', 'after the restart');
  assertNoProblems(pages);
});

test('a message waiting for a member who leaves meanwhile is reported as not delivered', async (t) => {
  const { pages, stopRelay } = await relayedRoom(t);
  const [a, b] = pages;
  await stopRelay();
  await waitForMemberState(a, 'Grace', 'reconnecting');
  await say(a, 'Grace will not read this');
  await a.locator('#log .message.own .delivery', { hasText: 'Waiting for a connection' }).waitFor({ timeout: WAIT_MS });
  // Grace's page goes; the server says so and her channel cannot answer Ada's ping.
  await b.close();
  await explained(a, () => a.locator('#log .message.own .delivery.problem', { hasText: 'Not delivered to Grace.' })
    .waitFor({ timeout: WAIT_MS }));
  await waitForSystemLine(a, 'Grace left.');
  assertNoProblems([a]);
});

test('a late joiner is given the room\'s 30 messages once, in order, marked as history', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { pages, link } = await room(t, server, ['Ada', 'Grace']);
  const [a, b] = pages;
  const sent = [];
  for (let i = 0; i < 30; i += 1) {
    const [from, to, author] = i % 2 === 0 ? [a, b, 'Ada'] : [b, a, 'Grace'];
    const text = `message ${i + 1} from ${author}`;
    await say(from, text);
    // Waiting for each keeps the order the same everywhere (two senders, one clock).
    await waitForMessage(to, author, text);
    sent.push({ author, text });
  }

  const c = await openPage(browser, withHook(link));
  pages.push(c);
  await setName(c, 'Linus');
  await waitForOpenPeers(c, 2);
  await explained(c, () => c.waitForFunction(() => document.querySelectorAll('#log .message.history').length === 30,
    null, { timeout: WAIT_MS }));
  const shown = () => c.$$eval('#log .message', (lis) => lis.map((li) => ({
    author: li.querySelector('.author').textContent,
    text: li.querySelector('.text').textContent,
    history: li.classList.contains('history'),
    mark: li.querySelector('.history-mark')?.textContent ?? null,
  })));
  const expected = sent.map((m) => ({ ...m, history: true, mark: 'before you joined' }));
  assert.deepEqual(await shown(), expected);

  // Asking the other peer as well (the one not asked first) brings the same 30: nothing
  // is shown twice.
  const asked = await c.evaluate(() => window.meshchatTest.askedForHistory());
  const other = (await members(c)).find((m) => m.id !== asked);
  assert.ok(asked && other, `asked ${asked}`);
  assert.equal(await c.evaluate((id) => window.meshchatTest.requestHistory(id), other.id), true);
  await explained(c, () => c.waitForFunction(() => window.meshchatTest.historyAnswers() === 2, null, { timeout: WAIT_MS }));
  assert.deepEqual(await shown(), expected);

  // History nobody asked for is not taken: Ada's page could claim anything.
  const cAtA = await peerIdOf(a, 'Linus');
  await a.evaluate((id) => window.meshchatTest.peer(id).channel.send(JSON.stringify({
    type: 'history', done: true,
    messages: [{ id: 'forged-1', at: 0, name: 'Grace', client: null, text: 'forged' }],
  })), cAtA);
  // A message sent now is live, after the history, and unmarked (and comes after the
  // forged batch on the same channel).
  await say(a, 'live after the backfill');
  await waitForMessage(c, 'Ada', 'live after the backfill');
  const last = (await shown()).at(-1);
  assert.deepEqual(last, { author: 'Ada', text: 'live after the backfill', history: false, mark: null });
  assert.equal((await shown()).length, 31);
  assertNoProblems(pages);
});

test('a member who turned sharing off refuses; the newcomer asks the next one', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { pages, link } = await room(t, server, ['Ada', 'Grace']);
  const [a, b] = pages;
  await say(a, 'before Linus came');
  await waitForMessage(b, 'Ada', 'before Linus came');
  for (const page of pages) {
    await page.getByLabel('Share history with newcomers').uncheck();
  }
  // Nobody shares: the newcomer hears two refusals and shows nothing of the past.
  const c = await openPage(browser, withHook(link));
  pages.push(c);
  await waitForOpenPeers(c, 2);
  await explained(c, () => c.waitForFunction(() => window.meshchatTest.historyAnswers() === 2, null, { timeout: WAIT_MS }));
  assert.equal(await c.locator('#log .system', { hasText: 'does not share earlier messages' }).count(), 2);
  assert.equal(await c.locator('#log .message').count(), 0);
  assert.equal(await a.evaluate(() => localStorage.getItem('meshchat.shareHistory')), 'off');

  // Grace shares again; a fourth page is refused by Ada and given history by Grace, or
  // given it by Grace at once, depending on whom it asks first.
  await b.getByLabel('Share history with newcomers').check();
  const d = await openPage(browser, withHook(link));
  pages.push(d);
  await waitForOpenPeers(d, 3);
  await waitForMessage(d, 'Ada', 'before Linus came');
  assert.equal(await d.locator('#log .message.history').count(), 1);
  assertNoProblems(pages);
});

/** A page that behaves as the reference app's client does towards us: it answers every
 * offer with a brand-new RTCPeerConnection, drops candidates that come before an offer,
 * and ignores what it does not know. It only records; it speaks no chat protocol. */
const REFERENCE_PAGE = `<!doctype html><meta charset="utf-8"><title>reference-style client</title>
<script type="module">
import { io } from '/vendor/socket.io.esm.min.js';
const roomId = new URLSearchParams(location.search).get('roomId');
const socket = io();
const pcs = new Map();
window.offers = {};
window.received = [];
window.channels = {};
socket.on('connect', () => { window.myId = socket.id; socket.emit('join-room', roomId); });
socket.on('rtc-offer', async (from, offer) => {
  window.offers[from] = (window.offers[from] ?? 0) + 1;
  pcs.get(from)?.close();
  const pc = new RTCPeerConnection();
  pcs.set(from, pc);
  pc.onicecandidate = (e) => socket.emit('ice-candidate', from, e.candidate ? e.candidate.toJSON() : { candidate: '' });
  pc.ondatachannel = (e) => {
    window.channels[from] = e.channel;
    e.channel.onmessage = (m) => window.received.push(m.data);
  };
  await pc.setRemoteDescription(offer);
  await pc.setLocalDescription(await pc.createAnswer());
  socket.emit('rtc-answer', from, pc.localDescription.toJSON());
});
socket.on('ice-candidate', (from, candidate) => {
  const pc = pcs.get(from);
  if (!pc) return;
  (candidate && candidate.candidate ? pc.addIceCandidate(candidate) : pc.addIceCandidate()).catch(() => {});
});
</script>`;

test('no restart goes to a reference-style client; restarts among meshchat pages leave it connected', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const { pages, link } = await room(t, server, ['Ada', 'Grace']);
  const [a, b] = pages;
  const roomId = new URL(link).searchParams.get('roomId');
  const ref = await openPage(browser, `${server.url}/reference.html?roomId=${roomId}`, {
    prepare: (context) => context.route(`${server.url}/reference.html*`, (route) => route.fulfill({
      contentType: 'text/html; charset=utf-8', body: REFERENCE_PAGE,
    })),
  });
  pages.push(ref);
  await Promise.all([a, b].map((p) => waitForOpenPeers(p, 2)));
  const refId = await ref.evaluate(() => window.myId);
  assert.equal(await a.evaluate((id) => window.meshchatTest.restartIce(id), refId), false, 'not towards it');

  const bAtA = await peerIdOf(a, 'Grace');
  const aAtB = await peerIdOf(b, 'Ada');
  await markConnection(a, bAtA);
  assert.deepEqual(await Promise.all([
    a.evaluate((id) => window.meshchatTest.restartIce(id), bAtA),
    b.evaluate((id) => window.meshchatTest.restartIce(id), aAtB),
  ]), [true, true]);
  await Promise.all([a, b].map((p) => waitForOpenPeers(p, 2)));
  assert.equal((await compareConnection(a, bAtA)).restarted, true);
  await say(a, 'for everyone');
  await waitForMessage(b, 'Ada', 'for everyone');
  await explained(ref, () => ref.waitForFunction(
    () => window.received.some((d) => { try { return JSON.parse(d).text === 'for everyone'; } catch { return false; } }),
    null, { timeout: WAIT_MS },
  ));
  // One offer from each member, ever: its connections were never rebuilt.
  assert.deepEqual(Object.values(await ref.evaluate(() => window.offers)), [1, 1]);
  assert.equal(await ref.evaluate(() => Object.values(window.channels).every((c) => c.readyState === 'open')), true);
  assertNoProblems([a, b]);
});
