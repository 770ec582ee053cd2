//! Around each request to an HTTP upstream: retries of queries that failed in a way that may
//! pass, and a circuit breaker that stops asking an upstream that keeps failing.

use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::{BreakerConfig, RetryConfig};

/// Whether an answer or failure may pass if the request is sent again: the connection failed,
/// or the upstream (or a proxy in front of it) said 502, 503 or 504. A timeout is not retried:
/// it has already cost the whole time limit.
pub(super) fn may_pass(unavailable: bool, status: Option<u16>) -> bool {
    unavailable || matches!(status, Some(502..=504))
}

/// The wait before retry number `retry` (0-based): `backoff` doubled each time, plus up to
/// half of it at random.
pub(super) fn backoff(config: &RetryConfig, retry: u32) -> Duration {
    let base = config.backoff.saturating_mul(1 << retry.min(16));
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    base + base.mul_f64((random % 1000) as f64 / 2000.0)
}

/// One upstream's circuit breaker.
#[derive(Debug)]
pub(super) struct Breaker {
    namespace: String,
    config: BreakerConfig,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Requests go; `failures` in a row so far.
    Closed { failures: u32 },
    /// Requests are refused until `until`.
    Open { until: Instant },
    /// One request is probing the upstream; others are refused.
    Probing,
}

/// Leave to send one request, to be reported back with [`Ticket::record`].
#[must_use]
pub(super) struct Ticket<'b> {
    breaker: &'b Breaker,
    probe: bool,
    recorded: bool,
}

impl Breaker {
    pub(super) fn new(namespace: &str, config: BreakerConfig) -> Self {
        Breaker {
            namespace: namespace.to_string(),
            config,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("the breaker is never poisoned")
    }

    /// Leave to send a request now, or how long the breaker stays open.
    pub(super) fn admit(&self) -> Result<Ticket<'_>, Duration> {
        let mut state = self.lock();
        let probe = match *state {
            State::Closed { .. } => false,
            State::Open { until } => {
                let now = Instant::now();
                if now < until {
                    return Err(until - now);
                }
                *state = State::Probing;
                true
            }
            State::Probing => return Err(Duration::ZERO),
        };
        Ok(Ticket {
            breaker: self,
            probe,
            recorded: false,
        })
    }
}

impl Ticket<'_> {
    /// Reports how the request went.
    pub(super) fn record(mut self, failed: bool) {
        self.recorded = true;
        let breaker = self.breaker;
        let open_for = breaker.config.open_for;
        let mut state = breaker.lock();
        match (*state, self.probe, failed) {
            (State::Probing, true, false) => {
                *state = State::Closed { failures: 0 };
                tracing::info!(upstream = %breaker.namespace, "upstream answered again; its circuit breaker is closed");
            }
            (State::Probing, true, true) => {
                *state = State::Open {
                    until: Instant::now() + open_for,
                };
            }
            (State::Closed { .. }, false, false) => *state = State::Closed { failures: 0 },
            (State::Closed { failures }, false, true) => {
                let failures = failures + 1;
                *state = if failures >= breaker.config.failures {
                    tracing::warn!(upstream = %breaker.namespace, failures, ?open_for, "upstream failed too often in a row; its circuit breaker is open");
                    State::Open {
                        until: Instant::now() + open_for,
                    }
                } else {
                    State::Closed { failures }
                };
            }
            // Requests sent before the breaker opened do not change it.
            _ => {}
        }
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        // A probe given up before it ended: let the next request probe.
        if self.probe && !self.recorded {
            let mut state = self.breaker.lock();
            if matches!(*state, State::Probing) {
                *state = State::Open {
                    until: Instant::now(),
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_failures_in_a_row_and_probes_once_open_for_has_passed() {
        let b = Breaker::new(
            "x",
            BreakerConfig {
                failures: 2,
                open_for: Duration::from_millis(40),
            },
        );
        b.admit().unwrap().record(true);
        b.admit().unwrap().record(false); // a success resets the count
        b.admit().unwrap().record(true);
        b.admit().unwrap().record(true);
        assert!(b.admit().is_err(), "open after two failures in a row");
        std::thread::sleep(Duration::from_millis(50));
        let probe = b.admit().unwrap();
        assert!(b.admit().is_err(), "one probe at a time");
        probe.record(true);
        assert!(b.admit().is_err(), "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(50));
        drop(b.admit().unwrap());
        // The probe was given up: the next request probes.
        b.admit().unwrap().record(false);
        b.admit().unwrap().record(false);
        assert!(b.admit().is_ok(), "closed after a good probe");
    }

    #[test]
    fn backoff_doubles_with_up_to_half_added() {
        let config = RetryConfig {
            attempts: 3,
            backoff: Duration::from_millis(100),
        };
        for retry in 0..3 {
            let base = Duration::from_millis(100 << retry);
            let wait = backoff(&config, retry);
            assert!(
                wait >= base && wait <= base.mul_f64(1.5),
                "{retry}: {wait:?}"
            );
        }
        assert!(may_pass(true, None));
        assert!(may_pass(false, Some(503)));
        assert!(!may_pass(false, Some(500)));
        assert!(!may_pass(false, Some(200)));
    }
}
