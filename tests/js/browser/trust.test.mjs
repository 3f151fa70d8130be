// Trust in real headless Chromium: safety codes that both ends of a connection agree on,
// and private rooms whose signaling the server relays without being able to read it.
// What the server sees is taken from the pages' own traffic to it (websocket frames and
// polling bodies, both ways), recorded by the browser.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startServer } from '../helpers/server.mjs';
import {
  WAIT_MS, launch, openPage, members, waitForOpenPeers, waitForRoom, setName, say, waitForMessage,
  waitForSystemLine, explained, assertNoProblems,
} from '../helpers/browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

/** Opens `url` recording everything its page and the server send each other into `wire`. */
function openRecorded(url, wire) {
  return openPage(browser, url, {
    prepare: (context) => context.on('page', (page) => {
      page.on('websocket', (ws) => {
        ws.on('framesent', (f) => wire.push(String(f.payload)));
        ws.on('framereceived', (f) => wire.push(String(f.payload)));
      });
      page.on('request', (req) => req.url().includes('/socket.io/') && req.postData() && wire.push(req.postData()));
      page.on('response', async (res) => {
        if (res.url().includes('/socket.io/')) wire.push(await res.text().catch(() => ''));
      });
    }),
  });
}

/** Each page's safety codes, by the names of the members they are for. */
async function codesByName(page) {
  return Object.fromEntries(await page.$$eval('#members li[data-peer-id]', (lis) => lis.map((li) => [
    li.querySelector('.member-name').textContent,
    li.querySelector('.verify')?.dataset.safetyCode ?? null,
  ])));
}

async function waitForCodes(page, n) {
  await explained(page, () => page.waitForFunction(
    (n) => document.querySelectorAll('#members li[data-peer-id] .verify[data-safety-code]').length === n,
    n,
    { timeout: WAIT_MS },
  ));
}

test('both ends of each connection show the same safety code; a rebuilt connection changes it and says so', async (t) => {
  // Resume off: a page that resumes keeps its peer id and its connections, and this test
  // needs one that rejoins, which rebuilds them.
  const server = await startServer({ RESUME_GRACE_MS: '0' });
  t.after(() => server.stop());
  const names = ['Ada', 'Grace', 'Linus'];
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  pages.push(await openPage(browser, `${server.url}/`));
  const link = await waitForRoom(pages[0]);
  for (let i = 1; i < 3; i += 1) pages.push(await openPage(browser, link));
  await Promise.all(pages.map((p, i) => setName(p, names[i])));
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));
  await Promise.all(pages.map((p) => waitForCodes(p, 2)));
  // Names come with the hello, which may follow the code: wait until all are named.
  await Promise.all(pages.map((p, i) => p.waitForFunction(
    (others) => {
      const shown = [...document.querySelectorAll('#members li[data-peer-id] .member-name')].map((n) => n.textContent);
      return others.every((n) => shown.includes(n));
    },
    names.filter((_, j) => j !== i),
    { timeout: WAIT_MS },
  )));
  const codes = await Promise.all(pages.map(codesByName));
  const [a, b, c] = codes;
  for (const code of [a.Grace, a.Linus, b.Linus]) assert.match(code, /^\d{4} \d{4} \d{4}$/);
  assert.equal(a.Grace, b.Ada, 'Ada and Grace agree');
  assert.equal(a.Linus, c.Ada, 'Ada and Linus agree');
  assert.equal(b.Linus, c.Grace, 'Grace and Linus agree');
  assert.equal(new Set([a.Grace, a.Linus, b.Linus]).size, 3, 'each pair has its own code');

  // The verify view: opened from the member list, it shows the code and what to do with it.
  const ada = pages[0];
  const grace = ada.locator('#members li[data-peer-id]').filter({ hasText: 'Grace' });
  await grace.locator('.verify summary').click();
  assert.equal(await grace.locator('.safety-code').isVisible(), true);
  assert.equal(await grace.locator('.safety-code').textContent(), a.Grace);
  assert.match(await grace.locator('.verify-text').textContent(), /safety code with Grace.*Compare it/);

  // Grace's signaling drops and comes back: every connection to her is rebuilt, with new
  // certificates, so new codes, and both sides say so.
  const [, gracePage] = pages;
  await gracePage.context().setOffline(true);
  await gracePage.waitForFunction(() => document.body.dataset.signaling === 'offline', null, { timeout: WAIT_MS });
  await gracePage.context().setOffline(false);
  await waitForSystemLine(ada, 'Your connection to Grace was rebuilt, so its safety code changed: compare it again.');
  await waitForSystemLine(gracePage, 'Your connection to Ada was rebuilt, so its safety code changed');
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));
  await Promise.all(pages.map((p) => waitForCodes(p, 2)));
  await explained(ada, () => ada.waitForFunction(
    (old) => [...document.querySelectorAll('#members li[data-peer-id]')]
      .some((li) => li.textContent.includes('Grace') && li.querySelector('.verify')?.dataset.safetyCode !== old),
    a.Grace,
    { timeout: WAIT_MS },
  ));
  const after = await Promise.all(pages.map(codesByName));
  assert.notEqual(after[0].Grace, a.Grace);
  assert.equal(after[0].Grace, after[1].Ada, 'the new codes agree too');
  assert.equal(after[0].Linus, a.Linus, 'the connection that was not rebuilt keeps its code');
  assertNoProblems(pages, [/^console error: Failed to load resource: net::ERR_INTERNET_DISCONNECTED$/]);
});

test('a private room: the server relays only sealed signaling; members chat and send files', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const wire = [];
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const a = await openRecorded(`${server.url}/`, wire);
  pages.push(a);
  await waitForRoom(a);
  await a.getByRole('button', { name: 'New private room' }).click();
  await a.waitForURL(/#k=/);
  await a.waitForFunction(() => document.body.dataset.roomLink?.includes('#k='), null, { timeout: WAIT_MS });
  const link = await a.evaluate(() => document.body.dataset.roomLink);
  assert.match(link, /\?roomId=[A-Za-z0-9_-]{10}#k=[A-Za-z0-9_-]{22}$/);
  assert.equal(a.url(), link, 'the address bar keeps the key');
  assert.equal(await a.locator('#link').inputValue(), link, 'so does the invite link');
  assert.match(await a.locator('#seal-state').textContent(), /Private room/);

  for (const _ of [1, 2]) pages.push(await openRecorded(link, wire));
  const names = ['Ada', 'Grace', 'Linus'];
  await Promise.all(pages.map((p, i) => setName(p, names[i])));
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));
  await Promise.all(pages.map((p) => waitForCodes(p, 2)));
  await say(a, 'sealed hello');
  for (const p of pages.slice(1)) await waitForMessage(p, 'Ada', 'sealed hello');

  const data = randomBytes(2 * 1024 * 1024);
  const grace = pages[1];
  await grace.waitForFunction(() => document.querySelectorAll('#members .send-file').length === 2, null, { timeout: WAIT_MS });
  const chooser = a.waitForEvent('filechooser');
  await a.locator('#members li[data-peer-id]').filter({ hasText: 'Grace' }).locator('.send-file').click();
  await (await chooser).setFiles({ name: 'secret.bin', mimeType: 'application/octet-stream', buffer: data });
  const got = grace.locator('#transfers li.transfer[data-direction="in"]');
  await got.getByRole('button', { name: 'Accept' }).click();
  await explained(grace, () => got.and(grace.locator('[data-state="done"]')).waitFor({ timeout: WAIT_MS }));
  assert.equal(await got.getAttribute('data-sha256'), createHash('sha256').update(data).digest('hex'));
  assert.equal(await pages[2].locator('#transfers li').count(), 0, 'offered to Grace alone');

  // What passed the server: offers, answers and candidates, all sealed.
  const signaling = wire.filter((m) => /"(rtc-offer|rtc-answer|ice-candidate)"/.test(m));
  assert.ok(signaling.length >= 12, `${signaling.length} signaling messages recorded`);
  assert.ok(signaling.every((m) => m.includes('"sealed"')), 'every relayed payload is sealed');
  const all = wire.join('\n');
  assert.doesNotMatch(all, /candidate:/);
  assert.doesNotMatch(all, /a=fingerprint/);
  assert.doesNotMatch(all, /#k=|k=[A-Za-z0-9_-]{22}/, 'the key never goes to the server');
  assertNoProblems(pages);
});

test('a sealed payload opens only with its room key, its room id and its kind', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const page = await openPage(browser, `${server.url}/`);
  t.after(() => page.context().close());
  const results = await page.evaluate(async () => {
    const { Seal, newSecret, isSealed, secretFromUrl } = await import('/js/seal.js');
    const secret = newSecret();
    const seal = new Seal(secret);
    const offer = { type: 'offer', sdp: 'v=0\r\na=fingerprint:sha-256 AA:BB\r\n' };
    const sealed = await seal.seal('room1', 'rtc-offer', offer);
    const attempt = (p) => p.then((v) => JSON.stringify(v), (err) => `refused: ${err.name}`);
    return {
      sealed: isSealed(sealed) && !JSON.stringify(sealed).includes('fingerprint'),
      same: await attempt(new Seal(secret).open('room1', 'rtc-offer', sealed)),
      otherKind: await attempt(seal.open('room1', 'rtc-answer', sealed)),
      otherRoom: await attempt(seal.open('room2', 'rtc-offer', sealed)),
      otherKey: await attempt(new Seal(newSecret()).open('room1', 'rtc-offer', sealed)),
      tampered: await attempt(seal.open('room1', 'rtc-offer', { ...sealed, sealed: `A${sealed.sealed.slice(1)}` })),
      plain: await attempt(seal.open('room1', 'rtc-offer', offer)),
      keys: [`#k=${secret}`, '#k=short', `#k=${secret}AAA`, '#x=1'].map((h) => secretFromUrl(`http://h/${h}`)),
      secret,
    };
  });
  assert.equal(results.sealed, true);
  assert.equal(results.same, JSON.stringify({ type: 'offer', sdp: 'v=0\r\na=fingerprint:sha-256 AA:BB\r\n' }));
  assert.equal(results.otherKind, 'refused: OperationError', 'an offer cannot pass for an answer');
  assert.equal(results.otherRoom, 'refused: OperationError');
  assert.equal(results.otherKey, 'refused: OperationError');
  assert.match(results.tampered, /^refused: /);
  assert.equal(results.plain, 'refused: Error');
  assert.deepEqual(results.keys, [results.secret, null, null, null], 'only whole keys are taken');
  assertNoProblems([page]);
});

test('an ordinary room relays readable signaling (the recording sees it)', async (t) => {
  // The counterpart of the test above: without a key, the same recording finds the
  // candidates and fingerprints, so their absence there means something.
  const server = await startServer();
  t.after(() => server.stop());
  const wire = [];
  const a = await openRecorded(`${server.url}/`, wire);
  t.after(() => a.context().close());
  const b = await openRecorded(await waitForRoom(a), wire);
  t.after(() => b.context().close());
  await Promise.all([a, b].map((p) => waitForOpenPeers(p, 1)));
  assert.match(wire.join('\n'), /a=fingerprint/);
  assert.match(wire.join('\n'), /candidate:/);
  assert.equal(await a.locator('#seal-state').isHidden(), true);
  assertNoProblems([a, b]);
});

test('a private room link without its key, or with another key, is explained and forms no channel', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const a = await openPage(browser, `${server.url}/`);
  t.after(() => a.context().close());
  await waitForRoom(a);
  await a.getByRole('button', { name: 'New private room' }).click();
  await a.waitForFunction(() => document.body.dataset.roomLink?.includes('#k='), null, { timeout: WAIT_MS });
  const link = await a.evaluate(() => document.body.dataset.roomLink);
  // The way back to the last room, offered on a page opened without a link, keeps the key.
  const again = await a.context().newPage();
  await again.goto(`${server.url}/`);
  await waitForRoom(again);
  assert.equal(await again.getByRole('link', { name: 'Go back to your last room' }).getAttribute('href'), link);
  await again.close();

  const trimmed = await openPage(browser, link.split('#')[0]);
  t.after(() => trimmed.context().close());
  await explained(trimmed, () => trimmed.locator('#notice')
    .getByText('This is a private room, and your link lacks its key').waitFor({ timeout: WAIT_MS }));
  assert.equal(await trimmed.evaluate(() => document.body.dataset.sealProblem), 'no-key');
  assert.deepEqual(await members(trimmed), [], 'no connection was even started');

  const other = await openPage(browser, `${link.split('#')[0]}#k=${'A'.repeat(22)}`);
  t.after(() => other.context().close());
  await explained(other, () => other.locator('#notice')
    .getByText("could not be opened with this room's key").waitFor({ timeout: WAIT_MS }));
  assert.deepEqual(await members(other), []);
  // The member with the key never gets a channel to either.
  assert.ok((await members(a)).every((m) => m.state !== 'open'));
  assertNoProblems([a, trimmed, other]);
});
