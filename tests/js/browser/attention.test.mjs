// Noticing messages: the unread count in the title and on the favicon of a page in the
// background, the typing indicator, and desktop notifications with and without their text.
//
// Headless Chromium keeps every page "visible" (DevTools has no visibility emulation, and
// a minimised headless window stays visible), so a page is sent to the background the way
// a user does on a desktop: another tab of its window comes to the front and the page
// really loses the focus. Playwright pretends every page has the focus; that is switched
// off for these pages.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../helpers/server.mjs';
import {
  WAIT_MS, launch, openPage, waitForOpenPeers, waitForRoom, waitForMessage, setName, say, explained, assertNoProblems, sendToBackground,
} from '../helpers/browser.mjs';

let browser;
after(() => browser?.close());

/** Two named members with an open channel between them: Ada created the room, Bea joined. */
async function pair(t, adaOptions = {}) {
  browser ??= await launch();
  const server = await startServer();
  t.after(() => server.stop());
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const ada = await openPage(browser, `${server.url}/`, adaOptions);
  pages.push(ada);
  const link = await waitForRoom(ada);
  const bea = await openPage(browser, link);
  pages.push(bea);
  await Promise.all([waitForOpenPeers(ada, 1), waitForOpenPeers(bea, 1)]);
  await setName(ada, 'Ada');
  await setName(bea, 'Bea');
  await explained(ada, () => ada.waitForFunction(
    () => document.querySelector('#members li[data-peer-id] .member-name')?.textContent === 'Bea',
    null,
    { timeout: WAIT_MS },
  ));
  return { server, pages, ada, bea };
}

const title = (page) => page.evaluate(() => document.title);
const favicon = (page) => page.evaluate(() => document.querySelector('link[rel="icon"]').getAttribute('href'));

test('a page in the background counts new messages in its title and favicon, and clears them on focus', async (t) => {
  const { pages, ada, bea } = await pair(t);
  assert.equal(await title(ada), 'meshchat');
  const plainIcon = await favicon(ada);

  // Looking at the page: a message is no news.
  await say(bea, 'seen at once');
  await waitForMessage(ada, 'Bea', 'seen at once');
  assert.equal(await title(ada), 'meshchat');

  const comeBack = await sendToBackground(ada);
  await say(bea, 'first while away');
  await say(bea, 'second while away');
  await ada.waitForFunction(() => document.title === '(2) meshchat', null, { timeout: WAIT_MS });
  // The badge is drawn from the favicon: a PNG with a red dot, not the plain icon.
  await ada.waitForFunction(() => document.querySelector('link[rel="icon"]').href.startsWith('data:image/png'), null, { timeout: WAIT_MS });
  const red = await ada.evaluate(async () => {
    const img = new Image();
    img.src = document.querySelector('link[rel="icon"]').href;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.width;
    canvas.height = img.height;
    const g = canvas.getContext('2d');
    g.drawImage(img, 0, 0);
    // The badge's edge, away from the digits: the red of the dot.
    const [r, gr, b] = g.getImageData(img.width - 3, Math.round(img.height * 0.3), 1, 1).data;
    return r > 150 && gr < 100 && b < 100;
  });
  assert.ok(red, 'the favicon carries a red badge');

  await comeBack();
  await ada.waitForFunction(() => document.title === 'meshchat', null, { timeout: WAIT_MS });
  assert.equal(await favicon(ada), plainIcon, 'the plain favicon is back');
  assertNoProblems(pages);
});

test('the typing indicator shows who types, is sent at most every few seconds, and expires by itself', async (t) => {
  // Counts Bea's typing signals as they go onto the data channel (the real send runs).
  const spy = (context) => context.addInitScript(() => {
    window.typingSent = 0;
    const send = RTCDataChannel.prototype.send;
    RTCDataChannel.prototype.send = function (data) {
      if (typeof data === 'string' && data.includes('"type":"typing"')) window.typingSent += 1;
      return send.call(this, data);
    };
  });
  browser ??= await launch();
  const server = await startServer();
  t.after(() => server.stop());
  const ada = await openPage(browser, `${server.url}/`);
  const link = await waitForRoom(ada);
  const bea = await openPage(browser, link, { prepare: spy });
  const pages = [ada, bea];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  await Promise.all([waitForOpenPeers(ada, 1), waitForOpenPeers(bea, 1)]);
  await setName(bea, 'Bea');
  await ada.waitForFunction(
    () => document.querySelector('#members li[data-peer-id] .member-name')?.textContent === 'Bea',
    null,
    { timeout: WAIT_MS },
  );
  assert.equal(await ada.locator('#typing').textContent(), '');

  // Twenty keystrokes in about a second: one signal, not twenty.
  await bea.locator('#message').pressSequentially('a long thought here.', { delay: 50 });
  await ada.waitForFunction(() => document.getElementById('typing').textContent === 'Bea is typing…', null, { timeout: WAIT_MS });
  const sent = await bea.evaluate(() => window.typingSent);
  assert.ok(sent >= 1 && sent <= 2, `typing signals sent for 20 keystrokes: ${sent}`);

  // Bea stops without sending: the indicator goes away on its own, after a while.
  const stopped = Date.now();
  await ada.waitForFunction(() => document.getElementById('typing').textContent === '', null, { timeout: 15_000 });
  const shownFor = Date.now() - stopped;
  assert.ok(shownFor >= 3_000, `the indicator outlived the last keystroke by ${shownFor} ms`);

  // Typing again shows it at once; the message itself ends it.
  await bea.locator('#message').pressSequentially(' More.', { delay: 30 });
  await ada.waitForFunction(() => document.getElementById('typing').textContent === 'Bea is typing…', null, { timeout: WAIT_MS });
  await bea.locator('#message').press('Enter');
  await waitForMessage(ada, 'Bea', 'a long thought here. More.');
  assert.equal(await ada.locator('#typing').textContent(), '', 'the message ends the indicator');
  assertNoProblems(pages);
});

test('desktop notifications are opt-in, shown for messages and joins in the background, and private on request', async (t) => {
  const { pages, ada, bea } = await pair(t, { prepare: (context) => context.grantPermissions(['notifications']) });
  const notifications = () => ada.evaluate(async () => {
    const registration = await navigator.serviceWorker.ready;
    return (await registration.getNotifications()).map(({ title, body, tag }) => ({ title, body, tag }));
  });
  await ada.waitForFunction(() => document.documentElement.dataset.offlineReady === 'true', null, { timeout: WAIT_MS });

  // Not asked for: nothing shows, even in the background.
  let comeBack = await sendToBackground(ada);
  await say(bea, 'before opting in');
  await ada.waitForFunction(() => document.title === '(1) meshchat', null, { timeout: WAIT_MS });
  assert.deepEqual(await notifications(), []);
  await comeBack();

  await ada.locator('#notify-desktop').check();
  await ada.waitForFunction(() => /notification for each message/.test(document.getElementById('notify-hint').textContent), null, { timeout: WAIT_MS });
  comeBack = await sendToBackground(ada);
  await say(bea, 'the plan is on');
  await ada.waitForFunction(async () => {
    const all = await (await navigator.serviceWorker.ready).getNotifications();
    return all.some((n) => n.title === 'Bea' && n.body === 'the plan is on');
  }, null, { timeout: WAIT_MS, polling: 100 });

  // Someone joining while Ada looks elsewhere is news too.
  const cy = await openPage(browser, await ada.evaluate(() => document.body.dataset.roomLink));
  pages.push(cy);
  await waitForOpenPeers(ada, 2);
  await ada.waitForFunction(async () => {
    const all = await (await navigator.serviceWorker.ready).getNotifications();
    return all.some((n) => n.tag === 'join' && / joined the room$/.test(n.body));
  }, null, { timeout: WAIT_MS, polling: 100 });
  await comeBack();

  // Private: the notification says that a message came, not who wrote what.
  await ada.evaluate(async () => {
    for (const n of await (await navigator.serviceWorker.ready).getNotifications()) n.close();
  });
  await ada.locator('#notify-private').check();
  comeBack = await sendToBackground(ada);
  await say(bea, 'the secret detail');
  await ada.waitForFunction(() => document.title === '(1) meshchat', null, { timeout: WAIT_MS });
  await ada.waitForFunction(async () => {
    const all = await (await navigator.serviceWorker.ready).getNotifications();
    return all.some((n) => n.tag === 'message' && n.body === 'New message');
  }, null, { timeout: WAIT_MS, polling: 100 });
  const shown = JSON.stringify(await notifications());
  assert.ok(!shown.includes('secret detail'), `no text in private notifications: ${shown}`);
  assert.ok(!shown.includes('Bea'), `no names in private notifications: ${shown}`);
  await comeBack();

  // The choice outlives the page.
  await ada.reload();
  assert.equal(await ada.locator('#notify-desktop').isChecked(), true);
  assert.equal(await ada.locator('#notify-private').isChecked(), true);
  assertNoProblems(pages);
});
