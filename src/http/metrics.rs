//! `GET /metrics`: what the server counts, with the room gauges, in the Prometheus
//! (OpenMetrics) text format, optionally behind a bearer token.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Router, routing::get};
use subtle::ConstantTimeEq;
use tracing::warn;

use crate::config::{OpsConfig, Secret};
use crate::membership::Membership;
use crate::metrics::{Metrics, RoomGauges};

/// What Prometheus negotiates for the OpenMetrics text format that the encoder writes.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone)]
struct Exporter {
    metrics: Arc<Metrics>,
    membership: Membership,
    token: Option<Secret>,
}

/// `GET /metrics`.
pub(crate) fn router(config: &OpsConfig, metrics: Arc<Metrics>, membership: Membership) -> Router {
    let exporter = Exporter {
        metrics,
        membership,
        token: config.metrics_token.clone(),
    };
    Router::new()
        .route("/metrics", get(scrape))
        .with_state(exporter)
}

async fn scrape(State(exporter): State<Exporter>, headers: HeaderMap) -> Response {
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
    // With Redis, the counts are the whole cluster's; while Redis does not answer they are
    // left out rather than shown stale.
    let rooms = match exporter.membership.room_sizes().await {
        Ok(sizes) => Some(RoomGauges {
            sizes,
            listed: exporter.membership.limits().room_size,
        }),
        Err(error) => {
            warn!(%error, "metrics: reading room counts failed");
            None
        }
    };
    let body = match exporter.metrics.encode(rooms) {
        Ok(body) => body,
        Err(error) => {
            warn!(?error, "metrics encoding failed");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

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
}
