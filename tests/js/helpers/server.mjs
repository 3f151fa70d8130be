// Starts the real meshchat binary on an ephemeral loopback port for a test, stops it, and
// waits for states of it that no event reports.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BINARY = process.env.MESHCHAT_BIN ?? path.join(REPO, 'target', 'debug', 'meshchat');

/**
 * Spawns the server (`binary`, by default the debug build) with `env` added to the
 * defaults (port 0, loopback, JSON logs) and resolves once it logs its address.
 * Returns { url, port, logs, stop() }; `logs` collects every parsed log line.
 */
export async function startServer(env = {}, binary = BINARY) {
  const child = spawn(binary, [], {
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      PORT: '0',
      // Servers run side by side in a test, and port 3478 may be taken on the machine:
      // the built-in STUN server is off unless a test gives it a port.
      STUN_PORT: '0',
      LOG_FORMAT: 'json',
      RUST_LOG: process.env.RUST_LOG ?? 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const logs = [];
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const lines = createInterface({ input: child.stdout });
  const addr = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('server did not log "listening" within 20 s')), 20_000);
    exited.then(({ code }) => reject(new Error(`server exited early with code ${code}`)));
    lines.on('line', (line) => {
      let entry;
      try {
        entry = JSON.parse(line);
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.message === 'listening') {
        clearTimeout(timer);
        resolve(entry.addr);
      }
    });
  });
  const port = Number(addr.split(':').pop());
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    logs,
    child,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** HTTP status of `path` on `server`, or 0 when the server does not answer. */
export async function status(server, path) {
  try {
    const res = await fetch(server.url + path, { signal: AbortSignal.timeout(2_000) });
    return res.status;
  } catch {
    return 0;
  }
}

/** Polls `check` every 50 ms until it is true; fails after `ms`. For states no event reports. */
export async function until(check, what, ms = 15_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A UDP port free on loopback a moment ago, for a server's STUN/TURN port. */
export async function freeUdpPort() {
  const socket = dgram.createSocket('udp4');
  await new Promise((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise((resolve) => socket.close(resolve));
  return port;
}
