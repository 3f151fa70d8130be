// The ICE servers the page gets from GET /api/rtc-config, with and without TURN
// credentials, and a bad ICE_SERVERS refused at startup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { BINARY, startServer } from '../helpers/server.mjs';

test('GET /api/rtc-config returns the ICE_SERVERS list and the policy, uncached', async (t) => {
  const iceServers = [{ urls: 'stun:stun.l.google.com:19302' }];
  const server = await startServer({ ICE_SERVERS: JSON.stringify(iceServers) });
  t.after(() => server.stop());
  const res = await fetch(`${server.url}/api/rtc-config`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.deepEqual(await res.json(), { iceServers, iceTransportPolicy: 'all' });
});

test('with TURN_SECRET every GET /api/rtc-config carries fresh TURN credentials', async (t) => {
  const server = await startServer({
    ICE_SERVERS: '[{"urls":"stun:stun.example.com:3478"}]',
    TURN_SECRET: 's3cret',
    TURN_URLS: 'turn:turn.example.com:3478',
    ICE_TRANSPORT_POLICY: 'relay',
  });
  t.after(() => server.stop());
  const get = async () => (await fetch(`${server.url}/api/rtc-config`)).json();
  const [a, b] = [await get(), await get()];
  assert.equal(a.iceTransportPolicy, 'relay');
  assert.deepEqual(a.iceServers[0], { urls: 'stun:stun.example.com:3478' });
  const turn = a.iceServers[1];
  assert.deepEqual(turn.urls, ['turn:turn.example.com:3478']);
  assert.equal(turn.credential, createHmac('sha1', 's3cret').update(turn.username).digest('base64'));
  assert.notEqual(turn.username, b.iceServers[1].username, 'each page its own credentials');
});

test('a bad ICE_SERVERS stops the server at startup with a message that says why', async () => {
  const child = spawn(BINARY, [], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ICE_SERVERS: '[{"urls":"turn:turn.example.com"}]' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const code = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill(); reject(new Error('server did not exit within 10 s')); }, 10_000);
    child.once('exit', (c) => { clearTimeout(timer); resolve(c); });
  });
  assert.equal(code, 2);
  assert.match(stderr, /ICE_SERVERS|ice-servers/);
  assert.match(stderr, /a TURN server needs `username` and `credential`/);
});
