// Screenshots of a file transfer in progress and of the safety-code ("verify") view, for
// docs/web-client.md. They go to target/; with UPDATE_SCREENSHOT=1 they also replace the copies
// in docs/.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { REPO as repo, startServer } from '../helpers/server.mjs';
import {
  WAIT_MS, launch, openPage, waitForOpenPeers, waitForRoom, setName, say, waitForMessage, assertNoProblems,
} from '../helpers/browser.mjs';

let browser;
after(() => browser?.close());

async function keep(page, name) {
  const shot = path.join(repo, 'target', name);
  await mkdir(path.dirname(shot), { recursive: true });
  await page.screenshot({ path: shot });
  assert.ok((await stat(shot)).size > 10_000, 'a real picture');
  if (process.env.UPDATE_SCREENSHOT === '1') await copyFile(shot, path.join(repo, 'docs', name));
}

test('screenshots: a transfer in progress, and the verify view', async (t) => {
  browser = await launch();
  const server = await startServer();
  t.after(() => server.stop());
  const viewport = { width: 1000, height: 700 };
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const ada = await openPage(browser, `${server.url}/`, { viewport });
  pages.push(ada);
  await setName(ada, 'Ada');
  const link = await waitForRoom(ada);
  for (const name of ['Grace', 'Linus']) {
    const page = await openPage(browser, link, { viewport });
    pages.push(page);
    await setName(page, name);
  }
  const [, grace] = pages;
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));
  await grace.waitForFunction(() => document.querySelectorAll('#members .send-file').length === 2, null, { timeout: WAIT_MS });
  await say(ada, 'Sending you the recording of the talk, and the slides.');
  await waitForMessage(grace, 'Ada', 'Sending you the recording of the talk, and the slides.');

  // Ada's page runs slowly (CPU throttled through the DevTools protocol), so the transfer
  // is still under way when Grace's page is photographed.
  await ada.locator('#file-input').setInputFiles([
    { name: 'talk-recording.webm', mimeType: 'video/webm', buffer: randomBytes(40 * 1024 * 1024) },
    { name: 'slides.pdf', mimeType: 'application/pdf', buffer: randomBytes(3 * 1024 * 1024) },
  ]);
  const offered = grace.locator('#transfers li.transfer[data-state="offered"]');
  await offered.nth(1).waitFor({ timeout: WAIT_MS });
  const cdp = await ada.context().newCDPSession(ada);
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 20 });
  await grace.locator('#transfers li.transfer').filter({ hasText: 'talk-recording.webm' }).getByRole('button', { name: 'Accept' }).click();
  await grace.waitForFunction(() => {
    const li = document.querySelector('#transfers li.transfer[data-state="active"]');
    return li && Number(li.dataset.percent) >= 3;
  }, null, { timeout: WAIT_MS });
  await keep(grace, 'screenshot-transfer.png');
  assert.equal(await grace.locator('#transfers li.transfer').filter({ hasText: 'talk-recording.webm' }).getAttribute('data-state'), 'active',
    'still in progress after the picture');
  await cdp.send('Emulation.setCPUThrottlingRate', { rate: 1 });
  const recording = grace.locator('#transfers li.transfer').filter({ hasText: 'talk-recording.webm' });
  await recording.getByRole('button', { name: 'Cancel' }).click();
  await recording.getByRole('button', { name: 'Remove' }).click();

  // The verify view: Grace opens the code of her connection to Ada.
  const member = grace.locator('#members li[data-peer-id]').filter({ hasText: 'Ada' });
  await member.locator('.verify summary').click();
  await member.locator('.safety-code').waitFor({ timeout: WAIT_MS });
  await keep(grace, 'screenshot-verify.png');
  assertNoProblems(pages);
});
