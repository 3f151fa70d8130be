//! Emits that may be sent again after a failure without being received twice: an emit
//! made inside [`scope`] reaches the other nodes at most once per key.

use std::cell::Cell;
use std::future::Future;

// A publish that timed out may still run once Redis answers, and the retry must then not
// deliver it a second time. The key rides with the emit's future as a task-local value,
// through socketioxide's adapter (which publishes inside the emit's own task) down to
// `cluster/pubsub.rs`, which also notes here when another node had published under that
// key first: the emit then fails, so that nothing is delivered on this node either (that
// node's publish reached its sockets too), and the caller takes it as told.
struct Scope {
    key: String,
    elsewhere: Cell<bool>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// Runs `emit` with `key` as its once-key. The flag says whether another node had told it
/// already (then `emit` failed, and nothing is left to do).
pub(crate) async fn scope<F: Future>(key: String, emit: F) -> (F::Output, bool) {
    let scope = Scope {
        key,
        elsewhere: Cell::new(false),
    };
    SCOPE
        .scope(scope, async {
            let out = emit.await;
            (out, SCOPE.with(|s| s.elsewhere.get()))
        })
        .await
}

/// The once-key of the emit being published, if it has one.
pub(crate) fn key() -> Option<String> {
    SCOPE.try_with(|s| s.key.clone()).ok()
}

/// Notes that another node published under the current once-key first.
pub(crate) fn told_elsewhere() {
    let _ = SCOPE.try_with(|s| s.elsewhere.set(true));
}
