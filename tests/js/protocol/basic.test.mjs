// The core rows of the protocol with the official socket.io-client, on each transport mode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, joined, next, request } from '../helpers/client.mjs';
import { startServer } from '../helpers/server.mjs';

/** The transports of each mode; `null` is the client's default: polling, then the upgrade. */
const MODES = {
  polling: ['polling'],
  websocket: ['websocket'],
  upgrade: null,
};

for (const mode of Object.keys(MODES)) {
  test(`${mode}: create, join, relay both ways and leave`, async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const a = connect(t, server, MODES[mode]);
    const b = connect(t, server, MODES[mode]);

    a.emit('create-room');
    const [roomId] = await next(a, 'room-created');
    assert.match(roomId, /^[A-Za-z0-9_-]{10}$/);

    const joined = next(a, 'new-user-joined');
    b.emit('join-room', roomId);
    const [bPeer] = await joined;
    assert.notEqual(bPeer, b.id, 'announced ids are not socket ids');

    const offer = { type: 'offer', sdp: 'v=0\r\n'.repeat(100) };
    const gotOffer = next(b, 'rtc-offer');
    a.emit('rtc-offer', bPeer, offer);
    const [aPeer, relayed] = await gotOffer;
    assert.deepEqual(relayed, offer);
    assert.notEqual(aPeer, a.id);

    const gotAnswer = next(a, 'rtc-answer');
    b.emit('rtc-answer', aPeer, { type: 'answer', sdp: 'x' });
    assert.deepEqual(await gotAnswer, [bPeer, { type: 'answer', sdp: 'x' }]);

    const gotEnd = next(a, 'ice-candidate');
    b.emit('ice-candidate', aPeer, '');
    assert.deepEqual(await gotEnd, [bPeer, '']);

    const left = next(a, 'user-disconnected');
    b.disconnect();
    assert.deepEqual(await left, [bPeer]);
  });

  test(`${mode}: a stale room id gets a new room`, async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const a = connect(t, server, MODES[mode]);
    a.emit('join-room', 'no-such-room');
    const [roomId] = await next(a, 'room-created');
    assert.notEqual(roomId, 'no-such-room');
    assert.match(roomId, /^[A-Za-z0-9_-]{10}$/);
  });
}

for (const mode of Object.keys(MODES)) {
  test(`${mode}: the joiner hears nothing of itself and outsiders cannot signal in`, async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    const a = connect(t, server, MODES[mode]);
    const b = connect(t, server, MODES[mode]);
    const outsider = connect(t, server, MODES[mode]);
    const seenByB = [];
    b.onAny((event, ...args) => seenByB.push([event, ...args]));

    a.emit('create-room');
    const [roomId] = await next(a, 'room-created');
    const joined = next(a, 'new-user-joined');
    b.emit('join-room', roomId);
    const [bPeer] = await joined;
    outsider.emit('create-room');
    await next(outsider, 'room-created');

    // The outsider knows b's peer id but shares no room with it: refused, not delivered.
    const refusal = await request(outsider, 'rtc-offer', bPeer, { type: 'offer', sdp: 'x' });
    assert.match(refusal.error, /room/);
    const unknown = await request(outsider, 'ice-candidate', 'AAAAAAAAAAAAAAAA', '');
    assert.ok(unknown.error, 'signaling an unknown peer is refused');

    // b's first event is a's offer: no announcement of itself, nothing from the outsider.
    const offered = next(b, 'rtc-offer');
    a.emit('rtc-offer', bPeer, { type: 'offer', sdp: 'y' });
    const [from] = await offered;
    assert.deepEqual(seenByB, [['rtc-offer', from, { type: 'offer', sdp: 'y' }]]);
  });
}

test('clients on every transport outlive an HTTP idle timeout far shorter than the heartbeat', async (t) => {
  // The server closes connections idle for 300 ms; heartbeats come every second, so the
  // long-polling client's pongs keep finding their previous connection closed.
  const server = await startServer({ HTTP_IDLE_TIMEOUT_MS: '300', PING_INTERVAL_MS: '1000', PING_TIMEOUT_MS: '2000' });
  t.after(() => server.stop());
  const sockets = Object.values(MODES).map((transports) => connect(t, server, transports));
  const dropped = [];
  for (const s of sockets) s.on('disconnect', (reason) => dropped.push(reason));
  await Promise.all(sockets.map((s) => (s.connected ? null : next(s, 'connect'))));
  const [first, ...others] = sockets;
  first.emit('create-room');
  const [roomId] = await next(first, 'room-created');
  const ids = [];
  for (const s of others) {
    const heard = next(first, 'new-user-joined');
    const peerId = joined(await request(s, 'join-room', roomId), roomId);
    // The ack gives the joiner the id the others know it by.
    assert.equal((await heard)[0], peerId);
    ids.push(peerId);
  }
  // Three heartbeats on each, with idle gaps longer than the timeout between them.
  for (let beat = 0; beat < 3; beat += 1) {
    await Promise.all(sockets.map((s) => new Promise((resolve) => s.io.engine.once('ping', resolve))));
  }
  for (const [i, s] of others.entries()) {
    const got = next(s, 'rtc-offer');
    assert.deepEqual(await request(first, 'rtc-offer', ids[i], { type: 'offer', sdp: 'after idle' }), { ok: true });
    const [from, offer] = await got;
    assert.deepEqual(offer, { type: 'offer', sdp: 'after idle' });
    const back = next(first, 'rtc-answer');
    assert.deepEqual(await request(s, 'rtc-answer', from, { type: 'answer', sdp: 'back' }), { ok: true });
    assert.deepEqual((await back)[1], { type: 'answer', sdp: 'back' });
  }
  assert.deepEqual(dropped, []);
});
