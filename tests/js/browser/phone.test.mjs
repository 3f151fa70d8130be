// The page on a phone (390×844, touch): the chat flow, the member panel, tap targets, the
// composer above the on-screen keyboard, and a screenshot. The screenshots go to target/;
// with UPDATE_SCREENSHOT=1 they also replace docs/phone.png and docs/phone-members.png.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { REPO as repo, startServer } from '../helpers/server.mjs';
import {
  PHONE, WAIT_MS, launch, openPage, waitForOpenPeers, waitForRoom, waitForMessage, setName, say, assertNoProblems,
} from '../helpers/browser.mjs';

let browser;
after(() => browser?.close());

/** Controls on screen smaller than 44 px either way (a fingertip's width), as "id: w×h". */
function smallTapTargets(page) {
  return page.evaluate(() => {
    const controls = document.querySelectorAll('button, input:not([type="checkbox"]), a[href], label.check');
    return [...controls]
      .filter((el) => el.checkVisibility())
      .map((el) => ({ el, box: el.getBoundingClientRect() }))
      .filter(({ box }) => box.width < 44 || box.height < 44)
      .map(({ el, box }) => `${el.id || el.className || el.textContent.trim()}: ${Math.round(box.width)}×${Math.round(box.height)}`);
  });
}

/** Whether `selector` lies wholly inside the visible part of the page. */
function onScreen(page, selector) {
  return page.locator(selector).evaluate((el) => {
    const box = el.getBoundingClientRect();
    return box.top >= 0 && box.left >= 0 && box.bottom <= window.innerHeight && box.right <= window.innerWidth;
  });
}

test('on a phone: chat, member panel, 44 px tap targets, composer above the keyboard, screenshot', async (t) => {
  browser = await launch();
  const server = await startServer();
  t.after(() => server.stop());
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const ada = await openPage(browser, `${server.url}/`);
  pages.push(ada);
  await setName(ada, 'Ada');
  const link = await waitForRoom(ada);
  const grace = await openPage(browser, link);
  pages.push(grace);
  await setName(grace, 'Grace');
  const linus = await openPage(browser, link, { contextOptions: PHONE });
  pages.push(linus);
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));

  // The member list is folded away: the conversation has the screen.
  assert.equal(await linus.locator('#members').isVisible(), false, 'member list folded');
  assert.equal(await linus.locator('#log').isVisible(), true);
  assert.equal(await linus.locator('#members-toggle').textContent(), 'Members 3');
  assert.ok(await onScreen(linus, '#composer'), 'the composer is on screen');
  assert.deepEqual(await smallTapTargets(linus), []);

  // Tapping "Members" opens the panel over the conversation; the name is set there.
  await linus.locator('#members-toggle').tap();
  assert.equal(await linus.locator('#members').isVisible(), true, 'member panel open');
  assert.equal(await linus.locator('#members-toggle').getAttribute('aria-expanded'), 'true');
  assert.deepEqual(await smallTapTargets(linus), []);
  await setName(linus, 'Linus');
  await linus.locator('#members').getByText('Grace', { exact: true }).waitFor({ timeout: WAIT_MS });
  assert.ok(await onScreen(linus, '#side'), 'the panel fits the screen');
  await linus.screenshot({ path: path.join(repo, 'target', 'phone-members.png') });
  await linus.locator('#members-toggle').tap();
  assert.equal(await linus.locator('#members').isVisible(), false, 'member panel closed again');

  // The chat flow, by touch.
  await say(ada, 'Linus, can you read this on your phone?');
  await waitForMessage(linus, 'Ada', 'Linus, can you read this on your phone?');
  await linus.locator('#message').tap();
  await linus.keyboard.type('Yes, and the box stays above the keyboard.');
  await grace.waitForFunction(() => document.getElementById('typing').textContent === 'Linus is typing…', null, { timeout: WAIT_MS });
  await linus.locator('#send').tap();
  await waitForMessage(ada, 'Linus', 'Yes, and the box stays above the keyboard.');
  await waitForMessage(grace, 'Linus', 'Yes, and the box stays above the keyboard.');
  await say(grace, 'Nice. The member list is behind the Members button.');
  await waitForMessage(linus, 'Grace', 'Nice. The member list is behind the Members button.');

  // Nothing wider than the screen.
  assert.ok(await linus.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling');
  const shot = path.join(repo, 'target', 'phone.png');
  await mkdir(path.dirname(shot), { recursive: true });
  await linus.screenshot({ path: shot });
  assert.ok((await stat(shot)).size > 10_000, 'a real picture');

  // The on-screen keyboard takes the lower 40% of the screen: the page shrinks to what is
  // left (interactive-widget=resizes-content), and the composer and the last message stay
  // in view.
  await linus.setViewportSize({ width: 390, height: 500 });
  await linus.waitForFunction(() => window.innerHeight === 500, null, { timeout: WAIT_MS });
  assert.ok(await onScreen(linus, '#message'), 'the message box is above the keyboard');
  assert.ok(await onScreen(linus, '#send'), 'the send button is above the keyboard');
  await say(ada, 'Still there?');
  await waitForMessage(linus, 'Ada', 'Still there?');
  assert.ok(await onScreen(linus, '#log li:last-child'), 'the newest message is in view');

  if (process.env.UPDATE_SCREENSHOT === '1') {
    await copyFile(shot, path.join(repo, 'docs', 'phone.png'));
    await copyFile(path.join(repo, 'target', 'phone-members.png'), path.join(repo, 'docs', 'phone-members.png'));
  }
  assertNoProblems(pages);
});
