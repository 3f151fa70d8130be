// Soak run, by hand (not in CI): minutes of connect / join / signal / leave churn with
// floods and junk mixed in, against the release binary. Afterwards the server must hold no
// rooms and no connections, and its RSS must be back near the baseline taken after warm-up.
//
//   cargo build --release && node bench/soak.mjs [--seconds 180] [--workers 40] [--bin PATH]
//
// It uses the test helpers of tests/js and their socket.io-client: `npm ci` there first.
//
// Prints one JSON line of figures at the end and exits non-zero if rooms or connections
// remain or RSS stays more than 25% above the baseline.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { client, next } from '../tests/js/helpers/client.mjs';
import { startServer, REPO } from '../tests/js/helpers/server.mjs';

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '180' },
    workers: { type: 'string', default: '40' },
    warmup: { type: 'string', default: '15' },
    bin: { type: 'string', default: path.join(REPO, 'target', 'release', 'meshchat') },
  },
});
const SECONDS = Number(opts.seconds);
const WORKERS = Number(opts.workers);
const WAIT_MS = 15_000;

const server = await startServer(
  {
    // "listening" is logged at info by the server module; the rest stays quiet.
    RUST_LOG: 'warn,meshchat::server=info',
    // Every soak client comes from 127.0.0.1: the per-IP connection rate would be the
    // only thing measured otherwise. Floods of events stay limited as in production.
    CONNECT_RATE: '0',
    MAX_CONNECTIONS: '20000',
    PING_INTERVAL_MS: '5000',
    PING_TIMEOUT_MS: '5000',
  },
  opts.bin,
);

const counts = { cycles: 0, relays: 0, floods: 0, junk: 0, errors: 0, kills: 0 };

function rssKiB() {
  const status = readFileSync(`/proc/${server.child.pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

/** The server's own view: connected sockets and rooms, from its metrics endpoint. */
async function serverCounts() {
  const res = await fetch(`${server.url}/metrics`);
  if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
  const text = await res.text();
  const read = (name) => {
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? NaN : Number(line.split(' ').pop());
  };
  return { connected: read('meshchat_connected_sockets'), rooms: read('meshchat_rooms') };
}

function connect() {
  const transports = Math.random() < 0.3 ? ['polling'] : ['websocket'];
  return client(server, { transports });
}

const candidate = (i) => ({
  candidate: `candidate:${i} 1 udp 2122260223 192.0.2.${i % 250} ${50000 + i} typ host`.padEnd(1000, ' '),
  sdpMid: '0',
  sdpMLineIndex: 0,
});

/** One room's life: members arrive, signal each other, some misbehave, all leave. */
async function cycle() {
  const size = 2 + Math.floor(Math.random() * 5);
  const sockets = [];
  try {
    const first = connect();
    sockets.push(first);
    first.emit('create-room');
    const [roomId] = await next(first, 'room-created', WAIT_MS);
    const peers = [];
    for (let i = 1; i < size; i += 1) {
      const s = connect();
      sockets.push(s);
      const announced = next(first, 'new-user-joined', WAIT_MS);
      s.emit('join-room', roomId);
      peers.push([s, (await announced)[0]]);
    }
    for (const [s, id] of peers) {
      const got = next(s, 'ice-candidate', WAIT_MS);
      for (let i = 0; i < 5; i += 1) first.emit('ice-candidate', id, candidate(i));
      first.emit('rtc-offer', id, { type: 'offer', sdp: 'v=0\r\n'.repeat(200) });
      await got;
      counts.relays += 6;
    }
    const roll = Math.random();
    if (roll < 0.05) {
      // A flooder: far over the signaling rate until the server drops it.
      const [victim, id] = peers[0];
      const gone = next(first, 'user-disconnected', WAIT_MS);
      for (let i = 0; i < 3000; i += 1) victim.emit('ice-candidate', 'x'.repeat(16), { i, id });
      await gone;
      counts.floods += 1;
    } else if (roll < 0.2) {
      const s = peers[0][0];
      s.emit('rtc-offer');
      s.emit('ice-candidate', 42, 'x'.repeat(20_000));
      s.emit('no-such-event', { a: 1 });
      s.emit('join-room', { roomId });
      counts.junk += 4;
    }
    // Leave: most say goodbye, some just vanish (transport closed without a packet).
    for (const s of sockets) {
      if (Math.random() < 0.2) {
        s.io.engine.close();
        counts.kills += 1;
      } else {
        s.disconnect();
      }
    }
    counts.cycles += 1;
  } catch (err) {
    counts.errors += 1;
    if (counts.errors <= 5) console.error('cycle failed:', err.message);
    for (const s of sockets) s.disconnect();
  }
}

async function churn(seconds) {
  const until = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: WORKERS }, async () => {
      while (Date.now() < until) await cycle();
    }),
  );
}

/** Polls until the server holds no rooms and no connections, or gives up after 60 s. */
async function settled() {
  const deadline = Date.now() + 60_000;
  let now = await serverCounts();
  while ((now.rooms !== 0 || now.connected !== 0) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    now = await serverCounts();
  }
  return now;
}

const started = rssKiB();
await churn(Number(opts.warmup));
await settled();
const baseline = rssKiB();
let peak = baseline;
const sampler = setInterval(() => {
  peak = Math.max(peak, rssKiB());
}, 250);
const t0 = Date.now();
await churn(SECONDS);
const elapsed = (Date.now() - t0) / 1000;
clearInterval(sampler);
const after = await settled();
const final = rssKiB();
await server.stop();

const report = {
  seconds: elapsed,
  workers: WORKERS,
  ...counts,
  cyclesPerSecond: Math.round(counts.cycles / elapsed),
  rssKiB: { atStart: started, baseline, peak, final },
  finalOverBaseline: Number((final / baseline).toFixed(3)),
  roomsAtEnd: after.rooms,
  connectedAtEnd: after.connected,
};
console.log(JSON.stringify(report));
const ok = after.rooms === 0 && after.connected === 0 && final <= baseline * 1.25;
process.exit(ok ? 0 : 1);
