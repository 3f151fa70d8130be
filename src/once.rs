//! Emits that may be sent again after a failure without being received twice: an emit
//! made inside [`scope`] reaches the other nodes at most once per key.

use std::future::Future;

// A publish that timed out may still run once Redis answers, and the retry must then not
// deliver it a second time. The key rides with the emit's future as a task-local value,
// through socketioxide's adapter (which publishes inside the emit's own task) down to
// `cluster/pubsub.rs`.
tokio::task_local! {
    static KEY: String;
}

/// Runs `emit` with `key` as its once-key.
pub(crate) async fn scope<F: Future>(key: String, emit: F) -> F::Output {
    KEY.scope(key, emit).await
}

/// The once-key of the emit being published, if it has one.
pub(crate) fn key() -> Option<String> {
    KEY.try_with(Clone::clone).ok()
}
