//! Keeps each socket's handlers in arrival order: socketioxide runs every event's handler
//! as its own task, and a candidate that overtakes its offer breaks the reference client.
//! A handler takes a [`Ticket`] while its packet is decoded and waits for its turn.

use std::sync::Mutex;

use tokio::sync::oneshot;

/// The queue of one socket's handlers: each waits for the one taken before it.
#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    tail: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Sequencer {
    /// Takes the next place in line. Must be called in arrival order (from an extractor).
    pub(crate) fn ticket(&self) -> Ticket {
        let (done, next) = oneshot::channel();
        // The lock is never held across an await, so a std mutex is fine.
        let prev = self
            .tail
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .replace(next);
        Ticket {
            prev,
            done: Some(done),
        }
    }

    /// Whether every handler that took a ticket has finished, so an event handled at once,
    /// in the socket's read loop, cannot overtake one. Called in arrival order, like
    /// [`Sequencer::ticket`].
    pub(crate) fn is_idle(&self) -> bool {
        let mut tail = self
            .tail
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let finished = match tail.as_mut() {
            None => true,
            // Closed: the last handler's turn ended, and with it every earlier one's.
            Some(last) => !matches!(last.try_recv(), Err(oneshot::error::TryRecvError::Empty)),
        };
        if finished {
            *tail = None;
        }
        finished
    }
}

/// A place in a socket's line of handlers.
#[derive(Debug)]
pub(crate) struct Ticket {
    prev: Option<oneshot::Receiver<()>>,
    done: Option<oneshot::Sender<()>>,
}

impl Ticket {
    /// Waits until every handler that took a ticket earlier has finished.
    pub(crate) async fn wait(mut self) -> Running {
        if let Some(prev) = self.prev.take() {
            // An error only means the predecessor's turn ended without a send: it is done.
            let _ = prev.await;
        }
        Running {
            _done: self.done.take(),
        }
    }
}

impl Drop for Ticket {
    /// A ticket dropped before its turn must still hold its successors back until its
    /// predecessor is done, or they would overtake it.
    fn drop(&mut self) {
        if let (Some(prev), Some(done)) = (self.prev.take(), self.done.take())
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = prev.await;
                drop(done);
            });
        }
    }
}

/// Held while a handler runs; the next handler in line starts when it is dropped.
#[derive(Debug)]
pub(crate) struct Running {
    _done: Option<oneshot::Sender<()>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn handlers_finish_in_ticket_order_even_when_later_ones_are_faster() {
        let seq = Sequencer::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for i in 0..50u64 {
            let ticket = seq.ticket();
            let log = log.clone();
            tasks.push(tokio::spawn(async move {
                let _running = ticket.wait().await;
                // Earlier handlers are slower, so without the sequencer they would finish last.
                tokio::time::sleep(Duration::from_micros(50 * (50 - i))).await;
                log.lock().unwrap().push(i);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(*log.lock().unwrap(), (0..50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn idle_only_once_every_ticket_taken_has_run_its_turn() {
        let seq = Sequencer::default();
        assert!(seq.is_idle(), "a new line is idle");
        let first = seq.ticket();
        let second = seq.ticket();
        assert!(!seq.is_idle(), "two tickets not yet run");
        drop(first.wait().await);
        assert!(!seq.is_idle(), "the second ticket has not run");
        let running = second.wait().await;
        assert!(!seq.is_idle(), "the second handler is still running");
        drop(running);
        assert!(seq.is_idle(), "every handler has finished");
        let third = seq.ticket();
        assert!(!seq.is_idle(), "a ticket taken after idling counts again");
        drop(third.wait().await);
        assert!(seq.is_idle());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_ticket_dropped_before_its_turn_does_not_let_successors_overtake() {
        let seq = Sequencer::default();
        let first = seq.ticket();
        let dropped = seq.ticket();
        let third = seq.ticket();
        let first_running = first.wait().await;
        drop(dropped);
        let mut third_running = Box::pin(third.wait());
        let early = tokio::time::timeout(Duration::from_millis(100), &mut third_running).await;
        assert!(
            early.is_err(),
            "the third handler ran while the first still held its turn"
        );
        drop(first_running);
        tokio::time::timeout(Duration::from_secs(5), third_running)
            .await
            .expect("the third handler never got its turn");
    }
}
