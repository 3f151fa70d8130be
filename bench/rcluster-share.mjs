// What each shard of a Redis Cluster carries, by hand (not in CI): three nodes on a Redis
// Cluster of six (tests/js/helpers/cluster.mjs), rooms of 4 formed with members on every
// node, every member relaying to every other, then leaving. Every command the masters run
// is watched (MONITOR) and counted by the shard its key is on: the membership shard
// (`meshchat:{m}:…`) or an inbox shard (`meshchat:inbox:{<node>}`).
//
//   cargo build && node bench/rcluster-share.mjs [--rooms 20] [--relays 12] [--bin target/debug/meshchat]
//
// Relays are sent one at a time, each waiting for its ack, so few share a script call: the
// inbox count is an upper bound (under load the outbox batches more). Prints one JSON line.
import { spawn } from 'node:child_process';
import { parseArgs } from 'node:util';
import { connected, joined, next, request } from '../tests/js/helpers/client.mjs';
import { startRedis } from '../tests/js/helpers/cluster.mjs';
import { startServer, status, until } from '../tests/js/helpers/server.mjs';

const { values } = parseArgs({
  options: {
    rooms: { type: 'string', default: '20' },
    relays: { type: 'string', default: '12' },
    bin: { type: 'string' },
  },
});
const ROOMS = Number(values.rooms);
const RELAYS = Number(values.relays);

process.env.MESHCHAT_TEST_REDIS_CLUSTER = '1';
const redis = await startRedis();
const { cluster } = redis;
const cleanups = [() => redis.stop()];
// The test helpers close what they open when a test ends; here, when the script does.
const t = { after: (f) => cleanups.push(f) };

/** Every top-level command a master runs from now on, until `stop()`. */
function monitor(port) {
  const lines = [];
  const child = spawn('redis-cli', ['-p', String(port), 'MONITOR'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let rest = '';
  child.stdout.on('data', (chunk) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop();
    lines.push(...parts.filter((l) => !l.includes(' lua]')));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { lines, stop: async () => { child.kill(); await exited; } };
}

try {
  const env = { REDIS_URL: redis.url, ...redis.env, NODE_HEARTBEAT_MS: '2000', NODE_TTL_MS: '6000' };
  const nodes = [];
  for (let i = 0; i < 3; i += 1) {
    const node = await startServer(env, values.bin);
    cleanups.push(() => node.stop('SIGKILL'));
    nodes.push(node);
  }
  for (const node of nodes) await until(async () => (await status(node, '/readyz')) === 200, 'ready');
  const masters = [];
  for (const port of cluster.ports) {
    if ((await cluster.cli(port, 'ROLE')).startsWith('master')) masters.push(port);
  }
  const watches = masters.map(monitor);
  await new Promise((resolve) => setTimeout(resolve, 500));
  const started = Date.now();
  let relays = 0;
  for (let r = 0; r < ROOMS; r += 1) {
    const members = [];
    for (let i = 0; i < 4; i += 1) members.push(await connected(t, nodes[(r + i) % 3]));
    members[0].emit('create-room');
    const [roomId] = await next(members[0], 'room-created');
    const peers = [];
    for (const m of members.slice(1)) {
      const seen = next(members[0], 'new-user-joined');
      joined(await request(m, 'join-room', roomId), roomId);
      peers.push((await seen)[0]);
    }
    const first = next(members[1], 'rtc-offer');
    members[0].emit('rtc-offer', peers[0], { type: 'offer', sdp: 'hello' });
    peers.unshift((await first)[0]);
    relays += 1;
    for (let from = 0; from < 4; from += 1) {
      for (let to = 0; to < 4; to += 1) {
        if (from === to) continue;
        for (let k = 0; k < RELAYS; k += 1) {
          const ack = await request(members[from], 'ice-candidate', peers[to], { candidate: `c${k}` });
          if (ack.ok !== true) throw new Error(`relay refused: ${JSON.stringify(ack)}`);
          relays += 1;
        }
      }
    }
    for (const m of members) m.close();
  }
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  const seconds = (Date.now() - started) / 1000;
  for (const w of watches) await w.stop();
  const count = { membership: {}, inbox: 0, other: {} };
  for (const line of watches.flatMap((w) => w.lines)) {
    const words = line.match(/"((?:[^"\\]|\\.)*)"/g)?.map((w) => w.slice(1, -1)) ?? [];
    const [cmd] = words;
    if (!cmd) continue;
    const key = words.find((w) => w.startsWith('meshchat:'));
    if (key?.startsWith('meshchat:inbox:')) count.inbox += 1;
    else if (key?.startsWith('meshchat:{m}:')) {
      const what = key.slice('meshchat:{m}:'.length).split(/[:#-]/)[0];
      count.membership[what] = (count.membership[what] ?? 0) + 1;
    } else count.other[cmd] = (count.other[cmd] ?? 0) + 1;
  }
  const membership = Object.values(count.membership).reduce((a, b) => a + b, 0);
  const beats = Math.round((3 * seconds) / 2);
  console.log(JSON.stringify({
    rooms: ROOMS, relays, seconds: Number(seconds.toFixed(1)),
    membershipCalls: membership, byKey: count.membership, heartbeatsAbout: beats,
    inboxCalls: count.inbox, otherCommands: count.other,
    relaysPerMembershipCall: Number((relays / membership).toFixed(1)),
    relaysPerMembershipCallWithoutBeats: Number((relays / Math.max(1, membership - beats)).toFixed(1)),
  }));
} finally {
  for (const f of cleanups.reverse()) await f();
}
