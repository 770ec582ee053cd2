//! Client connections: what a connection is doing, so that idle ones are closed, and warnings
//! about the connection limit that do not flood the log.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Requests in flight on one connection, and when the last one started or ended.
#[derive(Debug)]
pub(super) struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last request start or end.
    last: AtomicU64,
    in_flight: AtomicUsize,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }
}

/// A request in flight; its end counts as activity.
pub(super) struct Busy<'a>(&'a Activity);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    /// Marks a request as started until the guard drops.
    pub(super) fn start(&self) -> Busy<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.touch();
        Busy(self)
    }

    fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Release);
    }

    /// Resolves once the connection has had no request in flight for `timeout` (a connection
    /// that never sends a request included); a request in flight is limited by the body and
    /// upstream timeouts instead.
    pub(super) async fn idle(&self, timeout: Duration) {
        loop {
            let last = Duration::from_millis(self.last.load(Ordering::Acquire));
            let since = self.epoch.elapsed().saturating_sub(last);
            if self.in_flight.load(Ordering::Acquire) == 0 && since >= timeout {
                return;
            }
            let wait = if since >= timeout {
                timeout
            } else {
                timeout - since
            };
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
    }
}

impl Activity {
    /// Resolves once `stopping` is set if the connection is idle then: no request in flight and
    /// none ended in the last 100 ms (its response may still be on its way out). A connection
    /// busy at shutdown is left to the graceful shutdown, which finishes its requests.
    pub(super) async fn drained(&self, stopping: &mut tokio::sync::watch::Receiver<bool>) {
        if stopping.wait_for(|s| *s).await.is_err() {
            // The server is gone without a shutdown: the connection ends by itself.
            return std::future::pending().await;
        }
        const QUIET: Duration = Duration::from_millis(100);
        loop {
            if self.in_flight.load(Ordering::Acquire) > 0 {
                return std::future::pending().await;
            }
            let last = Duration::from_millis(self.last.load(Ordering::Acquire));
            let since = self.epoch.elapsed().saturating_sub(last);
            if since >= QUIET {
                return;
            }
            tokio::time::sleep(QUIET - since).await;
        }
    }
}

/// Warnings about connections, at most one of a kind every ten seconds.
#[derive(Debug, Default)]
pub(super) struct Warnings {
    full: Option<Instant>,
    accept: Option<Instant>,
    accept_suppressed: u64,
}

const EVERY: Duration = Duration::from_secs(10);

fn due(last: &mut Option<Instant>) -> bool {
    if last.is_some_and(|t| t.elapsed() < EVERY) {
        return false;
    }
    *last = Some(Instant::now());
    true
}

impl Warnings {
    /// Every connection slot is taken.
    pub(super) fn full(&mut self, max: usize) {
        if due(&mut self.full) {
            tracing::warn!(
                max_connections = max,
                "the connection limit is reached: new connections wait until one closes (server.max_connections)"
            );
        }
    }

    /// `accept` failed (e.g. out of file descriptors).
    pub(super) fn accept_failed(&mut self, error: &std::io::Error) {
        if due(&mut self.accept) {
            let suppressed = std::mem::take(&mut self.accept_suppressed);
            tracing::warn!(
                error = %error,
                suppressed,
                "accepting a connection failed; backing off (lower server.max_connections below the open-file limit)"
            );
        } else {
            self.accept_suppressed += 1;
        }
    }
}
