//! `GET /metrics`: what the server is doing, in the Prometheus (OpenMetrics) text format,
//! optionally behind a bearer token.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::get};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, text};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use subtle::ConstantTimeEq;
use tracing::warn;

use crate::cluster::RedisRooms;
use crate::config::{Config, Secret};
use crate::membership::Membership;
use crate::rooms::Rooms;
use crate::signaling::{Shared, Stats};

/// Counters split by one label, e.g. relayed messages by event.
pub type ByLabel = Family<[(&'static str, &'static str); 1], Counter>;

/// What Prometheus negotiates for the OpenMetrics text format that the encoder writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Room sizes up to this are always listed, even at zero, so their series never vanish.
const LISTED_ROOM_SIZES: usize = 64;

#[derive(Clone)]
struct Exporter {
    registry: Arc<Registry>,
    token: Option<Secret>,
    /// In cluster mode: the store to read the room counts from before each scrape, and
    /// where to put them for [`Snapshot`].
    cluster: Option<(RedisRooms, ClusterCounts)>,
}

/// Room counts read from Redis for the scrape in progress; `None` when Redis did not
/// answer, and the room gauges are left out rather than shown stale.
type ClusterCounts = Arc<Mutex<Option<BTreeMap<usize, usize>>>>;

/// Where the room gauges come from.
#[derive(Debug)]
enum RoomCounts {
    /// This process's own table (a single node).
    Local(Rooms),
    /// The whole cluster's counts, kept in Redis by the membership scripts.
    Cluster(ClusterCounts),
}

/// The `/metrics` route over the server's counters and membership table.
pub fn router(config: &Config, shared: &Shared) -> Router {
    let mut registry = Registry::with_prefix("meshchat");
    let stats = &shared.stats;
    registry.register(
        "relayed",
        "Signaling messages relayed, by event",
        stats.relayed_by_event.clone(),
    );
    registry.register(
        "refusals",
        "Client requests refused, by reason",
        stats.refused_by_reason.clone(),
    );
    registry.register(
        "failed_emits",
        "Emits that failed (mostly a full client buffer), by event",
        stats.failed_emits_by_event.clone(),
    );
    registry.register(
        "connections_refused",
        "Socket.IO handshakes and requests refused before Socket.IO, by reason",
        stats.connections_refused.clone(),
    );
    let turn_issued = shared
        .turn
        .as_ref()
        .map(|t| t.issued().clone())
        .unwrap_or_default();
    registry.register("turn_credentials", "TURN credentials issued", turn_issued);
    let (rooms, cluster) = match &shared.membership {
        Membership::Local(_) => (RoomCounts::Local(shared.rooms.clone()), None),
        Membership::Cluster(store) => {
            let counts = ClusterCounts::default();
            (
                RoomCounts::Cluster(counts.clone()),
                Some((store.clone(), counts)),
            )
        }
    };
    registry.register_collector(Box::new(Snapshot {
        stats: stats.clone(),
        rooms,
        max_room_size: config.max_room_size,
    }));
    let exporter = Exporter {
        registry: Arc::new(registry),
        token: config.metrics_token.clone(),
        cluster,
    };
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(exporter)
}

async fn metrics(State(exporter): State<Exporter>, headers: HeaderMap) -> Response {
    if let Some(token) = &exporter.token
        && !authorized(&headers, token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a metrics token is required\n",
        )
            .into_response();
    }
    if let Some((store, counts)) = &exporter.cluster {
        let read = store
            .room_sizes()
            .await
            .inspect_err(|error| warn!(%error, "metrics: reading room counts from redis failed"))
            .ok();
        *lock(counts) = read;
    }
    let mut body = String::new();
    if let Err(error) = text::encode(&mut body, &exporter.registry) {
        warn!(?error, "metrics encoding failed");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// Whether the request carries `Authorization: Bearer <token>`. Compared in constant time
/// so response timing tells nothing about the token.
fn authorized(headers: &HeaderMap, token: &Secret) -> bool {
    let Some((scheme, given)) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
    else {
        return false;
    };
    scheme.eq_ignore_ascii_case("bearer")
        && bool::from(given.trim().as_bytes().ct_eq(token.expose().as_bytes()))
}

/// Values read at scrape time: the gauges and the plain counters of [`Stats`].
#[derive(Debug)]
struct Snapshot {
    stats: Arc<Stats>,
    rooms: RoomCounts,
    max_room_size: usize,
}

fn lock(counts: &ClusterCounts) -> std::sync::MutexGuard<'_, Option<BTreeMap<usize, usize>>> {
    // Only a map is stored or cloned under this lock, never an await.
    counts.lock().unwrap_or_else(|p| p.into_inner())
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let connected = self.stats.connected.load(Ordering::Relaxed);
        gauge(
            &mut encoder,
            "connected_sockets",
            "Sockets connected now.",
            connected,
        )?;

        let sizes = match &self.rooms {
            RoomCounts::Local(rooms) => rooms.sizes(),
            RoomCounts::Cluster(counts) => match lock(counts).clone() {
                Some(sizes) => sizes,
                None => return self.encode_counters(encoder),
            },
        };
        let rooms = sizes.values().sum();
        gauge(
            &mut encoder,
            "rooms",
            "Rooms with at least one member.",
            rooms,
        )?;
        let mut listed: BTreeMap<usize, usize> = (1..=self.max_room_size.min(LISTED_ROOM_SIZES))
            .map(|size| (size, 0))
            .collect();
        listed.extend(sizes);
        let mut family = encoder.encode_descriptor(
            "rooms_by_size",
            "Rooms now, by number of members.",
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for (members, count) in listed {
            let labels = [("members", members.to_string())];
            ConstGauge::new(as_i64(count)).encode(family.encode_family(&labels)?)?;
        }
        self.encode_counters(encoder)
    }
}

impl Snapshot {
    fn encode_counters(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counters = [
            (
                "rate_limited",
                "Events dropped by a rate limit.",
                &self.stats.rate_limited,
            ),
            (
                "floods",
                "Connections dropped for flooding.",
                &self.stats.floods,
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.load(Ordering::Relaxed));
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

fn gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: usize,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(as_i64(value));
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use clap::Parser;

    #[test]
    fn only_the_exact_bearer_token_is_authorized() {
        let token: Secret = "t0ken".parse().unwrap();
        let with = |value: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
            authorized(&h, &token)
        };
        assert!(with("Bearer t0ken"));
        assert!(with("bearer t0ken"));
        for bad in [
            "Bearer t0ke",
            "Bearer t0ken2",
            "Basic t0ken",
            "t0ken",
            "Bearer ",
        ] {
            assert!(!with(bad), "{bad:?}");
        }
        assert!(!authorized(&HeaderMap::new(), &token));
    }

    #[test]
    fn every_metric_is_listed_on_a_fresh_server() {
        let config = Config::parse_from(["meshchat", "--max-room-size", "3"]);
        let shared = Shared::new(&config);
        let mut registry = Registry::with_prefix("meshchat");
        registry.register_collector(Box::new(Snapshot {
            stats: shared.stats.clone(),
            rooms: RoomCounts::Local(shared.rooms.clone()),
            max_room_size: 3,
        }));
        let mut body = String::new();
        text::encode(&mut body, &registry).unwrap();
        for line in [
            "meshchat_connected_sockets 0",
            "meshchat_rooms 0",
            "meshchat_rooms_by_size{members=\"1\"} 0",
            "meshchat_rooms_by_size{members=\"3\"} 0",
            "meshchat_rate_limited_total 0",
            "meshchat_floods_total 0",
        ] {
            assert!(body.lines().any(|l| l == line), "{line:?} in\n{body}");
        }
        assert!(!body.contains("members=\"4\""), "{body}");
    }
}
