// Resume across nodes: a client whose node dies (or drains) presents its token to another
// node and gets its peer id and room back, and the other members hear nothing of it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { client, joined, next, request } from '../helpers/client.mjs';
import { DEAD_NODE_MS, startRedis, startNodes } from '../helpers/cluster.mjs';

/** A websocket client of `node`, closed when `t` ends; `auth` goes in its CONNECT. */
async function open(t, node, auth) {
  const socket = client(node, { transports: ['websocket'], ...(auth ? { auth } : {}) });
  t.after(() => socket.close());
  return socket;
}

/** Records every `user-disconnected` and `new-user-joined` that `socket` hears. */
function watch(socket) {
  const heard = [];
  socket.on('user-disconnected', (peer) => heard.push(['user-disconnected', peer]));
  socket.on('new-user-joined', (peer) => heard.push(['new-user-joined', peer]));
  return heard;
}

test('cluster: a client whose node is SIGKILLed resumes on another node; the room hears nothing', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B] = await startNodes(t, 2, redis);
  const a = await open(t, A);
  await next(a, 'connect');
  const ack = await request(a, 'create-room');
  assert.equal(ack.created, true);
  const { roomId, peerId: aPeer, resume: token } = ack;
  assert.match(token, /^[A-Za-z0-9_-]+$/);
  const b = await open(t, B);
  await next(b, 'connect');
  const bPeer = joined(await request(b, 'join-room', roomId), roomId);
  const heard = watch(b);

  await A.stop('SIGKILL');
  const back = await open(t, B, { resume: token });
  const [resumed] = await next(back, 'resumed');
  assert.equal(resumed.peerId, aPeer);
  assert.deepEqual(resumed.rooms, [roomId]);
  assert.match(resumed.resume, /^[A-Za-z0-9_-]+$/);

  // Past the time the survivors sweep the dead node: the resumed peer is not in its
  // sweep, and is recorded as a member still.
  await new Promise((resolve) => setTimeout(resolve, DEAD_NODE_MS));
  assert.deepEqual(heard, []);
  assert.equal(await redis.cli('SISMEMBER', `meshchat:room:${roomId}`, aPeer), '1');

  // Relays both ways under the old ids.
  const gets = next(back, 'rtc-offer');
  assert.deepEqual(await request(b, 'rtc-offer', aPeer, { type: 'offer', sdp: 'to a' }), { ok: true });
  assert.deepEqual(await gets, [bPeer, { type: 'offer', sdp: 'to a' }]);
  const answers = next(b, 'rtc-answer');
  back.emit('rtc-answer', bPeer, { type: 'answer', sdp: 'to b' });
  assert.deepEqual(await answers, [aPeer, { type: 'answer', sdp: 'to b' }]);

  // Its leave, when it does leave, is told once.
  const left = next(b, 'user-disconnected');
  back.close();
  assert.deepEqual(await left, [aPeer]);
  assert.deepEqual(heard, [['user-disconnected', aPeer]]);
});

test('cluster: a client handed over by a draining node resumes on another; the room hears nothing', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B] = await startNodes(t, 2, redis, { SHUTDOWN_TIMEOUT_SECS: '4' });
  const a = await open(t, A);
  await next(a, 'connect');
  const { roomId, peerId: aPeer, resume: token } = await request(a, 'create-room');
  const b = await open(t, B);
  await next(b, 'connect');
  const bPeer = joined(await request(b, 'join-room', roomId), roomId);
  const heard = watch(b);

  const dropped = next(a, 'disconnect');
  A.child.kill('SIGTERM');
  const [reason] = await dropped;
  assert.equal(reason, 'transport close');
  const back = await open(t, B, { resume: token });
  const [resumed] = await next(back, 'resumed');
  assert.equal(resumed.peerId, aPeer);
  await A.exited;

  await new Promise((resolve) => setTimeout(resolve, DEAD_NODE_MS));
  assert.deepEqual(heard, []);
  const gets = next(back, 'rtc-offer');
  b.emit('rtc-offer', aPeer, { type: 'offer', sdp: 'after the drain' });
  assert.deepEqual(await gets, [bPeer, { type: 'offer', sdp: 'after the drain' }]);
});

test('cluster: a token whose peer is connected to another node is refused', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B] = await startNodes(t, 2, redis);
  const a = await open(t, A);
  await next(a, 'connect');
  const { resume: token } = await request(a, 'create-room');
  const thief = await open(t, B, { resume: token });
  const [refused] = await next(thief, 'resume-refused');
  assert.equal(refused.reason, 'resume_in_use');
  assert.ok(a.connected);
});
