//! Runtime configuration, read from command-line flags and environment variables, in one
//! group per concern: each module takes the groups it reads.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use clap::{Args, Parser, ValueEnum};

use crate::ice::IceServers;

/// meshchat: a Socket.IO signaling server for peer-to-peer WebRTC mesh chat.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
pub struct Config {
    #[command(flatten)]
    pub listen: ListenConfig,
    #[command(flatten)]
    pub limits: LimitsConfig,
    #[command(flatten)]
    pub cluster: ClusterConfig,
    #[command(flatten)]
    pub ice: IceConfig,
    #[command(flatten)]
    pub ops: OpsConfig,
    #[command(flatten)]
    pub resume: ResumeConfig,
}

/// Where the server listens, and how it talks HTTP and Engine.IO: message sizes,
/// heartbeats and timeouts.
#[derive(Args, Debug, Clone)]
pub struct ListenConfig {
    /// Address to listen on.
    #[arg(long, env = "HOST", default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    pub host: IpAddr,

    /// TCP port to listen on (0 picks a free port).
    #[arg(long, env = "PORT", default_value_t = 3000)]
    pub port: u16,

    /// Largest Engine.IO payload in bytes: one polling POST body or one websocket message.
    /// Larger ones close the connection, as the Engine.IO protocol prescribes.
    #[arg(long, env = "MAX_PAYLOAD", default_value_t = 64 * 1024)]
    pub max_payload: u64,

    /// Largest SDP or ICE candidate payload, in bytes of JSON, that the server relays.
    #[arg(long, env = "MAX_SIGNAL_BYTES", default_value_t = 16 * 1024)]
    pub max_signal_bytes: usize,

    /// Packets queued for one client before further emits to it fail. A room of 8 setting
    /// up its mesh sends hundreds of candidates at once, and a long-polling client drains
    /// its queue only once per poll.
    #[arg(long, env = "MAX_BUFFER", default_value_t = 1024)]
    pub max_buffer: usize,

    /// Engine.IO heartbeat interval in milliseconds.
    #[arg(long, env = "PING_INTERVAL_MS", default_value_t = 25_000)]
    pub ping_interval_ms: u64,

    /// How long to wait for a heartbeat answer before dropping a client, in milliseconds.
    #[arg(long, env = "PING_TIMEOUT_MS", default_value_t = 20_000)]
    pub ping_timeout_ms: u64,

    /// Longest a graceful shutdown may take before the process exits anyway, in seconds.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", default_value_t = 10)]
    pub shutdown_timeout_secs: u64,

    /// How long a connection may wait for a request head, in milliseconds: a keep-alive
    /// connection idle that long is closed, as is one sending its head too slowly.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_MS", default_value_t = 30_000)]
    pub http_idle_timeout_ms: u64,
}

/// What one client, one room and the whole server may have or do, and who may connect.
#[derive(Args, Debug, Clone)]
pub struct LimitsConfig {
    /// Most members one room may have. A full mesh of N peers costs every browser N-1
    /// connections; 16 leaves room beyond a team of nine at a measured low cost per page
    /// (docs/web-client.md, "Big rooms").
    #[arg(long, env = "MAX_ROOM_SIZE", default_value_t = 16)]
    pub max_room_size: usize,

    /// Most rooms one connection may be in at once.
    #[arg(long, env = "MAX_ROOMS_PER_SOCKET", default_value_t = 4)]
    pub max_rooms_per_socket: usize,

    /// Most connections this server holds at once; further handshakes get 503.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,

    /// Signaling events (offers, answers, candidates) one connection may send per second,
    /// on average. 0 disables the limit.
    #[arg(long, env = "SIGNAL_RATE", default_value_t = 200)]
    pub signal_rate: u32,

    /// Signaling events one connection may send at once, above the average rate. A peer
    /// joining a room of 8 sends offers and dozens of candidates to each of 7 peers.
    #[arg(long, env = "SIGNAL_BURST", default_value_t = 600)]
    pub signal_burst: u32,

    /// Room creations and joins one connection may make per second. 0 disables the limit.
    #[arg(long, env = "JOIN_RATE", default_value_t = 2)]
    pub join_rate: u32,

    /// Room creations and joins one connection may make at once.
    #[arg(long, env = "JOIN_BURST", default_value_t = 10)]
    pub join_burst: u32,

    /// New connections one client IP may open per second. 0 disables the limit.
    #[arg(long, env = "CONNECT_RATE", default_value_t = 20)]
    pub connect_rate: u32,

    /// New connections one client IP may open at once.
    #[arg(long, env = "CONNECT_BURST", default_value_t = 100)]
    pub connect_burst: u32,

    /// Events over the rate limits a connection may send (refilled at a tenth of that per
    /// second) before it is disconnected as a flood.
    #[arg(long, env = "FLOOD_TOLERANCE", default_value_t = 100)]
    pub flood_tolerance: u32,

    /// Take the client IP from `Fly-Client-IP` or `X-Forwarded-For` (set this only behind
    /// a proxy that sets them).
    #[arg(long, env = "TRUST_PROXY", default_value_t = false)]
    pub trust_proxy: bool,

    /// Origins allowed to open Socket.IO connections, comma-separated (e.g.
    /// `https://chat.example.com`), or `*` for any. The page's own origin and localhost
    /// are always allowed; requests without an Origin header (non-browser clients) too.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
}

/// Cluster mode: the Redis that the nodes share, and the heartbeat between them.
#[derive(Args, Debug, Clone)]
pub struct ClusterConfig {
    /// Redis URL shared by every node of a cluster: `redis://host:6379`, or
    /// `rediss://user:password@host:port` for TLS and an ACL user. Unset: a single node
    /// with everything in memory. May hold a password, so `--help` does not show its value.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Cluster mode: REDIS_URL is a Redis Cluster (Redis 7 or later, for sharded pub/sub):
    /// one or more of its nodes, comma-separated, all with the same scheme, user and
    /// password. Keys and channels are laid out by hash tag (docs/cluster.md).
    #[arg(long, env = "REDIS_CLUSTER", default_value_t = false)]
    pub redis_cluster: bool,

    /// Cluster mode: a PEM file of the CA certificates that sign the Redis server's
    /// certificate, trusted instead of the system's roots (for a `rediss://` REDIS_URL).
    #[arg(long, env = "REDIS_CA_FILE")]
    pub redis_ca_file: Option<std::path::PathBuf>,

    /// Cluster mode: how often a node refreshes its heartbeat in Redis and checks for dead
    /// nodes, in milliseconds.
    #[arg(long, env = "NODE_HEARTBEAT_MS", default_value_t = 2_000)]
    pub node_heartbeat_ms: u64,

    /// Cluster mode: how long after its last heartbeat a node counts as dead and its
    /// members are announced as gone, in milliseconds.
    #[arg(long, env = "NODE_TTL_MS", default_value_t = 6_000)]
    pub node_ttl_ms: u64,

    /// Cluster mode: longest wait for one Redis command (and for other nodes' answers to
    /// adapter requests) before the client's request is refused, in milliseconds.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 1_000)]
    pub redis_timeout_ms: u64,
}

/// What browsers need to connect to each other: ICE servers, the built-in STUN server and
/// TURN relay, and TURN credentials.
#[derive(Args, Debug, Clone)]
#[command(group(clap::ArgGroup::new("turn_servers").multiple(true)))]
pub struct IceConfig {
    /// ICE servers the web client uses, as a JSON list of `RTCIceServer` objects, e.g.
    /// `[{"urls":"stun:stun.l.google.com:19302"}]`. Empty: host candidates only (one
    /// machine or a LAN). May hold TURN credentials, so `--help` does not show its value.
    #[arg(
        long,
        env = "ICE_SERVERS",
        default_value = "[]",
        hide_env_values = true
    )]
    pub ice_servers: IceServers,

    /// Shared secret of the TURN relay (the built-in one with TURN_EMBEDDED, or a coturn run
    /// with `use-auth-secret`): each client gets its own time-limited credentials derived
    /// from it. Never logged.
    #[arg(
        long,
        env = "TURN_SECRET",
        hide_env_values = true,
        requires = "turn_servers"
    )]
    pub turn_secret: Option<Secret>,

    /// TURN server URLs the credentials are for, comma-separated (e.g.
    /// `turn:turn.example.com:3478?transport=udp,turns:turn.example.com:5349`). Not needed
    /// with TURN_EMBEDDED, whose URL is derived like the STUN server's.
    #[arg(long, env = "TURN_URLS", value_delimiter = ',', value_parser = turn_url,
        requires = "turn_secret", group = "turn_servers")]
    pub turn_urls: Vec<String>,

    /// UDP port of the built-in STUN server (RFC 8489 Binding), which tells browsers their
    /// public address, so peers on different networks can connect; with TURN_EMBEDDED also
    /// the TURN relay's port. 0: off.
    #[arg(long, env = "STUN_PORT", default_value_t = 3478)]
    pub stun_port: u16,

    /// Address the STUN/TURN UDP sockets bind to (default: HOST). fly.io needs
    /// `fly-global-services`.
    #[arg(long, env = "UDP_HOST")]
    pub udp_host: Option<String>,

    /// Host name or IP address browsers use for the built-in STUN/TURN server. Default: the
    /// host the page was loaded from.
    #[arg(long, env = "ICE_HOST", value_parser = ice_host)]
    pub ice_host: Option<String>,

    /// Run a TURN relay in this process, on STUN_PORT, for the credentials minted from
    /// TURN_SECRET: peers that cannot reach each other directly connect through it.
    #[arg(
        long,
        env = "TURN_EMBEDDED",
        default_value_t = false,
        requires = "turn_secret",
        group = "turn_servers"
    )]
    pub turn_embedded: bool,

    /// Embedded TURN: the public IP address of the relayed traffic, as browsers reach it.
    /// Default: UDP_HOST or HOST when that is one address (not 0.0.0.0 or ::).
    #[arg(long, env = "TURN_PUBLIC_IP")]
    pub turn_public_ip: Option<IpAddr>,

    /// Embedded TURN: the UDP ports relays are opened on, `first-last`. Each peer
    /// connection through the relay holds one while it lasts.
    #[arg(long, env = "TURN_RELAY_PORTS", default_value = "49152-65535")]
    pub turn_relay_ports: PortRange,

    /// Embedded TURN: most relay allocations one client IP address may hold at once (a page
    /// in a room of N holds up to N-1).
    #[arg(long, env = "TURN_ALLOCATIONS_PER_IP", default_value_t = 32)]
    pub turn_allocations_per_ip: usize,

    /// Embedded TURN: bytes per second one allocation may relay in each direction; more
    /// is dropped. 0: no cap.
    #[arg(long, env = "TURN_BYTES_PER_SEC", default_value_t = 1_048_576)]
    pub turn_bytes_per_sec: u32,

    /// How long TURN credentials stay valid, in seconds (default: 4 hours). The page fetches
    /// fresh ones before they expire, for the connections it makes later; a relay already
    /// in use is refused its renewal once they expire (by coturn too), so this should
    /// outlast a relayed chat.
    #[arg(long = "turn-ttl", env = "TURN_TTL", default_value_t = 4 * 3600,
        value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub turn_ttl_secs: u64,

    /// `relay` makes browsers use only TURN relays, so peers never learn each other's IP
    /// addresses (at the cost of relaying every byte).
    #[arg(long, env = "ICE_TRANSPORT_POLICY", value_enum, default_value_t = IceTransportPolicy::All)]
    pub ice_transport_policy: IceTransportPolicy,
}

/// Running it: logging, the metrics token, the fly.io machine.
#[derive(Args, Debug, Clone)]
pub struct OpsConfig {
    /// Log output format. Levels are set with RUST_LOG (default: info).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text,
        display_order = LOG_FORMAT_SHOWN_AT)]
    pub log_format: LogFormat,

    /// Bearer token that `GET /metrics` requires; without it the metrics are public.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<Secret>,

    /// The fly.io machine this process runs on; fly sets it. When set, each Socket.IO
    /// session's requests are kept on the machine that holds it (see `affinity`).
    #[arg(long, env = "FLY_MACHINE_ID", value_parser = machine_id)]
    pub fly_machine_id: Option<String>,

    /// Threads that serve clients. Unset: one per CPU this process may use. With one, a
    /// single-threaded scheduler runs everything, which on one CPU relays more for less
    /// (see docs/architecture.md, "Threads").
    #[arg(long, env = "WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,
}

/// Resuming: a page that reconnects gets its peer id and rooms back (docs/PROTOCOL.md,
/// "Resuming").
#[derive(Args, Debug, Clone)]
pub struct ResumeConfig {
    /// Key of the resume tokens that create-room and join-room acks carry. Unset: a single
    /// node makes a random one at start; nodes sharing a REDIS_URL share one through Redis.
    /// Never logged.
    #[arg(long, env = "RESUME_SECRET", hide_env_values = true)]
    pub resume_secret: Option<Secret>,

    /// How long the rooms of a client that was handed a resume token are held after its
    /// connection ends, in milliseconds, before its leave is told: a client that resumes
    /// within it keeps its peer id and rooms, and nobody hears it left. 0: resume off
    /// (no tokens, every leave told at once).
    #[arg(long, env = "RESUME_GRACE_MS", default_value_t = 5_000)]
    pub resume_grace_ms: u64,

    /// How long a resume token stays valid after it was handed out, in seconds.
    #[arg(long, env = "RESUME_TTL_SECS", default_value_t = 86_400,
        value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub resume_ttl_secs: u64,
}

/// Where `--help` lists LOG_FORMAT: at the place of ICE_SERVERS (the 28th setting; a tie
/// sorts by name), so right after it, as before the settings were grouped.
const LOG_FORMAT_SHOWN_AT: usize = 27;

/// Fly machine ids are short hex strings; anything else in a cookie is ignored, so a
/// client cannot put arbitrary text into a response header.
pub(crate) fn is_machine_id(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn machine_id(s: &str) -> Result<String, String> {
    if is_machine_id(s) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "{s:?} is not a fly machine id (letters and digits)"
        ))
    }
}

/// The `iceTransportPolicy` of the browsers' `RTCPeerConnection`.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IceTransportPolicy {
    All,
    Relay,
}

/// A secret setting. `Debug` never shows it, so a logged config cannot leak it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

impl FromStr for Secret {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Self(s.to_owned()))
    }
}

/// A host name or IP address to put in `stun:` and `turn:` URLs.
fn ice_host(s: &str) -> Result<String, String> {
    let host = s.trim();
    let valid = !host.is_empty()
        && (host.parse::<IpAddr>().is_ok()
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'));
    if valid {
        Ok(host.to_owned())
    } else {
        Err(format!("{host:?} is not a host name or IP address"))
    }
}

/// A range of ports, `first-last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let parsed = s.split_once('-').and_then(|(first, last)| {
            Some((
                first.trim().parse::<u16>().ok()?,
                last.trim().parse::<u16>().ok()?,
            ))
        });
        match parsed {
            Some((first, last)) if first > 0 && first <= last => Ok(Self { first, last }),
            _ => Err(format!("{s:?} is not a port range like 49152-65535")),
        }
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

/// A `turn:` or `turns:` URL with a host.
fn turn_url(s: &str) -> Result<String, String> {
    let url = s.trim();
    let rest = url
        .strip_prefix("turn:")
        .or_else(|| url.strip_prefix("turns:"))
        .ok_or_else(|| format!("{url:?} must start with turn: or turns:"))?;
    if rest.is_empty() || rest.starts_with(':') || url.chars().any(char::is_whitespace) {
        return Err(format!("{url:?} has no host, or contains spaces"));
    }
    Ok(url.to_owned())
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// The configuration with every default, as `meshchat` with no flags or variables.
    pub fn defaults() -> Self {
        Self::parse_from(["meshchat"])
    }
}

/// The configuration `meshchat` would read from `args`, for unit tests.
#[cfg(test)]
pub(crate) fn config_from(args: &[&str]) -> Result<Config, clap::Error> {
    Config::try_parse_from(std::iter::once("meshchat").chain(args.iter().copied()))
}

impl ListenConfig {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }

    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }

    pub fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }

    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    pub fn http_idle_timeout(&self) -> Duration {
        Duration::from_millis(self.http_idle_timeout_ms.max(1))
    }
}

impl ClusterConfig {
    pub fn node_heartbeat(&self) -> Duration {
        Duration::from_millis(self.node_heartbeat_ms.max(1))
    }

    pub fn node_ttl(&self) -> Duration {
        Duration::from_millis(self.node_ttl_ms.max(1))
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms.max(1))
    }
}

impl ResumeConfig {
    pub fn grace(&self) -> Duration {
        Duration::from_millis(self.resume_grace_ms)
    }

    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.resume_ttl_secs)
    }
}

impl IceConfig {
    pub fn turn_ttl(&self) -> Duration {
        Duration::from_secs(self.turn_ttl_secs)
    }

    /// Where the STUN/TURN UDP socket binds, as written (a name is resolved at startup):
    /// `UDP_HOST`, else `host` (`HOST`).
    pub fn udp_bind(&self, host: IpAddr) -> String {
        match &self.udp_host {
            Some(udp_host) => format!("{udp_host}:{}", self.stun_port),
            None => SocketAddr::new(host, self.stun_port).to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let c = config_from(&[
            "--turn-secret",
            "hunter2-turn",
            "--turn-urls",
            "turn:t.example:3478",
            "--metrics-token",
            "hunter2-metrics",
        ])
        .unwrap();
        let shown = format!("{c:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert_eq!(c.ice.turn_secret.unwrap().expose(), "hunter2-turn");
    }

    #[test]
    fn turn_settings_come_together_and_urls_are_checked() {
        let c = config_from(&[
            "--turn-secret",
            "s",
            "--turn-urls",
            "turn:a.example:3478?transport=udp, turns:a.example:5349",
        ])
        .unwrap();
        assert_eq!(
            c.ice.turn_urls,
            ["turn:a.example:3478?transport=udp", "turns:a.example:5349"]
        );
        for bad in [
            &["--turn-secret", "s"][..],
            &["--turn-urls", "turn:a.example"],
            &["--turn-secret", "s", "--turn-urls", "stun:a.example"],
            &["--turn-secret", "s", "--turn-urls", "https://a.example"],
            &["--turn-secret", "s", "--turn-urls", "turn:"],
            &["--turn-secret", " ", "--turn-urls", "turn:a.example"],
            &["--turn-ttl", "0"],
            &["--turn-embedded"],
        ] {
            assert!(config_from(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(config_from(&["--turn-secret", "s", "--turn-embedded"]).is_ok());
        let both = [
            "--turn-secret",
            "s",
            "--turn-embedded",
            "--turn-urls",
            "turn:a.example",
        ];
        assert!(config_from(&both).is_ok());
        assert_eq!(
            Config::defaults().ice.turn_ttl(),
            Duration::from_secs(4 * 3600)
        );
        assert_eq!(
            Config::defaults().ice.ice_transport_policy,
            IceTransportPolicy::All
        );
    }

    #[test]
    fn stun_is_on_by_default_and_its_settings_are_checked() {
        let c = Config::defaults();
        assert_eq!(c.ice.stun_port, 3478);
        assert_eq!(c.ice.udp_bind(c.listen.host), "0.0.0.0:3478");
        assert_eq!(
            c.ice.turn_relay_ports,
            PortRange {
                first: 49152,
                last: 65535
            }
        );
        let c = config_from(&[
            "--udp-host",
            "fly-global-services",
            "--ice-host",
            "chat.example",
        ])
        .unwrap();
        assert_eq!(c.ice.udp_bind(c.listen.host), "fly-global-services:3478");
        assert_eq!(c.ice.ice_host.as_deref(), Some("chat.example"));
        for bad in [
            &["--ice-host", "a b"][..],
            &["--ice-host", "x?transport=tcp"],
            &["--turn-relay-ports", "5000"],
            &["--turn-relay-ports", "6000-5000"],
            &["--turn-relay-ports", "0-10"],
        ] {
            assert!(config_from(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn help_lists_log_format_right_after_ice_servers() {
        use clap::CommandFactory;
        let command = Config::command();
        let order = |name: &str| {
            let arg = command.get_arguments().find(|a| a.get_id() == name);
            arg.map(clap::Arg::get_display_order)
        };
        assert_eq!(order("log_format"), order("ice_servers"));
        assert_eq!(order("log_format").map(|n| n + 1), order("turn_secret"));
    }
}
