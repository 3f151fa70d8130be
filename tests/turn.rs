//! TURN credentials minted by meshchat, checked by a real coturn (`turnserver`, Debian
//! package `coturn`) on loopback, with coturn's own TURN client `turnutils_uclient`.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::Parser;
use meshchat::Config;
use meshchat::ice::{IceServer, Urls};
use meshchat::turn::{TurnIssuer, credential};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use common::uclient::{self, Allocation, free_port};

const SECRET: &str = "loopback-test-secret";
/// Starting coturn or one client run may take this long before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// A coturn with `use-auth-secret` on a free loopback port, killed when dropped.
struct Coturn {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    _child: Child,
}

impl Coturn {
    async fn start() -> Self {
        let port = free_port();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("coturn-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = Command::new("turnserver")
            .args(["-n", "-v", "--simple-log", "--log-file=stdout", "--no-cli"])
            .args(["--no-tls", "--no-dtls", "--listening-ip", "127.0.0.1"])
            .args([
                "--relay-ip",
                "127.0.0.1",
                "--listening-port",
                &port.to_string(),
            ])
            .args([
                "--use-auth-secret",
                &format!("--static-auth-secret={SECRET}"),
            ])
            .arg("--realm=meshchat.test")
            // The client's two relay endpoints talk to each other over loopback.
            .arg("--allow-loopback-peers")
            .arg(format!("--pidfile={}", dir.join("pid").display()))
            .arg(format!("--db={}", dir.join("turndb").display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect(
                "turnserver not found: install the Debian package coturn (scripts/test.sh does)",
            );
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = format!("TCP listener opened on : 127.0.0.1:{port}");
        let log = Arc::new(Mutex::new(Vec::new()));
        let started = tokio::time::timeout(WAIT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                let done = line.contains(&ready);
                log.lock().unwrap().push(line);
                if done {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            started,
            Ok(true),
            "coturn did not start:\n{}",
            log.lock().unwrap().join("\n")
        );
        // Keep reading, or coturn blocks on a full pipe.
        let sink = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            port,
            log,
            _child: child,
        }
    }

    /// An issuer configured the way an operator would for this coturn.
    fn issuer(&self) -> TurnIssuer {
        let config = Config::parse_from([
            "meshchat",
            "--turn-secret",
            SECRET,
            "--turn-urls",
            &format!("turn:127.0.0.1:{}?transport=tcp", self.port),
        ]);
        TurnIssuer::from_config(&config.ice).unwrap()
    }

    /// This coturn's URL, as the operator lists it in `TURN_URLS`.
    fn urls(&self) -> Vec<String> {
        vec![format!("turn:127.0.0.1:{}?transport=tcp", self.port)]
    }

    /// A `turnutils_uclient` run over TCP with these credentials.
    async fn allocate(&self, username: &str, password: &str) -> Allocation {
        uclient::allocate(self.port, username, password, true).await
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

fn assert_refused(run: &Allocation, coturn: &Coturn) {
    assert!(
        run.was_refused(),
        "coturn should refuse the allocation:\n{}\n--- coturn:\n{}",
        run.text,
        coturn.log()
    );
}

/// Credentials we mint get a relay allocation from coturn, and data flows through it.
#[tokio::test]
async fn minted_credentials_are_accepted_for_an_allocation() {
    let coturn = Coturn::start().await;
    let issuer = coturn.issuer();
    let IceServer {
        urls,
        username: Some(username),
        credential: Some(credential),
    } = issuer.mint(coturn.urls())
    else {
        panic!("minted credentials have a username and a password");
    };
    assert_eq!(
        urls,
        Urls::Many(vec![format!(
            "turn:127.0.0.1:{}?transport=tcp",
            coturn.port
        )])
    );
    let run = coturn.allocate(&username, &credential).await;
    assert!(
        run.relayed_everything(),
        "allocation or relaying failed:\n{}\n--- coturn:\n{}",
        run.text,
        coturn.log()
    );
}

/// Credentials whose expiry has passed are refused.
#[tokio::test]
async fn expired_credentials_are_refused() {
    let coturn = Coturn::start().await;
    let issuer = coturn.issuer();
    let day_and_a_bit_ago = SystemTime::now() - Duration::from_secs(86_400 + 120);
    let old = issuer.mint_at(coturn.urls(), day_and_a_bit_ago);
    let run = coturn
        .allocate(
            old.username.as_deref().unwrap(),
            old.credential.as_deref().unwrap(),
        )
        .await;
    assert_refused(&run, &coturn);
}

/// A password from another secret, or a username whose expiry was pushed back without
/// a new password, is refused.
#[tokio::test]
async fn forged_credentials_are_refused() {
    let coturn = Coturn::start().await;
    let real = coturn.issuer().mint(coturn.urls());
    let (username, password) = (real.username.unwrap(), real.credential.unwrap());

    let wrong_secret = credential(b"not-the-secret", &username);
    let run = coturn.allocate(&username, &wrong_secret).await;
    assert_refused(&run, &coturn);

    let (expiry, id) = username.split_once(':').unwrap();
    let extended = format!("{}:{id}", expiry.parse::<u64>().unwrap() + 86_400);
    let run = coturn.allocate(&extended, &password).await;
    assert_refused(&run, &coturn);
}
