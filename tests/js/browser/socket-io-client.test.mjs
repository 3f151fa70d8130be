// The Socket.IO browser client the page loads (no Chromium needed): the vendored copy is
// the pinned npm package's build, byte for byte, served where Node's Socket.IO server
// serves it without breaking Engine.IO.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { connect, next } from '../helpers/client.mjs';
import { REPO, startServer } from '../helpers/server.mjs';

const vendor = path.join(REPO, 'public', 'vendor');
const require = createRequire(import.meta.url);
const pkgDir = path.dirname(require.resolve('socket.io-client/package.json'));
const FILES = ['socket.io.js', 'socket.io.min.js', 'socket.io.esm.min.js'];

test('public/vendor holds the pinned socket.io-client build and its licence', async () => {
  const pinned = JSON.parse(await readFile(path.join(REPO, 'tests', 'js', 'package.json'), 'utf8'))
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
