// /metrics in cluster mode: the room gauges count the rooms of the whole cluster, the
// same on every node, through joins, leaves and a node killed with SIGKILL.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, joined, next, request } from '../helpers/client.mjs';
import { DEAD_NODE_MS, startRedis, startNodes } from '../helpers/cluster.mjs';
import { until } from '../helpers/server.mjs';

/** The room gauges of `node`: { rooms, bySize: {members: count} } (only non-zero sizes). */
async function roomGauges(node) {
  const res = await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  assert.equal(res.status, 200);
  const text = await res.text();
  const rooms = text.match(/^meshchat_rooms (\d+)$/m);
  const bySize = {};
  for (const [, members, count] of text.matchAll(/^meshchat_rooms_by_size\{members="(\d+)"\} (\d+)$/gm)) {
    if (count !== '0') bySize[members] = Number(count);
  }
  return { rooms: rooms && Number(rooms[1]), bySize, text };
}

/** Every node reports the same room gauges, equal to `expected`. */
async function assertGauges(nodes, expected) {
  for (const node of nodes) {
    const { rooms, bySize } = await roomGauges(node);
    assert.deepEqual({ rooms, bySize }, expected, node.url);
  }
}

test('cluster: room gauges are cluster-wide and follow joins, leaves and a dead node', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B, C] = await startNodes(t, 3, redis);
  await assertGauges([A, B, C], { rooms: 0, bySize: {} });

  const a = await connected(t, A);
  const b = await connected(t, B);
  const c = await connected(t, C);
  const d = await connected(t, B);
  a.emit('create-room');
  const [roomId] = await next(a, 'room-created');
  for (const s of [b, c]) {
    const seen = next(a, 'new-user-joined');
    joined(await request(s, 'join-room', roomId), roomId);
    await seen;
  }
  d.emit('create-room');
  await next(d, 'room-created');
  await assertGauges([A, B, C], { rooms: 2, bySize: { 1: 1, 3: 1 } });

  // B dies with b and d: b leaves the first room, d's room is gone.
  const aSeesLeave = next(a, 'user-disconnected', DEAD_NODE_MS);
  await B.stop('SIGKILL');
  await aSeesLeave;
  await assertGauges([A, C], { rooms: 1, bySize: { 2: 1 } });

  // c closes its connection: the room keeps a alone.
  const aSeesC = next(a, 'user-disconnected');
  c.close();
  await aSeesC;
  await assertGauges([A, C], { rooms: 1, bySize: { 1: 1 } });
  a.close();
  // No event tells a's own node finished its leave: ask until the gauges drop.
  await until(async () => (await roomGauges(C)).rooms === 0, 'no rooms left');
  await assertGauges([A, C], { rooms: 0, bySize: {} });

  // Without Redis the room gauges are left out (not shown stale); the rest stays.
  await redis.kill();
  const { rooms, text } = await roomGauges(A);
  assert.equal(rooms, null);
  assert.doesNotMatch(text, /^meshchat_rooms_by_size/m);
  assert.match(text, /^meshchat_connected_sockets \d+$/m);
});
