//! The deployment files checked against the code: fly.toml's port, readiness and liveness
//! checks, limits and shutdown against `common::config()` and the running binary, and the Dockerfile's
//! build against the build command CI runs.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use clap::CommandFactory;
use common::Server;
use meshchat::Config;
use tokio::io::{AsyncBufReadExt, BufReader};
use toml::Value;

fn read(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

fn fly() -> toml::Table {
    read("fly.toml")
        .parse()
        .expect("fly.toml is not valid TOML")
}

/// A fly.toml duration: an integer of seconds or a string like "15s".
fn seconds(v: &Value) -> u64 {
    match v {
        Value::Integer(n) => u64::try_from(*n).unwrap(),
        Value::String(s) => s
            .strip_suffix('s')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("unsupported duration {s:?}")),
        other => panic!("not a duration: {other:?}"),
    }
}

/// fly's `[http_service]`.
fn fly_service() -> toml::Table {
    fly()["http_service"].as_table().unwrap().clone()
}

/// fly routes to the port the server listens on by default.
#[test]
fn fly_routes_to_the_default_port() {
    assert_eq!(
        fly_service()["internal_port"].as_integer(),
        Some(i64::from(common::config().listen.port))
    );
}

/// fly forces HTTPS.
#[test]
fn fly_forces_https() {
    assert_eq!(fly_service()["force_https"].as_bool(), Some(true));
}

/// fly balances on connections, with the hard limit at MAX_CONNECTIONS and the soft limit
/// below it.
#[test]
fn fly_balances_on_connections_up_to_max_connections() {
    let service = fly_service();
    let concurrency = service["concurrency"].as_table().unwrap();
    assert_eq!(concurrency["type"].as_str(), Some("connections"));
    let hard = concurrency["hard_limit"].as_integer().unwrap();
    let soft = concurrency["soft_limit"].as_integer().unwrap();
    let max_connections = common::config().limits.max_connections;
    assert_eq!(hard, i64::try_from(max_connections).unwrap());
    assert!(0 < soft && soft < hard, "soft {soft}, hard {hard}");
}

/// fly.toml's `[env]`.
fn fly_env() -> toml::Table {
    fly()["env"].as_table().unwrap().clone()
}

/// Every variable fly.toml sets is one meshchat reads.
#[test]
fn fly_env_names_only_real_settings() {
    let known: Vec<String> = Config::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .chain(["RUST_LOG".to_owned()])
        .collect();
    for name in fly_env().keys() {
        assert!(known.contains(name), "fly.toml sets unknown {name}");
    }
}

/// TRUST_PROXY is on: behind fly's proxy, per-IP limits need the client address from
/// Fly-Client-IP.
#[test]
fn fly_trusts_its_proxy_for_client_addresses() {
    assert_eq!(fly_env()["TRUST_PROXY"].as_str(), Some("true"));
}

/// Secrets go through `fly secrets set`, never into the file.
#[test]
fn fly_toml_holds_no_secrets() {
    let env = fly_env();
    for secret in ["TURN_SECRET", "METRICS_TOKEN", "REDIS_URL"] {
        assert!(!env.contains_key(secret), "{secret} in fly.toml");
    }
}

/// fly publishes the STUN server's UDP port, the same outside and in, and meshchat binds
/// it where fly delivers UDP.
#[test]
fn fly_publishes_the_stun_port_over_udp() {
    let stun = i64::from(Config::defaults().ice.stun_port);
    let services = fly()["services"].as_array().unwrap().clone();
    let udp: Vec<&Value> = services
        .iter()
        .filter(|s| s["protocol"].as_str() == Some("udp"))
        .collect();
    assert_eq!(udp.len(), 1, "{services:?}");
    assert_eq!(udp[0]["internal_port"].as_integer(), Some(stun));
    let ports = udp[0]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0]["port"].as_integer(), Some(stun));
    assert_eq!(fly_env()["UDP_HOST"].as_str(), Some("fly-global-services"));
}

/// A node of a cluster whose Redis does not answer (nothing listens on its port): ready
/// never, alive all along.
async fn node_without_redis() -> Server {
    let port = common::uclient::free_port();
    Server::start_with(common::config_with(|c| {
        c.cluster.redis_url = Some(format!("redis://127.0.0.1:{port}"))
    }))
    .await
}

async fn status(server: &Server, path: &str) -> u16 {
    let response = common::http().get(server.url(path)).send().await.unwrap();
    response.status().as_u16()
}

/// fly routes only to machines passing their service checks: the one service check is
/// readiness, `GET /readyz`, which a ready node answers with 200 and a node that cannot
/// reach Redis with 503.
#[tokio::test]
async fn fly_routes_on_the_readiness_check() {
    let checks = fly_service()["checks"].as_array().unwrap().clone();
    assert_eq!(checks.len(), 1, "{checks:?}");
    assert_eq!(checks[0]["method"].as_str(), Some("GET"));
    let path = checks[0]["path"].as_str().unwrap();
    assert_eq!(path, "/readyz");
    assert!(seconds(&checks[0]["timeout"]) < seconds(&checks[0]["interval"]));
    assert_eq!(status(&Server::start().await, path).await, 200);
    assert_eq!(status(&node_without_redis().await, path).await, 503);
}

/// The liveness check is a top-level check (fly does not route on those), `GET /healthz`
/// on the server's port, which answers 200 even while the node is not ready.
#[tokio::test]
async fn fly_checks_liveness_apart_from_routing() {
    let fly = fly();
    let checks = fly["checks"]
        .as_table()
        .expect("a top-level [checks] table");
    assert_eq!(checks.len(), 1, "{checks:?}");
    let check = checks.values().next().unwrap();
    assert_eq!(check["type"].as_str(), Some("http"));
    assert_eq!(
        check["port"].as_integer(),
        Some(i64::from(common::config().listen.port))
    );
    let path = check["path"].as_str().unwrap();
    assert_eq!(path, "/healthz");
    assert_eq!(status(&node_without_redis().await, path).await, 200);
}

/// fly stops a machine with SIGTERM, which the binary handles as a graceful shutdown.
#[test]
fn fly_stops_machines_with_sigterm() {
    assert_eq!(fly()["kill_signal"].as_str(), Some("SIGTERM"));
}

/// fly waits longer than a graceful shutdown may take before killing the machine.
#[test]
fn fly_waits_longer_than_the_graceful_shutdown() {
    let kill_timeout = seconds(&fly()["kill_timeout"]);
    assert!(
        kill_timeout > common::config().listen.shutdown_timeout_secs,
        "kill_timeout {kill_timeout}s must exceed SHUTDOWN_TIMEOUT_SECS"
    );
}

/// The binary exits successfully on fly's kill signal, within fly's kill_timeout.
#[tokio::test]
async fn the_binary_exits_cleanly_on_flys_kill_signal_in_time() {
    let fly = fly();
    let signal = fly["kill_signal"].as_str().unwrap();
    let kill_timeout = seconds(&fly["kill_timeout"]);

    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_meshchat"))
        .env("HOST", "127.0.0.1")
        .env("PORT", "0")
        .env("STUN_PORT", "0")
        .env("LOG_FORMAT", "text")
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = tokio::time::timeout(common::WAIT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("listening") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(
        listening,
        Ok(true),
        "the binary never said it was listening"
    );
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let pid = child.id().unwrap().to_string();
    let name = signal.strip_prefix("SIG").unwrap();
    let sent = std::process::Command::new("kill")
        .args(["-s", name, &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = tokio::time::timeout(Duration::from_secs(kill_timeout), child.wait())
        .await
        .expect("still running after fly's kill_timeout")
        .unwrap();
    assert!(status.success(), "{status}");
}

/// A Dockerfile instruction: its keyword and the rest, continuation lines joined.
fn instructions(dockerfile: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in dockerfile.lines() {
        let line = line.trim();
        if line.starts_with('#') || (line.is_empty() && current.is_empty()) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                let (keyword, rest) = current.split_once(' ').unwrap_or((&current, ""));
                out.push((keyword.to_ascii_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

/// Instructions per stage, by stage name.
fn stages(dockerfile: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut stages: Vec<(String, Vec<(String, String)>)> = Vec::new();
    for (keyword, rest) in instructions(dockerfile) {
        if keyword == "FROM" {
            let name = rest
                .rsplit_once(" AS ")
                .map(|(_, n)| n.trim())
                .unwrap_or("");
            stages.push((name.to_owned(), Vec::new()));
        } else if let Some((_, list)) = stages.last_mut() {
            list.push((keyword, rest));
        }
    }
    stages
}

/// The one release build command, from the script both CI and the Dockerfile run.
const BUILD_SCRIPT: &str = "scripts/build-release.sh";

fn build_command() -> String {
    let script = read(BUILD_SCRIPT);
    let line = script
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("the build script runs cargo build");
    line.trim().trim_start_matches("exec ").to_owned()
}

/// The builder stage's RUN instructions, in order.
fn builder_runs() -> Vec<String> {
    let stages = stages(&read("Dockerfile"));
    let (_, builder) = stages
        .iter()
        .find(|(name, _)| name == "builder")
        .expect("a stage named builder");
    builder
        .iter()
        .filter(|(k, _)| k == "RUN")
        .map(|(_, r)| r.clone())
        .collect()
}

/// The dependency cook in the builder stage.
fn cook(runs: &[String]) -> &str {
    runs.iter()
        .find(|r| r.starts_with("cargo chef cook"))
        .expect("dependencies cooked in their own layer")
}

/// The image's binary is built by the release build script, as the builder's last step.
#[test]
fn the_image_is_built_by_the_release_build_script() {
    let runs = builder_runs();
    assert_eq!(
        runs.last().map(String::as_str),
        Some(BUILD_SCRIPT),
        "{runs:?}"
    );
}

/// The release build script builds with `cargo build --release`.
#[test]
fn the_release_build_script_builds_in_release_mode() {
    let command = build_command();
    assert!(command.starts_with("cargo build --release"), "{command}");
}

/// Dependencies are cooked with every flag of the release build, or the cached layer
/// would be useless.
#[test]
fn dependencies_are_cooked_with_the_release_build_flags() {
    let command = build_command();
    let flags: Vec<&str> = command["cargo build".len()..].split_whitespace().collect();
    let runs = builder_runs();
    let cook = cook(&runs);
    let cook_flags: Vec<&str> = cook.split_whitespace().collect();
    for flag in &flags {
        assert!(cook_flags.contains(flag), "cook lacks {flag}: {cook}");
    }
}

/// Dependencies are cooked before the sources arrive, so a source change keeps the
/// dependency layer.
#[test]
fn dependencies_are_cooked_before_the_sources_are_copied() {
    let stages = stages(&read("Dockerfile"));
    let (_, builder) = stages.iter().find(|(name, _)| name == "builder").unwrap();
    let runs = builder_runs();
    let cook = cook(&runs);
    let cook_at = builder.iter().position(|(_, r)| r == cook).unwrap();
    let copy_all = builder
        .iter()
        .position(|(k, r)| k == "COPY" && r == ". .")
        .expect("the sources are copied with COPY . .");
    assert!(cook_at < copy_all);
}

/// CI runs the release build script, through scripts/test.sh.
#[test]
fn ci_runs_the_release_build_script() {
    let ci = read("scripts/test.sh");
    assert!(
        ci.lines().any(|l| l.trim() == BUILD_SCRIPT),
        "scripts/test.sh does not run {BUILD_SCRIPT}"
    );
    assert!(read(".ci/run").contains("scripts/test.sh"));
}

/// The instructions of the runtime (last) stage with this keyword.
fn runtime(keyword: &str) -> Vec<String> {
    let stages = stages(&read("Dockerfile"));
    let (_, runtime) = stages.last().unwrap();
    runtime
        .iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, r)| r.clone())
        .collect()
}

/// The runtime image holds the release binary from the builder, and runs it.
#[test]
fn the_runtime_image_runs_the_release_binary() {
    let copies = runtime("COPY");
    assert!(
        copies.iter().any(|c| c.starts_with("--from=builder")
            && c.contains("/app/target/release/meshchat ")
            && c.ends_with("/usr/local/bin/meshchat")),
        "{copies:?}"
    );
    assert_eq!(runtime("ENTRYPOINT"), [r#"["/usr/local/bin/meshchat"]"#]);
}

/// The runtime image runs as a non-root user.
#[test]
fn the_runtime_image_runs_as_non_root() {
    let users = runtime("USER");
    let user = users.last().expect("a USER instruction");
    let uid = user.split(':').next().unwrap();
    assert!(!matches!(uid, "0" | "root" | ""), "runs as {user}");
}

/// The runtime image listens on all interfaces on the default port, and exposes it.
#[test]
fn the_runtime_image_listens_on_all_interfaces_on_the_default_port() {
    let env: Vec<String> = runtime("ENV")
        .iter()
        .flat_map(|e| e.split_whitespace().map(str::to_owned))
        .collect();
    let port = common::config().listen.port;
    assert!(env.contains(&"HOST=0.0.0.0".to_owned()), "{env:?}");
    assert!(env.contains(&format!("PORT={port}")), "{env:?}");
    let exposed: Vec<String> = runtime("EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace().map(str::to_owned))
        .collect();
    let stun = Config::defaults().ice.stun_port;
    assert_eq!(exposed, [port.to_string(), format!("{stun}/udp")]);
}

/// The `.dockerignore` patterns, normalised to plain paths.
fn dockerignore() -> Vec<String> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_end_matches('/').trim_start_matches("**/").to_owned())
        .collect()
}

/// The build context leaves out build outputs, installed packages and git history.
#[test]
fn the_build_context_leaves_out_outputs_and_installed_packages() {
    let patterns = dockerignore();
    for excluded in ["target", "node_modules", ".git"] {
        assert!(
            patterns.iter().any(|p| p == excluded),
            "{excluded} not ignored"
        );
    }
}

/// The build context keeps everything the build reads.
#[test]
fn the_build_context_keeps_what_the_build_reads() {
    let patterns = dockerignore();
    for needed in [
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        ".cargo",
        "src",
        "public",
        "scripts",
        "bench/loadgen",
    ] {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(needed).exists(),
            "{needed} missing from the repository"
        );
        assert!(
            !patterns
                .iter()
                .any(|p| p == needed || needed.starts_with(&format!("{p}/"))),
            "{needed} is ignored but the build needs it"
        );
    }
}
