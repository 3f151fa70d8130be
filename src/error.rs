//! Internal failures (today: Redis), kept apart from the refusals clients see
//! ([`crate::protocol::Refusal`]): what went wrong inside is logged, never sent.

use std::time::Duration;

/// Why an internal operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("redis did not answer in time")]
    RedisTimeout,
    /// Settings that can never work, found at startup; the message is for the operator.
    #[error("{0}")]
    Startup(String),
    /// An emit under a once-key that another node published first: every node's sockets,
    /// this one's too, got that node's, so this one delivers nothing (see `src/once.rs`).
    #[error("already told by another node")]
    ToldElsewhere,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Runs a Redis call with a hard deadline, so no request waits on Redis longer than that.
pub(crate) async fn bounded<T>(
    timeout: Duration,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T> {
    match tokio::time::timeout(timeout, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(Error::RedisTimeout),
    }
}
