// Node-addressed delivery: a relay goes to the inbox of its target's node alone, and a
// relay between two peers of one node never reaches Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { connected, joined, next, request } from '../helpers/client.mjs';
import { startRedis, startNodes } from '../helpers/cluster.mjs';
import { until } from '../helpers/server.mjs';

/** The cluster relay counters of `node`'s /metrics. */
async function counters(node) {
  const res = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200);
  const text = await res.text();
  const read = (name) => Number(text.match(new RegExp(`^meshchat_cluster_${name}_total (\\d+)$`, 'm'))?.[1]);
  return {
    sent: read('relays_sent'),
    received: read('relays_received'),
    lookups: read('lookups'),
  };
}

/** Every command Redis runs from now on (MONITOR), until `stop()`; lines of text. */
function monitor(redis) {
  const lines = [];
  const child = spawn('redis-cli', ['-p', String(redis.port), 'MONITOR'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let rest = '';
  child.stdout.on('data', (chunk) => {
    const parts = (rest + chunk).split('\n');
    rest = parts.pop();
    lines.push(...parts);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    lines,
    started: () => until(() => lines.some((l) => l.startsWith('OK')), 'MONITOR started'),
    async stop() {
      child.kill();
      await exited;
    },
  };
}

test('cluster: a relay goes to the node of its target alone, and one within a node never reaches Redis', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B, C] = await startNodes(t, 3, redis);
  const a = await connected(t, A);
  const a2 = await connected(t, A);
  const b = await connected(t, B);
  const c = await connected(t, C);

  // One room with members on all three nodes, two of them on A.
  a.emit('create-room');
  const [roomId] = await next(a, 'room-created');
  const peers = {};
  for (const [name, s] of [['a2', a2], ['b', b], ['c', c]]) {
    const seen = next(a, 'new-user-joined');
    joined(await request(s, 'join-room', roomId), roomId);
    [peers[name]] = await seen;
  }

  // Each node subscribes to an inbox of its own.
  const inboxes = (await redis.cli('PUBSUB', 'CHANNELS', 'meshchat:inbox:*')).split('\n').filter(Boolean);
  assert.equal(inboxes.length, 3, inboxes.join(' '));
  const numsub = (await redis.cli('PUBSUB', 'NUMSUB', ...inboxes)).split('\n');
  for (let i = 1; i < numsub.length; i += 2) assert.equal(numsub[i], '1', `${numsub[i - 1]} has one subscriber`);

  // A to B: B receives it, C does not.
  const before = { A: await counters(A), B: await counters(B), C: await counters(C) };
  const mon = monitor(redis);
  t.after(() => mon.stop());
  await mon.started();
  const bGets = next(b, 'rtc-offer');
  assert.deepEqual(await request(a, 'rtc-offer', peers.b, { type: 'offer', sdp: 'to-b' }), { ok: true });
  await bGets;
  for (let i = 0; i < 20; i += 1) {
    const got = next(b, 'ice-candidate');
    assert.deepEqual(await request(a, 'ice-candidate', peers.b, { candidate: `to-b ${i}` }), { ok: true });
    await got;
  }
  await until(async () => (await counters(B)).received === before.B.received + 21, 'B counted 21 relays');
  const after = { A: await counters(A), B: await counters(B), C: await counters(C) };
  assert.equal(after.A.sent, before.A.sent + 21);
  assert.equal(after.C.received, before.C.received, 'C received none of them');
  // Where B lives was asked of Redis at most once; the view answered the rest.
  assert.ok(after.A.lookups - before.A.lookups <= 1, `${after.A.lookups - before.A.lookups} lookups`);
  // Published on B's inbox alone: no node's other channel carried the payload.
  const carried = mon.lines.filter((l) => l.includes('to-b') && /"publish"/i.test(l));
  assert.equal(carried.length, 21, carried.join('\n'));
  const channels = new Set(carried.map((l) => l.match(/"publish" "([^"]+)"/i)[1]));
  assert.equal(channels.size, 1, [...channels].join(' '));
  assert.ok([...channels][0].startsWith('meshchat:inbox:'), [...channels][0]);

  // A to A: nothing about it reaches Redis.
  const from = mon.lines.length;
  const a2Gets = next(a2, 'rtc-offer');
  assert.deepEqual(await request(a, 'rtc-offer', peers.a2, { type: 'offer', sdp: 'same-node' }), { ok: true });
  await a2Gets;
  for (let i = 0; i < 20; i += 1) {
    const got = next(a2, 'ice-candidate');
    assert.deepEqual(await request(a, 'ice-candidate', peers.a2, { candidate: `same-node ${i}` }), { ok: true });
    await got;
  }
  // Let any command it might have caused show up before looking.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const during = mon.lines.slice(from);
  assert.deepEqual(during.filter((l) => l.includes('same-node') || /"(publish|xadd|sismember)"/i.test(l)), []);
  const final = await counters(A);
  assert.equal(final.sent, after.A.sent, 'nothing published');
  assert.equal(final.lookups, after.A.lookups, 'nothing asked');
});
