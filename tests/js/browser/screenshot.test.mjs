// A three-member conversation, used by hand at keyboard and phone width, and its
// screenshot for the README and docs/web-client.md. The screenshot goes to target/screenshot.png; with
// UPDATE_SCREENSHOT=1 it also replaces docs/screenshot.png.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { REPO as repo, startServer } from '../helpers/server.mjs';
import {
  launch, openPage, waitForOpenPeers, waitForRoom, waitForMessage, setName, assertNoProblems,
} from '../helpers/browser.mjs';

let browser;
after(() => browser?.close());

test('a three-member conversation by keyboard, at desktop and phone width, with a screenshot', async (t) => {
  browser = await launch();
  const server = await startServer();
  t.after(() => server.stop());
  const viewport = { width: 1000, height: 640 };
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const join = async (url, name, size) => {
    const page = await openPage(browser, url, { viewport: size });
    pages.push(page);
    // At phone width the name field is in the member panel, opened from the top bar.
    const phone = size.width < 640;
    if (phone) await page.locator('#members-toggle').click();
    await setName(page, name);
    if (phone) await page.locator('#members-toggle').click();
    return page;
  };
  const ada = await join(`${server.url}/`, 'Ada', viewport);
  const link = await waitForRoom(ada);
  const grace = await join(link, 'Grace', viewport);
  const linus = await join(link, 'Linus', { width: 390, height: 844 });
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));

  // Linus uses only the keyboard: Tab to the message box, type, Enter.
  await linus.locator('body').focus();
  for (let i = 0; i < 12 && !(await linus.evaluate(() => document.activeElement?.id === 'message')); i += 1) {
    await linus.keyboard.press('Tab');
  }
  assert.equal(await linus.evaluate(() => document.activeElement?.id), 'message', 'Tab reaches the message box');

  const lines = [
    [ada, 'Ada', 'Hi both! Everything here goes peer to peer, the server only introduced us.'],
    [grace, 'Grace', 'Nice. Can the server read this?'],
    [ada, 'Ada', 'No: it only passed our offers, answers and ICE candidates along.'],
    [linus, 'Linus', 'Typed on my phone, sent with Enter.'],
  ];
  for (const [page, , text] of lines) {
    if (page === linus) await linus.keyboard.type(text);
    else await page.locator('#message').fill(text);
    await (page === linus ? linus.keyboard : page.locator('#message')).press('Enter');
    for (const [other, name] of [[ada, 'Ada'], [grace, 'Grace'], [linus, 'Linus']]) {
      const author = lines.find(([p]) => p === page)[1];
      await waitForMessage(other, other === page ? `${name} (you)` : author, text);
    }
  }

  // Phone width: nothing is wider than the screen and the controls are on it.
  assert.ok(await linus.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth));
  for (const id of ['#message', '#send', '#share', '#leave']) {
    const box = await linus.locator(id).boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= 390, `${id} fits the phone width`);
  }

  const shot = path.join(repo, 'target', 'screenshot.png');
  await mkdir(path.dirname(shot), { recursive: true });
  await ada.screenshot({ path: shot });
  await linus.screenshot({ path: path.join(repo, 'target', 'screenshot-phone.png') });
  assert.ok((await stat(shot)).size > 10_000, 'a real picture');
  if (process.env.UPDATE_SCREENSHOT === '1') {
    await copyFile(shot, path.join(repo, 'docs', 'screenshot.png'));
  }
  assertNoProblems(pages);
});
