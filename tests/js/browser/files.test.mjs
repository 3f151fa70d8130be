// File transfer between pages in real headless Chromium: offers that each receiver accepts
// or declines, 25 MB checked with SHA-256 on arrival, chat that is not held up behind a
// transfer, and a receiver leaving mid-transfer. Also: the vendored SHA-256 is the pinned
// npm package's.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { REPO, startServer } from '../helpers/server.mjs';
import {
  WAIT_MS, launch, openPage, waitForOpenPeers, waitForRoom, setName, say, waitForMessage,
  waitForSystemLine, explained, assertNoProblems,
} from '../helpers/browser.mjs';

const MB = 1024 * 1024;

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

/** A server and a room of pages named `names`, all connected and able to take files. */
async function room(t, names) {
  const server = await startServer();
  t.after(() => server.stop());
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close().catch(() => {}))));
  const first = await openPage(browser, `${server.url}/`, { prepare: recordBuffering });
  pages.push(first);
  const link = await waitForRoom(first);
  for (let i = 1; i < names.length; i += 1) pages.push(await openPage(browser, link, { prepare: recordBuffering }));
  await Promise.all(pages.map((p, i) => setName(p, names[i])));
  await Promise.all(pages.map((p) => waitForOpenPeers(p, names.length - 1)));
  // Every member shows a "send file" button once its files channel is up.
  await Promise.all(pages.map((p) => explained(p, () => p.waitForFunction(
    (n) => document.querySelectorAll('#members li[data-peer-id] .send-file').length === n,
    names.length - 1,
    { timeout: WAIT_MS },
  ))));
  return { server, pages, link };
}

/** Records the most bytes ever queued on a files channel of the page, as `maxQueued`. */
function recordBuffering(context) {
  return context.addInitScript(() => {
    window.maxQueued = 0;
    const send = RTCDataChannel.prototype.send;
    RTCDataChannel.prototype.send = function recordingSend(data) {
      send.call(this, data);
      if (this.label === 'files') window.maxQueued = Math.max(window.maxQueued, this.bufferedAmount);
    };
  });
}

/** Offers `buffer` as a file from `page` to everyone, through the file picker. */
async function offerFile(page, name, buffer, mimeType = 'application/octet-stream') {
  await page.locator('#file-input').setInputFiles({ name, mimeType, buffer });
}

/** The card of the transfer of `name` on `page` (with the peer named `who`, if given). */
function card(page, name, direction, who) {
  let cards = page.locator(`#transfers li.transfer[data-direction="${direction}"]`)
    .filter({ has: page.locator('.transfer-name', { hasText: name }) });
  if (who) cards = cards.filter({ has: page.locator('.transfer-meta', { hasText: who }) });
  return cards;
}

async function waitForState(page, locator, state, timeout = WAIT_MS) {
  await explained(page, () => locator.and(page.locator(`[data-state="${state}"]`)).waitFor({ timeout }));
}

/** The SHA-256 of the file that the card's Save link downloads. */
async function savedSha256(page, locator) {
  const download = page.waitForEvent('download');
  await locator.locator('a.transfer-save').click();
  return createHash('sha256').update(await readFile(await (await download).path())).digest('hex');
}

test('public/vendor/noble-hashes holds the pinned @noble/hashes files and licence', async () => {
  const pkgDir = path.join(REPO, 'tests', 'js', 'node_modules', '@noble', 'hashes');
  const pinned = JSON.parse(await readFile(path.join(REPO, 'tests', 'js', 'package.json'), 'utf8'))
    .devDependencies['@noble/hashes'];
  const vendor = path.join(REPO, 'public', 'vendor', 'noble-hashes');
  assert.equal((await readFile(path.join(vendor, 'VERSION'), 'utf8')).trim(), `@noble/hashes ${pinned}`);
  for (const file of ['sha2.js', '_md.js', '_u64.js', 'utils.js', 'LICENSE']) {
    const ours = await readFile(path.join(vendor, file));
    assert.ok(ours.equals(await readFile(path.join(pkgDir, file))), `${file} differs: run scripts/vendor-noble-hashes.sh`);
  }
});

test('25 MB from A to B and C: both accept, SHA-256 matches, chat passes the transfer at once', async (t) => {
  const { pages } = await room(t, ['Ada', 'Grace', 'Linus']);
  const [a, b, c] = pages;
  const data = randomBytes(25 * MB);
  const expected = createHash('sha256').update(data).digest('hex');
  await offerFile(a, 'big.bin', data);

  for (const page of [b, c]) {
    const incoming = card(page, 'big.bin', 'in');
    await waitForState(page, incoming, 'offered');
    // Nothing moves before the receiver says yes.
    assert.equal(await incoming.getAttribute('data-percent'), '0');
    assert.match(await incoming.locator('.transfer-meta').textContent(), /^25 MiB · application\/octet-stream · from Ada$/);
    await waitForSystemLine(page, 'Ada offers you a file: big.bin (25 MiB)');
  }
  const acceptedAt = Date.now();
  await card(b, 'big.bin', 'in').getByRole('button', { name: 'Accept' }).click();
  await card(c, 'big.bin', 'in').getByRole('button', { name: 'Accept' }).click();

  // Mid-transfer, a chat line from A reaches C in under a second, while C's file is
  // still arriving.
  const incomingC = card(c, 'big.bin', 'in');
  await c.waitForFunction(() => {
    const li = document.querySelector('#transfers li.transfer[data-direction="in"]');
    return li && li.dataset.state === 'active' && Number(li.dataset.percent) >= 5;
  }, null, { timeout: WAIT_MS });
  await c.evaluate(() => {
    // Records when the line shows up, and how far the file had come then.
    new MutationObserver((_, observer) => {
      const line = [...document.querySelectorAll('#log .message .text')].find((p) => p.textContent === 'during the transfer');
      if (!line) return;
      const li = document.querySelector('#transfers li.transfer[data-direction="in"]');
      window.chatSeen = { at: Date.now(), state: li.dataset.state, percent: Number(li.dataset.percent) };
      observer.disconnect();
    }).observe(document.getElementById('log'), { childList: true, subtree: true });
  });
  const sentAt = await a.evaluate(() => {
    const input = document.getElementById('message');
    input.value = 'during the transfer';
    const at = Date.now();
    document.getElementById('composer').requestSubmit();
    return at;
  });
  await waitForMessage(c, 'Ada', 'during the transfer');
  const seen = await c.evaluate(() => window.chatSeen);
  t.diagnostic(`chat line mid-transfer: ${seen.at - sentAt} ms, the file at ${seen.percent}%`);
  assert.ok(seen.at - sentAt < 1000, `chat line took ${seen.at - sentAt} ms`);
  assert.equal(seen.state, 'active', 'the file was still arriving when the line came');
  assert.ok(seen.percent < 100, `${seen.percent}%`);

  for (const [page, incoming] of [[b, card(b, 'big.bin', 'in')], [c, incomingC]]) {
    await waitForState(page, incoming, 'done', 120_000);
    assert.equal(await incoming.getAttribute('data-percent'), '100');
    assert.equal(await incoming.getAttribute('data-sha256'), expected);
    assert.equal(await savedSha256(page, incoming), expected, 'the saved file is the sent file');
    assert.equal(await incoming.locator('a.transfer-save').getAttribute('download'), 'big.bin');
    const bar = incoming.locator('progress');
    assert.equal(await bar.evaluate((p) => p.value === p.max), true);
  }
  t.diagnostic(`25 MB to two receivers: ${Date.now() - acceptedAt} ms from the first accept to both checked`);
  // The sender never queues much more than its high mark (1 MiB) plus a chunk per transfer.
  const queued = await a.evaluate(() => window.maxQueued);
  t.diagnostic(`most bytes queued on one files channel: ${queued}`);
  assert.ok(queued > 0 && queued <= 1024 * 1024 + 2 * (64 * 1024 + 4), `${queued} bytes queued`);
  for (const who of ['Grace', 'Linus']) {
    const outgoing = card(a, 'big.bin', 'out', who);
    await waitForState(a, outgoing, 'done');
    assert.equal(await outgoing.getAttribute('data-percent'), '100');
    assert.match(await outgoing.locator('.transfer-status').textContent(), /Delivered to .*SHA-256 matched/);
  }
  assertNoProblems(pages);
});

test('a declined offer leaves the other running; a receiver closing mid-transfer ends only its transfer', async (t) => {
  const { pages } = await room(t, ['Ada', 'Grace', 'Linus']);
  const [a, b, c] = pages;
  const image = await readFile(path.join(REPO, 'docs', 'screenshot.png'));
  await offerFile(a, 'picture.png', image, 'image/png');
  await card(b, 'picture.png', 'in').getByRole('button', { name: 'Decline' }).click();
  await waitForState(a, card(a, 'picture.png', 'out', 'Grace'), 'declined');
  assert.match(await card(a, 'picture.png', 'out', 'Grace').locator('.transfer-status').textContent(), /Grace declined it/);
  await card(c, 'picture.png', 'in').getByRole('button', { name: 'Accept' }).click();
  const got = card(c, 'picture.png', 'in');
  await waitForState(c, got, 'done');
  // An image shows a preview once it is in.
  await explained(c, () => got.locator('img.transfer-preview').waitFor({ timeout: WAIT_MS }));
  assert.ok(await got.locator('img.transfer-preview').evaluate((img) => img.complete && img.naturalWidth > 0));
  assert.equal(await card(b, 'picture.png', 'in').getAttribute('data-state'), 'declined');

  // 40 MB to both; C's tab closes once its part is moving.
  const data = randomBytes(40 * MB);
  await offerFile(a, 'second.bin', data);
  for (const page of [b, c]) await card(page, 'second.bin', 'in').getByRole('button', { name: 'Accept' }).click();
  await c.waitForFunction(() => {
    const li = [...document.querySelectorAll('#transfers li.transfer[data-direction="in"]')].find((l) => l.textContent.includes('second.bin'));
    return li?.dataset.state === 'active' && Number(li.dataset.percent) >= 5;
  }, null, { timeout: WAIT_MS });
  await c.close();
  const toLinus = card(a, 'second.bin', 'out', 'Linus');
  await waitForState(a, toLinus, 'failed');
  assert.match(await toLinus.locator('.transfer-status').textContent(), /^Stopped: (Linus left|the connection to Linus closed)\.$/);
  const atB = card(b, 'second.bin', 'in');
  await waitForState(b, atB, 'done', 120_000);
  assert.equal(await savedSha256(b, atB), createHash('sha256').update(data).digest('hex'));
  await waitForState(a, card(a, 'second.bin', 'out', 'Grace'), 'done');
  assertNoProblems([a, b]);
});

test('either side cancels; too many files and a chat page without peers are refused with a reason', async (t) => {
  const { pages } = await room(t, ['Ada', 'Grace']);
  const [a, b] = pages;
  // The sender cancels while the receiver is still deciding.
  await offerFile(a, 'one.bin', randomBytes(1000));
  await waitForState(b, card(b, 'one.bin', 'in'), 'offered');
  await card(a, 'one.bin', 'out').getByRole('button', { name: 'Cancel' }).click();
  await waitForState(b, card(b, 'one.bin', 'in'), 'cancelled');
  assert.equal(await card(b, 'one.bin', 'in').locator('.transfer-status').textContent(), 'Stopped: cancelled by the sender.');

  // The receiver cancels mid-transfer.
  await offerFile(a, 'two.bin', randomBytes(45 * MB));
  await card(b, 'two.bin', 'in').getByRole('button', { name: 'Accept' }).click();
  await waitForState(b, card(b, 'two.bin', 'in'), 'active');
  await card(b, 'two.bin', 'in').getByRole('button', { name: 'Cancel' }).click();
  await waitForState(a, card(a, 'two.bin', 'out'), 'cancelled');
  assert.equal(await card(a, 'two.bin', 'out').locator('.transfer-status').textContent(), 'Stopped: cancelled by the receiver.');
  assert.equal(await card(b, 'two.bin', 'in').getAttribute('data-state'), 'cancelled');

  // Eleven files at once are too many.
  const eleven = Array.from({ length: 11 }, (_, i) => ({ name: `f${i}.txt`, mimeType: 'text/plain', buffer: Buffer.from(`${i}`) }));
  await a.locator('#file-input').setInputFiles(eleven);
  await waitForSystemLine(a, 'You can offer at most 10 files at once; none of the 11 were offered.');

  // One member, from the member list: the "send file" button opens the picker for it.
  const chooser = a.waitForEvent('filechooser');
  await a.locator('#members li[data-peer-id] .send-file').click();
  await (await chooser).setFiles({ name: 'direct.txt', mimeType: 'text/plain', buffer: Buffer.from('just for you') });
  await card(b, 'direct.txt', 'in').getByRole('button', { name: 'Accept' }).click();
  await waitForState(b, card(b, 'direct.txt', 'in'), 'done');

  // Dropped and pasted files are offered too.
  await a.evaluate(() => {
    const dropped = new DataTransfer();
    dropped.items.add(new File(['dropped bytes'], 'dropped.txt', { type: 'text/plain' }));
    document.getElementById('log').dispatchEvent(new DragEvent('drop', { dataTransfer: dropped, bubbles: true, cancelable: true }));
    const pasted = new DataTransfer();
    pasted.items.add(new File(['pasted bytes'], 'pasted.txt', { type: 'text/plain' }));
    document.getElementById('message').dispatchEvent(new ClipboardEvent('paste', { clipboardData: pasted, bubbles: true, cancelable: true }));
  });
  for (const name of ['dropped.txt', 'pasted.txt']) {
    await card(b, name, 'in').getByRole('button', { name: 'Accept' }).click();
    await waitForState(b, card(b, name, 'in'), 'done');
  }

  // Alone in the room, there is nobody to offer to.
  await b.close();
  await waitForOpenPeers(a, 0, 10_000);
  await offerFile(a, 'lonely.txt', Buffer.from('anyone?'));
  await waitForSystemLine(a, 'Nobody here can receive files yet');
  assertNoProblems([a]);
});

test('a chat line still works for a page that cannot take files (no capability in its hello)', async (t) => {
  // An older meshchat page sends a hello without `caps`: it gets no "send file" button
  // and no offers, and chat with it is unchanged.
  const server = await startServer();
  t.after(() => server.stop());
  const a = await openPage(browser, `${server.url}/`);
  t.after(() => a.context().close());
  const link = await waitForRoom(a);
  const old = await openPage(browser, link, {
    prepare: (context) => context.addInitScript(() => {
      // Counts the channels announced in-band: the reference app's client would take the
      // first as its chat, so the files channel must not be one of them.
      window.announcedChannels = 0;
      const Native = RTCPeerConnection;
      window.RTCPeerConnection = class extends Native {
        constructor(...args) {
          super(...args);
          this.addEventListener('datachannel', () => { window.announcedChannels += 1; });
        }
      };
      const send = RTCDataChannel.prototype.send;
      RTCDataChannel.prototype.send = function sendWithoutCaps(data) {
        if (typeof data === 'string' && data.includes('"type":"hello"')) {
          const hello = JSON.parse(data);
          delete hello.caps;
          return send.call(this, JSON.stringify(hello));
        }
        return send.call(this, data);
      };
    }),
  });
  t.after(() => old.context().close());
  await setName(old, 'Oldie');
  await Promise.all([a, old].map((p) => waitForOpenPeers(p, 1)));
  await say(old, 'hi from an old page');
  await waitForMessage(a, 'Oldie', 'hi from an old page');
  assert.equal(await a.locator('#members .send-file').count(), 0);
  assert.equal(await old.evaluate(() => window.announcedChannels), 1, 'one channel announced: the chat');
  await offerFile(a, 'nope.txt', Buffer.from('x'));
  await waitForSystemLine(a, 'Nobody here can receive files yet');
  assert.equal(await old.locator('#transfers li').count(), 0);
  assertNoProblems([a, old]);
});
