//! Opening Redis: the client for `REDIS_URL`, one server or the seed nodes of a Redis
//! Cluster (TLS with `rediss://`, trusting the system's root certificates or only
//! `REDIS_CA_FILE`), and a startup check that stops a node whose settings can never work
//! instead of leaving it unready for good.

use std::path::Path;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::{
    AsyncConnectionConfig, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo,
    ProtocolVersion, RedisError, TlsCertificates,
};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tracing::warn;

use crate::error::{Error, Result, bounded};

/// The shortest wait for the startup check: a TLS handshake with a managed Redis in another
/// region can take longer than a command may.
const MIN_CHECK_WAIT: Duration = Duration::from_secs(3);

/// The client for `url`. Messages never contain the URL: it may hold a password.
pub(crate) fn client(url: &str, ca_file: Option<&Path>) -> Result<redis::Client> {
    let info = parse(url)?;
    let ca = ca_pem(&info, ca_file)?;
    open_at(info, ca)
}

/// Where this node's Redis is.
// Held once per node: the size of its variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// One server.
    One(redis::Client),
    /// A Redis Cluster.
    Cluster(Seeds),
}

/// A Redis Cluster reached through the seed nodes of `urls` (comma-separated): its client,
/// and what this node's own connections to one of its masters need.
#[derive(Clone)]
pub(crate) struct Seeds {
    pub(crate) cluster: ClusterClient,
    /// The first seed's settings (TLS, user, password): those of every node.
    first: ConnectionInfo,
    ca: Option<Vec<u8>>,
}

impl std::fmt::Debug for Seeds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seeds").finish_non_exhaustive()
    }
}

impl Seeds {
    /// The cluster's seed nodes in `urls`, separated by commas, all with the same scheme,
    /// user and password (redis-rs asks that of them).
    pub(crate) fn new(urls: &str, ca_file: Option<&Path>) -> Result<Self> {
        let infos = urls
            .split(',')
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(parse)
            .collect::<Result<Vec<_>>>()?;
        let Some(first) = infos.first().cloned() else {
            return Err(Error::Startup("REDIS_URL names no Redis".into()));
        };
        let ca = ca_pem(&first, ca_file)?;
        let mut builder = ClusterClientBuilder::new(infos);
        if let Some(pem) = &ca {
            builder = builder.certs(TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            });
        }
        let cluster = builder
            .build()
            .map_err(|e| Error::Startup(format!("REDIS_URL: {e}")))?;
        Ok(Self { cluster, first, ca })
    }

    /// A client of the first seed alone, for the startup check.
    pub(crate) fn first(&self) -> Result<redis::Client> {
        open_at(self.first.clone(), self.ca.clone())
    }

    /// A RESP3 client of the cluster node at `host:port` (as the cluster names it), with
    /// the seeds' TLS, user and password: for this node's own subscriber connections.
    pub(crate) fn client_at(&self, host: &str, port: u16) -> Result<redis::Client> {
        let addr = match self.first.addr() {
            ConnectionAddr::TcpTls { insecure, .. } => ConnectionAddr::TcpTls {
                host: host.to_owned(),
                port,
                insecure: *insecure,
                tls_params: None,
            },
            _ => ConnectionAddr::Tcp(host.to_owned(), port),
        };
        let redis = self
            .first
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let info = self.first.clone().set_addr(addr).set_redis_settings(redis);
        open_at(info, self.ca.clone())
    }
}

/// `url` read as a Redis URL; says so at startup if it is not, without showing it.
fn parse(url: &str) -> Result<ConnectionInfo> {
    url.into_connection_info()
        .map_err(|e| Error::Startup(format!("REDIS_URL is not a Redis URL ({e})")))
}

/// A client of `info`, trusting only the CA certificates `ca` when given.
fn open_at(info: ConnectionInfo, ca: Option<Vec<u8>>) -> Result<redis::Client> {
    // Only ring is compiled in, so this is the provider rustls would pick anyway; installing
    // it says so, and fails only when it is already installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Some(pem) = ca else {
        return Ok(redis::Client::open(info)?);
    };
    let certificates = TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    Ok(redis::Client::build_with_tls(info, certificates)?)
}

/// The CA certificates of `REDIS_CA_FILE`, checked against the URL's scheme; warns when
/// the URL asks not to check the server's certificate.
fn ca_pem(info: &ConnectionInfo, ca_file: Option<&Path>) -> Result<Option<Vec<u8>>> {
    let tls = match info.addr() {
        ConnectionAddr::TcpTls { insecure, .. } => Some(*insecure),
        _ => None,
    };
    if tls == Some(true) {
        warn!(
            "REDIS_URL ends in #insecure: the Redis server's certificate is not checked, so anyone on the path can read and change cluster traffic"
        );
    }
    let Some(ca_file) = ca_file else {
        return Ok(None);
    };
    if tls.is_none() {
        return Err(Error::Startup(
            "REDIS_CA_FILE is set but REDIS_URL does not use TLS: use a rediss:// URL".into(),
        ));
    }
    let shown = ca_file.display();
    let pem = std::fs::read(ca_file)
        .map_err(|e| Error::Startup(format!("REDIS_CA_FILE {shown}: {e}")))?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Startup(format!("REDIS_CA_FILE {shown}: not PEM ({e})")))?;
    if certificates.is_empty() {
        return Err(Error::Startup(format!(
            "REDIS_CA_FILE {shown} holds no PEM certificate"
        )));
    }
    Ok(Some(pem))
}

/// Connects once and pings. Redis being away is no reason to stop (the node starts
/// unready and keeps trying), but a certificate it does not trust, a failed TLS handshake
/// or refused credentials will not get better by waiting: those are errors, returned
/// within `max(timeout, 3 s)`. A TLS client at a plain port (or the other way round) only
/// times out, as if Redis were away: Redis waits for the rest of what it thinks is a
/// command. Also stops a node whose `REDIS_CLUSTER` says the opposite of what Redis is,
/// when Redis tells (`INFO cluster`).
pub(crate) async fn check(client: &redis::Client, timeout: Duration, cluster: bool) -> Result<()> {
    let wait = timeout.max(MIN_CHECK_WAIT);
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(wait))
        .set_response_timeout(Some(wait));
    let attempt = async {
        let mut conn: MultiplexedConnection = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        redis::cmd("PING").query_async::<()>(&mut conn).await?;
        // A user without the right to ask is no reason to stop: then nothing is known.
        let info = redis::cmd("INFO")
            .arg("cluster")
            .query_async::<String>(&mut conn)
            .await;
        Ok(info.ok())
    };
    match bounded(wait, attempt).await {
        Ok(Some(info)) if info.contains("cluster_enabled:1") != cluster => {
            Err(Error::Startup(if cluster {
                "REDIS_CLUSTER is set but REDIS_URL is not a Redis Cluster: unset REDIS_CLUSTER"
                    .into()
            } else {
                "REDIS_URL is a Redis Cluster: set REDIS_CLUSTER=true".into()
            }))
        }
        Ok(_) => Ok(()),
        Err(Error::Redis(error)) if let Some(why) = hopeless(&error) => Err(Error::Startup(why)),
        Err(error) => {
            warn!(%error, "redis: not reachable at startup; not ready until it is");
            Ok(())
        }
    }
}

/// Why `error` means the settings can never work, if it does.
fn hopeless(error: &RedisError) -> Option<String> {
    if let Some(tls) = tls_error(error) {
        let hint = match tls {
            rustls::Error::InvalidCertificate(_) => {
                "the Redis server's certificate is not trusted: set REDIS_CA_FILE to the CA \
                 certificate your provider publishes, and check the host name in REDIS_URL"
            }
            _ => {
                "does the port in REDIS_URL speak TLS? rediss:// needs a TLS port, redis:// a plain one"
            }
        };
        return Some(format!("TLS with Redis failed ({tls}): {hint}"));
    }
    let refused = error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("NOAUTH" | "WRONGPASS" | "NOPERM"));
    if refused {
        return Some(format!(
            "Redis refused the user name or password of REDIS_URL ({error})"
        ));
    }
    (error.kind() == ErrorKind::InvalidClientConfig).then(|| format!("REDIS_URL: {error}"))
}

/// The rustls error under `error`, if TLS is what failed. It arrives wrapped twice, and
/// neither wrapper's `source()` shows it: redis-rs keeps the `io::Error` in an `Arc` (whose
/// `source()` is that of the error inside), and tokio-rustls puts the rustls error inside
/// that `io::Error` (whose `source()` skips the error it wraps).
fn tls_error(error: &RedisError) -> Option<&rustls::Error> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let mut next: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(mut current) = next {
        if let Some(shared) = current.downcast_ref::<Shared>() {
            current = &**shared;
        }
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && let Some(tls) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            return Some(tls);
        }
        next = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str, ca: Option<&Path>) -> String {
        match client(url, ca) {
            Err(Error::Startup(why)) => why,
            other => panic!("{url} with {ca:?}: {other:?}"),
        }
    }

    #[test]
    fn settings_that_cannot_work_are_refused_without_showing_the_url() {
        let why = refused("http://user:hunter2@example.com", None);
        assert!(why.contains("not a Redis URL"), "{why}");
        assert!(!why.contains("hunter2"), "{why}");
        let why = refused("redis://127.0.0.1:6379", Some(Path::new("Cargo.toml")));
        assert!(why.contains("rediss://"), "{why}");
        let missing = Path::new("/nonexistent/ca.pem");
        let why = refused("rediss://127.0.0.1:6380", Some(missing));
        assert!(why.contains("/nonexistent/ca.pem"), "{why}");
        let why = refused("rediss://127.0.0.1:6380", Some(Path::new("Cargo.toml")));
        assert!(why.contains("no PEM certificate"), "{why}");
    }

    #[test]
    fn plain_tls_and_acl_urls_open() {
        for url in [
            "redis://127.0.0.1:6379",
            "rediss://127.0.0.1:6380",
            "rediss://meshchat:p%40ss@redis.example.com:6380/0",
            "rediss://:password@redis.example.com:6380#insecure",
        ] {
            assert!(client(url, None).is_ok(), "{url}");
        }
        let info = client("rediss://meshchat:p%40ss@redis.example.com:6380", None)
            .unwrap()
            .get_connection_info()
            .clone();
        assert_eq!(info.redis_settings().username(), Some("meshchat"));
        assert_eq!(info.redis_settings().password(), Some("p@ss"));
    }
}
