//! Runtime configuration, read from command-line flags and environment variables.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// meshchat: a Socket.IO signaling server for peer-to-peer WebRTC mesh chat.
#[derive(Parser, Debug, Clone)]
#[command(version, about)]
pub struct Config {
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

    /// Log output format. Levels are set with RUST_LOG (default: info).
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
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
}
