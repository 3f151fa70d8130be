//! coturn's TURN test client `turnutils_uclient` (Debian package `coturn`): one run, and
//! what it reports.

use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// One client run may take this long before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// What one run did.
pub struct Allocation {
    pub success: bool,
    pub text: String,
}

/// Runs `turnutils_uclient` in client-to-client mode against 127.0.0.1:`port`: two
/// allocations with these credentials, one message relayed each way between them, over
/// TCP or UDP.
pub async fn allocate(port: u16, username: &str, password: &str, tcp: bool) -> Allocation {
    let mut command = Command::new("turnutils_uclient");
    if tcp {
        command.arg("-t");
    }
    let run = command
        .args(["-v", "-y", "-c", "-n", "1", "-m", "1", "-z", "5"])
        .args(["-u", username, "-w", password, "-p", &port.to_string()])
        .arg("127.0.0.1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(WAIT, run)
        .await
        .expect("turnutils_uclient timed out")
        .expect("turnutils_uclient not found: it comes with the Debian package coturn");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    Allocation {
        success: out.status.success(),
        text,
    }
}

impl Allocation {
    /// Messages sent and received through the relays, from the summary line
    /// `start_mclient: tot_send_msgs=2, tot_recv_msgs=2`.
    pub fn relayed(&self) -> Option<(u64, u64)> {
        let line = self
            .text
            .lines()
            .rev()
            .find(|l| l.contains("tot_send_msgs=") && !l.contains("msz="))?;
        let number = |key: &str| -> Option<u64> {
            let rest = &line[line.find(key)? + key.len()..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        Some((number("tot_send_msgs=")?, number("tot_recv_msgs=")?))
    }

    /// Both allocations made, and every message relayed came back.
    pub fn relayed_everything(&self) -> bool {
        self.success
            && self.text.contains("Received relay addr: 127.0.0.1:")
            && self
                .relayed()
                .is_some_and(|(sent, got)| sent > 0 && got == sent)
    }

    /// The server answered the allocation with an error (coturn's client says so in its
    /// own words, or prints the error code), and no relay address was handed out.
    pub fn was_refused(&self) -> bool {
        let error_answer = self.text.contains("Cannot complete Allocation")
            || self.text.contains(": error 4")
            || self.text.contains(": error 5");
        !self.success && error_answer && !self.text.contains("Received relay addr")
    }
}

/// A port free for both TCP and UDP on loopback (TURN servers listen on both).
pub fn free_port() -> u16 {
    loop {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = tcp.local_addr().unwrap().port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}
