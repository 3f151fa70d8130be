//! Cluster mode with a managed Redis: TLS (`rediss://`) and an ACL user, against a real
//! redis-server with certificates made here. Nodes that trust its CA share rooms; one that
//! does not, or has the wrong password, stops at startup with a clear error.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;

use common::Server;
use meshchat::Config;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

/// The ACL user the nodes log in as, and its password.
const USER: &str = "meshchat";
const PASSWORD: &str = "s3cret-pw";

/// A certificate authority made for one test run.
fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// redis-server with TLS only (no plain port) and the default user switched off, killed
/// and its files removed on drop.
struct TlsRedis {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl TlsRedis {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "meshchat-redis-tls-{}-{}",
            std::process::id(),
            nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let ca = ca("meshchat test CA");
        let other = ca_pem_elsewhere();
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("other-ca.pem"), other).unwrap();
        std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();

        let port = common::uclient::free_port();
        let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &file("server.pem")])
            .args(["--tls-key-file", &file("server.key")])
            .args(["--tls-ca-cert-file", &file("ca.pem")])
            .args(["--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--user", "default", "off"])
            .args(["--user", USER, "on", &format!(">{PASSWORD}")])
            .args(["~meshchat:*", "&meshchat:*", "+@all"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        common::redis_ready(&mut child).await;
        Self { child, port, dir }
    }

    fn url(&self, user: &str, password: &str) -> String {
        format!("rediss://{user}:{password}@127.0.0.1:{}", self.port)
    }

    fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn other_ca(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A CA that signed nothing the server presents.
fn ca_pem_elsewhere() -> String {
    ca("some other CA").pem()
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A node's config for `url`, with fast cluster timings.
fn node(url: String, ca: Option<&Path>) -> Config {
    common::config_with(|c| {
        c.cluster.redis_url = Some(url);
        c.cluster.redis_ca_file = ca.map(Path::to_path_buf);
        c.cluster.node_heartbeat_ms = 200;
        c.cluster.node_ttl_ms = 1_000;
        c.cluster.redis_timeout_ms = 500;
    })
}

/// What `run` says when it stops at startup; fails the test if it starts serving instead.
async fn startup_error(config: Config) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ran = common::within(
        "startup to fail",
        meshchat::run(listener, config, std::future::pending()),
    )
    .await;
    ran.expect_err("the node started").to_string()
}

/// Two nodes on TLS with an ACL user limited to `meshchat:` keys and channels, trusting the
/// server's CA from REDIS_CA_FILE: both get ready, and a join and a relay cross between
/// them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_rooms_over_tls_as_an_acl_user() {
    let redis = TlsRedis::start().await;
    let url = redis.url(USER, PASSWORD);
    let one = Server::start_with(node(url.clone(), Some(&redis.ca()))).await;
    let two = Server::start_with(node(url, Some(&redis.ca()))).await;
    common::share_a_room(&one, &two).await;
}

/// A server certificate signed by a CA other than REDIS_CA_FILE stops the node at startup,
/// saying what to set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_another_ca_stops_the_node_with_a_clear_error() {
    let redis = TlsRedis::start().await;
    let error = startup_error(node(redis.url(USER, PASSWORD), Some(&redis.other_ca()))).await;
    assert!(error.contains("not trusted"), "{error}");
    assert!(error.contains("REDIS_CA_FILE"), "{error}");
}

/// Without REDIS_CA_FILE only the system's roots are trusted, and a private CA is not one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ca_file_a_private_ca_is_not_trusted() {
    let redis = TlsRedis::start().await;
    let error = startup_error(node(redis.url(USER, PASSWORD), None)).await;
    assert!(error.contains("not trusted"), "{error}");
}

/// A wrong password stops the node at startup, and the message does not repeat it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stops_the_node_without_showing_it() {
    let redis = TlsRedis::start().await;
    let error = startup_error(node(redis.url(USER, "wrong-pw"), Some(&redis.ca()))).await;
    assert!(
        error.contains("refused the user name or password"),
        "{error}"
    );
    assert!(!error.contains("wrong-pw"), "{error}");
}

/// `#insecure` (what Heroku's self-signed certificates need) skips the certificate check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_url_connects_without_checking_the_certificate() {
    let redis = TlsRedis::start().await;
    let url = format!("{}#insecure", redis.url(USER, PASSWORD));
    let server = Server::start_with(node(url, None)).await;
    server.ready().await;
}

/// The binary exits with a failure status and logs the reason, well within a few
/// seconds, when it does not trust the server's certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_at_once_on_an_untrusted_certificate() {
    let redis = TlsRedis::start().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_meshchat"))
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("STUN_PORT", "0")
        .env("LOG_FORMAT", "text")
        .env("REDIS_URL", redis.url(USER, PASSWORD))
        .env("REDIS_CA_FILE", redis.other_ca())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let status = common::within("the binary to exit", child.wait())
        .await
        .unwrap();
    let mut out = String::new();
    stdout.read_to_string(&mut out).await.unwrap();
    stderr.read_to_string(&mut out).await.unwrap();
    assert!(!status.success(), "{status}\n{out}");
    assert!(out.contains("cannot use redis"), "{out}");
    assert!(out.contains("not trusted"), "{out}");
    assert!(!out.contains(PASSWORD), "{out}");
}
