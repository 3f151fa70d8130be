// Helpers for the cluster tests: a real redis-server on a free loopback port (or a Redis
// Cluster of six) and several meshchat nodes pointed at it (clients: client.mjs).
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { joined, next, request } from './client.mjs';
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

/** Spawns redis-server on `port` without persistence, with `extra` arguments; resolves once
 * it accepts connections. */
function spawnRedis(port, extra = []) {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extra],
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
 * With MESHCHAT_TEST_REDIS_CLUSTER=1 in the environment, a Redis Cluster of six instead
 * (see `redisClusterAsOne`), so that tests written for one server run against a cluster.
 */
export async function startRedis() {
  if (process.env.MESHCHAT_TEST_REDIS_CLUSTER) return redisClusterAsOne();
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

/** Runs redis-cli with `args` against `port`; resolves with its trimmed output. */
function cli(port, ...args) {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-p', String(port), ...args], { timeout: 10_000 }, (error, stdout) =>
      error ? reject(error) : resolve(stdout.trim()),
    );
  });
}

/**
 * Starts a Redis Cluster of six redis-servers (three masters, three replicas, made by
 * `redis-cli --cluster create`) on free loopback ports, in temporary directories, and waits
 * until every node reports `cluster_state:ok` and every replica is in sync. Every server is
 * killed, and the directories removed, when the test `t` ends. Returns { url (every node,
 * comma-separated), ports, cli(port, ...args), masterOf(key), replicaOf(port), kill(port),
 * waitOk() }.
 */
export async function startRedisCluster(t) {
  const cluster = await launchRedisCluster();
  t.after(() => cluster.stop());
  return cluster;
}

/** A Redis Cluster in the guise of startRedis()'s one server, for the tests written for
 * one: nodes get REDIS_CLUSTER=true (`env`), and `cli` runs a command on the master of its
 * key, with `meshchat:` in its arguments put under the cluster layout's `meshchat:{m}:`.
 * Killing or restarting it is not offered; `cluster` is what startRedisCluster() gives. */
async function redisClusterAsOne() {
  const cluster = await launchRedisCluster();
  const layout = (arg) => (arg.startsWith('meshchat:') && !arg.startsWith('meshchat:inbox:') ? arg.replace('meshchat:', 'meshchat:{m}:') : arg);
  return {
    url: cluster.url,
    env: { REDIS_CLUSTER: 'true' },
    cli: (...args) => cluster.cli(cluster.ports[0], '-c', ...args.map(layout)),
    stop: () => cluster.stop(),
    cluster,
    async kill() {
      throw new Error('not offered with MESHCHAT_TEST_REDIS_CLUSTER');
    },
    async restart() {
      throw new Error('not offered with MESHCHAT_TEST_REDIS_CLUSTER');
    },
  };
}

/** Starts the six servers of startRedisCluster(); the caller stops them (`stop()`). */
async function launchRedisCluster() {
  const dir = await mkdtemp(path.join(tmpdir(), 'meshchat-rcluster-'));
  const procs = new Map();
  const stop = async () => {
    for (const proc of procs.values()) {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
      await proc.exited.catch(() => {});
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    return await createRedisCluster(dir, procs, stop);
  } catch (error) {
    await stop();
    throw error;
  }
}

async function createRedisCluster(dir, procs, stop) {
  const ports = [];
  for (let i = 0; i < 6; i += 1) {
    const port = await freePort();
    ports.push(port);
    procs.set(port, spawnRedis(port, [
      '--cluster-enabled', 'yes',
      '--cluster-config-file', path.join(dir, `nodes-${port}.conf`),
      '--cluster-node-timeout', '1000',
      '--dir', dir,
    ]));
  }
  await Promise.all([...procs.values()].map((p) => p.ready));
  await new Promise((resolve, reject) => {
    execFile(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'],
      { timeout: 60_000 },
      (error, stdout) => (error ? reject(new Error(`${error.message}\n${stdout}`)) : resolve()),
    );
  });
  const alive = () => ports.filter((p) => procs.get(p).child.exitCode === null && procs.get(p).child.signalCode === null);
  const cluster = {
    url: ports.map((p) => `redis://127.0.0.1:${p}`).join(','),
    ports,
    cli,
    stop,
    /** The port of the master that owns `key`'s slot, as the cluster says now. */
    async masterOf(key) {
      const [port] = alive();
      const slot = Number(await cli(port, 'CLUSTER', 'KEYSLOT', key));
      // CLUSTER NODES: id ip:port@cport flags master ping pong epoch state slot-ranges...
      for (const line of (await cli(port, 'CLUSTER', 'NODES')).split('\n')) {
        const [, addr, flags, , , , , state, ...ranges] = line.split(' ');
        if (!flags.split(',').includes('master') || flags.includes('fail') || state !== 'connected') continue;
        for (const range of ranges) {
          const [from, to = from] = range.split('-').map(Number);
          if (from <= slot && slot <= to) return Number(addr.split('@')[0].split(':').pop());
        }
      }
      throw new Error(`no master owns slot ${slot}`);
    },
    /** The port of a replica of the master on `port`. */
    async replicaOf(port) {
      const id = await cli(port, 'CLUSTER', 'MYID');
      const [line] = (await cli(port, 'CLUSTER', 'REPLICAS', id)).split('\n');
      return Number(line.split(' ')[1].split('@')[0].split(':').pop());
    },
    /** Kills the server on `port` with SIGKILL. */
    async kill(port) {
      const proc = procs.get(port);
      proc.child.kill('SIGKILL');
      await proc.exited;
    },
    /** Waits until every live node says the cluster is ok and every replica is in sync. */
    async waitOk(what = 'redis cluster ok', ms = 30_000) {
      await until(async () => {
        for (const port of alive()) {
          if (!(await cli(port, 'CLUSTER', 'INFO')).includes('cluster_state:ok')) return false;
          const replication = await cli(port, 'INFO', 'replication');
          if (replication.includes('role:slave') && !replication.includes('master_link_status:up')) return false;
        }
        return true;
      }, what, ms);
    },
  };
  await cluster.waitOk('redis cluster created');
  return cluster;
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
    const node = await startServer({ REDIS_URL: redis.url, ...FAST, ...redis.env, ...env });
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

/**
 * Puts client `a` in a new room and `others` in it, on whatever nodes they are on; returns
 * the room, a's peer id (learnt from a first relay, which others[0] receives) and the
 * others' peer ids.
 */
export async function meshOf(a, ...others) {
  a.emit('create-room');
  const [roomId] = await next(a, 'room-created');
  const peers = [];
  for (const o of others) {
    const seen = next(a, 'new-user-joined');
    joined(await request(o, 'join-room', roomId), roomId);
    const [peer] = await seen;
    peers.push(peer);
  }
  const got = next(others[0], 'rtc-offer');
  a.emit('rtc-offer', peers[0], { type: 'offer', sdp: 'hello' });
  const [aPeer] = await got;
  return { roomId, aPeer, peers };
}
