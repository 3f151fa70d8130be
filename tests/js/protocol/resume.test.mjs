// Resume with the official socket.io-client reconnecting by itself, as the page does: the
// token goes in an `auth` callback, read again on every reconnect.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { connected, joined, next, request } from '../helpers/client.mjs';
import { startServer } from '../helpers/server.mjs';

for (const transports of [['websocket'], ['polling']]) {
  test(`${transports[0]}: a client whose transport drops reconnects by itself and resumes unnoticed`, async (t) => {
    const server = await startServer();
    t.after(() => server.stop());
    let token = null;
    const a = io(server.url, {
      forceNew: true,
      transports,
      reconnectionDelay: 100,
      auth: (cb) => cb(token ? { resume: token } : {}),
    });
    t.after(() => a.close());
    await next(a, 'connect');
    const ack = await request(a, 'create-room');
    token = ack.resume;
    const b = await connected(t, server);
    joined(await request(b, 'join-room', ack.roomId), ack.roomId);
    const heard = [];
    b.on('user-disconnected', (peer) => heard.push(['user-disconnected', peer]));
    b.on('new-user-joined', (peer) => heard.push(['new-user-joined', peer]));

    const resumed = next(a, 'resumed');
    a.io.engine.close(); // the transport is gone; the client reconnects by itself
    const [body] = await resumed;
    assert.deepEqual({ peerId: body.peerId, rooms: body.rooms }, { peerId: ack.peerId, rooms: [ack.roomId] });
    token = body.resume;

    const gets = next(a, 'rtc-offer');
    b.emit('rtc-offer', ack.peerId, { type: 'offer', sdp: 'after' });
    const [from] = await gets;
    const answered = next(b, 'rtc-answer');
    a.emit('rtc-answer', from, { type: 'answer', sdp: 'after' });
    assert.deepEqual(await answered, [ack.peerId, { type: 'answer', sdp: 'after' }]);
    // Past the grace window (5 s by default) nothing was told either.
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    assert.deepEqual(heard, []);

    // A goodbye is told at once.
    const left = next(b, 'user-disconnected', 2_000);
    a.close();
    assert.deepEqual(await left, [ack.peerId]);
  });
}
