// Replies, reactions, edits, deletes, mentions and links between real pages: every page
// (and a late joiner, from its backfill) shows the same conversation, only a message's
// author can change it, concurrent edits converge, text stays text, and all of it works
// from the keyboard.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../helpers/server.mjs';
import {
  WAIT_MS, PHONE, launch, openPage, members, waitForOpenPeers, waitForRoom, say, waitForMessage, setName,
  explained, assertNoProblems, withHook, sendToBackground, peerIdOf,
} from '../helpers/browser.mjs';

let browser;
before(async () => { browser = await launch(); });
after(() => browser?.close());

/** A server and a room of pages named `names`, with the test hook; all connected. */
async function room(t, names) {
  const server = await startServer();
  t.after(() => server.stop());
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  pages.push(await openPage(browser, withHook(`${server.url}/`)));
  const link = await waitForRoom(pages[0]);
  for (let i = 1; i < names.length; i += 1) pages.push(await openPage(browser, withHook(link)));
  await Promise.all(pages.map((p, i) => setName(p, names[i])));
  await Promise.all(pages.map((p) => waitForOpenPeers(p, names.length - 1)));
  await waitForNames(pages, names);
  return { server, pages, link };
}

/** Opens one more page of the room, named `name`, and waits until it knows everyone. */
async function join(pages, link, name, names) {
  const page = await openPage(browser, withHook(link));
  pages.push(page);
  await setName(page, name);
  await Promise.all(pages.map((p) => waitForOpenPeers(p, pages.length - 1)));
  await waitForNames(pages, names);
  return page;
}

/** Waits until every page lists the others by name. */
async function waitForNames(pages, names) {
  await Promise.all(pages.map((page, i) => explained(page, () => page.waitForFunction(
    (expected) => {
      const shown = [...document.querySelectorAll('#members li[data-peer-id] .member-name')].map((n) => n.textContent);
      return expected.every((n) => shown.includes(n));
    },
    names.filter((_, j) => j !== i),
    { timeout: WAIT_MS },
  ))));
}

/** The id of the message on `page` whose text is `text`. */
function idOf(page, text) {
  return page.$$eval('#log li.message', (lis, text) => lis.find((li) => li.querySelector('.text').textContent === text)?.dataset.messageId, text);
}

/** The conversation as `page` shows it, the same on every page: each message's author
 * (without "(you)"), text, whether edited, its quote and its reactions with their counts. */
function conversation(page) {
  return page.$$eval('#log li.message', (lis) => lis.map((li) => ({
    author: li.querySelector('.author').textContent.replace(/ \(you\)$/, ''),
    text: li.querySelector('.text').textContent,
    edited: !li.querySelector('.edited').hidden,
    deleted: li.classList.contains('deleted'),
    quote: li.querySelector('.quote')?.textContent.replace(/ \(you\)/, '') ?? null,
    reactions: [...li.querySelectorAll('.reaction')].map((r) => `${r.dataset.emoji}${r.querySelector('.count').textContent}`),
  })));
}

/** Waits until `page` shows `expected` (see conversation). */
async function waitForConversation(page, expected) {
  await explained(page, () => page.waitForFunction(
    (expected) => {
      const shown = [...document.querySelectorAll('#log li.message')].map((li) => ({
        author: li.querySelector('.author').textContent.replace(/ \(you\)$/, ''),
        text: li.querySelector('.text').textContent,
        edited: !li.querySelector('.edited').hidden,
        deleted: li.classList.contains('deleted'),
        quote: li.querySelector('.quote')?.textContent.replace(/ \(you\)/, '') ?? null,
        reactions: [...li.querySelectorAll('.reaction')].map((r) => `${r.dataset.emoji}${r.querySelector('.count').textContent}`),
      }));
      return JSON.stringify(shown) === JSON.stringify(expected);
    },
    expected,
    { timeout: WAIT_MS },
  )).catch(async (err) => {
    err.message += `\nshown: ${JSON.stringify(await conversation(page))}\nexpected: ${JSON.stringify(expected)}`;
    throw err;
  });
}

/** The message of `page` whose text is `text`, as a locator. */
function message(page, text) {
  return page.locator('#log li.message').filter({ has: page.locator('.text', { hasText: text }) });
}

/** Waits until `page` shows the text `text` for the message with id `id`. */
async function waitForText(page, id, text) {
  await explained(page, () => page.waitForFunction(
    ([id, text]) => [...document.querySelectorAll('#log li.message')]
      .some((li) => li.dataset.messageId === id && li.querySelector('.text').textContent === text),
    [id, text],
    { timeout: WAIT_MS },
  ));
}

test('replies, reactions, edits, deletes and mentions show the same on three pages and for a late joiner', async (t) => {
  const names = ['Ada', 'Bea', 'Cy'];
  const { pages, link } = await room(t, names);
  const [ada, bea, cy] = pages;

  await say(ada, 'first message');
  await Promise.all([bea, cy].map((p) => waitForMessage(p, 'Ada', 'first message')));

  // Bea answers it, mentioning Cy by completing "@C".
  await message(bea, 'first message').getByRole('button', { name: 'Reply to Ada' }).click();
  await bea.waitForFunction(() => document.getElementById('composer-context-text').textContent === 'Replying to Ada: first message', null, { timeout: WAIT_MS });
  await bea.locator('#message').pressSequentially('@C');
  await bea.locator('#mention-list li', { hasText: 'Cy' }).waitFor({ timeout: WAIT_MS });
  await bea.locator('#message').press('Tab');
  await bea.locator('#message').pressSequentially('look at this');
  assert.equal(await bea.locator('#message').inputValue(), '@Cy look at this');
  await bea.locator('#message').press('Enter');
  await Promise.all([ada, cy].map((p) => waitForMessage(p, 'Bea', '@Cy look at this')));

  // Reactions: Bea and Cy 👍, Ada 🎉 and then takes it back, Cy ❤️ on Bea's reply.
  const react = async (page, text, emoji) => {
    const li = message(page, text);
    await li.locator('[data-action="pick"]').click();
    await li.locator(`.picker [data-emoji="${emoji}"]`).click();
  };
  await react(bea, 'first message', '👍');
  await react(cy, 'first message', '👍');
  await react(ada, 'first message', '🎉');
  await message(ada, 'first message').locator('.reaction[data-emoji="🎉"]').waitFor({ timeout: WAIT_MS });
  await message(ada, 'first message').locator('.reaction[data-emoji="🎉"]').click();
  await react(cy, '@Cy look at this', '❤️');

  // Ada edits her message; then says something and takes it back.
  await message(ada, 'first message').getByRole('button', { name: 'Edit your message' }).click();
  await ada.locator('#message').fill('first message, fixed');
  await ada.locator('#message').press('Enter');
  await say(ada, 'oops, wrong room');
  await Promise.all([bea, cy].map((p) => waitForMessage(p, 'Ada', 'oops, wrong room')));
  await message(ada, 'oops, wrong room').getByRole('button', { name: 'Delete your message' }).click();

  const expected = [
    { author: 'Ada', text: 'first message, fixed', edited: true, deleted: false, quote: null, reactions: ['👍2'] },
    { author: 'Bea', text: '@Cy look at this', edited: false, deleted: false, quote: 'Ada first message, fixed', reactions: ['❤️1'] },
    { author: 'Ada', text: 'message deleted', edited: false, deleted: true, quote: null, reactions: [] },
  ];
  await Promise.all(pages.map((p) => waitForConversation(p, expected)));

  // Who reacted shows on hover (and to screen readers).
  const thumbs = message(ada, 'first message, fixed').locator('.reaction[data-emoji="👍"]');
  assert.equal(await thumbs.getAttribute('title'), 'Bea, Cy');
  assert.equal(await thumbs.getAttribute('aria-label'), 'thumbs up 2: Bea, Cy');
  assert.equal(await message(cy, 'first message, fixed').locator('.reaction').getAttribute('aria-pressed'), 'true');
  assert.equal(await message(ada, 'first message, fixed').locator('.reaction').getAttribute('aria-pressed'), 'false');

  // The mention is marked for Cy only.
  assert.equal(await cy.locator('#log li.mentions-me mark.mention').textContent(), '@Cy');
  for (const page of [ada, bea]) assert.equal(await page.locator('#log li.mentions-me, #log mark.mention').count(), 0);

  // The quote leads to the message it answers.
  await message(ada, '@Cy look at this').locator('.quote').click();
  assert.equal(
    await ada.evaluate(() => document.activeElement.querySelector('.text')?.textContent),
    'first message, fixed',
  );

  // A late joiner gets it all as it stands now, and later edits from the author.
  const dee = await join(pages, link, 'Dee', [...names, 'Dee']);
  await waitForConversation(dee, expected);
  assert.equal(await dee.locator('#log li.message.history').count(), 3);
  const firstId = await idOf(ada, 'first message, fixed');
  await message(ada, 'first message, fixed').getByRole('button', { name: 'Edit your message' }).click();
  await ada.locator('#message').fill('first message, final');
  await ada.locator('#message').press('Enter');
  await Promise.all(pages.map((p) => waitForText(p, firstId, 'first message, final')));
  assertNoProblems(pages);
});

test('an edit or delete of a message sent by anyone but its author is ignored, live and after a backfill', async (t) => {
  const names = ['Ada', 'Bea', 'Cy'];
  const { pages, link } = await room(t, names);
  const [ada, bea, cy] = pages;
  await say(ada, 'the original');
  await Promise.all([bea, cy].map((p) => waitForMessage(p, 'Ada', 'the original')));
  const id = await idOf(ada, 'the original');

  // Cy forges an edit and a delete of Ada's message, with the highest revision, to Bea
  // and to Ada; then says something, which arrives after them on the same channel.
  const forge = async (to) => {
    const peerId = await peerIdOf(cy, to);
    await cy.evaluate(([peerId, id]) => {
      window.meshchatTest.sendRaw(peerId, { type: 'edit', id, rev: 1000, text: 'forged by Cy' });
      window.meshchatTest.sendRaw(peerId, { type: 'delete', id, rev: 1001 });
    }, [peerId, id]);
  };
  await forge('Bea');
  await forge('Ada');
  // Nor does a second hello on Cy's channel, claiming to be Ada's page, make Cy her.
  const adaClient = await ada.evaluate(() => window.meshchatTest.client());
  const beaAtCy = await peerIdOf(cy, 'Bea');
  await cy.evaluate(([peerId, id, client]) => {
    window.meshchatTest.sendRaw(peerId, { type: 'hello', name: 'Cy', client, caps: ['chat-2', 'history'] });
    window.meshchatTest.sendRaw(peerId, { type: 'edit', id, rev: 2000, text: 'forged as Ada' });
  }, [beaAtCy, id, adaClient]);
  await say(cy, 'after the forgery');
  await Promise.all([ada, bea].map((p) => waitForMessage(p, 'Cy', 'after the forgery')));
  for (const page of [ada, bea]) {
    assert.equal(await message(page, 'the original').count(), 1, 'the message keeps its text');
    assert.equal(await message(page, 'the original').locator('.edited').isHidden(), true, 'and is not marked edited');
  }

  // A late joiner takes the message's author from the backfill: Cy still cannot edit it.
  const dee = await join(pages, link, 'Dee', [...names, 'Dee']);
  await waitForMessage(dee, 'Ada', 'the original');
  const deeAtCy = await peerIdOf(cy, 'Dee');
  await cy.evaluate(([peerId, id]) => window.meshchatTest.sendRaw(peerId, { type: 'edit', id, rev: 5, text: 'forged for Dee' }), [deeAtCy, id]);
  await say(cy, 'hello Dee');
  await waitForMessage(dee, 'Cy', 'hello Dee');
  assert.equal(await message(dee, 'the original').count(), 1);
  // Ada can.
  await message(ada, 'the original').getByRole('button', { name: 'Edit your message' }).click();
  await ada.locator('#message').fill('the original, by Ada');
  await ada.locator('#message').press('Enter');
  await Promise.all(pages.map((p) => waitForText(p, id, 'the original, by Ada')));
  assertNoProblems(pages);
});

test('concurrent edits converge: the same text on every page, whatever order they arrive in; an edit before its message waits for it', async (t) => {
  const names = ['Ada', 'Bea', 'Cy'];
  const { pages, link } = await room(t, names);
  const [ada, bea, cy] = pages;
  await say(ada, 'draft');
  await Promise.all([bea, cy].map((p) => waitForMessage(p, 'Ada', 'draft')));
  const id = await idOf(ada, 'draft');
  const beaId = await peerIdOf(ada, 'Bea');
  const cyId = await peerIdOf(ada, 'Cy');

  // Two edits with the same revision (no page sends such, a buggy author could), in opposite
  // orders to Bea and Cy: the greater text wins everywhere.
  const edit = (rev, text) => ({ type: 'edit', id, rev, text });
  await ada.evaluate(([bea, cy, a, b]) => {
    const hook = window.meshchatTest;
    hook.sendRaw(bea, a);
    hook.sendRaw(bea, b);
    hook.sendRaw(cy, b);
    hook.sendRaw(cy, a);
    hook.applyOwn(b);
    hook.applyOwn(a);
  }, [beaId, cyId, edit(1, 'alpha'), edit(1, 'omega')]);
  await Promise.all(pages.map((p) => waitForText(p, id, 'omega')));

  // A later revision wins over an earlier one that arrives after it.
  await ada.evaluate(([bea, cy, a, b]) => {
    const hook = window.meshchatTest;
    hook.sendRaw(bea, b);
    hook.sendRaw(bea, a);
    hook.sendRaw(cy, a);
    hook.sendRaw(cy, b);
    hook.applyOwn(b);
    hook.applyOwn(a);
  }, [beaId, cyId, edit(2, 'zeta'), edit(3, 'gamma')]);
  await Promise.all(pages.map((p) => waitForText(p, id, 'gamma')));

  // An edit, and a reaction from Cy, that reach Bea before the message they change are
  // kept and applied when it comes.
  const early = 'e'.repeat(24);
  const beaAtCy = await peerIdOf(cy, 'Bea');
  await cy.evaluate(([bea, early]) => window.meshchatTest.sendRaw(bea, { type: 'react', id: early, emoji: '😮', on: true, n: 1 }), [beaAtCy, early]);
  await ada.evaluate(([bea, early]) => {
    window.meshchatTest.sendRaw(bea, { type: 'edit', id: early, rev: 1, text: 'as edited' });
    window.meshchatTest.sendRaw(bea, { type: 'chat', id: early, at: Date.now(), text: 'as first written' });
  }, [beaId, early]);
  await waitForText(bea, early, 'as edited');
  assert.equal(await message(bea, 'as edited').locator('.edited').isVisible(), true);
  assert.equal(await message(bea, 'as edited').locator('.reaction').getAttribute('title'), 'Cy');

  // And a late joiner gets the same.
  const dee = await join(pages, link, 'Dee', [...names, 'Dee']);
  await waitForText(dee, id, 'gamma');
  const shown = await Promise.all(pages.map((p) => message(p, 'gamma').locator('.text').textContent()));
  assert.deepEqual(shown, ['gamma', 'gamma', 'gamma', 'gamma']);
  assertNoProblems(pages);
});

test('HTML, javascript: addresses and very long words show as text, only http(s) links are links, nothing overflows', async (t) => {
  const { pages, link } = await room(t, ['Ada', 'Bea']);
  const [ada, bea] = pages;
  const html = '<img src=x onerror="window.pwned=1"><b>bold</b><script>window.pwned=2</script>';
  const js = 'javascript:window.pwned=3';
  const mixed = 'see javascript:alert(1) or https://example.com/a?b=1&c=2. and <a href="javascript:x">y</a>';
  const long = 'W'.repeat(1500);
  for (const text of [html, js, mixed, long]) await say(ada, text);
  await waitForMessage(bea, 'Ada', long);
  for (const page of pages) {
    for (const text of [html, js, mixed, long]) assert.equal(await message(page, text.slice(0, 40)).locator('.text').textContent(), text);
    const found = await page.evaluate(() => ({
      pwned: window.pwned ?? null,
      markup: document.querySelectorAll('#log .text img, #log .text b, #log .text script').length,
      links: [...document.querySelectorAll('#log a')].map((a) => ({ href: a.getAttribute('href'), text: a.textContent, rel: a.rel, target: a.target })),
      log: (({ scrollWidth, clientWidth }) => ({ scrollWidth, clientWidth }))(document.getElementById('log')),
    }));
    assert.equal(found.pwned, null);
    assert.equal(found.markup, 0);
    assert.deepEqual(found.links, [{ href: 'https://example.com/a?b=1&c=2', text: 'https://example.com/a?b=1&c=2', rel: 'noopener noreferrer', target: '_blank' }]);
    assert.ok(found.log.scrollWidth <= found.log.clientWidth, `the log does not scroll sideways: ${JSON.stringify(found.log)}`);
  }
  // A reply quoting the long word does not widen the log either.
  await message(bea, long.slice(0, 40)).getByRole('button', { name: 'Reply to Ada' }).click();
  await say(bea, 'X'.repeat(800));
  await waitForMessage(ada, 'Bea', 'X'.repeat(800));
  // Nor on a phone, which gets it all from a backfill.
  const phone = await openPage(browser, withHook(link), { contextOptions: PHONE });
  pages.push(phone);
  await waitForOpenPeers(phone, 2);
  await waitForMessage(phone, 'Bea', 'X'.repeat(800));
  assert.equal(await phone.locator('#log a').count(), 1);
  for (const page of pages) {
    const { scrollWidth, clientWidth } = await page.locator('#log').evaluate((el) => ({ scrollWidth: el.scrollWidth, clientWidth: el.clientWidth }));
    assert.ok(scrollWidth <= clientWidth, `the log does not scroll sideways: ${scrollWidth} > ${clientWidth}`);
  }
  assertNoProblems(pages);
});

test('keyboard only: Up edits the last message, Esc cancels, reply and react by Tab and Enter', async (t) => {
  const { pages } = await room(t, ['Ada', 'Bea']);
  const [ada, bea] = pages;
  await say(ada, 'a mesage with a typo');
  await say(ada, 'the last one');
  await waitForMessage(bea, 'Ada', 'the last one');
  const input = ada.locator('#message');

  // Up in the empty box: the last message to edit; Esc leaves it as it was.
  await input.focus();
  await ada.keyboard.press('ArrowUp');
  assert.equal(await input.inputValue(), 'the last one');
  assert.equal(await ada.locator('#composer-context').isVisible(), true);
  await ada.keyboard.press('Escape');
  assert.equal(await input.inputValue(), '');
  assert.equal(await ada.locator('#composer-context').isVisible(), false);
  await ada.keyboard.press('ArrowUp');
  await ada.keyboard.press('Control+A');
  await ada.keyboard.type('the last one, edited');
  await ada.keyboard.press('Enter');
  const lastId = await idOf(ada, 'the last one, edited');
  await waitForText(bea, lastId, 'the last one, edited');
  assert.equal(await message(bea, 'the last one, edited').locator('.edited').isVisible(), true);

  // Bea tabs from the log to the Reply of Ada's first message; Enter answers it.
  const tabTo = async (page, selector, max = 30) => {
    for (let i = 0; i < max; i += 1) {
      await page.keyboard.press('Tab');
      if (await page.evaluate((s) => document.activeElement.matches(s), selector)) return;
    }
    assert.fail(`${selector} not reached by Tab`);
  };
  const firstId = await idOf(bea, 'a mesage with a typo');
  await bea.locator('#log').focus();
  await tabTo(bea, `li[data-message-id="${firstId}"] [data-action="reply"]`);
  // The focus shows.
  assert.notEqual(await bea.evaluate(() => getComputedStyle(document.activeElement).outlineStyle), 'none');
  await bea.keyboard.press('Enter');
  assert.equal(await bea.evaluate(() => document.activeElement.id), 'message');
  await bea.keyboard.type('you mean message');
  await bea.keyboard.press('Enter');
  await waitForMessage(ada, 'Bea', 'you mean message');
  assert.match(await message(ada, 'you mean message').locator('.quote').textContent(), /a mesage with a typo/);

  // React: Tab to React, Enter opens the picker on its first emoji; Esc closes it.
  await bea.locator('#log').focus();
  await tabTo(bea, `li[data-message-id="${firstId}"] [data-action="pick"]`);
  await bea.keyboard.press('Enter');
  assert.equal(await bea.evaluate(() => document.activeElement.dataset.emoji), '👍');
  await bea.keyboard.press('Escape');
  assert.equal(await bea.evaluate(() => document.activeElement.dataset.action), 'pick');
  assert.equal(await message(bea, 'a mesage with a typo').locator('.picker').isHidden(), true);
  await bea.keyboard.press('Enter');
  await bea.keyboard.press('Tab');
  assert.equal(await bea.evaluate(() => document.activeElement.dataset.emoji), '❤️');
  await bea.keyboard.press('Enter');
  await message(ada, 'a mesage with a typo').locator('.reaction[data-emoji="❤️"]').waitFor({ timeout: WAIT_MS });
  assert.equal(await bea.evaluate(() => document.activeElement.dataset.action), 'pick', 'the focus goes back to React');

  // A reply is cancelled with Esc too.
  await bea.keyboard.press('Shift+Tab');
  assert.equal(await bea.evaluate(() => document.activeElement.dataset.action), 'reply');
  await bea.keyboard.press('Enter');
  assert.equal(await bea.locator('#composer-context').isVisible(), true);
  await bea.keyboard.press('Escape');
  assert.equal(await bea.locator('#composer-context').isVisible(), false);
  assertNoProblems(pages);
});

test('a mention brings a notification of its own, which the next messages do not replace', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const ada = await openPage(browser, `${server.url}/`, { prepare: (context) => context.grantPermissions(['notifications']) });
  pages.push(ada);
  const bea = await openPage(browser, await waitForRoom(ada));
  pages.push(bea);
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 1)));
  await setName(ada, 'Ada');
  await setName(bea, 'Bea');
  await waitForNames(pages, ['Ada', 'Bea']);
  await ada.waitForFunction(() => document.documentElement.dataset.offlineReady === 'true', null, { timeout: WAIT_MS });
  await ada.locator('#notify-desktop').check();

  const comeBack = await sendToBackground(ada);
  await say(bea, 'one of many');
  await say(bea, 'hey @ada, your turn');
  await say(bea, 'and another');
  await ada.waitForFunction(() => document.title === '(3) meshchat', null, { timeout: WAIT_MS });
  const shown = () => ada.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications())
    .map(({ title, body, tag }) => ({ title, body, tag: tag.replace(/-[0-9a-f]+$/, '') })));
  await explained(ada, () => ada.waitForFunction(async () => {
    const all = await (await navigator.serviceWorker.ready).getNotifications();
    return all.some((n) => n.body === 'and another') && all.some((n) => n.tag.startsWith('mention-'));
  }, null, { timeout: WAIT_MS, polling: 100 }));
  assert.deepEqual(
    (await shown()).filter((n) => n.tag === 'mention'),
    [{ title: 'Bea mentioned you', body: 'hey @ada, your turn', tag: 'mention' }],
  );
  await comeBack();
  assert.equal(await ada.locator('#log li.mentions-me mark.mention').textContent(), '@ada');
  assertNoProblems(pages);
});

test('with a page of the older chat protocol: it gets plain messages only, and its messages show as plain text', async (t) => {
  // Obi's page leaves chat-2 out of its hello, as pages before it did, and Ada's page
  // records what it sends.
  const older = (context) => context.addInitScript(() => {
    const send = RTCDataChannel.prototype.send;
    RTCDataChannel.prototype.send = function (data) {
      if (typeof data === 'string' && data.includes('"type":"hello"')) {
        const hello = JSON.parse(data);
        hello.caps = hello.caps.filter((c) => c !== 'chat-2');
        return send.call(this, JSON.stringify(hello));
      }
      return send.call(this, data);
    };
  });
  const spy = (context) => context.addInitScript(() => {
    window.sent = [];
    const send = RTCDataChannel.prototype.send;
    RTCDataChannel.prototype.send = function (data) {
      if (typeof data === 'string') window.sent.push(data);
      return send.call(this, data);
    };
  });
  const server = await startServer();
  t.after(() => server.stop());
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const ada = await openPage(browser, `${server.url}/`, { prepare: spy });
  pages.push(ada);
  const obi = await openPage(browser, await waitForRoom(ada), { prepare: older });
  pages.push(obi);
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 1)));
  await setName(ada, 'Ada');
  await setName(obi, 'Obi');
  await waitForNames(pages, ['Ada', 'Obi']);

  await say(obi, 'see https://example.com/x');
  await waitForMessage(ada, 'Obi', 'see https://example.com/x');
  assert.equal(await ada.locator('#log a').count(), 0, 'an older page\'s message is plain text');

  await message(ada, 'see https://example.com/x').getByRole('button', { name: 'Reply to Obi' }).click();
  await say(ada, '@Obi sure');
  await waitForMessage(obi, 'Ada', '@Obi sure');
  await message(ada, '@Obi sure').getByRole('button', { name: 'Edit your message' }).click();
  await ada.locator('#message').fill('@Obi sure thing');
  await ada.locator('#message').press('Enter');
  await message(ada, 'see https://example.com/x').locator('[data-action="pick"]').click();
  await message(ada, 'see https://example.com/x').locator('.picker [data-emoji="👍"]').click();
  await say(ada, 'the end');
  await waitForMessage(obi, 'Ada', 'the end');
  const sent = (await ada.evaluate(() => window.sent)).map((d) => JSON.parse(d));
  const chats = sent.filter((m) => m.type === 'chat');
  assert.deepEqual(chats.map((m) => Object.keys(m).sort()), [['at', 'id', 'text', 'type'], ['at', 'id', 'text', 'type']]);
  assert.deepEqual(sent.filter((m) => ['edit', 'delete', 'react'].includes(m.type)), []);
  // Ada's own page shows what she did; Obi's keeps the text it was sent.
  assert.equal(await message(ada, '@Obi sure thing').locator('.quote').count(), 1);
  assert.equal(await message(obi, '@Obi sure').locator('.text').textContent(), '@Obi sure');
  assertNoProblems(pages);
});

test('the convergence rule: the same edits, deletes and reactions in any order give the same state', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  const page = await openPage(browser, `${server.url}/`);
  t.after(() => page.context().close());
  // The page's own rules (history.js), run on 300 shuffles of one set of changes.
  const states = await page.evaluate(async () => {
    const { History, applyEdit, setReaction, messageState } = await import('/js/history.js');
    const author = 'a'.repeat(24);
    const ops = [];
    for (let rev = 1; rev <= 4; rev += 1) {
      for (const text of ['kiwi', 'apple', 'zebra']) ops.push({ kind: 'edit', rev, text });
    }
    for (const client of ['b'.repeat(24), 'c'.repeat(24)]) {
      for (let n = 1; n <= 5; n += 1) {
        for (const emoji of ['👍', '🎉']) ops.push({ kind: 'react', client, emoji, n, on: n % 2 === 1 });
      }
    }
    const results = new Set();
    const withDelete = new Set();
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (let round = 0; round < 300; round += 1) {
      const shuffled = [...ops];
      for (let i = shuffled.length - 1; i > 0; i -= 1) {
        const j = Math.floor(random() * (i + 1));
        [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
      }
      const run = (list) => {
        const history = new History();
        const record = history.add({ id: `m${round}`, at: 1, name: 'Ada', client: author, text: 'original' });
        for (const op of list) {
          if (op.kind === 'edit') applyEdit(record, { rev: op.rev, text: op.text, deleted: false });
          else if (op.kind === 'delete') applyEdit(record, { rev: op.rev, text: '', deleted: true });
          else setReaction(record, op.emoji, op.client, op.n, op.on);
        }
        return JSON.stringify(messageState(record));
      };
      results.add(run(shuffled));
      // A delete somewhere in the middle: deleted, whatever came after.
      const at = Math.floor(random() * shuffled.length);
      withDelete.add(run([...shuffled.slice(0, at), { kind: 'delete', rev: 2 }, ...shuffled.slice(at)]));
    }
    return { results: [...results].map((s) => JSON.parse(s)), withDelete: [...withDelete].map((s) => JSON.parse(s)) };
  });
  assert.equal(states.results.length, 1, `one state for every order: ${JSON.stringify(states.results)}`);
  const [state] = states.results;
  assert.equal(state.text, 'zebra');
  assert.equal(state.edited, true);
  // Each reactor's last change (n = 5) was an add.
  assert.deepEqual(state.reactions, [
    { emoji: '👍', clients: ['b'.repeat(24), 'c'.repeat(24)] },
    { emoji: '🎉', clients: ['b'.repeat(24), 'c'.repeat(24)] },
  ]);
  assert.equal(states.withDelete.length, 1, `one state for every order with a delete: ${JSON.stringify(states.withDelete)}`);
  assert.equal(states.withDelete[0].deleted, true);
  assert.equal(states.withDelete[0].text, '');
});

test('a backfill that misstates a message cannot stop its author: the author\'s next edit shows', async (t) => {
  // Cy's page gives newcomers a made-up version of Ada's message, with a high revision.
  const lying = (context) => context.addInitScript(() => {
    const send = RTCDataChannel.prototype.send;
    RTCDataChannel.prototype.send = function (data) {
      if (typeof data === 'string' && data.includes('"type":"history"')) {
        const msg = JSON.parse(data);
        for (const m of msg.messages) {
          if (m.text === 'the truth') Object.assign(m, { text: 'a lie', rev: 50 });
        }
        return send.call(this, JSON.stringify(msg));
      }
      return send.call(this, data);
    };
  });
  const server = await startServer();
  t.after(() => server.stop());
  const pages = [];
  t.after(() => Promise.all(pages.map((p) => p.context().close())));
  const ada = await openPage(browser, withHook(`${server.url}/`));
  pages.push(ada);
  const link = await waitForRoom(ada);
  const bea = await openPage(browser, withHook(link));
  pages.push(bea);
  const cy = await openPage(browser, withHook(link), { prepare: lying });
  pages.push(cy);
  const names = ['Ada', 'Bea', 'Cy'];
  await Promise.all(pages.map((p, i) => setName(p, names[i])));
  await Promise.all(pages.map((p) => waitForOpenPeers(p, 2)));
  await waitForNames(pages, names);
  // Only Cy shares history, so the newcomer asks Cy.
  for (const page of [ada, bea]) await page.locator('#share-history').uncheck();
  await say(ada, 'the truth');
  await Promise.all([bea, cy].map((p) => waitForMessage(p, 'Ada', 'the truth')));
  const id = await idOf(ada, 'the truth');

  const dee = await join(pages, link, 'Dee', [...names, 'Dee']);
  await waitForText(dee, id, 'a lie');
  await message(ada, 'the truth').getByRole('button', { name: 'Edit your message' }).click();
  await ada.locator('#message').fill('the truth, edited');
  await ada.locator('#message').press('Enter');
  await Promise.all(pages.map((p) => waitForText(p, id, 'the truth, edited')));
  assertNoProblems(pages);
});
