// Benchmark, run by hand: rooms of 8, 16, 24 and 32 headless Chromium pages of the web
// client, every page connected to every other (full mesh). Per room size it measures how
// long a joiner takes to reach every member, the signaling one join costs, each page's
// CPU while the room is idle and while it chats, and JS heap and process memory per page.
//   cargo build --release && node bench/rooms.mjs
//   node bench/rooms.mjs --sizes 16 --joins 5 --bin target/debug/meshchat
// Options: --sizes 8,16,24,32 · --joins N (joins measured per size, default 3) · --idle S and
// --chat S (seconds of each phase, default 15) · --rate R (room messages per second while
// chatting, default 2) · --no-stun (no built-in STUN server: host candidates only) ·
// --bin PATH (default MESHCHAT_BIN, else target/release/meshchat, else the debug build) ·
// --json FILE (the results, for comparing runs).
// It uses the test helpers of tests/js and their playwright-core (`npm ci` there first) and
// Chromium at /usr/bin/chromium (or CHROMIUM). One Chromium holds every page, each in a
// browser context of its own, as separate people: on one machine they share its cores, so
// run it on a quiet machine and read the numbers as relative.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { launch, openPage, say, waitForRoom } from '../tests/js/helpers/browser.mjs';
import { REPO, freeUdpPort, startServer } from '../tests/js/helpers/server.mjs';

const { values: opts } = parseArgs({
  options: {
    sizes: { type: 'string', default: '8,16,24,32' },
    joins: { type: 'string', default: '3' },
    idle: { type: 'string', default: '15' },
    chat: { type: 'string', default: '15' },
    rate: { type: 'string', default: '2' },
    'no-stun': { type: 'boolean', default: false },
    bin: { type: 'string' },
    json: { type: 'string' },
  },
});
const SIZES = opts.sizes.split(',').map(Number).filter((n) => n >= 2);
const JOINS = Math.max(1, Number(opts.joins));
const IDLE_S = Number(opts.idle);
const CHAT_S = Number(opts.chat);
const RATE = Number(opts.rate);
const BIN = opts.bin ?? process.env.MESHCHAT_BIN ?? [
  path.join(REPO, 'target', 'release', 'meshchat'),
  path.join(REPO, 'target', 'debug', 'meshchat'),
].find((p) => existsSync(p));
// Long enough for the slowest join of the largest room on a loaded machine.
const MESH_TIMEOUT_MS = 180_000;
const MB = 1024 * 1024;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;

/** The relayed counters of the server's /metrics: {offer, answer, candidate}. */
async function relayed(server) {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const count = (event) => Number(new RegExp(`^meshchat_relayed_total\\{event="${event}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
  return { offer: count('rtc-offer'), answer: count('rtc-answer'), candidate: count('ice-candidate') };
}

/** Waits until the relayed counters stop moving for `quietMs` (late candidates and the
 * end-of-candidates markers included), and returns them. */
async function settledRelayed(server, quietMs = 2_000) {
  let last = await relayed(server);
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    await sleep(250);
    const now = await relayed(server);
    if (JSON.stringify(now) !== JSON.stringify(last)) {
      last = now;
      since = Date.now();
    }
  }
  return last;
}

/** Resolves once `page` lists `n` peers, all open. Polls every 50 ms rather than on
 * animation frames, which background pages may not get. */
function meshed(page, n) {
  return page.waitForFunction((n) => {
    const lis = [...document.querySelectorAll('#members li[data-peer-id]')];
    return lis.length === n && lis.every((li) => li.dataset.state === 'open');
  }, n, { timeout: MESH_TIMEOUT_MS, polling: 50 });
}

/** A page of `url` in a context of its own (see openPage), patient with a busy machine. */
function open(browser, url) {
  return openPage(browser, url, { prepare: (context) => context.setDefaultTimeout(MESH_TIMEOUT_MS) });
}

/** Records the candidates `page` sends to the server (websocket frames and polling
 * bodies), for telling them apart by kind. */
function recordCandidates(page) {
  const sent = [];
  const take = (text) => {
    for (const packet of String(text).split('\x1e')) {
      const m = /^42\d*(\[.*\])$/s.exec(packet);
      if (!m) continue;
      try {
        const [event, peerId, payload] = JSON.parse(m[1]);
        if (event === 'ice-candidate') sent.push({ peerId, candidate: payload?.candidate ?? null });
      } catch {
        // not JSON: not ours to count
      }
    }
  };
  page.on('websocket', (ws) => ws.on('framesent', (f) => take(f.payload)));
  page.on('request', (req) => req.url().includes('/socket.io/') && req.postData() && take(req.postData()));
  return sent;
}

/** Candidates by kind: `host/udp/mdns`, `srflx/udp/ipv4`, `end` (the end-of-candidates
 * marker), and `duplicate` for one sent twice to the same peer. */
function candidateKinds(sent) {
  const kinds = {};
  const seen = new Set();
  for (const { peerId, candidate } of sent) {
    const key = `${peerId} ${candidate}`;
    let kind;
    if (seen.has(key)) kind = 'duplicate';
    else if (!candidate) kind = 'end';
    else {
      // candidate:<foundation> <component> <protocol> <priority> <address> <port> typ <type> ...
      const f = candidate.split(' ');
      const address = f[4] ?? '';
      const family = address.endsWith('.local') ? 'mdns' : address.includes(':') ? 'ipv6' : 'ipv4';
      kind = `${f[7]}/${f[2]?.toLowerCase()}/${family}`;
    }
    seen.add(key);
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

/** Per page: {task, process, heap} from the DevTools Performance domain (seconds of
 * main-thread tasks, seconds of renderer CPU, bytes of JS heap in use). */
async function pageMetrics(sessions) {
  return Promise.all(sessions.map(async (s) => {
    const { metrics } = await s.send('Performance.getMetrics');
    const m = Object.fromEntries(metrics.map(({ name, value }) => [name, value]));
    return { task: m.TaskDuration, process: m.ProcessTime, heap: m.JSHeapUsedSize };
  }));
}

/** Every Chromium process: {type, id, cpuTime}, and its proportional memory (PSS). */
async function processes(browserSession) {
  const { processInfo } = await browserSession.send('SystemInfo.getProcessInfo');
  return Promise.all(processInfo.map(async (p) => {
    const rollup = await readFile(`/proc/${p.id}/smaps_rollup`, 'utf8').catch(() => '');
    const pss = Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0) * 1024;
    return { ...p, pss };
  }));
}

/** CPU over a phase of `seconds`, as shares of one core: per page (renderer process and
 * main thread) and the whole browser (every process) divided by the pages. */
async function cpuOver(seconds, sessions, browserSession, during = async () => sleep(seconds * 1000)) {
  const before = await pageMetrics(sessions);
  const procsBefore = await processes(browserSession);
  const t0 = performance.now();
  await during();
  const wall = (performance.now() - t0) / 1000;
  const after = await pageMetrics(sessions);
  const procsAfter = await processes(browserSession);
  const renderer = after.map((m, i) => (m.process - before[i].process) / wall);
  const main = after.map((m, i) => (m.task - before[i].task) / wall);
  const cpu = (procs) => procs.reduce((sum, p) => sum + p.cpuTime, 0);
  // Processes that went away meanwhile take their time with them: count what is left.
  const kept = procsAfter.filter((p) => procsBefore.some((q) => q.id === p.id));
  const total = (cpu(kept) - cpu(procsBefore.filter((p) => kept.some((q) => q.id === p.id)))) / wall;
  return {
    rendererMean: mean(renderer), rendererMax: Math.max(...renderer), mainMean: mean(main),
    browserPerPage: total / sessions.length, browserTotal: total,
  };
}

async function measure(browser, size) {
  const stunPort = opts['no-stun'] ? 0 : await freeUdpPort();
  const server = await startServer({ MAX_ROOM_SIZE: String(size + 1), STUN_PORT: String(stunPort) }, BIN);
  const pages = [];
  const t0 = performance.now();
  try {
    const first = await open(browser, `${server.url}/`);
    pages.push(first);
    const link = await waitForRoom(first);
    // Everyone but the last member, one after another as people arrive.
    for (let i = 1; i < size - 1; i += 1) pages.push(await open(browser, link));
    await Promise.all(pages.map((p) => meshed(p, size - 2)));
    const formed = (performance.now() - t0) / 1000;
    process.stderr.write(`  ${size - 1} pages meshed in ${formed.toFixed(1)} s\n`);

    // The last member joins JOINS times (leaving in between): the time until its page
    // has an open channel to everyone, and the signaling relayed for the join.
    const joins = [];
    let joiner = null;
    for (let j = 0; j < JOINS; j += 1) {
      if (joiner) {
        await joiner.context().close();
        await Promise.all(pages.map((p) => meshed(p, size - 2)));
      }
      const base = await settledRelayed(server, 1_000);
      const start = performance.now();
      const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
      context.setDefaultTimeout(MESH_TIMEOUT_MS);
      const page = await context.newPage();
      const sent = recordCandidates(page);
      await page.goto(link, { timeout: MESH_TIMEOUT_MS });
      await waitForRoom(page, MESH_TIMEOUT_MS);
      const inRoom = (performance.now() - start) / 1000;
      await meshed(page, size - 1);
      const reached = (performance.now() - start) / 1000;
      await Promise.all(pages.map((p) => meshed(p, size - 1)));
      const counts = await settledRelayed(server);
      const delta = Object.fromEntries(Object.entries(counts).map(([k, v]) => [k, v - base[k]]));
      joins.push({ inRoom, reached, ...delta, total: delta.offer + delta.answer + delta.candidate, kinds: candidateKinds(sent) });
      process.stderr.write(`  join ${j + 1}: in the room after ${inRoom.toFixed(2)} s, reached all after ${reached.toFixed(2)} s; relayed ${JSON.stringify(delta)}; joiner's candidates ${JSON.stringify(candidateKinds(sent))}\n`);
      joiner = page;
    }
    pages.push(joiner);

    const browserSession = await browser.newBrowserCDPSession();
    const sessions = await Promise.all(pages.map(async (p) => {
      const s = await p.context().newCDPSession(p);
      await s.send('Performance.enable');
      return s;
    }));
    await sleep(2_000); // the last join's after-effects (hellos, history) die down
    const idle = await cpuOver(IDLE_S, sessions, browserSession);

    // Chatting: RATE messages a second from the room, the pages taking turns.
    let sent = 0;
    const chat = await cpuOver(CHAT_S, sessions, browserSession, async () => {
      const end = performance.now() + CHAT_S * 1000;
      while (performance.now() < end) {
        const next = performance.now() + 1000 / RATE;
        await say(pages[sent % pages.length], `message ${sent} of the benchmark`);
        sent += 1;
        await sleep(Math.max(0, next - performance.now()));
      }
    });
    // Every page sees every message (its own included).
    await Promise.all(pages.map((p) => p.waitForFunction(
      (n) => document.querySelectorAll('#log .message').length >= n, sent, { timeout: 60_000, polling: 200 },
    )));

    const metrics = await pageMetrics(sessions);
    const procs = await processes(browserSession);
    const renderers = procs.filter((p) => p.type === 'renderer');
    const problems = pages.flatMap((p) => p.problems ?? []);
    return {
      size,
      connections: (size * (size - 1)) / 2,
      formed,
      joinReached: median(joins.map((j) => j.reached)),
      joinInRoom: median(joins.map((j) => j.inRoom)),
      joinSignals: median(joins.map((j) => j.total)),
      joinOffers: median(joins.map((j) => j.offer)),
      joinAnswers: median(joins.map((j) => j.answer)),
      joinCandidates: median(joins.map((j) => j.candidate)),
      joins,
      idle,
      chat: { ...chat, messages: sent },
      heapMean: mean(metrics.map((m) => m.heap)),
      heapMax: Math.max(...metrics.map((m) => m.heap)),
      rendererPss: mean(renderers.map((p) => p.pss)),
      browserPss: procs.reduce((sum, p) => sum + p.pss, 0),
      problems,
    };
  } finally {
    await Promise.all(pages.map((p) => p?.context().close().catch(() => {})));
    await server.stop();
  }
}

function table(results) {
  const pct = (x) => `${(x * 100).toFixed(1)}`;
  const rows = [
    '| members | connections | room formed (s) | join: in the room / reached all (s) | signals per join (offers/answers/candidates) | idle CPU per page, renderer (max) % | chat CPU per page, renderer (max) % | browser CPU per page idle / chat % | JS heap per page (max) MB | renderer PSS per page MB | browser PSS MB |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    rows.push(`| ${r.size} | ${r.connections} | ${r.formed.toFixed(1)} | ${r.joinInRoom.toFixed(2)} / ${r.joinReached.toFixed(2)} | ${r.joinSignals} (${r.joinOffers}/${r.joinAnswers}/${r.joinCandidates}) | ${pct(r.idle.rendererMean)} (${pct(r.idle.rendererMax)}) | ${pct(r.chat.rendererMean)} (${pct(r.chat.rendererMax)}) | ${pct(r.idle.browserPerPage)} / ${pct(r.chat.browserPerPage)} | ${(r.heapMean / MB).toFixed(1)} (${(r.heapMax / MB).toFixed(1)}) | ${(r.rendererPss / MB).toFixed(0)} | ${(r.browserPss / MB).toFixed(0)} |`);
  }
  return rows.join('\n');
}

const browser = await launch();
const results = [];
try {
  console.error(`server: ${BIN}; STUN ${opts['no-stun'] ? 'off' : 'on'}; ${JOINS} joins per size; idle ${IDLE_S} s, chat ${CHAT_S} s at ${RATE} messages/s`);
  for (const size of SIZES) {
    console.error(`room of ${size}:`);
    try {
      results.push(await measure(browser, size));
      console.error(table(results.slice(-1)));
    } catch (err) {
      // A size that failed (a page that never loaded on a machine too busy) is left out.
      console.error(`  room of ${size} failed: ${err.message.split('\n')[0]}`);
    }
  }
} finally {
  await browser.close();
}
console.log(table(results));
for (const r of results) {
  if (r.problems.length) console.log(`\nroom of ${r.size}, problems the pages reported:\n  ${r.problems.map((p) => JSON.stringify(p)).join("\n  ")}`);
}
if (opts.json) await writeFile(opts.json, JSON.stringify({ bin: BIN, opts, results }, null, 2));
