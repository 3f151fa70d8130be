// Benchmark, run by hand: round-trip time of a relay (offer from a, answer back from b)
// on one node in memory, and in cluster mode with both clients on one node and on two.
//   cargo build && node bench/relay-latency.mjs [rounds]
//   MESHCHAT_BIN=target/release/meshchat node bench/relay-latency.mjs 5000
//   ... relay-latency.mjs 5000 single    (one node only, e.g. to compare two builds)
// It uses the test helpers of tests/js and their socket.io-client (`npm ci` there first),
// and redis-server for the cluster part.
import { client, next } from '../tests/js/helpers/client.mjs';
import { startRedis } from '../tests/js/helpers/cluster.mjs';
import { startServer, status, until } from '../tests/js/helpers/server.mjs';

const ROUNDS = Number(process.argv[2] ?? 2000);
// No rate limit: the benchmark sends far more than a client should.
const ENV = { SIGNAL_RATE: '0' };

/** A websocket client of `node`, once connected. */
async function wsClient(node) {
  const s = client(node, { transports: ['websocket'] });
  await next(s, 'connect');
  return s;
}

async function measure(label, nodeA, nodeB) {
  const a = await wsClient(nodeA);
  const b = await wsClient(nodeB);
  a.emit('create-room');
  const [roomId] = await next(a, 'room-created');
  const joined = next(a, 'new-user-joined');
  b.emit('join-room', roomId);
  const [bPeer] = await joined;
  b.on('rtc-offer', (from, offer) => b.emit('rtc-answer', from, offer));
  const offer = { type: 'offer', sdp: 'v=0\r\n'.repeat(40) };
  const times = [];
  for (let i = 0; i < ROUNDS + 200; i += 1) {
    const start = process.hrtime.bigint();
    const answered = next(a, 'rtc-answer');
    a.emit('rtc-offer', bPeer, offer);
    await answered;
    if (i >= 200) times.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  times.sort((x, y) => x - y);
  const q = (p) => times[Math.min(times.length - 1, Math.floor(times.length * p))].toFixed(0);
  console.log(`${label.padEnd(34)} median ${q(0.5)} µs  p90 ${q(0.9)} µs  p99 ${q(0.99)} µs  (${ROUNDS} round trips, 2 relays each)`);
  a.close();
  b.close();
}

const single = await startServer(ENV);
await measure('single node (in memory)', single, single);
await single.stop();
if (process.argv[3] === 'single') process.exit(0);

const redis = await startRedis();
const A = await startServer({ ...ENV, REDIS_URL: redis.url });
const B = await startServer({ ...ENV, REDIS_URL: redis.url });
for (const n of [A, B]) await until(async () => (await status(n, '/readyz')) === 200, `${n.url} ready`);
await measure('cluster, both clients on node A', A, A);
await measure('cluster, clients on nodes A and B', A, B);
await A.stop();
await B.stop();
await redis.stop();
