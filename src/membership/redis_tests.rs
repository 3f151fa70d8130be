//! The Redis membership store against a real redis-server (`scripts/test.sh` installs it):
//! atomic capacity across nodes, dead-node sweeps, re-registration after Redis lost its
//! data, and the cluster-wide room counts behind `/metrics` through all of these.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::redis::{Notice, RedisRooms, Route};
use super::test_support::{LIMITS, created};
use super::{Join, Limits, Resumed};
use crate::protocol::{PeerId, RoomId};

const TIMEOUT: Duration = Duration::from_secs(2);
const WAIT: Duration = Duration::from_secs(10);

/// A redis-server without persistence on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    client: redis::Client,
}

impl Redis {
    async fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let ready = async {
            loop {
                if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                    && redis::cmd("PING")
                        .query_async::<String>(&mut conn)
                        .await
                        .is_ok()
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(WAIT, ready)
            .await
            .expect("redis-server did not start");
        Self { child, client }
    }

    /// The store of one node.
    async fn node(&self, name: &str) -> RedisRooms {
        let conn = crate::cluster::command_connection(&self.client, TIMEOUT).unwrap();
        RedisRooms::new(conn, "test:", name, TIMEOUT)
    }

    async fn flushall(&self) {
        let mut conn = self
            .client
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        redis::cmd("FLUSHALL")
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Twenty peers on two nodes racing for a room of 8: exactly 7 get in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_holds_when_nodes_race_for_the_last_seats() {
    let redis = Redis::start().await;
    let (a, b) = (redis.node("a").await, redis.node("b").await);
    let room = created(a.create(&PeerId::random(), LIMITS).await.unwrap());
    let joins = (0..20).map(|i| {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let room = room.clone();
        tokio::spawn(async move { node.join(&room, &PeerId::random(), LIMITS).await })
    });
    let mut joined = 0;
    let mut full = 0;
    for join in joins {
        match join.await.unwrap().unwrap() {
            Join::Joined { .. } => joined += 1,
            Join::Full => full += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((joined, full), (7, 13));
    assert_eq!(a.members(&room).await.unwrap().len(), 8);
    assert_eq!(
        sizes(&b).await,
        [(8, 1)],
        "one room of 8, whoever filled it"
    );
}

/// The cluster-wide room counts, as `/metrics` reads them.
async fn sizes(node: &RedisRooms) -> Vec<(usize, usize)> {
    node.room_sizes().await.unwrap().into_iter().collect()
}

/// Room counts move with every create, join and leave on any node, and with the sweep of a
/// dead node's peers; every node reads the same counts.
#[tokio::test]
async fn room_counts_follow_joins_leaves_and_sweeps() {
    let redis = Redis::start().await;
    let (a, b, c) = (
        redis.node("a").await,
        redis.node("b").await,
        redis.node("c").await,
    );
    assert_eq!(sizes(&a).await, []);
    let [p, q, r, s, u] = std::array::from_fn(|_| PeerId::random());
    let one = created(a.create(&p, LIMITS).await.unwrap());
    assert_eq!(sizes(&b).await, [(1, 1)]);
    b.join(&one, &q, LIMITS).await.unwrap();
    let two = created(c.create(&r, LIMITS).await.unwrap());
    b.join(&two, &s, LIMITS).await.unwrap();
    a.join(&two, &u, LIMITS).await.unwrap();
    for node in [&a, &b, &c] {
        assert_eq!(sizes(node).await, [(2, 1), (3, 1)]);
    }
    // Refused joins change nothing.
    assert_eq!(b.join(&two, &s, LIMITS).await.unwrap(), Join::AlreadyMember);
    let three = Limits {
        room_size: 3,
        ..LIMITS
    };
    assert_eq!(
        a.join(&two, &PeerId::random(), three).await.unwrap(),
        Join::Full
    );
    assert_eq!(sizes(&c).await, [(2, 1), (3, 1)]);

    assert!(a.leave_all(&u).await.deferred.is_none());
    assert_eq!(sizes(&c).await, [(2, 2)]);

    // b (holding q and s) stops beating: its peers are swept from both rooms.
    let ttl = Duration::from_millis(200);
    for node in [&a, &b, &c] {
        node.tick(ttl).await.unwrap();
    }
    let sweep = async {
        loop {
            let gone =
                a.tick(ttl).await.unwrap().gone.len() + c.tick(ttl).await.unwrap().gone.len();
            if gone > 0 {
                return gone;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    assert_eq!(tokio::time::timeout(WAIT, sweep).await.unwrap(), 2);
    assert_eq!(sizes(&a).await, [(1, 2)]);
    assert_eq!(sizes(&b).await, [(1, 2)], "the swept node reads them too");
    // The swept node's clients then leave rooms Redis no longer has them in: no change.
    b.leave_all(&q).await;
    b.leave_all(&s).await;
    assert_eq!(sizes(&b).await, [(1, 2)]);

    a.leave_all(&p).await;
    c.leave_all(&r).await;
    assert_eq!(sizes(&a).await, []);
    let mut conn = redis
        .client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let left: BTreeMap<String, String> = redis::cmd("HGETALL")
        .arg("test:room_sizes")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, BTreeMap::new(), "no zero counts left behind");
}

/// Join, the same-room check and leave as seen from another node.
#[tokio::test]
async fn membership_is_shared_and_rooms_vanish_when_empty() {
    let redis = Redis::start().await;
    let (a, b) = (redis.node("a").await, redis.node("b").await);
    let (p, q, r) = (PeerId::random(), PeerId::random(), PeerId::random());
    let unknown = RoomId::parse("nosuchroom").unwrap();
    assert_eq!(
        b.join(&unknown, &q, LIMITS).await.unwrap(),
        Join::NoSuchRoom
    );
    let room = created(a.create(&p, LIMITS).await.unwrap());
    assert_eq!(
        b.join(&room, &q, LIMITS).await.unwrap(),
        Join::Joined { others: 1 }
    );
    assert_eq!(
        b.join(&room, &q, LIMITS).await.unwrap(),
        Join::AlreadyMember
    );
    assert!(a.share_a_room(&p, &q).await.unwrap());
    assert!(b.share_a_room(&q, &p).await.unwrap());
    assert!(!a.share_a_room(&p, &r).await.unwrap());
    assert!(
        !a.share_a_room(&PeerId::random(), &q).await.unwrap(),
        "a sender in no room"
    );

    assert_eq!(a.leave_all(&p).await.rooms, std::slice::from_ref(&room));
    b.leave_all(&q).await;
    assert!(!b.share_a_room(&q, &p).await.unwrap());
    assert_eq!(b.join(&room, &r, LIMITS).await.unwrap(), Join::NoSuchRoom);
}

/// A node that stops beating has its peers removed by exactly one survivor.
#[tokio::test]
async fn a_dead_nodes_peers_are_swept_once() {
    let redis = Redis::start().await;
    let (a, b, c) = (
        redis.node("a").await,
        redis.node("b").await,
        redis.node("c").await,
    );
    let ttl = Duration::from_millis(200);
    let (p, q) = (PeerId::random(), PeerId::random());
    let room = created(a.create(&p, LIMITS).await.unwrap());
    b.join(&room, &q, LIMITS).await.unwrap();
    for node in [&a, &b, &c] {
        node.tick(ttl).await.unwrap();
    }
    // b stops beating; a and c keep going until one of them has swept b.
    let sweep = async {
        loop {
            let (ta, tc) = (a.tick(ttl).await.unwrap(), c.tick(ttl).await.unwrap());
            if !ta.gone.is_empty() || !tc.gone.is_empty() {
                return (ta, tc);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let (ta, tc) = tokio::time::timeout(WAIT, sweep).await.unwrap();
    let swept: Vec<_> = ta.gone.iter().chain(tc.gone.iter()).collect();
    assert_eq!(
        swept,
        vec![(&q, &vec![room.clone()])],
        "swept once, by one node"
    );
    assert_eq!(a.members(&room).await.unwrap(), vec![p.to_string()]);
    // b learns that it was declared dead on its next beat.
    assert!(b.tick(ttl).await.unwrap().was_swept);
}

/// A join that got no answer may have been made all the same: the peer's next join of
/// that room is then a join (to be told to the room), not "already a member".
#[tokio::test]
async fn a_join_made_without_an_answer_is_a_join_when_asked_again() {
    let redis = Redis::start().await;
    let a = redis.node("a").await;
    let (p, q) = (PeerId::random(), PeerId::random());
    let room = created(a.create(&p, LIMITS).await.unwrap());
    // b's first attempt ran in Redis but its answer was lost: another store of node b
    // stands in for the attempt, and b notes the membership it may have made.
    let (b, b_lost) = (redis.node("b").await, redis.node("b").await);
    assert_eq!(
        b_lost.join(&room, &q, LIMITS).await.unwrap(),
        Join::Joined { others: 1 }
    );
    b.maybe_in(&q, &room);
    assert_eq!(
        b.join(&room, &q, LIMITS).await.unwrap(),
        Join::Joined { others: 1 }
    );
    // Once known, a join of the same room again is what it always was.
    assert_eq!(
        b.join(&room, &q, LIMITS).await.unwrap(),
        Join::AlreadyMember
    );
}

/// Beats `node` until it sweeps something, and returns what.
async fn sweep_by(node: &RedisRooms, ttl: Duration) -> BTreeMap<PeerId, Vec<RoomId>> {
    let sweep = async {
        loop {
            let tick = node.tick(ttl).await.unwrap();
            if !tick.gone.is_empty() {
                return tick.gone;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(WAIT, sweep).await.unwrap()
}

/// A sweep's leaves are handed to the node that swept until it says it told them (its
/// answer may have been lost), and to no other node; when that node dies first, the node
/// that sweeps it gets those whose leave was not published.
#[tokio::test]
async fn swept_leaves_stay_with_the_sweeper_until_told() {
    for published in [false, true] {
        let redis = Redis::start().await;
        let (a, b) = (redis.node("a").await, redis.node("b").await);
        let ttl = Duration::from_millis(200);
        let (p, q1, q2) = (PeerId::random(), PeerId::random(), PeerId::random());
        let room = created(a.create(&p, LIMITS).await.unwrap());
        b.join(&room, &q1, LIMITS).await.unwrap();
        b.join(&room, &q2, LIMITS).await.unwrap();
        a.tick(ttl).await.unwrap();
        b.tick(ttl).await.unwrap();
        // b stops beating and a sweeps it.
        let in_room = |peers: &[&PeerId]| -> BTreeMap<PeerId, Vec<RoomId>> {
            peers
                .iter()
                .map(|p| ((*p).clone(), vec![room.clone()]))
                .collect()
        };
        assert_eq!(sweep_by(&a, ttl).await, in_room(&[&q1, &q2]));
        // Not said to be told: handed out again, as after an answer that never came.
        assert_eq!(a.tick(ttl).await.unwrap().gone, in_room(&[&q1, &q2]));
        // q1's leave is told and said so: only q2's comes back.
        a.told_swept(q1.clone());
        assert_eq!(a.tick(ttl).await.unwrap().gone, in_room(&[&q2]));

        // a dies before telling q2, whose leave was published (its once-key is set) in one
        // run and not in the other. c, sweeping a, gets a's peer p, and q2 unless published.
        if published {
            let mut conn = redis
                .client
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            redis::cmd("SET")
                .arg(format!("test:once:left:{q2}"))
                .arg("1")
                .query_async::<()>(&mut conn)
                .await
                .unwrap();
        }
        let c = redis.node("c").await;
        let expected = if published {
            in_room(&[&p])
        } else {
            in_room(&[&p, &q2])
        };
        assert_eq!(sweep_by(&c, ttl).await, expected, "published: {published}");
    }
}

/// After Redis lost everything, a node writes its peers' memberships back.
#[tokio::test]
async fn memberships_come_back_after_redis_lost_them() {
    let redis = Redis::start().await;
    let (a, b) = (redis.node("a").await, redis.node("b").await);
    let (p, q) = (PeerId::random(), PeerId::random());
    let room = created(a.create(&p, LIMITS).await.unwrap());
    b.join(&room, &q, LIMITS).await.unwrap();
    let ttl = Duration::from_secs(5);
    assert!(a.tick(ttl).await.unwrap().was_unknown, "first beat");
    assert!(!a.tick(ttl).await.unwrap().was_unknown);

    redis.flushall().await;
    assert_eq!(sizes(&a).await, []);
    assert!(a.tick(ttl).await.unwrap().was_unknown);
    assert_eq!(a.register_again().await.unwrap(), 1);
    assert_eq!(sizes(&a).await, [(1, 1)]);
    assert_eq!(b.register_again().await.unwrap(), 1);
    assert_eq!(a.register_again().await.unwrap(), 1, "idempotent");
    assert_eq!(sizes(&b).await, [(2, 1)]);
    let mut members = a.members(&room).await.unwrap();
    members.sort();
    let mut expected = vec![p.to_string(), q.to_string()];
    expected.sort();
    assert_eq!(members, expected);
    assert!(b.share_a_room(&q, &p).await.unwrap());

    // A peer that left is not put back.
    assert!(b.leave_all(&q).await.deferred.is_none());
    assert_eq!(b.register_again().await.unwrap(), 0);
    assert_eq!(a.members(&room).await.unwrap(), vec![p.to_string()]);
    assert_eq!(sizes(&a).await, [(1, 1)]);
}

/// A leave that Redis lost (a failover to a replica that had not copied it) is made again
/// when the node registers again, and a held peer stays listed.
#[tokio::test]
async fn a_leave_redis_lost_is_made_again_by_registering() {
    let redis = Redis::start().await;
    let (a, b) = (redis.node("a").await, redis.node("b").await);
    let (p, q, h) = (PeerId::random(), PeerId::random(), PeerId::random());
    let room = created(a.create(&p, LIMITS).await.unwrap());
    b.join(&room, &q, LIMITS).await.unwrap();
    a.join(&room, &h, LIMITS).await.unwrap();
    // h's connection ended with a resume token: held, so still listed.
    a.hold(&h).unwrap();
    // p left, and then Redis lost that leave: it lists p again, as it was.
    assert_eq!(a.leave_all(&p).await.rooms, std::slice::from_ref(&room));
    let mut conn = redis
        .client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    redis::pipe()
        .sadd(format!("test:room:{room}"), p.as_str())
        .sadd(format!("test:peer:{p}"), room.as_str())
        .sadd("test:node:a:peers", p.as_str())
        .hset("test:room_sizes", 3, 1)
        .hdel("test:room_sizes", 2)
        .query_async::<()>(&mut conn)
        .await
        .unwrap();

    assert_eq!(a.register_again().await.unwrap(), 0);
    let mut members = a.members(&room).await.unwrap();
    members.sort();
    let mut expected = vec![q.to_string(), h.to_string()];
    expected.sort();
    assert_eq!(members, expected);
    assert_eq!(sizes(&a).await, [(2, 1)]);
    assert_eq!(b.leave_all(&q).await.rooms, [room]);
}

/// A room that a draining node's peer empties is joined again under its id, as a room of
/// one; a room emptied otherwise is gone.
#[tokio::test]
async fn a_room_emptied_by_a_draining_node_stays_joinable() {
    let redis = Redis::start().await;
    let (a, b) = (redis.node("a").await, redis.node("b").await);
    let [p, q, r] = std::array::from_fn(|_| PeerId::random());
    let gone = created(b.create(&p, LIMITS).await.unwrap());
    let kept = created(a.create(&q, LIMITS).await.unwrap());
    assert_eq!(b.leave_all(&p).await.rooms, std::slice::from_ref(&gone));
    a.begin_drain();
    assert_eq!(a.leave_all(&q).await.rooms, std::slice::from_ref(&kept));
    assert_eq!(sizes(&b).await, []);
    assert_eq!(b.join(&gone, &r, LIMITS).await.unwrap(), Join::NoSuchRoom);
    assert_eq!(
        b.join(&kept, &r, LIMITS).await.unwrap(),
        Join::Joined { others: 0 }
    );
    assert_eq!(sizes(&b).await, [(1, 1)]);
    // Taken up: it is an ordinary room again, gone when it empties.
    assert_eq!(b.leave_all(&r).await.rooms, std::slice::from_ref(&kept));
    assert_eq!(b.join(&kept, &q, LIMITS).await.unwrap(), Join::NoSuchRoom);
}

/// A leave tells only the rooms the peer was still in: after a sweep removed it, none.
#[tokio::test]
async fn a_leave_after_a_sweep_tells_nobody() {
    let redis = Redis::start().await;
    let (a, b) = (redis.node("a").await, redis.node("b").await);
    let [p, q] = std::array::from_fn(|_| PeerId::random());
    let room = created(a.create(&p, LIMITS).await.unwrap());
    b.join(&room, &q, LIMITS).await.unwrap();
    a.tick(Duration::from_millis(50)).await.unwrap();
    b.tick(Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // a's key expired: b's beat removes p, as from a dead node.
    let swept = b.tick(Duration::from_secs(10)).await.unwrap();
    assert_eq!(swept.gone.get(&p), Some(&vec![room.clone()]));
    assert!(a.leave_all(&p).await.rooms.is_empty());
    assert_eq!(b.leave_all(&q).await.rooms, [room]);
}

/// A leave after Redis lost its data (before the node wrote its members back) still tells
/// the peer's rooms: nobody else did.
#[tokio::test]
async fn a_leave_after_redis_lost_its_data_tells_the_rooms() {
    let redis = Redis::start().await;
    let a = redis.node("a").await;
    let [p, q] = std::array::from_fn(|_| PeerId::random());
    let room = created(a.create(&p, LIMITS).await.unwrap());
    a.join(&room, &q, LIMITS).await.unwrap();
    redis.flushall().await;
    assert_eq!(a.leave_all(&p).await.rooms, [room]);
}

/// A peer held on one node and resumed on another is that node's: the first node's end of
/// hold tells nobody, and the sweep of the first node, once dead, passes it by.
#[tokio::test]
async fn a_peer_resumed_elsewhere_is_neither_left_nor_swept_by_its_old_node() {
    use super::Resumed;
    let redis = Redis::start().await;
    let (a, b) = (redis.node("a").await, redis.node("b").await);
    let ttl = Duration::from_millis(200);
    let (p, q) = (PeerId::random(), PeerId::random());
    let room = created(a.create(&p, LIMITS).await.unwrap());
    b.join(&room, &q, LIMITS).await.unwrap();
    for node in [&a, &b] {
        node.tick(ttl).await.unwrap();
    }
    let hold = a.hold(&p).unwrap();
    assert_eq!(
        b.resume(&p).await.unwrap(),
        Resumed::Rooms(vec![room.clone()])
    );
    // A second resume while the first one's socket connects is refused.
    assert_eq!(b.resume(&p).await.unwrap(), Resumed::InUse);
    let left = a.end_hold(&p, hold).await.unwrap();
    assert!(left.rooms.is_empty() && left.deferred.is_none(), "{left:?}");
    // a dies: b's sweep finds none of a's peers, and p is still a member.
    let sweep = async {
        loop {
            let tick = b.tick(ttl).await.unwrap();
            let mut conn = redis
                .client
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let nodes: Vec<String> = redis::cmd("SMEMBERS")
                .arg("test:nodes")
                .query_async(&mut conn)
                .await
                .unwrap();
            if !nodes.contains(&"a".to_owned()) {
                return tick;
            }
            assert!(tick.gone.is_empty(), "{tick:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let tick = tokio::time::timeout(WAIT, sweep).await.unwrap();
    assert!(tick.gone.is_empty(), "{tick:?}");
    let mut members = b.members(&room).await.unwrap();
    members.sort();
    let mut want = vec![p.to_string(), q.to_string()];
    want.sort();
    assert_eq!(members, want);
    // Its leave from b, later, tells the room.
    assert_eq!(b.leave_all(&p).await.rooms, vec![room]);
}

/// A peer whose leave was told cannot be resumed.
#[tokio::test]
async fn a_peer_that_left_is_gone() {
    use super::Resumed;
    let redis = Redis::start().await;
    let (a, b) = (redis.node("a").await, redis.node("b").await);
    let p = PeerId::random();
    created(a.create(&p, LIMITS).await.unwrap());
    let hold = a.hold(&p).unwrap();
    assert_eq!(a.end_hold(&p, hold).await.unwrap().rooms.len(), 1);
    assert_eq!(b.resume(&p).await.unwrap(), Resumed::Gone);
}

/// The notices on the bus stream so far, oldest first.
async fn notices(redis: &Redis) -> Vec<Notice> {
    let mut conn = redis
        .client
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let entries: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
        .arg("test:bus")
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    entries
        .into_iter()
        .map(|(_, fields)| {
            assert_eq!(fields[1], b"test:notices");
            Notice::parse(&fields[3]).unwrap()
        })
        .collect()
}

/// A node routes a relay from what it knows: its own peers always, a peer of another node
/// once looked up, until a notice says it left or moved.
#[tokio::test]
async fn the_view_of_other_nodes_peers_follows_lookups_and_notices() {
    let redis = Redis::start().await;
    let (a, b, c) = (
        redis.node("a").await,
        redis.node("b").await,
        redis.node("c").await,
    );
    for node in [&a, &b, &c] {
        node.tick(Duration::from_secs(10)).await.unwrap();
    }
    let (p, p2, q, x) = (
        PeerId::random(),
        PeerId::random(),
        PeerId::random(),
        PeerId::random(),
    );
    let room = created(a.create(&p, LIMITS).await.unwrap());
    a.join(&room, &p2, LIMITS).await.unwrap();
    b.join(&room, &q, LIMITS).await.unwrap();
    created(b.create(&x, LIMITS).await.unwrap());

    // Two peers of one node: known without asking.
    assert_eq!(a.route(&p, &p2), Route::Here);
    // A peer of another node: asked once, then known.
    assert_eq!(a.route(&p, &q), Route::Ask);
    assert_eq!(a.locate(&p, &q).await.unwrap(), Route::Node("b".into()));
    assert_eq!(a.route(&p, &q), Route::Node("b".into()));
    assert_eq!(a.route(&p2, &q), Route::Node("b".into()));
    // A stranger, on either side.
    assert_eq!(a.route(&p, &x), Route::Ask);
    assert_eq!(a.locate(&p, &x).await.unwrap(), Route::NotShared);
    assert_eq!(b.route(&x, &q), Route::NotShared);
    assert_eq!(b.route(&PeerId::random(), &q), Route::NotShared);
    assert!(b.is_in_one_of(&q, std::slice::from_ref(&room)));
    assert!(!b.is_in_one_of(&x, std::slice::from_ref(&room)));

    // q is held on b and resumes on c: every node hears where it is now.
    let hold = b.hold(&q).unwrap();
    assert_eq!(
        c.resume(&q).await.unwrap(),
        Resumed::Rooms(vec![room.clone()])
    );
    let heard = notices(&redis).await;
    assert_eq!(heard, [Notice::At(q.clone(), "c".into())]);
    for node in [&a, &b, &c] {
        for notice in notices(&redis).await {
            node.hear(notice);
        }
    }
    assert_eq!(a.route(&p, &q), Route::Node("c".into()));
    // b forgot it (its hold ends without a leave) and asks where it went.
    assert_eq!(b.route(&x, &q), Route::Ask);
    assert!(b.end_hold(&q, hold).await.is_none());

    // q leaves: a forgets it, and Redis says they share no room any more.
    assert_eq!(c.leave_all(&q).await.rooms, std::slice::from_ref(&room));
    let heard = notices(&redis).await;
    assert_eq!(heard.last(), Some(&Notice::Left(q.clone())));
    a.hear(Notice::Left(q.clone()));
    assert_eq!(a.route(&p, &q), Route::Ask);
    assert_eq!(a.locate(&p, &q).await.unwrap(), Route::NotShared);
}

#[test]
fn notices_parse_and_nothing_else_does() {
    let peer = PeerId::random();
    assert_eq!(
        Notice::parse(format!("left {peer}").as_bytes()),
        Some(Notice::Left(peer.clone()))
    );
    assert_eq!(
        Notice::parse(format!("at {peer} node1").as_bytes()),
        Some(Notice::At(peer.clone(), "node1".into()))
    );
    for bad in [
        "",
        "left",
        "left x",
        "at",
        &format!("at {peer}"),
        &format!("gone {peer}"),
    ] {
        assert_eq!(Notice::parse(bad.as_bytes()), None, "{bad:?}");
    }
    assert_eq!(Notice::parse(format!("left {peer} more").as_bytes()), None);
}
