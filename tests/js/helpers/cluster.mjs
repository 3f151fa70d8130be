// Helpers for the cluster tests: a real redis-server on a free loopback port and several
// meshchat nodes pointed at it (clients: client.mjs).
import { execFile, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { startServer, status, until } from './server.mjs';

/** A port that was free a moment ago (redis-server takes a port number, not port 0). */
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Spawns redis-server on `port` without persistence; resolves once it accepts connections. */
function spawnRedis(port) {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('redis-server not ready within 10 s')), 10_000);
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve();
      }
    });
    exited.then(({ code }) => reject(new Error(`redis-server exited with ${code}: ${out}`)));
  });
  return { child, exited, ready };
}

/**
 * Starts redis-server. Returns { url, port, kill(), restart(), stop() }: `kill` ends it
 * with SIGKILL (its data is lost: no persistence), `restart` starts it again on the same port.
 */
export async function startRedis() {
  const port = await freePort();
  let proc = spawnRedis(port);
  await proc.ready;
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async kill() {
      proc.child.kill('SIGKILL');
      await proc.exited;
    },
    async restart() {
      proc = spawnRedis(port);
      await proc.ready;
    },
    /** Sends `signal` to redis-server (SIGSTOP/SIGCONT: pause and resume it). */
    signal(signal) {
      proc.child.kill(signal);
    },
    get pid() {
      return proc.child.pid;
    },
    /** Runs one command with redis-cli and resolves with its trimmed output. */
    cli(...args) {
      return new Promise((resolve, reject) => {
        execFile('redis-cli', ['-p', String(port), ...args], { timeout: 5_000 }, (error, stdout) =>
          error ? reject(error) : resolve(stdout.trim()),
        );
      });
    },
    async stop() {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
      await proc.exited;
    },
  };
}

/** Test timings: fast heartbeats so that node death is noticed quickly. */
export const FAST = { NODE_HEARTBEAT_MS: '200', NODE_TTL_MS: '1000', REDIS_TIMEOUT_MS: '500' };

/** Longest wait for a dead node's members to be announced as gone, with FAST timings: one
 * TTL plus one heartbeat interval, with room for a slow machine. */
export const DEAD_NODE_MS = Number(FAST.NODE_TTL_MS) + Number(FAST.NODE_HEARTBEAT_MS) + 3_000;

/** Starts `n` nodes pointed at `redis`, and waits until each reports ready. */
export async function startNodes(t, n, redis, env = {}) {
  const nodes = [];
  for (let i = 0; i < n; i += 1) {
    const node = await startServer({ REDIS_URL: redis.url, ...FAST, ...env });
    t.after(async () => {
      await node.stop('SIGKILL');
      // CLUSTER_LOGS=1 prints each node's log, to see what happened in a failing test.
      if (process.env.CLUSTER_LOGS) {
        for (const l of node.logs) console.error(`[node ${i}] ${JSON.stringify(l)}`);
      }
    });
    nodes.push(node);
  }
  for (const node of nodes) await until(async () => (await status(node, '/readyz')) === 200, `${node.url} ready`);
  return nodes;
}
