// Nodes on a Redis Cluster (REDIS_CLUSTER=true): three masters and three replicas that the
// test starts. The protocol across nodes on sharded pub/sub, relays on the shard of their
// target node's inbox alone, and a master failover that loses no room.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connected, joined, next, request } from '../helpers/client.mjs';
import { FAST, meshOf, startNodes, startRedisCluster } from '../helpers/cluster.mjs';
import { status, until } from '../helpers/server.mjs';

const CLUSTER = { REDIS_CLUSTER: 'true' };

/** The id `node` goes by in Redis (it names its inbox), from its log. */
async function nodeId(node) {
  let entry;
  await until(() => (entry = node.logs.find((l) => l.message === 'redis: node registered')), 'node registered');
  return entry.node;
}

/** The key (and channel) of `node`'s inbox in a Redis Cluster. */
async function inboxOf(node) {
  return `meshchat:inbox:{${await nodeId(node)}}`;
}


/** `from` (peer id `fromPeer`) relays an offer to `to` (peer id `toPeer`), which receives it
 * (other offers it receives meanwhile are let by). */
async function relays([from, fromPeer], [to, toPeer], sdp) {
  const got = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no offer "${sdp}" within 10 s`)), 10_000);
    const on = (peer, offer) => {
      if (offer?.sdp !== sdp) return;
      clearTimeout(timer);
      to.off('rtc-offer', on);
      resolve(peer);
    };
    to.on('rtc-offer', on);
  });
  assert.deepEqual(await request(from, 'rtc-offer', toPeer, { type: 'offer', sdp }), { ok: true });
  assert.equal(await got, fromPeer);
}

/** A newcomer on `node` joins `roomId`: every member hears of it and sends it an offer, and
 * it gets them all. */
async function newcomerMeshes(t, node, roomId, members) {
  const d = await connected(t, node);
  const heard = members.map(([socket]) => next(socket, 'new-user-joined'));
  const offers = [];
  d.on('rtc-offer', (from) => offers.push(from));
  joined(await request(d, 'join-room', roomId), roomId);
  const dPeers = await Promise.all(heard);
  const [dPeer] = dPeers[0];
  for (const [socket] of members) socket.emit('rtc-offer', dPeer, { type: 'offer', sdp: 'welcome' });
  await until(() => offers.length === members.length, 'the newcomer got an offer from every member');
  assert.deepEqual(offers.sort(), members.map(([, peer]) => peer).sort());
}

test('redis cluster: rooms span three nodes; joins, relays and leaves work on shard channels, as an ACL user', async (t) => {
  const redis = await startRedisCluster(t);
  // The nodes use an ACL user limited to meshchat's keys and channels, and the default user
  // may not subscribe: a subscriber connection that lost the URL's user would fail.
  for (const port of redis.ports) {
    await redis.cli(port, 'ACL', 'SETUSER', 'meshchat', 'on', '>s3cret', '~meshchat:*', '&meshchat:*', '+@all');
    await redis.cli(port, 'ACL', 'SETUSER', 'default', '-ssubscribe', '-subscribe');
  }
  const url = redis.url.replaceAll('redis://', 'redis://meshchat:s3cret@');
  const [A, B, C] = await startNodes(t, 3, { url }, CLUSTER);
  const a = await connected(t, A);
  const a2 = await connected(t, A);
  const b = await connected(t, B);
  const c = await connected(t, C, ['polling']);
  const { roomId, aPeer, peers: [a2Peer, bPeer, cPeer] } = await meshOf(a, a2, b, c);

  // Across nodes both ways, and within one node.
  await relays([a, aPeer], [b, bPeer], 'a to b');
  await relays([b, bPeer], [c, cPeer], 'b to c');
  await relays([c, cPeer], [a, aPeer], 'c to a');
  await relays([a2, a2Peer], [a, aPeer], 'a2 to a');
  await newcomerMeshes(t, B, roomId, [[a, aPeer], [a2, a2Peer], [b, bPeer], [c, cPeer]]);

  // Every node's inbox is subscribed on the master that owns its slot alone, and nothing
  // is published with plain PUBLISH: relays and announcements go by SPUBLISH to one shard.
  const masters = new Set();
  for (const node of [A, B, C]) {
    const inbox = await inboxOf(node);
    const owner = await redis.masterOf(inbox);
    masters.add(owner);
    for (const port of redis.ports) {
      const channels = (await redis.cli(port, 'PUBSUB', 'SHARDCHANNELS', 'meshchat:inbox:*')).split('\n');
      assert.equal(channels.includes(inbox), port === owner, `${inbox} on ${port}`);
    }
  }
  const bus = await redis.masterOf('meshchat:{m}:notices');
  masters.add(bus);
  assert.ok((await redis.cli(bus, 'PUBSUB', 'SHARDCHANNELS', 'meshchat:{m}:*')).includes('meshchat:{m}:notices'));
  for (const port of masters) {
    const stats = await redis.cli(port, 'INFO', 'commandstats');
    assert.doesNotMatch(stats, /^cmdstat_publish:/m, `plain PUBLISH on ${port}`);
  }
  const inboxB = await redis.masterOf(await inboxOf(B));
  assert.match(await redis.cli(inboxB, 'INFO', 'commandstats'), /^cmdstat_spublish:calls=[1-9]/m);

  // A leave on C is told to every other node.
  const leaves = [next(a, 'user-disconnected'), next(b, 'user-disconnected')];
  c.disconnect();
  assert.deepEqual(await Promise.all(leaves), [[cPeer], [cPeer]]);
  assert.deepEqual(await request(a, 'rtc-offer', cPeer, { type: 'offer', sdp: 'x' }), {
    error: 'that peer is not in any of your rooms',
    reason: 'not_in_your_rooms',
  });
});

/** Longest the nodes may take to serve again once the cluster is ok: a subscriber
 * connection retries at most every 2 s, the command connection on its next command (within
 * REDIS_TIMEOUT_MS), and the heartbeat registers the memberships again within one interval;
 * with room for a slow machine. */
const BACK_MS = 2_000 + Number(FAST.REDIS_TIMEOUT_MS) + Number(FAST.NODE_HEARTBEAT_MS) + 3_000;

for (const shard of ['membership', 'inbox']) {
  test(`redis cluster: the master of the ${shard} shard is killed; its replica takes over, no room is lost and relays come back`, async (t) => {
    const redis = await startRedisCluster(t);
    const nodes = await startNodes(t, 3, redis, CLUSTER);
    const membership = await redis.masterOf('meshchat:{m}:bus');
    // The node whose inbox is on a master other than the membership one, if any, so that
    // each case kills one kind of shard.
    const inboxes = await Promise.all(nodes.map(async (n) => redis.masterOf(await inboxOf(n))));
    const apart = Math.max(0, inboxes.findIndex((port) => port !== membership));
    const [A, B, C] = [nodes[apart], ...nodes.filter((_, i) => i !== apart)];
    const a = await connected(t, A);
    const b = await connected(t, B);
    const c = await connected(t, C);
    const { roomId, aPeer, peers: [bPeer, cPeer] } = await meshOf(a, b, c);
    const members = [[a, aPeer], [b, bPeer], [c, cPeer]];
    const leaves = [];
    for (const [socket] of members) socket.on('user-disconnected', (peer) => leaves.push(peer));

    const victim = shard === 'membership' ? membership : inboxes[apart];
    const replica = await redis.replicaOf(victim);
    const killed = Date.now();
    await redis.kill(victim);
    await until(async () => (await redis.cli(replica, 'ROLE')).startsWith('master'), 'the replica took over', 30_000);
    await redis.waitOk('cluster ok after failover');
    const ok = Date.now();
    for (const node of nodes) await until(async () => (await status(node, '/readyz')) === 200, 'node ready again', BACK_MS);
    // Relays to A's inbox (on the killed shard in the inbox case) work again.
    await until(async () => {
      const ack = await request(b, 'rtc-offer', aPeer, { type: 'offer', sdp: 'probe' });
      return ack.ok === true;
    }, 'relays to A accepted', BACK_MS);
    const back = Date.now();
    t.diagnostic(`failover took ${ok - killed} ms; nodes served again ${back - ok} ms later`);

    // No room lost: every member is still in it, relays cross nodes every way, and a
    // newcomer meshes with everyone.
    await relays([b, bPeer], [a, aPeer], 'b to a after');
    await relays([a, aPeer], [c, cPeer], 'a to c after');
    await relays([c, cPeer], [b, bPeer], 'c to b after');
    await newcomerMeshes(t, C, roomId, members);
    await newcomerMeshes(t, A, roomId, members);
    // Nobody was told that anyone left: no node was swept while the shard was away.
    assert.deepEqual(leaves, []);
  });
}
