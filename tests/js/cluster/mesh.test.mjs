// The web client in headless Chromium with its pages on two nodes of a cluster: the pages
// form a full mesh through signaling that crosses nodes over Redis, and chat.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, startNodes } from '../helpers/cluster.mjs';
import {
  launch, openPage, members, waitForOpenPeers, waitForRoom, say, waitForMessage, setName,
  explained, assertNoProblems,
} from '../helpers/browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

test('cluster: pages on two nodes form a full mesh and every message reaches every other page', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B] = await startNodes(t, 2, redis);
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));

  // Page 1 creates the room on A; pages 2 and 3 open its share link on B's address.
  pages.push(await openPage(browser, `${A.url}/`));
  const link = await waitForRoom(pages[0]);
  const roomId = new URL(link).searchParams.get('roomId');
  assert.match(roomId, /^[A-Za-z0-9_-]{10}$/);
  for (let i = 0; i < 2; i += 1) pages.push(await openPage(browser, `${B.url}/?roomId=${roomId}`));
  // Each page's socket stays on its own node (openPage flags a websocket to another host).
  assert.deepEqual(pages.map((p) => new URL(p.url()).origin), [A.url, B.url, B.url]);

  const names = ['Ada', 'Grace', 'Linus'];
  try {
    await Promise.all(pages.map((p, i) => setName(p, names[i])));
    await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));
  } catch (err) {
    for (const [i, node] of [A, B].entries()) {
      err.message += `\nnode ${i} log:\n${node.logs.map((l) => JSON.stringify(l)).join('\n')}`;
    }
    throw err;
  }
  // Three distinct peers, each connected to the two others: a full mesh of 3 connections.
  const seen = await Promise.all(pages.map(members));
  assert.equal(new Set(seen.flat().map((m) => m.id)).size, 3, 'one peer id per page');
  for (const page of pages) assert.equal(await page.locator('#member-count').textContent(), '3');

  for (const [i, page] of pages.entries()) await say(page, `hello from ${names[i]}`);
  for (const [i, page] of pages.entries()) {
    for (const [j, name] of names.entries()) {
      const author = i === j ? `${name} (you)` : name;
      await explained(page, () => waitForMessage(page, author, `hello from ${name}`));
    }
    assert.equal(await page.locator('#log .message').count(), 3, 'each message once');
  }
  // Both nodes relayed signaling from their own pages (each counts what its clients send):
  // A's only page reached the pages on B through Redis.
  for (const node of [A, B]) {
    const text = await (await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text();
    const relayed = [...text.matchAll(/^meshchat_relayed_total\{[^}]*\} (\d+)$/gm)]
      .reduce((sum, m) => sum + Number(m[1]), 0);
    assert.ok(relayed > 0, `${node.url} relayed ${relayed}`);
  }
  assertNoProblems(pages);
});
