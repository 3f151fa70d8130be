// A node killed with SIGKILL and a Redis restart: the cluster heals by itself.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, joined, next, request } from '../helpers/client.mjs';
import { DEAD_NODE_MS, FAST, meshOf, startRedis, startNodes } from '../helpers/cluster.mjs';
import { startProxy } from '../helpers/proxy.mjs';
import { startServer, status, until } from '../helpers/server.mjs';


/**
 * Redis and two nodes: A reaches Redis through a proxy that can break A's connection at a
 * chosen request, B directly.
 */
async function proxiedPair(t) {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const proxy = await startProxy([redis.port]);
  t.after(() => proxy.close());
  const [A] = await startNodes(t, 1, { url: `redis://127.0.0.1:${proxy.port}` });
  const [B] = await startNodes(t, 1, redis);
  return { redis, proxy, A, B };
}

test('cluster: a node killed with SIGKILL has its members announced as gone; the room lives on', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B, C] = await startNodes(t, 3, redis);
  const a = await connected(t, A);
  const b = await connected(t, B);
  const c = await connected(t, C, ['polling']);
  const { roomId, aPeer, peers: [bPeer, cPeer] } = await meshOf(a, b, c);

  const aSeesLeave = next(a, 'user-disconnected', DEAD_NODE_MS);
  const cSeesLeave = next(c, 'user-disconnected', DEAD_NODE_MS);
  await B.stop('SIGKILL');
  assert.deepEqual(await aSeesLeave, [bPeer]);
  assert.deepEqual(await cSeesLeave, [bPeer]);

  // The dead node's peer is no longer a member anywhere.
  assert.deepEqual(await request(a, 'rtc-offer', bPeer, { type: 'offer', sdp: 'x' }), {
    error: 'that peer is not in any of your rooms',
    reason: 'not_in_your_rooms',
  });
  // The room still works between survivors, and takes newcomers on any node.
  const cGets = next(c, 'rtc-offer');
  a.emit('rtc-offer', cPeer, { type: 'offer', sdp: 'still here' });
  assert.deepEqual(await cGets, [aPeer, { type: 'offer', sdp: 'still here' }]);
  const d = await connected(t, A);
  const cSeesD = next(c, 'new-user-joined');
  joined(await request(d, 'join-room', roomId), roomId);
  await cSeesD;
  assert.equal(await status(A, '/readyz'), 200);
  assert.equal(await status(C, '/readyz'), 200);
});

test('cluster: after Redis restarts (losing its data) the nodes recover by themselves', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B] = await startNodes(t, 2, redis);
  const a = await connected(t, A);
  const b = await connected(t, B, ['polling']);
  const { roomId, aPeer, peers: [bPeer] } = await meshOf(a, b);

  // Liveness is checked all along, in the background.
  const health = [];
  let watching = true;
  const watcher = (async () => {
    while (watching) {
      health.push(await status(A, '/healthz'), await status(B, '/healthz'));
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  })();
  t.after(() => { watching = false; });

  await redis.kill();
  await until(async () => (await status(A, '/readyz')) === 503 && (await status(B, '/readyz')) === 503, 'not ready');

  // While Redis is away, requests are refused promptly rather than left hanging.
  assert.deepEqual(await request(a, 'rtc-offer', bPeer, { type: 'offer', sdp: 'x' }), {
    error: 'the server is briefly unavailable: try again',
    reason: 'unavailable',
  });

  await redis.restart();
  await until(async () => (await status(A, '/readyz')) === 200 && (await status(B, '/readyz')) === 200, 'ready again');
  watching = false;
  await watcher;
  assert.ok(health.length > 0);
  assert.deepEqual(health.filter((s) => s !== 200), [], '/healthz stays 200 throughout');

  // The new Redis knows the room again (the nodes registered their members) and relays
  // cross the nodes both ways (both resubscribed).
  const bGets = next(b, 'rtc-offer');
  assert.deepEqual(await request(a, 'rtc-offer', bPeer, { type: 'offer', sdp: 'after' }), { ok: true });
  assert.deepEqual(await bGets, [aPeer, { type: 'offer', sdp: 'after' }]);
  const aGets = next(a, 'rtc-answer');
  b.emit('rtc-answer', aPeer, { type: 'answer', sdp: 'after' });
  assert.deepEqual(await aGets, [bPeer, { type: 'answer', sdp: 'after' }]);

  const c = await connected(t, B);
  const aSeesC = next(a, 'new-user-joined');
  const bSeesC = next(b, 'new-user-joined');
  joined(await request(c, 'join-room', roomId), roomId);
  const [cPeer] = await aSeesC;
  assert.deepEqual(await bSeesC, [cPeer]);

  const aSeesLeave = next(a, 'user-disconnected');
  b.close();
  assert.deepEqual(await aSeesLeave, [bPeer]);
});

test('cluster: a node that stalls past its TTL is declared dead, then drops its clients when it wakes', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B] = await startNodes(t, 2, redis);
  const a = await connected(t, A);
  const b = await connected(t, B);
  const meshOfRoom = meshOf(a, b);
  const { peers: [bPeer] } = await meshOfRoom;

  const leaves = [];
  a.on('user-disconnected', (peer) => leaves.push(peer));
  const aSeesLeave = next(a, 'user-disconnected', DEAD_NODE_MS);
  B.child.kill('SIGSTOP');
  t.after(() => B.child.kill('SIGCONT'));
  assert.deepEqual(await aSeesLeave, [bPeer]);

  // The others were told b left: B makes that true instead of keeping b in rooms that no
  // longer list it, and b's client can reconnect and rejoin.
  const bDropped = next(b, 'disconnect', DEAD_NODE_MS);
  B.child.kill('SIGCONT');
  const [reason] = await bDropped;
  assert.equal(reason, 'io server disconnect');
  await until(async () => (await status(B, '/readyz')) === 200, 'B ready again');
  // b's own disconnect on B does not tell the room a second time: a newcomer through B is
  // announced after anything B sent about b.
  const { roomId } = await meshOfRoom;
  const c = await connected(t, B);
  const aSeesC = next(a, 'new-user-joined');
  joined(await request(c, 'join-room', roomId), roomId);
  await aSeesC;
  assert.deepEqual(leaves, [bPeer]);
});

test('cluster: a node started while Redis is down serves once Redis comes up', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  await redis.kill();
  const A = await startServer({ REDIS_URL: redis.url, ...FAST });
  t.after(() => A.stop('SIGKILL'));
  assert.equal(await status(A, '/healthz'), 200);
  assert.equal(await status(A, '/readyz'), 503);

  await redis.restart();
  const [B] = await startNodes(t, 1, redis);
  await until(async () => (await status(A, '/readyz')) === 200, 'A ready');
  const a = await connected(t, A);
  const b = await connected(t, B);
  await meshOf(a, b);
});

test('cluster: a relay published while the target\'s node has lost Redis reaches it once that node is back', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  // B reaches Redis through a proxy, so that only B loses it.
  const ports = [redis.port];
  const proxy = await startProxy(ports);
  t.after(() => proxy.close());
  const [A] = await startNodes(t, 1, redis);
  const [B] = await startNodes(t, 1, { url: `redis://127.0.0.1:${proxy.port}` });
  const a = await connected(t, A);
  const b = await connected(t, B);
  const { aPeer, peers: [bPeer] } = await meshOf(a, b);
  const got = [];
  b.on('rtc-offer', (...args) => got.push(args));

  ports.length = 0;
  proxy.cut();
  await until(async () => (await status(B, '/readyz')) === 503, 'B has lost Redis');
  // A still has Redis: the relay is accepted while B cannot hear it.
  assert.deepEqual(await request(a, 'rtc-offer', bPeer, { type: 'offer', sdp: 'while away' }), { ok: true });
  ports.push(redis.port);
  await until(() => got.length > 0, 'b got the offer', 10_000);
  // Once, and in order before what follows.
  assert.deepEqual(await request(a, 'rtc-offer', bPeer, { type: 'offer', sdp: 'after' }), { ok: true });
  await until(() => got.length > 1, 'b got the second offer');
  assert.deepEqual(got, [
    [aPeer, { type: 'offer', sdp: 'while away' }],
    [aPeer, { type: 'offer', sdp: 'after' }],
  ]);
});

for (const ran of [false, true]) {
  const how = ran ? 'ran but its reply was lost' : 'never reached Redis';
  test(`cluster: a leave announcement whose publish ${how} is told once, by the heartbeat`, async (t) => {
    const { proxy, A, B } = await proxiedPair(t);
    const a = await connected(t, A);
    const x = await connected(t, A);
    const b = await connected(t, B);
    const { roomId, peers: [xPeer] } = await meshOf(a, x, b);
    const heard = { a: [], b: [] };
    a.on('user-disconnected', (peer) => heard.a.push(peer));
    b.on('user-disconnected', (peer) => heard.b.push(peer));

    // x's leave is written to Redis; the publish of its announcement then fails.
    const sprung = proxy.trap('user-disconnected', { ran });
    x.disconnect();
    await sprung;
    await until(() => heard.a.length > 0 && heard.b.length > 0, 'a (same node) and b (other node) told', 10_000);
    // A newcomer through A: b hears of it through Redis after anything A published about x.
    const c = await connected(t, A);
    const seen = [next(a, 'new-user-joined'), next(b, 'new-user-joined')];
    joined(await request(c, 'join-room', roomId), roomId);
    await Promise.all(seen);
    assert.deepEqual(heard, { a: [xPeer], b: [xPeer] });
  });
}

test('cluster: a sweep whose reply was lost still has the dead node\'s leaves told, once', async (t) => {
  const { redis, proxy, A, B } = await proxiedPair(t);
  const a = await connected(t, A);
  const b = await connected(t, B);
  const { peers: [bPeer] } = await meshOf(a, b);
  const leaves = [];
  a.on('user-disconnected', (peer) => leaves.push(peer));

  // B's node holds b in the set that the sweep empties.
  const bKeys = [];
  for (const key of (await redis.cli('--scan', '--pattern', 'meshchat:node:*:peers')).split('\n')) {
    if ((await redis.cli('SMEMBERS', key)).split('\n').includes(bPeer)) bKeys.push(key);
  }
  assert.equal(bKeys.length, 1);
  await B.stop('SIGKILL');
  // Every beat of A's runs in Redis and has its reply lost (the heartbeat alone sends
  // 60000, the time a swept mark is kept), until one of them has swept B.
  while ((await redis.cli('EXISTS', bKeys[0])) === '1') {
    await proxy.trap('$5\r\n60000\r\n', { ran: true });
  }
  await until(() => leaves.length > 0, "b's leave told", DEAD_NODE_MS);
  // Once A has said it told the leave, nothing hands it out again.
  await until(async () => (await redis.cli('--scan', '--pattern', 'meshchat:sweeping:*')) === '', 'A said it told it');
  assert.deepEqual(leaves, [bPeer]);
});

for (const ran of [false, true]) {
  const how = ran ? 'ran but its reply was lost' : 'never reached Redis';
  test(`cluster: a join whose script ${how} still joins, and is announced once`, async (t) => {
    const { proxy, A, B } = await proxiedPair(t);
    const a = await connected(t, B);
    a.emit('create-room');
    const [roomId] = await next(a, 'room-created');
    const joins = [];
    a.on('new-user-joined', (peer) => joins.push(peer));

    // x's join through A: the join script names the room's kept mark, nothing else A sends.
    const x = await connected(t, A);
    const sprung = proxy.trap(`kept:${roomId}`, { ran });
    const answer = request(x, 'join-room', roomId);
    await sprung;
    const xPeer = joined(await answer, roomId);
    await until(() => joins.length > 0, 'a told of x', 10_000);
    // A newcomer through B is announced after anything A sent about x.
    const y = await connected(t, B);
    const yPeer = joined(await request(y, 'join-room', roomId), roomId);
    await until(() => joins.includes(yPeer), 'a told of y', 10_000);
    assert.deepEqual(joins, [xPeer, yPeer]);
  });
}

test('cluster: Redis paused past the nodes\' TTL: every leave is told, and none twice', { timeout: 120_000 }, async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  // Every node's heartbeat key expires during the pause, so the first beat after it sweeps
  // the other nodes, while leaves made during the pause are retried by their own nodes.
  const nodes = await startNodes(t, 3, redis, { NODE_HEARTBEAT_MS: '500', NODE_TTL_MS: '2500', REDIS_TIMEOUT_MS: '1000' });
  const rooms = [];
  let k = 0;
  for (let r = 0; r < 12; r += 1) {
    const room = [];
    for (let i = 0; i < 3; i += 1) {
      const socket = await connected(t, nodes[(k += 1) % 3]);
      const m = { socket, heard: new Map(), id: null, gone: false };
      socket.on('user-disconnected', (id) => m.heard.set(id, (m.heard.get(id) ?? 0) + 1));
      socket.on('disconnect', () => { m.gone = true; });
      room.push(m);
    }
    const created = await request(room[0].socket, 'create-room');
    room[0].id = created.peerId;
    for (const m of room.slice(1)) m.id = joined(await request(m.socket, 'join-room', created.roomId), created.roomId);
    rooms.push(room);
  }
  const leavers = [];
  const leave = (m) => { m.socket.disconnect(); leavers.push(m); };
  redis.signal('SIGSTOP');
  t.after(() => redis.signal('SIGCONT'));
  // Redis is away until every node's key has expired (each leave waits out its timeout).
  const stopped = Date.now();
  for (const room of rooms.slice(0, 6)) leave(room[0]);
  await until(() => Date.now() - stopped > 3_200, 'the keys expired', 10_000);
  redis.signal('SIGCONT');
  for (const room of rooms.slice(6)) leave(room[1]);

  // Every member still connected hears of every roommate that is gone, and then the
  // sweeper has said it told its sweep.
  const pending = () => rooms.flatMap((room) => room.filter((m) => !m.gone).flatMap((m) =>
    room.filter((o) => o !== m && (o.gone || leavers.includes(o)) && !m.heard.has(o.id))));
  await until(() => pending().length === 0, 'every leave heard', 20_000);
  await until(async () => (await redis.cli('--scan', '--pattern', 'meshchat:sweeping:*')) === '', 'sweeps told');
  // Each node is ready again only after a beat that went through, and with it the leaves
  // it had to tell again.
  for (const node of nodes) await until(async () => (await status(node, '/readyz')) === 200, `${node.url} ready`);
  const doubles = rooms.flatMap((room) => room.flatMap((m) => [...m.heard].filter(([, n]) => n > 1)));
  assert.deepEqual(doubles, []);
});
