// Rolling restarts: a node stopped with SIGTERM hands its clients over to the others and
// no room is lost; clients are the official socket.io-client, reconnecting by themselves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { io } from 'socket.io-client';
import { client, connected, joined, next, request } from '../helpers/client.mjs';
import { FAST, startRedis, startNodes } from '../helpers/cluster.mjs';
import { startProxy } from '../helpers/proxy.mjs';
import { startServer, status, until } from '../helpers/server.mjs';

const SHUTDOWN_TIMEOUT_SECS = 4;
/** The drain's spread with this timeout: half of it (server.rs). */
const SPREAD_MS = (SHUTDOWN_TIMEOUT_SECS * 1000) / 2;
// Resume off: these clients read acks (and so would get resume tokens) but reconnect as new
// peers, and the tests check that every leave is told during the drain, as for clients
// without tokens. Resuming through a drain: resume.test.mjs.
const ENV = { SHUTDOWN_TIMEOUT_SECS: String(SHUTDOWN_TIMEOUT_SECS), RESUME_GRACE_MS: '0' };
/** What socket.io-client reconnects after by itself (not 'io server disconnect'). */
const RECONNECTABLE = ['transport close', 'transport error'];

/** Resolves with { code, signal, ms } once `node` exits after SIGTERM. */
async function terminate(node) {
  const started = Date.now();
  node.child.kill('SIGTERM');
  const exit = await node.exited;
  return { ...exit, ms: Date.now() - started };
}

test('cluster: a node stopped with SIGTERM drains: not ready at once, clients handed over one by one, rooms kept', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const [A, B] = await startNodes(t, 2, redis, ENV);
  const b = await connected(t, B);
  b.emit('create-room');
  const [roomId] = await next(b, 'room-created');
  // On A: one client per transport setup, all in b's room.
  const onA = [await connected(t, A), await connected(t, A, ['polling']), await connected(t, A, null)];
  const ids = [];
  for (const s of onA) {
    const heard = next(b, 'new-user-joined');
    joined(await request(s, 'join-room', roomId), roomId);
    [ids[ids.length]] = await heard;
  }
  // And a room that lives on A alone.
  const lone = await connected(t, A);
  lone.emit('create-room');
  const [loneRoom] = await next(lone, 'room-created');

  const leaves = [];
  b.on('user-disconnected', (peer) => leaves.push(peer));
  const gone = [...onA, lone].map((s) => next(s, 'disconnect', 10_000).then(([reason]) => ({ reason, at: Date.now() })));
  const exited = terminate(A);

  await until(async () => (await status(A, '/readyz')) === 503, 'A not ready', 1_000);
  const late = client(A, { transports: ['websocket'] });
  t.after(() => late.close());
  const [refusal] = await next(late, 'connect_error');
  assert.match(refusal.message, /websocket error/);

  const ends = await Promise.all(gone);
  for (const { reason } of ends) assert.ok(RECONNECTABLE.includes(reason), `reason ${reason}`);
  const times = ends.map((e) => e.at);
  assert.ok(Math.max(...times) - Math.min(...times) >= SPREAD_MS / 3, `spread over ${Math.max(...times) - Math.min(...times)} ms`);

  const { code, ms } = await exited;
  assert.equal(code, 0);
  assert.ok(ms < SHUTDOWN_TIMEOUT_SECS * 1000, `exited after ${ms} ms`);
  // Each member of A was announced once, before A exited.
  assert.deepEqual([...leaves].sort(), [...ids].sort());
  await until(async () => (await redis.cli('SCARD', `meshchat:room:${roomId}`)) === '1', 'only b left in the room');

  // The room whose members were all on A is found again through B, under its id.
  const back = await connected(t, B);
  joined(await request(back, 'join-room', loneRoom), loneRoom);
  assert.equal(leaves.length, ids.length, 'no leave announced twice');
});

/** A member of a room: a socket.io-client that reconnects by itself (through the proxy,
 * so to any node), rejoins its room, and sets up the mesh as the reference client does,
 * with names in the payloads. Records what each of its sessions heard. */
class Member {
  constructor(url, name, roomIndex) {
    this.name = name;
    this.roomIndex = roomIndex;
    this.roomId = null;
    this.sessions = [];
    this.crossRoom = [];
    this.lostRoom = [];
    this.reasons = [];
    this.socket = io(url, {
      forceNew: true,
      transports: ['websocket'],
      reconnectionDelay: 300,
      reconnectionDelayMax: 2_000,
    });
    const s = this.socket;
    s.on('connect', () => this.#onConnect());
    s.on('disconnect', (reason) => this.reasons.push(reason));
    s.on('new-user-joined', (peer) => {
      this.#log('join', peer);
      s.emit('rtc-offer', peer, { name: this.name, room: this.roomId });
    });
    s.on('rtc-offer', (from, payload) => {
      this.#heard(from, payload, 'offer');
      s.emit('rtc-answer', from, { name: this.name, room: this.roomId });
    });
    s.on('rtc-answer', (from, payload) => this.#heard(from, payload, 'answer'));
    s.on('user-disconnected', (peer) => this.#log('leave', peer));
  }

  get session() {
    return this.sessions.at(-1);
  }

  async #onConnect() {
    const session = { events: [], names: new Map(), entered: false };
    this.sessions.push(session);
    if (this.roomId === null) return; // the first session: the test puts it in a room
    const ack = await this.socket.timeout(10_000).emitWithAck('join-room', this.roomId).catch((e) => ({ error: e.message }));
    if (ack.roomId !== this.roomId || ack.created !== false) this.lostRoom.push(ack);
    session.entered = true;
  }

  #log(kind, peer) {
    this.session?.events.push([kind, peer]);
  }

  #heard(from, payload, kind) {
    if (payload?.room !== this.roomId) this.crossRoom.push({ from, payload });
    this.#log(kind, from);
    this.session?.names.set(from, payload?.name);
  }

  /** Peer ids the current session believes are in the room, by name. */
  present() {
    const session = this.session;
    const ids = new Set();
    for (const [kind, peer] of session.events) {
      if (kind === 'leave') ids.delete(peer);
      else ids.add(peer);
    }
    return [...ids].map((id) => [id, session.names.get(id)]);
  }
}

test('cluster: a rolling restart of three nodes behind a load balancer loses no room and tells every leave and rejoin once', async (t) => {
  const redis = await startRedis();
  t.after(() => redis.stop());
  const nodes = await startNodes(t, 3, redis, ENV);
  const ports = nodes.map((n) => n.port);
  const proxy = await startProxy(ports);
  t.after(() => proxy.close());

  const ROOMS = 6;
  const SIZE = 5;
  const members = [];
  t.after(() => members.forEach((m) => m.socket.close()));
  for (let r = 0; r < ROOMS; r += 1) {
    const room = [];
    for (let i = 0; i < SIZE; i += 1) {
      const m = new Member(proxy.url, `m${r}-${i}`, r);
      members.push(m);
      room.push(m);
      if (!m.socket.connected) await next(m.socket, 'connect');
    }
    room[0].socket.emit('create-room');
    const [roomId] = await next(room[0].socket, 'room-created');
    for (const m of room) m.roomId = roomId;
    room[0].session.entered = true;
    for (const m of room.slice(1)) {
      joined(await request(m.socket, 'join-room', roomId), roomId);
      m.session.entered = true;
    }
  }
  // Spread over the nodes by the proxy: every node holds members.
  for (const node of nodes) {
    const json = await (await fetch(`${node.url}/metrics`)).text();
    assert.match(json, /meshchat_connected_sockets [1-9]/);
  }

  /** Every member is back in its room and every mesh is complete, under current ids. */
  const settled = () => members.every((m) => {
    if (!m.socket.connected || !m.session?.entered) return false;
    const present = m.present();
    const others = members.filter((o) => o !== m && o.roomIndex === m.roomIndex).map((o) => o.name).sort();
    return present.length === others.length
      && JSON.stringify(present.map(([, name]) => name).sort()) === JSON.stringify(others);
  });
  await until(settled, 'meshes complete', 20_000);

  for (let i = 0; i < nodes.length; i += 1) {
    const { code, ms } = await terminate(nodes[i]);
    assert.equal(code, 0, `node ${i} exit code`);
    assert.ok(ms < SHUTDOWN_TIMEOUT_SECS * 1000, `node ${i} exited after ${ms} ms`);
    nodes[i] = await startServer({ REDIS_URL: redis.url, ...FAST, ...redis.env, ...ENV, PORT: String(ports[i]) });
    const restarted = nodes[i];
    t.after(() => restarted.stop('SIGKILL'));
    await until(async () => (await status(restarted, '/readyz')) === 200, `node ${i} ready again`);
    await until(settled, `meshes complete after restarting node ${i}`, 30_000);
  }

  // Every client was dropped as a lost transport, never told to stay away.
  const reasons = new Set(members.flatMap((m) => m.reasons));
  for (const reason of reasons) assert.ok(RECONNECTABLE.includes(reason), `reason ${reason}`);
  assert.ok(members.some((m) => m.sessions.length > 1), 'some members were handed over');
  assert.deepEqual(members.flatMap((m) => m.lostRoom), [], 'every rejoin found its room');
  assert.deepEqual(members.flatMap((m) => m.crossRoom), [], 'nothing relayed across rooms');

  // Redis agrees: six rooms of five.
  for (const roomId of new Set(members.map((m) => m.roomId))) {
    assert.equal(await redis.cli('SCARD', `meshchat:room:${roomId}`), String(SIZE), `room ${roomId}`);
  }

  // The final ids, as the members' current sessions know each other.
  const finalIds = new Set(members.flatMap((m) => m.present().map(([id]) => id)));
  // Every id any session in a room learned of: a joiner learns the others only from their
  // offers, so one that left before offering is news to it, yet was in its room.
  const seenInRoom = new Map();
  for (const m of members) {
    const seen = seenInRoom.get(m.roomId) ?? new Set();
    for (const session of m.sessions) for (const [kind, p] of session.events) if (kind !== 'leave') seen.add(p);
    seenInRoom.set(m.roomId, seen);
  }
  for (const m of members) {
    for (const session of m.sessions) {
      const joins = session.events.filter(([k]) => k === 'join').map(([, p]) => p);
      const left = session.events.filter(([k]) => k === 'leave').map(([, p]) => p);
      assert.equal(new Set(joins).size, joins.length, `${m.name}: a join told twice`);
      assert.equal(new Set(left).size, left.length, `${m.name}: a leave told twice`);
    }
    const final = m.session;
    const leaves = final.events.filter(([k]) => k === 'leave').map(([, p]) => p);
    // Every session it knew that has since ended was announced as gone, once.
    const known = new Set(final.events.filter(([k]) => k !== 'leave').map(([, p]) => p));
    for (const id of known) {
      if (!finalIds.has(id)) assert.ok(leaves.includes(id), `${m.name}: leave of ${final.names.get(id)} (${id}) never told`);
    }
    for (const id of leaves) assert.ok(known.has(id) || seenInRoom.get(m.roomId).has(id), `${m.name}: leave of ${id}, never in its room`);
    // A member that came back was first told gone: never two sessions of one name at once.
    const present = new Map();
    for (const [kind, peer] of final.events) {
      if (kind === 'leave') {
        present.delete(peer);
        continue;
      }
      const name = final.names.get(peer);
      for (const [other, otherName] of present) {
        assert.ok(other === peer || otherName !== name, `${m.name}: ${name} rejoined before its leave was told`);
      }
      present.set(peer, name);
    }
  }
});
