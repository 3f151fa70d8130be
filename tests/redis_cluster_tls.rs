//! Redis Cluster mode (`REDIS_CLUSTER`) over TLS with an ACL user: six redis-servers that
//! speak only TLS (three masters, three replicas, made with `redis-cli --cluster create`),
//! with certificates made here and the default user switched off. Nodes given the seeds and
//! the CA share rooms: the command connection and this node's own subscriber connections
//! to each master all carry the URL's TLS settings and user.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::Server;
use meshchat::Config;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use tokio::process::{Child, Command};

const USER: &str = "meshchat";
const PASSWORD: &str = "s3cret-pw";

/// How long the cluster may take to form.
const FORMING: Duration = Duration::from_secs(60);

/// Six TLS-only redis-servers forming a Redis Cluster, killed and their files removed on
/// drop.
struct TlsCluster {
    children: Vec<Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl TlsCluster {
    async fn start() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "meshchat-rcluster-tls-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "meshchat test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let key = KeyPair::generate().unwrap();
        let params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        let cert = params.signed_by(&key, &ca).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();

        let mut cluster = Self {
            children: Vec::new(),
            ports: Vec::new(),
            dir,
        };
        for _ in 0..6 {
            let port = common::uclient::free_port();
            let child = cluster.spawn(port).await;
            cluster.children.push(child);
            cluster.ports.push(port);
        }
        let mut create = cluster.cli();
        create.args(["--cluster", "create"]);
        create.args(cluster.ports.iter().map(|p| format!("127.0.0.1:{p}")));
        create.args(["--cluster-replicas", "1", "--cluster-yes"]);
        let out = tokio::time::timeout(FORMING, create.output())
            .await
            .expect("redis-cli --cluster create in time")
            .unwrap();
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let formed = async {
            'wait: loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                for &port in &cluster.ports {
                    let info = cluster
                        .cli()
                        .arg("-p")
                        .arg(port.to_string())
                        .args(["CLUSTER", "INFO"])
                        .output()
                        .await;
                    let ok = info.is_ok_and(|o| {
                        String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok")
                    });
                    if !ok {
                        continue 'wait;
                    }
                }
                return;
            }
        };
        tokio::time::timeout(FORMING, formed)
            .await
            .expect("cluster_state:ok on every node");
        cluster
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// redis-cli with the cluster's TLS settings and user.
    fn cli(&self) -> Command {
        let mut cli = Command::new("redis-cli");
        cli.args(["--tls", "--cacert", &self.file("ca.pem")])
            .args(["--user", USER, "--pass", PASSWORD, "--no-auth-warning"])
            .stdin(Stdio::null())
            .stderr(Stdio::null());
        cli
    }

    async fn spawn(&self, port: u16) -> Child {
        let mut child = Command::new("redis-server")
            .args(["--port", "0", "--bind", "127.0.0.1"])
            .args(["--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &self.file("server.pem")])
            .args(["--tls-key-file", &self.file("server.key")])
            .args(["--tls-ca-cert-file", &self.file("ca.pem")])
            .args(["--tls-auth-clients", "no"])
            .args(["--tls-cluster", "yes", "--tls-replication", "yes"])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "1000"])
            .args([
                "--cluster-config-file",
                &self.file(&format!("nodes-{port}.conf")),
            ])
            .args(["--dir", &self.file("")])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--masteruser", USER, "--masterauth", PASSWORD])
            .args(["--user", "default", "off"])
            .args(["--user", USER, "on", &format!(">{PASSWORD}")])
            .args(["~meshchat:*", "&meshchat:*", "+@all"])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server must be installed (scripts/test.sh installs it)");
        common::redis_ready(&mut child).await;
        child
    }

    /// Every node as a seed, as `rediss://` URLs with the ACL user.
    fn url(&self) -> String {
        let seeds: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("rediss://{USER}:{PASSWORD}@127.0.0.1:{p}"))
            .collect();
        seeds.join(",")
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.start_kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn node(cluster: &TlsCluster) -> Config {
    common::config_with(|c| {
        c.cluster.redis_url = Some(cluster.url());
        c.cluster.redis_cluster = true;
        c.cluster.redis_ca_file = Some(cluster.dir.join("ca.pem"));
        c.cluster.node_heartbeat_ms = 200;
        c.cluster.node_ttl_ms = 1_000;
        c.cluster.redis_timeout_ms = 500;
    })
}

/// Two nodes on a TLS-only Redis Cluster as an ACL user limited to `meshchat:` keys and
/// channels, trusting its CA from REDIS_CA_FILE: both get ready, and a join and a relay
/// cross between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_share_rooms_on_a_tls_redis_cluster_as_an_acl_user() {
    let cluster = TlsCluster::start().await;
    let one = Server::start_with(node(&cluster)).await;
    let two = Server::start_with(node(&cluster)).await;
    common::share_a_room(&one, &two).await;
}
