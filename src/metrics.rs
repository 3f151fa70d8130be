//! What the server counts, and its text in the Prometheus (OpenMetrics) format, with the
//! room gauges, for `GET /metrics` (in `http/`).

use std::collections::BTreeMap;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, text};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;
use socketioxide::{BroadcastError, SendError, SocketError};
use tracing::{debug, warn};

use crate::protocol::Signal;

/// Counters split by one label, e.g. relayed messages by event.
type ByLabel = Family<[(&'static str, &'static str); 1], Counter>;

/// Everything the server counts. Shared by the handlers, the gate and `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Sockets connected now.
    pub(crate) connected: Gauge,
    /// Events dropped by a rate limit.
    pub(crate) rate_limited: Counter,
    /// Connections dropped for flooding.
    pub(crate) floods: Counter,
    /// TURN credentials handed out.
    pub(crate) turn_credentials: Counter,
    /// Embedded TURN: relay allocations now, and the bytes they carried.
    pub(crate) turn_allocations: Gauge,
    pub(crate) turn_relayed_bytes: Counter,
    turn_refusals: ByLabel,
    /// Relayed messages, by [`Signal`] in the order of [`Signal::ALL`]: counted on every
    /// relay, where a labelled lookup cost more than the count.
    relayed: [Counter; 3],
    /// Cluster mode: relays published to another node's inbox, relays received in this
    /// node's, those received whose target was not here, and relays whose target's node
    /// had to be asked of Redis.
    pub(crate) cluster_relays_sent: Counter,
    pub(crate) cluster_relays_received: Counter,
    pub(crate) cluster_relays_undelivered: Counter,
    pub(crate) cluster_lookups: Counter,
    refusals: ByLabel,
    /// Resumes: `resumed`, or the `resume_*` reason a resume was refused for.
    resumes: ByLabel,
    failed_emits: ByLabel,
    connections_refused: ByLabel,
}

impl Metrics {
    pub(crate) fn relayed(&self, signal: Signal) {
        let index = Signal::ALL.iter().position(|s| *s == signal).unwrap_or(0);
        self.relayed[index].inc();
    }

    /// The relay counters as one family by event, as `/metrics` shows them.
    fn relayed_by_event(&self) -> ByLabel {
        let family = ByLabel::default();
        for (signal, count) in Signal::ALL.iter().zip(&self.relayed) {
            if count.get() > 0 {
                family
                    .get_or_create(&[("event", signal.event())])
                    .inc_by(count.get());
            }
        }
        family
    }

    pub(crate) fn refused(&self, reason: &'static str) {
        self.refusals.get_or_create(&[("reason", reason)]).inc();
    }

    /// A resume's outcome: `resumed`, or the reason it was refused.
    pub(crate) fn resumed(&self, outcome: &'static str) {
        self.resumes.get_or_create(&[("outcome", outcome)]).inc();
    }

    /// A TURN request the embedded relay refused.
    pub(crate) fn turn_refused(&self, reason: &'static str) {
        self.turn_refusals
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// An HTTP request the gate turned away before Socket.IO.
    pub(crate) fn connection_refused(&self, reason: &'static str) {
        self.connections_refused
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    /// Counts and logs a failed emit of `event`: mostly a client's full outgoing buffer.
    /// One whose targets had all just closed is a normal race with their disconnect (a
    /// whole room leaving at once, a node shutting down): counted, but logged at debug, or
    /// thousands of them would flood the log.
    pub(crate) fn count_failed<E: EmitFailure>(&self, sent: Result<(), E>, event: &'static str) {
        if let Err(error) = sent {
            self.failed_emits.get_or_create(&[("event", event)]).inc();
            if error.targets_closed() {
                debug!(event, ?error, "emit failed: target closed");
            } else {
                warn!(event, ?error, "emit failed");
            }
        }
    }

    /// Every metric in the OpenMetrics text format, plus the room gauges when `rooms` is
    /// known.
    pub(crate) fn encode(&self, rooms: Option<RoomGauges>) -> Result<String, std::fmt::Error> {
        let mut body = String::new();
        text::encode(&mut body, &self.registry(rooms))?;
        Ok(body)
    }

    /// A registry for one scrape: every metric, plus the room gauges when `rooms` is known.
    fn registry(&self, rooms: Option<RoomGauges>) -> Registry {
        let mut registry = Registry::with_prefix("meshchat");
        registry.register(
            "connected_sockets",
            "Sockets connected now",
            self.connected.clone(),
        );
        registry.register(
            "relayed",
            "Signaling messages relayed, by event",
            self.relayed_by_event(),
        );
        registry.register(
            "cluster_relays_sent",
            "Relays published to the node of their target",
            self.cluster_relays_sent.clone(),
        );
        registry.register(
            "cluster_relays_received",
            "Relays received from another node",
            self.cluster_relays_received.clone(),
        );
        registry.register(
            "cluster_relays_undelivered",
            "Relays received from another node whose target was not here",
            self.cluster_relays_undelivered.clone(),
        );
        registry.register(
            "cluster_lookups",
            "Relays whose target's node was asked of Redis",
            self.cluster_lookups.clone(),
        );
        registry.register(
            "refusals",
            "Client requests refused, by reason",
            self.refusals.clone(),
        );
        registry.register(
            "resumes",
            "Resumes asked for, by outcome: resumed, or the reason refused",
            self.resumes.clone(),
        );
        registry.register(
            "failed_emits",
            "Emits that failed (mostly a full client buffer), by event",
            self.failed_emits.clone(),
        );
        registry.register(
            "connections_refused",
            "Socket.IO handshakes and requests refused before Socket.IO, by reason",
            self.connections_refused.clone(),
        );
        registry.register(
            "rate_limited",
            "Events dropped by a rate limit",
            self.rate_limited.clone(),
        );
        registry.register(
            "floods",
            "Connections dropped for flooding",
            self.floods.clone(),
        );
        registry.register(
            "turn_credentials",
            "TURN credentials issued",
            self.turn_credentials.clone(),
        );
        registry.register(
            "turn_allocations",
            "Embedded TURN: relay allocations now",
            self.turn_allocations.clone(),
        );
        registry.register(
            "turn_relayed_bytes",
            "Embedded TURN: bytes relayed, both directions",
            self.turn_relayed_bytes.clone(),
        );
        registry.register(
            "turn_refusals",
            "Embedded TURN: credentials and allocations refused, by reason",
            self.turn_refusals.clone(),
        );
        if let Some(rooms) = rooms {
            registry.register_collector(Box::new(rooms));
        }
        registry
    }
}

/// Room sizes up to this are always listed, even at zero, so their series never vanish.
const LISTED_ROOM_SIZES: usize = 64;

/// The room gauges of one scrape.
#[derive(Debug)]
pub(crate) struct RoomGauges {
    /// Rooms by member count.
    pub(crate) sizes: BTreeMap<usize, usize>,
    /// Sizes listed even at zero: 1 to this (the room size cap), at most [`LISTED_ROOM_SIZES`].
    pub(crate) listed: usize,
}

impl Collector for RoomGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let rooms = ConstGauge::new(as_i64(self.sizes.values().sum()));
        rooms.encode(encoder.encode_descriptor(
            "rooms",
            "Rooms with at least one member.",
            None,
            rooms.metric_type(),
        )?)?;
        let mut listed: BTreeMap<usize, usize> = (1..=self.listed.min(LISTED_ROOM_SIZES))
            .map(|size| (size, 0))
            .collect();
        listed.extend(&self.sizes);
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
        Ok(())
    }
}

fn as_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A failed emit, as [`Metrics::count_failed`] tells them apart.
pub(crate) trait EmitFailure: std::fmt::Debug {
    /// Whether every target the emit failed for had already closed.
    fn targets_closed(&self) -> bool;
}

impl EmitFailure for SendError {
    fn targets_closed(&self) -> bool {
        matches!(self, SendError::Socket(SocketError::Closed))
    }
}

impl EmitFailure for BroadcastError {
    fn targets_closed(&self) -> bool {
        match self {
            BroadcastError::Socket(errors) => {
                errors.iter().all(|e| matches!(e, SocketError::Closed))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A broadcast counts as finding its targets gone only when every one of them had
    /// closed: one full buffer among them is worth a warning.
    #[test]
    fn an_emit_fails_quietly_only_when_every_target_had_closed() {
        use SocketError::{Closed, InternalChannelFull};
        assert!(SendError::Socket(Closed).targets_closed());
        assert!(!SendError::Socket(InternalChannelFull).targets_closed());
        assert!(BroadcastError::Socket(vec![Closed, Closed]).targets_closed());
        assert!(!BroadcastError::Socket(vec![Closed, InternalChannelFull]).targets_closed());
    }

    #[test]
    fn every_metric_is_listed_on_a_fresh_server() {
        let rooms = RoomGauges {
            sizes: BTreeMap::new(),
            listed: 3,
        };
        let mut body = String::new();
        text::encode(&mut body, &Metrics::default().registry(Some(rooms))).unwrap();
        for line in [
            "meshchat_connected_sockets 0",
            "meshchat_rooms 0",
            "meshchat_rooms_by_size{members=\"1\"} 0",
            "meshchat_rooms_by_size{members=\"3\"} 0",
            "meshchat_rate_limited_total 0",
            "meshchat_floods_total 0",
            "meshchat_turn_credentials_total 0",
            "meshchat_turn_allocations 0",
            "meshchat_turn_relayed_bytes_total 0",
        ] {
            assert!(body.lines().any(|l| l == line), "{line:?} in\n{body}");
        }
        assert!(!body.contains("members=\"4\""), "{body}");
    }

    #[test]
    fn room_gauges_are_left_out_when_the_counts_are_unknown() {
        let mut body = String::new();
        text::encode(&mut body, &Metrics::default().registry(None)).unwrap();
        assert!(!body.contains("meshchat_rooms"), "{body}");
        assert!(body.contains("meshchat_connected_sockets 0"), "{body}");
    }
}
