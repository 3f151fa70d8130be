// The web client's server side: the vendored Socket.IO browser client is the pinned npm
// package's build, byte for byte, served where Node's Socket.IO server serves it without
// breaking Engine.IO; and the ICE servers the page gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, next } from './helpers/client.mjs';
import { BINARY, startServer } from './helpers/server.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const vendor = path.join(here, '..', '..', 'public', 'vendor');
const require = createRequire(import.meta.url);
const pkgDir = path.dirname(require.resolve('socket.io-client/package.json'));
const FILES = ['socket.io.js', 'socket.io.min.js', 'socket.io.esm.min.js'];

test('public/vendor holds the pinned socket.io-client build and its licence', async () => {
  const pinned = JSON.parse(await readFile(path.join(here, 'package.json'), 'utf8'))
    .devDependencies['socket.io-client'];
  const installed = JSON.parse(await readFile(path.join(pkgDir, 'package.json'), 'utf8')).version;
  assert.equal(installed, pinned, 'npm ci installs the pinned version');
  assert.equal(
    (await readFile(path.join(vendor, 'socket.io-client.VERSION'), 'utf8')).trim(),
    `socket.io-client ${pinned}`,
  );
  for (const file of FILES) {
    const ours = await readFile(path.join(vendor, file));
    const theirs = await readFile(path.join(pkgDir, 'dist', file));
    assert.ok(ours.equals(theirs), `${file} differs from the npm package: run scripts/vendor-socket-io.sh`);
  }
  assert.ok(
    (await readFile(path.join(vendor, 'socket.io-client.LICENSE'))).equals(
      await readFile(path.join(pkgDir, 'LICENSE')),
    ),
  );
});

test('the server serves the client at /socket.io/ and Engine.IO still works there', async (t) => {
  const server = await startServer();
  t.after(() => server.stop());
  for (const file of FILES) {
    const res = await fetch(`${server.url}/socket.io/${file}`);
    assert.equal(res.status, 200, file);
    assert.match(res.headers.get('content-type'), /javascript/);
    const body = Buffer.from(await res.arrayBuffer());
    assert.ok(body.equals(await readFile(path.join(vendor, file))), file);
  }
  assert.equal((await fetch(`${server.url}/socket.io/other.js`)).status, 400, 'Engine.IO answers other paths');

  const socket = connect(t, server, ['polling']);
  const created = next(socket, 'room-created');
  socket.emit('create-room');
  const [roomId] = await created;
  assert.match(roomId, /^[A-Za-z0-9_-]{10}$/);
});

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
  const { createHmac } = await import('node:crypto');
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
  const { spawn } = await import('node:child_process');
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
