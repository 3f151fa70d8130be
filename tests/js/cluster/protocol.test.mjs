// Every protocol row with clients spread over three nodes joined through a real Redis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, joined, next, request } from '../helpers/client.mjs';
import { startRedis, startNodes } from '../helpers/cluster.mjs';
import { until } from '../helpers/server.mjs';

test('cluster: create on A, join on B and C, relay across nodes, leave across nodes', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B, C] = await startNodes(t, 3, redis);
  const a = await connected(t, A, ['polling']);
  const b = await connected(t, B, ['websocket']);
  const c = await connected(t, C);

  a.emit('create-room');
  const [roomId] = await next(a, 'room-created');
  assert.match(roomId, /^[A-Za-z0-9_-]{10}$/);

  // join-room on B finds the room, whose only member is on A.
  const aSeesB = next(a, 'new-user-joined');
  const bJoin = await request(b, 'join-room', roomId);
  joined(bJoin, roomId);
  const [bPeer] = await aSeesB;

  const aSeesC = next(a, 'new-user-joined');
  const bSeesC = next(b, 'new-user-joined');
  joined(await request(c, 'join-room', roomId), roomId);
  const [cPeer] = await aSeesC;
  assert.deepEqual(await bSeesC, [cPeer]);

  // rtc-offer A -> B, rtc-answer B -> A, ice-candidate both ways, A -> C.
  const offer = { type: 'offer', sdp: 'v=0\r\n'.repeat(50) };
  const bGetsOffer = next(b, 'rtc-offer');
  assert.deepEqual(await request(a, 'rtc-offer', bPeer, offer), { ok: true });
  const [aPeer, gotOffer] = await bGetsOffer;
  assert.deepEqual(gotOffer, offer);

  const aGetsAnswer = next(a, 'rtc-answer');
  b.emit('rtc-answer', aPeer, { type: 'answer', sdp: 'x' });
  assert.deepEqual(await aGetsAnswer, [bPeer, { type: 'answer', sdp: 'x' }]);

  const candidate = { candidate: 'candidate:1 1 udp 2122260223 10.0.0.1 5000 typ host', sdpMid: '0', sdpMLineIndex: 0 };
  const bGetsCandidate = next(b, 'ice-candidate');
  a.emit('ice-candidate', bPeer, candidate);
  assert.deepEqual(await bGetsCandidate, [aPeer, candidate]);
  const aGetsEnd = next(a, 'ice-candidate');
  b.emit('ice-candidate', aPeer, '');
  assert.deepEqual(await aGetsEnd, [bPeer, '']);

  const cGetsOffer = next(c, 'rtc-offer');
  a.emit('rtc-offer', cPeer, offer);
  assert.deepEqual(await cGetsOffer, [aPeer, offer]);

  // Order across nodes: a burst of candidates from A arrives at C in the order sent.
  const got = [];
  const all = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of 200 candidates`)), 10_000);
    c.on('ice-candidate', (from, cand) => {
      got.push(cand.sdpMLineIndex);
      if (got.length === 200) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  for (let i = 0; i < 200; i += 1) a.emit('ice-candidate', cPeer, { candidate: 'c', sdpMid: '0', sdpMLineIndex: i });
  await all;
  assert.deepEqual(got, [...Array(200).keys()]);

  // user-disconnected reaches members on the other nodes.
  const aSeesLeave = next(a, 'user-disconnected');
  const cSeesLeave = next(c, 'user-disconnected');
  b.close();
  assert.deepEqual(await aSeesLeave, [bPeer]);
  assert.deepEqual(await cSeesLeave, [bPeer]);
});

test('cluster: join-room of an unknown room on any node creates a new one', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B] = await startNodes(t, 2, redis);
  const a = await connected(t, A);
  const b = await connected(t, B);

  const ack = await request(b, 'join-room', 'nosuchroom');
  assert.equal(ack.created, true);
  assert.notEqual(ack.roomId, 'nosuchroom');

  // The room made on B is visible from A.
  const bSeesA = next(b, 'new-user-joined');
  joined(await request(a, 'join-room', ack.roomId), ack.roomId);
  await bSeesA;

  // Once its last member is gone the room no longer exists, on any node.
  const aSeesLeave = next(a, 'user-disconnected');
  b.close();
  await aSeesLeave;
  a.close();
  // No client is left to see it: wait until Redis itself has dropped the room.
  await until(async () => (await redis.cli('EXISTS', `meshchat:room:${ack.roomId}`)) === '0', 'room dropped');
  const c = await connected(t, B);
  const later = await request(c, 'join-room', ack.roomId);
  assert.equal(later.created, true, 'a room whose members all left is forgotten');
});

test('cluster: the same-room check holds across nodes', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B] = await startNodes(t, 2, redis);
  const a = await connected(t, A);
  const b = await connected(t, B);
  const x = await connected(t, B);

  a.emit('create-room');
  const [roomId] = await next(a, 'room-created');
  const aSeesB = next(a, 'new-user-joined');
  b.emit('join-room', roomId);
  const [bPeer] = await aSeesB;
  const bGetsOffer = next(b, 'rtc-offer');
  a.emit('rtc-offer', bPeer, { type: 'offer', sdp: 'a' });
  const [aPeer] = await bGetsOffer;

  // x, on B but in a room of its own, cannot signal a (on A) nor b (on its own node).
  x.emit('create-room');
  await next(x, 'room-created');
  for (const target of [aPeer, bPeer]) {
    for (const event of ['rtc-offer', 'rtc-answer', 'ice-candidate']) {
      const ack = await request(x, event, target, { type: 'offer', sdp: 'forged' });
      assert.deepEqual(ack, { error: 'that peer is not in any of your rooms', reason: 'not_in_your_rooms' }, `${event} to ${target}`);
    }
  }
  // Had a forged relay been delivered, it would have reached a before this one: the
  // refusals were acked before b sent it, and Redis keeps publish order.
  const aGets = next(a, 'rtc-offer');
  b.emit('rtc-offer', aPeer, { type: 'offer', sdp: 'real' });
  assert.deepEqual(await aGets, [bPeer, { type: 'offer', sdp: 'real' }]);
});

test('cluster: room capacity holds across nodes', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B, C] = await startNodes(t, 3, redis, { MAX_ROOM_SIZE: '2' });
  const a = await connected(t, A);
  const b = await connected(t, B);
  const c = await connected(t, C);

  a.emit('create-room');
  const [roomId] = await next(a, 'room-created');
  joined(await request(b, 'join-room', roomId), roomId);

  const full = next(c, 'room-full');
  assert.deepEqual(await request(c, 'join-room', roomId), { error: 'the room is full', reason: 'room_full' });
  assert.deepEqual(await full, [roomId]);

  // A seat freed on B can be taken from C.
  const aSeesLeave = next(a, 'user-disconnected');
  b.close();
  await aSeesLeave;
  const aSeesC = next(a, 'new-user-joined');
  joined(await request(c, 'join-room', roomId), roomId);
  await aSeesC;
});
