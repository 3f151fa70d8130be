//! Gives the heap's free pages back to the system once a node's crowd has shrunk: glibc
//! returns freed memory only from the top of each of its heaps, so the pages departed
//! clients used would otherwise stay in the process's RSS.

use std::sync::Arc;
use std::time::Duration;

use tracing::debug;

use crate::metrics::Metrics;

/// How often the number of clients is looked at.
const EVERY: Duration = Duration::from_secs(30);

/// Watches the client count until the runtime ends, trimming after each fall. In the chaos
/// soak a node whose clients had all gone held 21.0 MiB, 13.7 once trimmed (BENCHMARKS.md):
/// without it, a small machine's memory looks taken by clients who left long ago.
pub(crate) fn start(metrics: Arc<Metrics>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        // The most clients seen since the last trim.
        let mut most = 0;
        loop {
            every.tick().await;
            let now = metrics.connected.get().max(0);
            most = most.max(now);
            if fell(most, now) {
                debug!(from = most, to = now, "clients fell: trimming the heap");
                most = now;
                let _ = tokio::task::spawn_blocking(release).await;
            }
        }
    });
}

/// Whether enough clients left since the peak for their memory to be worth giving back:
/// a quarter of them and more than a handful, or the last of them (a node left idle holds
/// nothing for anyone, however few it served).
fn fell(most: i64, now: i64) -> bool {
    let gone = most - now;
    (now == 0 && most > 0) || (gone >= 16 && gone * 4 >= most)
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release() {
    // SAFETY: malloc_trim takes no pointers; it only releases pages glibc's allocator
    // holds free, under the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Other allocators (musl's, say) give memory back by themselves, or cannot be asked to.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release() {}

#[cfg(test)]
mod tests {
    use super::fell;

    #[test]
    fn trims_after_a_quarter_and_more_than_a_handful_left_or_the_last() {
        assert!(fell(100, 75));
        assert!(!fell(100, 76));
        assert!(fell(16, 0));
        assert!(!fell(15, 1), "a handful of clients is not worth a trim");
        assert!(fell(3, 0), "unless none is left");
        assert!(!fell(0, 0), "nothing was served since the last trim");
        assert!(!fell(1000, 1000));
    }
}
