// Big rooms in real headless Chromium: sixteen pages form a full mesh and chat, the member
// list stays usable, and members arriving or leaving together share a line in the log.
// The time limits are hang guards, not benchmarks (bench/rooms.mjs measures).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../helpers/server.mjs';
import {
  launch, openPage, waitForOpenPeers, waitForRoom, say, waitForMessage, explained, assertNoProblems,
} from '../helpers/browser.mjs';

// Sixteen pages on a CI machine of two cores: opening them one by one takes most of it.
const HANG_GUARD_MS = 180_000;

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

/** Opens `url` in a context whose stored name is `name`, as someone who chose it before. */
function openNamed(url, name) {
  return openPage(browser, url, {
    prepare: (context) => context.addInitScript((n) => localStorage.setItem('meshchat.name', n), name),
  });
}

const GROUPED = {
  connected: (line) => (line.endsWith(' again.') ? null : /^Connected to (.+)\.$/.exec(line)?.[1]),
  left: (line) => /^(.+) left\.$/.exec(line)?.[1],
};

/** How many members a line's list names: "Ann" 1, "Ann and Bo" 2, "Ann, Bo and Cy" 3,
 * "Ann, Bo and 5 others" 7. */
function namedIn(list) {
  const others = / and (\d+) others$/.exec(list);
  return others ? 2 + Number(others[1]) : list.split(/, | and /).length;
}

/** Waits until the system lines of `page` of `kind` (GROUPED) name `n` members in all;
 * returns {lines, named}. */
async function groupedLines(page, kind, n, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const lines = (await page.$$eval('#log .system', (lis) => lis.map((li) => li.textContent)))
      .filter((line) => GROUPED[kind](line));
    const named = lines.reduce((sum, line) => sum + namedIn(GROUPED[kind](line)), 0);
    if (named >= n || Date.now() > deadline) return { lines, named };
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

test('sixteen pages form a full mesh and chat; the member list is compact and scrolls', { timeout: HANG_GUARD_MS }, async (t) => {
  const size = 16;
  const server = await startServer({ MAX_ROOM_SIZE: String(size) });
  t.after(() => server.stop());
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const names = Array.from({ length: size }, (_, i) => `Member ${String(i + 1).padStart(2, '0')}`);
  pages.push(await openNamed(`${server.url}/`, names[0]));
  const link = await waitForRoom(pages[0]);
  for (let i = 1; i < size; i += 1) pages.push(await openNamed(link, names[i]));
  // Each page has an open channel to each of the 15 others: 120 connections.
  await Promise.all(pages.map((p) => waitForOpenPeers(p, size - 1, HANG_GUARD_MS)));

  const first = pages[0];
  const last = pages[size - 1];
  await say(first, 'hello, big room');
  await say(last, 'hello from the last one');
  await Promise.all(pages.slice(1).map((p) => explained(p, () => waitForMessage(p, names[0], 'hello, big room'))));
  await Promise.all(pages.slice(0, -1).map((p) => explained(p, () => waitForMessage(p, names[size - 1], 'hello from the last one'))));

  // The member list: its count, compact, scrolling by itself and reachable by keyboard.
  for (const page of [first, last]) {
    assert.equal(await page.locator('#member-count').textContent(), String(size));
    const list = await page.locator('#members').evaluate((ul) => ({
      size: ul.dataset.size,
      tabIndex: ul.tabIndex,
      scrolls: ul.scrollHeight > ul.clientHeight && getComputedStyle(ul).overflowY === 'auto',
    }));
    assert.deepEqual(list, { size: 'large', tabIndex: 0, scrolls: true });
  }
  // The last page met fifteen members within seconds: a few lines say so, not fifteen.
  const { lines, named } = await groupedLines(last, 'connected', size - 1);
  assert.equal(named, size - 1, `every member named once: ${JSON.stringify(lines)}`);
  assert.ok(lines.length < size - 1, `grouped: ${JSON.stringify(lines)}`);
  assertNoProblems(pages);
});

test('members arriving or leaving together share a line: "Ann, Bo and 3 others left."', { timeout: HANG_GUARD_MS }, async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const ada = await openNamed(`${server.url}/`, 'Ada');
  t.after(() => ada.context().close());
  const link = await waitForRoom(ada);
  const names = ['Bo', 'Cy', 'Di', 'Ed', 'Flo', 'Gus'];
  // All at once, as when a link goes out to a team.
  const others = await Promise.all(names.map((name) => openNamed(link, name)));
  t.after(() => Promise.all(others.map((p) => p.context().close().catch(() => {}))));
  await Promise.all([ada, ...others].map((p) => waitForOpenPeers(p, names.length)));

  const connected = await groupedLines(ada, 'connected', names.length);
  assert.equal(connected.named, names.length, JSON.stringify(connected.lines));
  assert.ok(connected.lines.length < names.length, `grouped: ${JSON.stringify(connected.lines)}`);

  // Five leave together; Gus stays.
  await Promise.all(others.slice(0, 5).map((p) => p.context().close()));
  await waitForOpenPeers(ada, 1, 30_000);
  const left = await groupedLines(ada, 'left', 5);
  assert.equal(left.named, 5, JSON.stringify(left.lines));
  assert.ok(left.lines.length < 5, `grouped: ${JSON.stringify(left.lines)}`);
  assert.ok(!left.lines.some((l) => l.includes('Gus')), 'Gus stayed');

  // How lists of names read.
  const lists = await ada.evaluate(async () => {
    const { listNames } = await import('/js/presence.js');
    return [['Ann'], ['Ann', 'Bo'], ['Ann', 'Bo', 'Cy'], ['Ann', 'Bo', 'Cy', 'Di', 'Ed', 'Flo', 'Gus']].map(listNames);
  });
  assert.deepEqual(lists, ['Ann', 'Ann and Bo', 'Ann, Bo and Cy', 'Ann, Bo and 5 others']);
  assertNoProblems([ada, others[5]]);
});
