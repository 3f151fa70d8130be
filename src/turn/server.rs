//! The built-in STUN server and, with `TURN_EMBEDDED`, TURN relay: webrtc-rs's `turn`
//! server on one UDP port, with meshchat's credentials, per-IP and bandwidth quotas and
//! counters around it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::net::UdpSocket;
use tracing::{info, warn};
use turn::auth::{AuthHandler, generate_auth_key};
use turn::relay::RelayAddressGenerator;
use turn::server::config::{ConnConfig, ServerConfig};
use webrtc_util::Conn;

use super::credentials::{credential, expiry};
use crate::config::{IceConfig, PortRange, Secret};
use crate::metrics::Metrics;

/// Relay sockets tried before an allocation gives up on finding a free port.
const PORT_TRIES: usize = 16;

/// The running STUN/TURN server. Stops when closed or dropped with the runtime.
pub(crate) struct StunTurn {
    server: turn::server::Server,
}

impl StunTurn {
    /// Binds the UDP port and starts serving; `None` when `STUN_PORT` is 0. A port that
    /// cannot be bound, or a TURN relay without a public address, stops the server at
    /// startup with a message that says what to set. `host` is `HOST`, the default bind.
    pub(crate) async fn start(
        config: &IceConfig,
        host: IpAddr,
        metrics: Arc<Metrics>,
    ) -> io::Result<Option<Self>> {
        if config.stun_port == 0 {
            return Ok(None);
        }
        let bind = config.udp_bind(host);
        let socket = UdpSocket::bind(&bind).await.map_err(|error| {
            io::Error::new(
                error.kind(),
                format!("STUN_PORT: cannot bind UDP {bind}: {error} (STUN_PORT=0 turns STUN off)"),
            )
        })?;
        let addr = socket.local_addr()?;
        let secret = config.turn_secret.clone().filter(|_| config.turn_embedded);
        let relays = match secret {
            None => None,
            Some(_) => Some(Relays::new(config, addr.ip(), metrics.clone())?),
        };
        let embedded = relays.is_some();
        let auth = Auth {
            relay: secret.zip(relays.as_ref().map(|r| r.admission.clone())),
            metrics,
        };
        let generator: Box<dyn RelayAddressGenerator + Send + Sync> = match relays {
            Some(relays) => Box::new(relays),
            None => Box::new(NoRelays),
        };
        let server = turn::server::Server::new(ServerConfig {
            conn_configs: vec![ConnConfig {
                conn: Arc::new(Listener { socket }),
                relay_addr_generator: generator,
            }],
            realm: "meshchat".into(),
            auth_handler: Arc::new(auth),
            channel_bind_timeout: Duration::ZERO,
            alloc_close_notify: None,
        })
        .await
        .map_err(|error| io::Error::other(format!("STUN/TURN server: {error}")))?;
        info!(%addr, turn = embedded, "stun server listening");
        Ok(Some(Self { server }))
    }

    pub(crate) async fn close(self) {
        if let Err(error) = self.server.close().await {
            warn!(%error, "stun server: closing failed");
        }
    }
}

/// The listening socket, passing on only what can be STUN or TURN ChannelData: the first
/// two bits of a STUN message are 00 and of ChannelData 01 (RFC 8489 section 6, RFC 8656
/// section 12). The `turn` crate's decoder answers some other datagrams as if they were
/// Binding requests.
struct Listener {
    socket: UdpSocket,
}

/// Implements `Conn` for a type holding a UDP socket in `socket`, with its own `recv_from`
/// and `send_to`; the rest go straight to the socket. `close` does nothing: the `turn`
/// crate closes the listening socket of every allocation that ends, and it must stay open
/// for the others (a relay's socket closes when it is dropped).
macro_rules! udp_conn {
    ($conn:ty { $($own:tt)* }) => {
        #[async_trait]
        impl Conn for $conn {
            async fn connect(&self, addr: SocketAddr) -> webrtc_util::Result<()> {
                Ok(self.socket.connect(addr).await?)
            }

            async fn recv(&self, buf: &mut [u8]) -> webrtc_util::Result<usize> {
                Ok(self.socket.recv(buf).await?)
            }

            async fn send(&self, buf: &[u8]) -> webrtc_util::Result<usize> {
                Ok(self.socket.send(buf).await?)
            }

            fn local_addr(&self) -> webrtc_util::Result<SocketAddr> {
                Ok(self.socket.local_addr()?)
            }

            fn remote_addr(&self) -> Option<SocketAddr> {
                None
            }

            async fn close(&self) -> webrtc_util::Result<()> {
                Ok(())
            }

            fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
                self
            }

            $($own)*
        }
    };
}

fn is_stun_or_channel_data(datagram: &[u8]) -> bool {
    datagram.len() >= 4 && datagram[0] & 0b1000_0000 == 0
}

udp_conn!(Listener {
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            if is_stun_or_channel_data(&buf[..n]) {
                return Ok((n, from));
            }
        }
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        Ok(self.socket.send_to(buf, target).await?)
    }
});

/// Checks TURN credentials: ours (`TURN_SECRET`, not expired), and none at all when the
/// relay is off, so the port answers STUN only.
struct Auth {
    /// The secret and the quota, when the relay is on.
    relay: Option<(Secret, Arc<Admission>)>,
    metrics: Arc<Metrics>,
}

impl AuthHandler for Auth {
    fn auth_handle(
        &self,
        username: &str,
        realm: &str,
        src_addr: SocketAddr,
    ) -> Result<Vec<u8>, turn::Error> {
        let Some((secret, admission)) = &self.relay else {
            return Err(self.refuse("relay_off"));
        };
        match expiry(username) {
            None => return Err(self.refuse("bad_username")),
            Some(at) if at < SystemTime::now() => return Err(self.refuse("expired")),
            Some(_) => {}
        }
        admission.authenticated(src_addr.ip());
        let password = credential(secret.expose().as_bytes(), username);
        Ok(generate_auth_key(username, realm, &password))
    }
}

impl Auth {
    fn refuse(&self, reason: &'static str) -> turn::Error {
        self.metrics.turn_refused(reason);
        turn::Error::Other(format!("credentials refused: {reason}"))
    }
}

/// Who may open a relay: the per-IP allocation quota.
///
/// The relay generator is not told which client it allocates for. The server handles one
/// request at a time per listening socket, authenticating an Allocate just before it asks
/// for the relay, so the address of the last authenticated request is that client's.
#[derive(Debug, Default)]
struct Admission {
    current: Mutex<Option<IpAddr>>,
    held: Mutex<HashMap<IpAddr, usize>>,
    per_ip: usize,
}

impl Admission {
    fn authenticated(&self, ip: IpAddr) {
        *lock(&self.current) = Some(ip);
    }

    /// Takes one of the current client's allocations, if it has any left.
    fn take(&self) -> Result<IpAddr, &'static str> {
        let ip = lock(&self.current).ok_or("no_client")?;
        let mut held = lock(&self.held);
        let count = held.entry(ip).or_default();
        if *count >= self.per_ip {
            return Err("ip_quota");
        }
        *count += 1;
        Ok(ip)
    }

    fn release(&self, ip: IpAddr) {
        let mut held = lock(&self.held);
        if let Some(count) = held.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&ip);
            }
        }
    }
}

/// Only maps and addresses are touched under these locks, never an await.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Opens relay sockets in `TURN_RELAY_PORTS`, each counted and bandwidth-capped.
struct Relays {
    public_ip: IpAddr,
    bind_ip: IpAddr,
    ports: PortRange,
    bytes_per_sec: u32,
    /// Where the search for a free relay port starts next: the ports are taken in turn.
    next_port: AtomicU32,
    admission: Arc<Admission>,
    metrics: Arc<Metrics>,
}

impl Relays {
    fn new(config: &IceConfig, bind_ip: IpAddr, metrics: Arc<Metrics>) -> io::Result<Self> {
        let public_ip = config
            .turn_public_ip
            .or(Some(bind_ip).filter(|ip| !ip.is_unspecified()))
            .ok_or_else(|| {
                io::Error::other(
                    "TURN_EMBEDDED needs TURN_PUBLIC_IP, the address browsers reach this \
                     server's relays at (or a UDP_HOST that is one address)",
                )
            })?;
        Ok(Self {
            public_ip,
            bind_ip,
            ports: config.turn_relay_ports,
            bytes_per_sec: config.turn_bytes_per_sec,
            // A random start, so a restarted node does not reuse its predecessor's ports.
            next_port: AtomicU32::new(RandomState::new().hash_one(0u8) as u32),
            admission: Arc::new(Admission {
                per_ip: config.turn_allocations_per_ip,
                ..Admission::default()
            }),
            metrics,
        })
    }

    async fn bind(&self) -> Result<UdpSocket, turn::Error> {
        let span = u32::from(self.ports.last - self.ports.first) + 1;
        for _ in 0..PORT_TRIES {
            let offset = self.next_port.fetch_add(1, Ordering::Relaxed) % span;
            let offset = u16::try_from(offset).unwrap_or(0);
            let addr = SocketAddr::new(self.bind_ip, self.ports.first + offset);
            if let Ok(socket) = UdpSocket::bind(addr).await {
                return Ok(socket);
            }
        }
        Err(turn::Error::Other("no free relay port".into()))
    }
}

#[async_trait]
impl RelayAddressGenerator for Relays {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        _use_ipv4: bool,
        _requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        let client = self.admission.take().map_err(|reason| {
            self.metrics.turn_refused(reason);
            turn::Error::Other(format!("allocation refused: {reason}"))
        })?;
        let socket = match self.bind().await {
            Ok(socket) => socket,
            Err(error) => {
                self.admission.release(client);
                self.metrics.turn_refused("no_port");
                return Err(error);
            }
        };
        let port = socket
            .local_addr()
            .map_err(|error| turn::Error::Other(error.to_string()))?
            .port();
        self.metrics.turn_allocations.inc();
        let relay = Relay {
            socket,
            client,
            inbound: bucket(self.bytes_per_sec),
            outbound: bucket(self.bytes_per_sec),
            admission: self.admission.clone(),
            metrics: self.metrics.clone(),
        };
        Ok((Arc::new(relay), SocketAddr::new(self.public_ip, port)))
    }
}

fn bucket(bytes_per_sec: u32) -> Option<DefaultDirectRateLimiter> {
    let rate = std::num::NonZeroU32::new(bytes_per_sec)?;
    Some(RateLimiter::direct(Quota::per_second(rate)))
}

/// Whether `n` bytes fit in `bucket` now (always, without a cap).
fn fits(bucket: Option<&DefaultDirectRateLimiter>, n: usize) -> bool {
    let Some(bucket) = bucket else { return true };
    let n = u32::try_from(n).ok().and_then(std::num::NonZeroU32::new);
    n.is_none_or(|n| matches!(bucket.check_n(n), Ok(Ok(()))))
}

/// When TURN is off: never reached, since every credential is refused first.
struct NoRelays;

#[async_trait]
impl RelayAddressGenerator for NoRelays {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        _: bool,
        _: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        Err(turn::Error::Other("the TURN relay is off".into()))
    }
}

/// One allocation's relay socket: counts what it carries, drops what is over the cap, and
/// gives its client's quota back when the allocation ends.
struct Relay {
    socket: UdpSocket,
    client: IpAddr,
    /// From peers to the client.
    inbound: Option<DefaultDirectRateLimiter>,
    /// From the client to peers.
    outbound: Option<DefaultDirectRateLimiter>,
    admission: Arc<Admission>,
    metrics: Arc<Metrics>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.admission.release(self.client);
        self.metrics.turn_allocations.dec();
    }
}

udp_conn!(Relay {
    async fn recv_from(&self, buf: &mut [u8]) -> webrtc_util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            if fits(self.inbound.as_ref(), n) {
                self.metrics.turn_relayed_bytes.inc_by(n as u64);
                return Ok((n, from));
            }
        }
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> webrtc_util::Result<usize> {
        if !fits(self.outbound.as_ref(), buf.len()) {
            // UDP may lose a datagram; the sender's congestion control slows down.
            return Ok(buf.len());
        }
        let n = self.socket.send_to(buf, target).await?;
        self.metrics.turn_relayed_bytes.inc_by(n as u64);
        Ok(n)
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stun_and_channel_data_pass_the_listener() {
        assert!(is_stun_or_channel_data(&[0x00, 0x01, 0x00, 0x00]));
        assert!(is_stun_or_channel_data(&[
            0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4
        ]));
        for other in [
            &[][..],
            &[0x00, 0x01],
            &[0x80, 0x01, 0x00, 0x00],
            &[0xff; 20],
        ] {
            assert!(!is_stun_or_channel_data(other), "{other:?}");
        }
    }

    #[test]
    fn a_relay_carries_at_most_its_bytes_per_second_and_no_cap_means_none() {
        let capped = bucket(3000);
        assert!(fits(capped.as_ref(), 1200));
        assert!(fits(capped.as_ref(), 1200));
        assert!(
            !fits(capped.as_ref(), 1200),
            "3000 bytes a second, 2400 used"
        );
        assert!(fits(capped.as_ref(), 600));
        assert!(!fits(capped.as_ref(), 4000), "larger than the whole bucket");
        let uncapped = bucket(0);
        assert!(uncapped.is_none());
        assert!((0..1000).all(|_| fits(uncapped.as_ref(), 65_000)));
    }

    #[test]
    fn each_address_holds_at_most_its_quota_and_gets_it_back() {
        let admission = Admission {
            per_ip: 2,
            ..Admission::default()
        };
        assert_eq!(admission.take(), Err("no_client"));
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        admission.authenticated(a);
        assert_eq!(admission.take(), Ok(a));
        assert_eq!(admission.take(), Ok(a));
        assert_eq!(admission.take(), Err("ip_quota"));
        admission.authenticated(b);
        assert_eq!(admission.take(), Ok(b), "another address has its own quota");
        admission.release(a);
        admission.authenticated(a);
        assert_eq!(admission.take(), Ok(a));
        admission.release(a);
        admission.release(a);
        admission.release(b);
        assert!(lock(&admission.held).is_empty(), "nothing left behind");
    }
}
