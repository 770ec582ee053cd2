//! The answer cache's second layer: a Redis server that every replica shares. Each replica
//! asks its own in-process cache first, then Redis; what it fetches from an upstream it keeps
//! in both. Redis is a help, never a dependency: every call has a short time budget, and a
//! Redis that is down or slow only means answers come from the upstream (logged once while it
//! lasts; the connection comes back by itself).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::aio::ConnectionManager;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};

use super::in_flight::Key;
use super::Answer;
use crate::config::SharedCacheConfig;

/// How long after a failed connection attempt the next one is made.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// The shared layer.
pub(crate) struct SharedCache {
    client: redis::Client,
    timeout: Duration,
    connection: Mutex<Connection>,
    down: AtomicBool,
}

impl std::fmt::Debug for SharedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedCache").finish_non_exhaustive()
    }
}

enum Connection {
    Up(ConnectionManager),
    /// Not connected; the next attempt not before this.
    Down(Instant),
}

/// An answer as Redis holds it.
#[derive(Serialize, Deserialize)]
struct Stored {
    status: u16,
    is_json: bool,
    headers: Vec<(String, String)>,
    body: String,
    cache_control: Option<String>,
    /// When the upstream answered, and until when the answer is fresh (ms since the epoch).
    stored_ms: u64,
    fresh_until_ms: u64,
}

/// A shared answer: the answer, when the upstream gave it, and whether it is still fresh.
pub(super) struct Found {
    pub(super) answer: Answer,
    pub(super) stored: SystemTime,
    /// Time left while fresh; `None` when only good as a stale answer.
    pub(super) fresh_for: Option<Duration>,
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

impl SharedCache {
    /// The layer for `config`, if it names a Redis server (connected on first use).
    pub(crate) fn new(config: &SharedCacheConfig) -> Option<Arc<Self>> {
        let url = config.redis.as_ref()?;
        let client = match redis::Client::open(url.as_str()) {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "the [cache] redis URL cannot be used; caches stay in process");
                return None;
            }
        };
        Some(Arc::new(SharedCache {
            client,
            timeout: config.redis_timeout,
            connection: Mutex::new(Connection::Down(Instant::now())),
            down: AtomicBool::new(false),
        }))
    }

    /// A connection, or `None` while Redis cannot be reached.
    async fn connection(&self) -> Option<ConnectionManager> {
        {
            let state = self.connection.lock().expect("never poisoned");
            match &*state {
                Connection::Up(c) => return Some(c.clone()),
                Connection::Down(next) if Instant::now() < *next => return None,
                Connection::Down(_) => {}
            }
        }
        let connected =
            tokio::time::timeout(self.timeout * 5, self.client.get_connection_manager()).await;
        let mut state = self.connection.lock().expect("never poisoned");
        match connected {
            Ok(Ok(c)) => {
                *state = Connection::Up(c.clone());
                Some(c)
            }
            Ok(Err(e)) => {
                self.went_down(&e.to_string());
                *state = Connection::Down(Instant::now() + RECONNECT_AFTER);
                None
            }
            Err(_) => {
                self.went_down("connecting took too long");
                *state = Connection::Down(Instant::now() + RECONNECT_AFTER);
                None
            }
        }
    }

    fn went_down(&self, why: &str) {
        if !self.down.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = why,
                "Redis cache unavailable; answering without it until it is back"
            );
        }
    }

    fn is_up(&self) {
        if self.down.swap(false, Ordering::Relaxed) {
            tracing::info!("Redis cache is back");
        }
    }

    /// The answer shared under `namespace` and `key`, within the time budget.
    pub(super) async fn get(&self, namespace: &str, key: &Key) -> Option<Found> {
        self.get_many(namespace, &[key]).await.pop().flatten()
    }

    /// The answers shared under `namespace` and each of `keys` (in their order), in one round
    /// trip within the time budget; all `None` when Redis is down or slow.
    pub(super) async fn get_many(&self, namespace: &str, keys: &[&Key]) -> Vec<Option<Found>> {
        let none = || keys.iter().map(|_| None).collect();
        if keys.is_empty() {
            return Vec::new();
        }
        let Some(mut connection) = self.connection().await else {
            return none();
        };
        let mut command = redis::cmd("MGET");
        for key in keys {
            command.arg(redis_key(namespace, key));
        }
        let got: Vec<Option<Vec<u8>>> =
            match tokio::time::timeout(self.timeout, command.query_async(&mut connection)).await {
                Ok(Ok(v)) => {
                    self.is_up();
                    v
                }
                Ok(Err(e)) => {
                    self.went_down(&e.to_string());
                    return none();
                }
                Err(_) => {
                    self.went_down("no answer within redis_timeout");
                    return none();
                }
            };
        let now = millis(SystemTime::now());
        let mut found: Vec<Option<Found>> = got
            .into_iter()
            .map(|value| {
                let stored: Stored = serde_json::from_slice(&value?).ok()?;
                Some(Found {
                    fresh_for: (stored.fresh_until_ms > now)
                        .then(|| Duration::from_millis(stored.fresh_until_ms - now)),
                    stored: UNIX_EPOCH + Duration::from_millis(stored.stored_ms),
                    answer: Answer {
                        status: reqwest::StatusCode::from_u16(stored.status).ok()?,
                        is_json: stored.is_json,
                        headers: super::header_map(stored.headers),
                        body: Bytes::from(stored.body),
                        cache_control: stored
                            .cache_control
                            .and_then(|v| HeaderValue::from_str(&v).ok()),
                    },
                })
            })
            .collect();
        found.resize_with(keys.len(), || None);
        found
    }

    /// Shares `answer` (fresh for `fresh_for`, then kept `stale_for` more), without waiting.
    pub(super) fn put(
        self: &Arc<Self>,
        namespace: &str,
        key: &Key,
        answer: &Answer,
        (stored, fresh_for, stale_for): (SystemTime, Duration, Duration),
    ) {
        let Ok(body) = std::str::from_utf8(&answer.body) else {
            return;
        };
        let entry = Stored {
            status: answer.status.as_u16(),
            is_json: answer.is_json,
            headers: super::header_list(&answer.headers),
            body: body.to_string(),
            cache_control: answer
                .cache_control
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            stored_ms: millis(stored),
            fresh_until_ms: millis(stored + fresh_for),
        };
        let value = serde_json::to_vec(&entry).expect("entries serialize");
        let expire_ms = (fresh_for + stale_for).as_millis().max(1) as u64;
        let redis_key = redis_key(namespace, key);
        let this = self.clone();
        tokio::spawn(async move {
            let Some(mut connection) = this.connection().await else {
                return;
            };
            let command = redis::cmd("SET")
                .arg(redis_key)
                .arg(value)
                .arg("PX")
                .arg(expire_ms)
                .to_owned();
            let sent =
                tokio::time::timeout(this.timeout, command.query_async::<()>(&mut connection))
                    .await;
            match sent {
                Ok(Ok(())) => this.is_up(),
                Ok(Err(e)) => this.went_down(&e.to_string()),
                Err(_) => this.went_down("no answer within redis_timeout"),
            }
        });
    }
}

/// The Redis key of an answer: a digest of the namespace and everything the request sends,
/// so that keys stay short and say nothing of what was asked.
fn redis_key(namespace: &str, key: &Key) -> String {
    format!("joinery:1:{}", key.digest(namespace))
}
