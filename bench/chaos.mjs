// Chaos soak across nodes, by hand (not in CI): three nodes of the release binary on one
// redis-server under steady traffic (rooms forming and dissolving, relays, floods, clients
// vanishing mid-poll) while faults are injected at random: a node killed (SIGKILL),
// stopped and continued (SIGSTOP/SIGCONT) or restarted (SIGTERM), Redis restarted (its
// data lost) or paused past REDIS_TIMEOUT_MS. Invariants are checked all along and at the end.
//
//   cargo build --release && cp target/release/meshchat /tmp/meshchat-chaos
//   node bench/chaos.mjs --minutes 10 --bin /tmp/meshchat-chaos [--workers 24] [--report bench/chaos-report.md] [--faults none]
//
// It uses the test helpers of tests/js and their socket.io-client (`npm ci` there first)
// and needs `redis-server` (and gdb for one diagnostic figure). Prints one JSON line of
// figures, writes the markdown report if asked, and exits non-zero on any invariant violation.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { client, next } from '../tests/js/helpers/client.mjs';
import { startRedis } from '../tests/js/helpers/cluster.mjs';
import { REPO, startServer, status } from '../tests/js/helpers/server.mjs';

const { values: opts } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    workers: { type: 'string', default: '24' },
    warmup: { type: 'string', default: '60' },
    bin: { type: 'string', default: path.join(REPO, 'target', 'release', 'meshchat') },
    report: { type: 'string' },
    // `none`: the same traffic without faults, to tell what the faults cost from what the
    // traffic does by itself.
    faults: { type: 'string', default: 'all' },
  },
});
const MINUTES = Number(opts.minutes);
const WORKERS = Number(opts.workers);
const WAIT_MS = 15_000;
/** Longest a leave may take to be announced: a vanished client's heartbeat timeout, or a
 * dead node's TTL, plus Redis being away meanwhile. */
const ANNOUNCE_MS = 45_000;
const TIMINGS = {
  NODE_HEARTBEAT_MS: '500',
  NODE_TTL_MS: '2500',
  REDIS_TIMEOUT_MS: '1000',
  PING_INTERVAL_MS: '5000',
  PING_TIMEOUT_MS: '5000',
  SHUTDOWN_TIMEOUT_SECS: '4',
  HTTP_IDLE_TIMEOUT_MS: '30000',
};
/** How long RSS is left to settle before it is read: past the idle timeout, so that the
 * keep-alive connections the clients' HTTP agents left open are closed by then. */
const QUIET_MS = Number(TIMINGS.HTTP_IDLE_TIMEOUT_MS) + 5_000;
const ENV = {
  RUST_LOG: 'warn,meshchat::server=info,meshchat::cluster::pubsub=info',
  // Every client comes from 127.0.0.1: the per-IP connection rate would be all we measure.
  CONNECT_RATE: '0',
  MAX_CONNECTIONS: '20000',
  ...TIMINGS,
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const pick = (list) => list[Math.floor(Math.random() * list.length)];
const log = (...args) => console.error(new Date().toISOString().slice(11, 19), ...args);

// ---------------------------------------------------------------- the cluster

const redis = await startRedis();
const nodes = [];
for (let i = 0; i < 3; i += 1) nodes.push(await startServer({ REDIS_URL: redis.url, ...ENV }, opts.bin));
const ports = nodes.map((n) => n.port);
// A crash of this script must not leave the nodes and Redis running (they would skew the
// next run's figures).
for (const event of ['uncaughtException', 'unhandledRejection']) {
  process.on(event, (err) => {
    console.error(err);
    for (const node of nodes) node.child.kill('SIGKILL');
    redis.stop();
    process.exit(2);
  });
}
/** Nodes that are up and not stopped, for new clients. */
const usable = new Set([0, 1, 2]);

async function startNode(i) {
  nodes[i] = await startServer({ REDIS_URL: redis.url, ...ENV, PORT: String(ports[i]) }, opts.bin);
}

function rssKiB(node) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${node.child.pid}/status`, 'utf8'))[1]);
  } catch {
    return NaN;
  }
}

/** RSS after malloc_trim(0) in the process (through gdb), or null without gdb. */
function trimmedRssKiB(node) {
  try {
    execFileSync('gdb', ['-p', String(node.child.pid), '-batch', '-ex', 'call (int) malloc_trim(0)'], { stdio: 'ignore', timeout: 60_000 });
  } catch {
    return null;
  }
  return rssKiB(node);
}

/** A node's metrics: connected sockets and the room gauges (size → rooms). */
async function nodeView(node) {
  const res = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(3_000) });
  const text = await res.text();
  const connected = Number(/^meshchat_connected_sockets (\d+)$/m.exec(text)?.[1] ?? NaN);
  const sizes = {};
  for (const m of text.matchAll(/^meshchat_rooms_by_size\{members="(\d+)"\} (\d+)$/gm)) {
    if (Number(m[2]) > 0) sizes[m[1]] = Number(m[2]);
  }
  const rooms = Number(/^meshchat_rooms (\d+)$/m.exec(text)?.[1] ?? NaN);
  return { connected, sizes, rooms };
}

/** Redis's view: every room with its members, the size hash, the nodes' peer sets. */
async function redisView() {
  const keys = (pattern) => redis.cli('--scan', '--pattern', pattern).then((out) => out.split('\n').filter(Boolean));
  const rooms = {};
  for (const key of await keys('meshchat:room:*')) {
    rooms[key.slice('meshchat:room:'.length)] = (await redis.cli('SMEMBERS', key)).split('\n').filter(Boolean).sort();
  }
  const hash = (await redis.cli('HGETALL', 'meshchat:room_sizes')).split('\n').filter(Boolean);
  const sizes = {};
  for (let i = 0; i + 1 < hash.length; i += 2) if (Number(hash[i + 1]) > 0) sizes[hash[i]] = Number(hash[i + 1]);
  const peers = [];
  for (const key of await keys('meshchat:node:*:peers')) {
    peers.push(...(await redis.cli('SMEMBERS', key)).split('\n').filter(Boolean));
  }
  return { rooms, sizes, peers: peers.sort() };
}

// ---------------------------------------------------------------- clients and invariants

const counts = {
  cycles: 0, failedCycles: 0, relaysSent: 0, relaysAcked: 0, relaysRefused: 0, relaysDelivered: 0,
  floods: 0, junk: 0, vanished: 0, leaves: 0, leavesChecked: 0,
};
const violations = [];
function violation(kind, detail) {
  violations.push({ at: new Date().toISOString(), kind, detail });
  log('VIOLATION', kind, JSON.stringify(detail));
}
/** Relays acked `ok` whose message never arrived though both ends stayed connected. */
const lost = [];
const faults = [];
let lastFaultEnd = 0;
let faulting = false;

let nextName = 0;
/** Every client ever made, by name, with what it heard. */
const members = new Map();

/** A client on a random usable node; `polling` clients go through their own HTTP agent,
 * so that they can vanish mid-poll (their connections destroyed, nothing sent). */
function member(roomTag) {
  const name = `c${nextName += 1}`;
  const polling = Math.random() < 0.3;
  const agent = polling ? new http.Agent({ keepAlive: true }) : undefined;
  const node = nodes[pick([...usable])];
  const socket = client(node, polling ? { transports: ['polling'], agent } : { transports: ['websocket'] });
  const m = {
    name, socket, agent, polling, roomTag, id: null, joined: false, ids: new Map(), leavesHeard: new Map(),
    goneAt: null, delivered: new Set(),
  };
  members.set(name, m);
  socket.on('disconnect', () => { m.goneAt ??= Date.now(); });
  socket.on('user-disconnected', (id) => m.leavesHeard.set(id, (m.leavesHeard.get(id) ?? 0) + 1));
  const onRelay = (from, payload) => {
    if (payload?.room !== m.roomTag) violation('relay across rooms', { to: name, from, payload });
    if (typeof payload?.from === 'string') {
      m.ids.set(payload.from, from);
      const sender = members.get(payload.from);
      if (sender && sender.id === null) sender.id = from;
    }
    if (payload?.seq !== undefined) {
      m.delivered.add(`${payload.from}:${payload.seq}`);
      counts.relaysDelivered += 1;
    }
  };
  for (const event of ['rtc-offer', 'rtc-answer', 'ice-candidate']) socket.on(event, onRelay);
  return m;
}

function vanish(m) {
  if (m.polling) {
    // The long poll in flight and any idle connection die without a word.
    for (const list of [...Object.values(m.agent.sockets), ...Object.values(m.agent.freeSockets)]) {
      for (const s of list) s.destroy();
    }
  }
  m.socket.io.engine.close();
  m.goneAt ??= Date.now();
  counts.vanished += 1;
}

function leave(m) {
  m.socket.disconnect();
  m.goneAt ??= Date.now();
}

/** Members leave one at a time (those a fault took first): each time, every member still
 * connected must hear the leave within ANNOUNCE_MS; at the end, none heard one twice, nor
 * the leave of anyone outside the room. */
async function departures(room) {
  const order = [...room.filter((m) => m.goneAt !== null), ...room.filter((m) => m.goneAt === null)];
  for (const [i, m] of order.entries()) {
    if (m.goneAt === null) {
      if (Math.random() < 0.25) vanish(m);
      else leave(m);
    }
    counts.leaves += 1;
    // Only members the server put in the room hear of leaves: one whose connect or join
    // failed (a fault, say) was never one.
    const stay = order.slice(i + 1).filter((o) => o.goneAt === null && o.joined);
    if (m.id === null || !m.joined || stay.length === 0) continue;
    const deadline = Date.now() + ANNOUNCE_MS;
    while (Date.now() < deadline && stay.some((o) => o.goneAt === null && !o.leavesHeard.has(m.id))) await sleep(100);
    for (const o of stay) {
      if (o.goneAt !== null) continue; // lost its own connection meanwhile
      counts.leavesChecked += 1;
      if (!o.leavesHeard.has(m.id)) violation('leave not announced', { leaver: m.name, to: o.name });
    }
  }
  await sleep(1_000);
  const ids = new Set(room.map((m) => m.id));
  for (const o of room) {
    for (const [id, n] of o.leavesHeard) {
      if (n > 1) violation('leave announced twice', { leaver: id, to: o.name, n });
      if (!ids.has(id) && !ids.has(null)) violation('leave of someone outside the room', { leaver: id, to: o.name });
    }
  }
}

const candidate = (i) => ({ candidate: `candidate:${i} 1 udp 2122260223 192.0.2.${i % 250} ${50000 + i} typ host`, sdpMid: '0', sdpMLineIndex: 0 });

/** Sends a relay with an ack; returns the key to expect at the target on `ok`. */
async function relay(from, to, event, seq, extra = {}) {
  counts.relaysSent += 1;
  let ack;
  try {
    ack = await from.socket.timeout(WAIT_MS).emitWithAck(event, to.id, { room: from.roomTag, from: from.name, seq, ...extra });
  } catch {
    return null;
  }
  if (ack?.ok) {
    counts.relaysAcked += 1;
    return { key: `${from.name}:${seq}`, from, to, at: Date.now() };
  }
  counts.relaysRefused += 1;
  return null;
}

/** One room's life: members on random nodes arrive, set up the mesh, relay, some
 * misbehave, and all leave or vanish. */
async function cycle(tag) {
  const size = 2 + Math.floor(Math.random() * 4);
  const room = [];
  try {
    const first = member(tag);
    room.push(first);
    await next(first.socket, 'connect', WAIT_MS);
    first.socket.emit('create-room');
    const [roomId] = await next(first.socket, 'room-created', WAIT_MS);
    first.joined = true;
    for (let i = 1; i < size; i += 1) {
      const m = member(tag);
      room.push(m);
      await next(m.socket, 'connect', WAIT_MS);
      // The mesh as the reference client builds it: the members offer to the joiner.
      const offered = room.slice(0, -1).map((o) => next(o.socket, 'new-user-joined', WAIT_MS).then(([id]) => {
        m.id ??= id;
        return relay(o, m, 'rtc-offer', `o${i}`);
      }));
      // A join that fails leaves these waiting; their rejection must not end the run.
      for (const p of offered) p.catch(() => {});
      const ack = await m.socket.timeout(WAIT_MS).emitWithAck('join-room', roomId);
      if (ack?.roomId !== roomId) throw new Error(`join answered ${JSON.stringify(ack)}`);
      m.joined = true;
      await Promise.all(offered);
    }
    // Every member now knows everyone's id (from offers), but the first's is learned from
    // its own offers above; relay rounds between all pairs.
    const expected = [];
    for (let round = 0; round < 3; round += 1) {
      for (const a of room) {
        for (const b of room) {
          if (a === b || a.id === null || b.id === null) continue;
          expected.push(relay(a, b, round === 0 ? 'rtc-answer' : 'ice-candidate', `${round}-${b.name}`, round ? candidate(round) : {}));
        }
      }
      await sleep(200 + Math.random() * 800);
    }
    const sent = (await Promise.all(expected)).filter(Boolean);
    // Give the relays time to land, then count those lost though both ends stayed.
    await sleep(3_000);
    for (const r of sent) {
      if (r.to.delivered.has(r.key)) continue;
      if (r.from.goneAt !== null || r.to.goneAt !== null) continue;
      lost.push({ at: r.at, from: r.from.name, to: r.to.name, duringFault: faulting || Date.now() - lastFaultEnd < 10_000 });
    }
    const roll = Math.random();
    if (roll < 0.05 && room.length > 1) {
      // A flooder: far over the signaling rate until its node drops it.
      const [a, b] = room;
      for (let i = 0; i < 3000 && a.socket.connected; i += 1) a.socket.emit('ice-candidate', b.id, { room: tag, from: a.name });
      counts.floods += 1;
      await sleep(1_000);
    } else if (roll < 0.2) {
      const s = room[0].socket;
      s.emit('rtc-offer');
      s.emit('ice-candidate', 42, 'x'.repeat(20_000));
      s.emit('no-such-event', { a: 1 });
      s.emit('join-room', { roomId });
      counts.junk += 4;
    }
    counts.cycles += 1;
  } catch (err) {
    counts.failedCycles += 1;
    if (counts.failedCycles <= 10 || !faulting) log('cycle failed:', err.message);
  } finally {
    // Leave: most say goodbye, some vanish.
    await departures(room);
  }
}

let traffic = true;
async function worker(w) {
  let n = 0;
  while (traffic) {
    await cycle(`w${w}-${n += 1}`);
  }
}

// ---------------------------------------------------------------- faults

async function nodeFault() {
  const i = pick([0, 1, 2]);
  const node = nodes[i];
  const kind = pick(['SIGKILL', 'SIGSTOP', 'SIGTERM']);
  usable.delete(i);
  const started = Date.now();
  if (kind === 'SIGSTOP') {
    // Longer than the TTL: the others declare it dead.
    node.child.kill('SIGSTOP');
    await sleep(Number(TIMINGS.NODE_TTL_MS) + 1_000 + Math.random() * 2_000);
    node.child.kill('SIGCONT');
  } else {
    node.child.kill(kind);
    await node.exited;
    await sleep(500 + Math.random() * 2_000);
    await startNode(i);
  }
  await waitReady(nodes[i]);
  usable.add(i);
  return { kind: `node ${kind}`, node: i, ms: Date.now() - started };
}

async function redisFault() {
  const started = Date.now();
  if (Math.random() < 0.5) {
    await redis.kill();
    await sleep(500 + Math.random() * 2_000);
    await redis.restart();
    return { kind: 'redis restart', ms: Date.now() - started };
  }
  redis.signal('SIGSTOP');
  await sleep(Number(TIMINGS.REDIS_TIMEOUT_MS) * (2 + Math.random() * 2));
  redis.signal('SIGCONT');
  return { kind: 'redis pause', ms: Date.now() - started };
}

async function waitReady(node, ms = 30_000) {
  const deadline = Date.now() + ms;
  while ((await status(node, '/readyz')) !== 200) {
    if (Date.now() > deadline) throw new Error(`${node.url} not ready after ${ms} ms`);
    await sleep(100);
  }
}

async function chaos(until) {
  while (Date.now() < until) {
    await sleep(10_000 + Math.random() * 20_000);
    if (Date.now() >= until) break;
    log('RSS KiB', nodes.map(rssKiB));
    if (opts.faults === 'none') continue;
    faulting = true;
    const fault = await (Math.random() < 0.6 ? nodeFault() : redisFault());
    faulting = false;
    lastFaultEnd = Date.now();
    fault.at = new Date(lastFaultEnd).toISOString();
    faults.push(fault);
    log('fault', JSON.stringify(fault));
    // Every node is ready again before the next fault.
    for (const node of nodes) await waitReady(node, 60_000);
  }
}

// ---------------------------------------------------------------- the run

async function settledEmpty(ms = 90_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const r = await redisView().catch(() => null);
    const views = await Promise.all(nodes.map((n) => nodeView(n).catch(() => null)));
    const empty = r && Object.keys(r.rooms).length === 0 && Object.keys(r.sizes).length === 0 && r.peers.length === 0
      && views.every((v) => v && v.connected === 0 && v.rooms === 0);
    if (empty) return { ok: true };
    if (Date.now() > deadline) return { ok: false, redis: r, nodes: views };
    await sleep(500);
  }
}

const t0 = Date.now();
log(`warm-up ${opts.warmup} s`);
traffic = true;
let workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
await sleep(Number(opts.warmup) * 1000);
traffic = false;
await Promise.all(workers);
const warm = await settledEmpty();
if (!warm.ok) violation('not empty after warm-up', warm);
await sleep(QUIET_MS);
const baseline = nodes.map(rssKiB);
log('baseline RSS KiB', baseline);

log(`chaos ${MINUTES} min`);
traffic = true;
workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
const chaosStart = Date.now();
await chaos(chaosStart + MINUTES * 60_000);
const lastFault = lastFaultEnd;
log('faults stopped');

// Steady rooms after the last fault: the cluster must agree with Redis about them.
traffic = false;
await Promise.all(workers);
const held = [];
for (let r = 0; r < 12; r += 1) {
  const tag = `hold-${r}`;
  const size = 2 + (r % 4);
  const room = [];
  for (let i = 0; i < size; i += 1) {
    const m = member(tag);
    room.push(m);
    await next(m.socket, 'connect', WAIT_MS);
  }
  room[0].socket.emit('create-room');
  const [roomId] = await next(room[0].socket, 'room-created', WAIT_MS);
  for (const m of room.slice(1)) {
    const announced = next(room[0].socket, 'new-user-joined', WAIT_MS);
    announced.catch(() => {}); // awaited below; a failed join throws first
    await m.socket.timeout(WAIT_MS).emitWithAck('join-room', roomId);
    [m.id] = await announced;
  }
  await relay(room[1], room[0], 'rtc-offer', 'id'); // room[0] learns nothing; room[1] teaches its id
  const got = next(room[1].socket, 'rtc-answer', WAIT_MS);
  room[0].socket.emit('rtc-answer', room[1].id, { room: tag, from: room[0].name });
  [room[0].id] = await got;
  held.push({ roomId, room });
}
const expectedRooms = Object.fromEntries(held.map(({ roomId, room }) => [roomId, room.map((m) => m.id).sort()]));
const expectedSizes = {};
for (const { room } of held) expectedSizes[room.length] = (expectedSizes[room.length] ?? 0) + 1;
let converged = null;
let mismatch = null;
const convergeDeadline = Date.now() + 120_000;
while (Date.now() < convergeDeadline) {
  const r = await redisView().catch(() => null);
  const views = await Promise.all(nodes.map((n) => nodeView(n).catch(() => null)));
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);
  const expectedPeers = held.flatMap(({ room }) => room.map((m) => m.id)).sort();
  const connected = views.reduce((n, v) => n + (v?.connected ?? NaN), 0);
  const sorted = (o) => Object.fromEntries(Object.entries(o ?? {}).sort());
  if (r && same(sorted(r.rooms), sorted(expectedRooms))
      && same(r.sizes, expectedSizes) && same(r.peers, expectedPeers)
      && views.every((v) => v && same(v.sizes, expectedSizes)) && connected === expectedPeers.length) {
    converged = Date.now();
    break;
  }
  mismatch = { redisRooms: r && Object.keys(r.rooms).length, redisSizes: r?.sizes, expectedSizes, nodes: views, peers: r?.peers.length, expectedPeers: expectedPeers.length };
  await sleep(250);
}
if (converged === null) violation('no convergence after the last fault', mismatch);
for (const { room } of held) for (const m of room) leave(m);
const empty = await settledEmpty();
if (!empty.ok) violation('rooms or peers left after every client went', empty);
// The warm-up's traffic once more, so that every node, restarted or not, ends in the state
// its baseline was taken in: just after that traffic, with no client left.
log(`cool-down: the warm-up traffic again for ${opts.warmup} s`);
traffic = true;
workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
await sleep(Number(opts.warmup) * 1000);
traffic = false;
await Promise.all(workers);
const cooled = await settledEmpty();
if (!cooled.ok) violation('rooms or peers left after the cool-down', cooled);
await sleep(QUIET_MS);
const final = nodes.map(rssKiB);
// What glibc keeps of freed memory, told apart from memory still in use: RSS once more
// after asking each process to give back its free pages (diagnostic only).
const trimmed = nodes.map(trimmedRssKiB);
const rss = baseline.map((b, i) => ({ baseline: b, final: final[i], trimmed: trimmed[i], ratio: Number((final[i] / b).toFixed(3)), restarted: faults.some((f) => f.node === i && f.kind !== 'node SIGSTOP') }));
for (const [i, r] of rss.entries()) {
  if (r.final > r.baseline * 1.1) violation('RSS above baseline + 10%', { node: i, ...r });
}

const result = {
  minutes: Number(((Date.now() - chaosStart) / 60_000).toFixed(1)),
  chaosMinutes: MINUTES,
  workers: WORKERS,
  cpus: os.cpus().length,
  loadavg: os.loadavg().map((l) => Number(l.toFixed(1))),
  faults: faults.length,
  faultKinds: faults.reduce((acc, f) => ({ ...acc, [f.kind]: (acc[f.kind] ?? 0) + 1 }), {}),
  ...counts,
  lostAfterOk: lost.length,
  lostAfterOkDuringFaults: lost.filter((l) => l.duringFault).length,
  convergeSecondsAfterLastFault: converged === null ? null : Number(((converged - lastFault) / 1000).toFixed(1)),
  rss,
  violations: violations.length,
  violationKinds: violations.reduce((acc, v) => ({ ...acc, [v.kind]: (acc[v.kind] ?? 0) + 1 }), {}),
  totalMinutes: Number(((Date.now() - t0) / 60_000).toFixed(1)),
};
console.log(JSON.stringify(result));
if (opts.report) writeFileSync(opts.report, report(result));
for (const node of nodes) await node.stop('SIGKILL');
await redis.stop();
process.exit(violations.length === 0 ? 0 : 1);

function report(r) {
  const kinds = Object.entries(r.faultKinds).map(([k, n]) => `${n} × ${k}`).join(', ');
  const lines = [
    '## Chaos soak across nodes',
    '',
    `\`bench/chaos.mjs --minutes ${r.chaosMinutes} --workers ${r.workers}\`, ${new Date().toISOString().slice(0, 10)}: three nodes`,
    '(release binary) on one `redis-server`, rooms of 2 to 5 forming and dissolving on random nodes,',
    'relays between all members, floods, junk, and clients that vanish (long-polling ones mid-poll),',
    `while faults were injected every 10 to 30 s. Machine: ${r.cpus} cores shared with other work (load`,
    `average ${r.loadavg.join(' / ')} at the end), so the timings are pessimistic; the invariants do not depend on them.`,
    '',
    '| figure | value |',
    '|---|---:|',
    `| chaos phase | ${r.minutes} min |`,
    `| faults injected | ${r.faults} (${kinds}) |`,
    `| invariant violations | **${r.violations}** |`,
    `| room cycles completed / failed (mostly by a fault) | ${r.cycles} / ${r.failedCycles} |`,
    `| relays sent / acked ok / refused | ${r.relaysSent} / ${r.relaysAcked} / ${r.relaysRefused} |`,
    `| relays delivered | ${r.relaysDelivered} |`,
    `| acked ok but never delivered (both ends connected) | ${r.lostAfterOk} (${r.lostAfterOkDuringFaults} within 10 s of a fault) |`,
    `| leaves / announcements checked | ${r.leaves} / ${r.leavesChecked} |`,
    `| floods / junk events / clients vanished | ${r.floods} / ${r.junk} / ${r.vanished} |`,
    `| time to converge after the last fault | ${r.convergeSecondsAfterLastFault ?? 'never'} s |`,
    `| RSS after / baseline, per node | ${r.rss.map((x, i) => `${i}: ${(x.final / 1024).toFixed(1)} / ${(x.baseline / 1024).toFixed(1)} MiB${x.restarted ? ' (restarted)' : ''}`).join('; ')} |`,
    `| RSS after malloc_trim(0), per node | ${r.rss.map((x, i) => `${i}: ${x.trimmed === null ? 'n/a' : `${(x.trimmed / 1024).toFixed(1)} MiB`}`).join('; ')} |`,
    '',
    'Invariants: no relay reaches a client outside the sender\'s room; every member that left is',
    'announced exactly once to every member that stayed (within 45 s); after the last fault, Redis',
    '(rooms, room-size hash, the nodes\' peer sets) and every node\'s `/metrics` agree with the rooms the',
    'clients are in; once all clients are gone no room and no peer remains in Redis or on any node; each',
    'node\'s RSS ends within 10% of its baseline, both taken just after the same warm-up traffic with',
    'no client left (the last after the soak, so a node restarted during it has had that traffic too).',
    '',
  ];
  if (r.violations > 0) lines.push(`Violations by kind: ${JSON.stringify(r.violationKinds)}.`, '');
  return lines.join('\n');
}
