// The web client in headless Chromium through a rolling restart of a three-node cluster:
// each page's node is stopped with SIGTERM and started again in turn; the chat goes on.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { FAST, startRedis, startNodes } from '../helpers/cluster.mjs';
import { startServer, status, until } from '../helpers/server.mjs';
import {
  WAIT_MS, launch, openPage, waitForOpenPeers, waitForRoom, say, waitForMessage, setName,
  explained, assertNoProblems, shows, withHook,
} from '../helpers/browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

const ENV = { SHUTDOWN_TIMEOUT_SECS: '4' };

/** Runs `wait(page)` on every page; if one fails, the error says what each page shows. */
async function onEvery(pages, wait) {
  const results = await Promise.allSettled(pages.map((p) => wait(p)));
  const failed = results.find((r) => r.status === 'rejected');
  if (!failed) return;
  const states = await Promise.all(pages.map((p) => shows(p)));
  failed.reason.message += `\n${states.join('\n')}`;
  throw failed.reason;
}

function lines(page, text) {
  return page.$$eval('#log .system', (lis, text) => lis.filter((li) => li.textContent === text).length, text);
}

test('cluster: through a rolling restart of every node, pages on different nodes keep chatting and stay in their room', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const nodes = await startNodes(t, 3, redis, ENV);
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));

  // With the test hook, a failure shows where each page's connections stand.
  pages.push(await openPage(browser, withHook(`${nodes[0].url}/`)));
  const link = await waitForRoom(pages[0]);
  const roomId = new URL(link).searchParams.get('roomId');
  for (const node of nodes.slice(1)) pages.push(await openPage(browser, withHook(`${node.url}/?roomId=${roomId}`)));
  const names = ['Ada', 'Grace', 'Linus'];
  await Promise.all(pages.map((p, i) => setName(p, names[i])));
  await onEvery(pages, (p) => waitForOpenPeers(p, 2));

  for (const [i, node] of nodes.entries()) {
    const page = pages[i];
    const others = pages.filter((p) => p !== page);
    node.child.kill('SIGTERM');
    await explained(page, () => page.waitForFunction(() => document.body.dataset.signaling === 'offline', null, { timeout: WAIT_MS }));
    // Its node is going or gone: the page's open channels carry the chat meanwhile.
    await say(page, `while node ${i} restarts`);
    for (const other of others) await explained(other, () => waitForMessage(other, names[i], `while node ${i} restarts`));
    const { code } = await node.exited;
    assert.equal(code, 0, `node ${i} exit code`);

    const again = await startServer({ REDIS_URL: redis.url, ...FAST, ...redis.env, ...ENV, PORT: String(node.port) });
    t.after(() => again.stop('SIGKILL'));
    nodes[i] = again;
    await until(async () => (await status(again, '/readyz')) === 200, `node ${i} ready again`);
    // The page comes back through the new process, in the same room, and the others
    // take it as the same member: it resumes with its resume token (nobody sees anything),
    // or, when the survivors swept its node first, it rejoins under a new peer id and the
    // others say so once ("reconnected"); never "left".
    await explained(page, () => page.waitForFunction(
      (roomId) => document.body.dataset.signaling === 'online' && document.body.dataset.roomId === roomId,
      roomId,
      { timeout: WAIT_MS },
    ));
    await onEvery(pages, (p) => waitForOpenPeers(p, 2));
  }

  for (const [i, page] of pages.entries()) {
    assert.equal(new URL(page.url()).searchParams.get('roomId'), roomId, 'the room is the same');
    assert.equal(await page.locator('#notice').getByText('The room was gone').count(), 0);
    await say(page, `after the restart, ${names[i]}`);
  }
  for (const [i, page] of pages.entries()) {
    for (const [j, name] of names.entries()) {
      const author = i === j ? `${name} (you)` : name;
      await explained(page, () => waitForMessage(page, author, `after the restart, ${name}`));
    }
    for (const [j, name] of names.entries()) {
      if (j === i) continue;
      assert.ok(await lines(page, `${name} reconnected.`) <= 1, `${names[i]} sees ${name} reconnect at most once`);
      assert.equal(await lines(page, `${name} left.`), 0, `${names[i]} never sees ${name} leave\n${(await Promise.all(pages.map((p) => shows(p)))).join('\n')}`);
    }
  }
  // Chromium logs the reconnection attempts that met a draining node (503) or none.
  assertNoProblems(pages, [
    /^console error: Failed to load resource: net::ERR_CONNECTION_REFUSED$/,
    /^console error: Failed to load resource: the server responded with a status of (400 \(Bad Request\)|503 \(Service Unavailable\))$/,
    /^console error: WebSocket connection to '[^']+' failed/,
  ]);
});
