//! The in-process answer cache of one HTTP upstream: answers to queries kept for the
//! upstream's `ttl` (or less, as its `Cache-Control` says), keyed like coalescing (the whole
//! request body and every header sent), least recently used first out once `max_bytes` is
//! reached.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use lru::LruCache;
use reqwest::header::HeaderValue;

use super::in_flight::Key;
use super::Answer;
use crate::config::CacheConfig;

/// Bytes an entry costs beyond its key and body (bookkeeping), so that many tiny entries are
/// bounded too.
const OVERHEAD: usize = 128;

/// One upstream's cache.
#[derive(Debug)]
pub(super) struct Cache {
    config: CacheConfig,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    entries: LruCache<Arc<Key>, Entry>,
    bytes: usize,
}

#[derive(Debug)]
struct Entry {
    answer: Answer,
    expires: Instant,
    /// When the upstream answered.
    stored: SystemTime,
    size: usize,
}

impl Cache {
    pub(super) fn new(config: CacheConfig) -> Self {
        Cache {
            config,
            inner: Mutex::new(Inner {
                entries: LruCache::unbounded(),
                bytes: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("the cache is never poisoned")
    }

    /// The fresh answer to `key`, if there is one, and when the upstream gave it.
    pub(super) fn get(&self, key: &Key) -> Option<(Answer, SystemTime)> {
        self.find(key, Duration::ZERO)
    }

    /// The answer to `key` even past its freshness, within `stale_if_error`: for when the
    /// upstream fails.
    pub(super) fn stale(&self, key: &Key) -> Option<(Answer, SystemTime)> {
        self.find(key, self.config.stale_if_error?)
    }

    fn find(&self, key: &Key, grace: Duration) -> Option<(Answer, SystemTime)> {
        let mut inner = self.lock();
        let entry = inner.entries.get(key)?;
        let now = Instant::now();
        if entry.expires + grace > now {
            return Some((entry.answer.clone(), entry.stored));
        }
        // Kept past its freshness only while it may still serve as a stale answer.
        let keep = self.config.stale_if_error.unwrap_or_default();
        if entry.expires + keep <= now {
            if let Some(gone) = inner.entries.pop(key) {
                inner.bytes -= gone.size;
            }
        }
        None
    }

    /// How long `answer`, which holds root `fields`, may be kept fresh: the `ttl` (the
    /// shortest `field_ttl` of its fields where they have one), or less as its `Cache-Control`
    /// says; `None` when it must not be kept.
    pub(super) fn freshness_of(&self, answer: &Answer, fields: &[String]) -> Option<Duration> {
        let ttl = if self.config.field_ttl.is_empty() {
            self.config.ttl
        } else {
            fields
                .iter()
                .map(|field| {
                    self.config
                        .field_ttl
                        .iter()
                        .find(|f| &f.field == field)
                        .map_or(self.config.ttl, |f| f.ttl)
                })
                .min()
                .unwrap_or(self.config.ttl)
        };
        freshness(ttl, answer.cache_control.as_ref())
    }

    /// How long past its freshness an answer is kept for `stale_if_error`.
    pub(super) fn stale_window(&self) -> Duration {
        self.config.stale_if_error.unwrap_or_default()
    }

    /// Keeps `answer` to `key` for as long as the config and the answer's `Cache-Control`
    /// allow (nothing kept when either says not to).
    #[cfg(test)]
    fn put(&self, key: Arc<Key>, answer: &Answer) {
        if let Some(ttl) = self.freshness_of(answer, &[]) {
            self.keep(key, answer, SystemTime::now(), ttl);
        }
    }

    /// Keeps `answer` to `key`, given by the upstream at `stored`, fresh for `ttl` from now.
    pub(super) fn keep(&self, key: Arc<Key>, answer: &Answer, stored: SystemTime, ttl: Duration) {
        let size = key.size() + answer.body.len() + OVERHEAD;
        if size > self.config.max_bytes {
            return;
        }
        let mut inner = self.lock();
        let entry = Entry {
            // A copy of exactly its size: the body read may share a larger buffer, which the
            // byte count would not see.
            answer: Answer {
                body: bytes::Bytes::copy_from_slice(&answer.body),
                ..answer.clone()
            },
            expires: Instant::now() + ttl,
            stored,
            size,
        };
        if let Some(old) = inner.entries.put(key, entry) {
            inner.bytes -= old.size;
        }
        inner.bytes += size;
        while inner.bytes > self.config.max_bytes {
            match inner.entries.pop_lru() {
                Some((_, out)) => inner.bytes -= out.size,
                None => break,
            }
        }
    }

    /// Bytes held (for tests).
    #[cfg(test)]
    fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

/// How long an answer may be kept: the configured `ttl`, shortened by `max-age`; `None` when
/// `Cache-Control` says `no-store`, `no-cache` or `private` (a shared cache must not keep it).
fn freshness(ttl: Duration, cache_control: Option<&HeaderValue>) -> Option<Duration> {
    let Some(value) = cache_control else {
        return (!ttl.is_zero()).then_some(ttl);
    };
    let text = value.to_str().ok()?.to_ascii_lowercase();
    let mut fresh = ttl;
    for directive in text.split(',').map(str::trim) {
        match directive.split_once('=') {
            None if matches!(directive, "no-store" | "no-cache" | "private") => return None,
            Some(("max-age" | "s-maxage", seconds)) => {
                let seconds: u64 = seconds.trim_matches('"').parse().ok()?;
                fresh = fresh.min(Duration::from_secs(seconds));
            }
            _ => {}
        }
    }
    (!fresh.is_zero()).then_some(fresh)
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use reqwest::header::HeaderMap;

    use super::*;

    fn answer(body: &str, cache_control: Option<&'static str>) -> Answer {
        Answer {
            status: reqwest::StatusCode::OK,
            is_json: true,
            headers: Default::default(),
            body: Bytes::copy_from_slice(body.as_bytes()),
            cache_control: cache_control.map(HeaderValue::from_static),
        }
    }

    fn key(body: &str) -> Arc<Key> {
        Arc::new(Key::new(
            &HeaderMap::new(),
            &Bytes::copy_from_slice(body.as_bytes()),
        ))
    }

    #[test]
    fn cache_control_shortens_or_forbids_keeping() {
        let ttl = Duration::from_secs(60);
        let at = |v: &'static str| freshness(ttl, Some(&HeaderValue::from_static(v)));
        assert_eq!(freshness(ttl, None), Some(ttl));
        assert_eq!(at("public, max-age=5"), Some(Duration::from_secs(5)));
        assert_eq!(at("max-age=600"), Some(ttl));
        assert_eq!(at("s-maxage=\"7\""), Some(Duration::from_secs(7)));
        for never in [
            "no-store",
            "No-Cache",
            "private, max-age=60",
            "max-age=0",
            "max-age=soon",
        ] {
            assert_eq!(at(never), None, "{never}");
        }
    }

    #[test]
    fn answers_expire_and_the_byte_bound_holds() {
        let cache = Cache::new(CacheConfig {
            ttl: Duration::from_millis(30),
            field_ttl: Vec::new(),
            max_bytes: 4096,
            stale_if_error: Some(Duration::from_millis(30)),
        });
        cache.put(key("a"), &answer("{\"data\":{}}", None));
        assert!(cache.get(&key("a")).is_some());
        cache.put(key("b"), &answer("{}", Some("no-store")));
        assert!(cache.get(&key("b")).is_none());
        std::thread::sleep(Duration::from_millis(40));
        assert!(cache.get(&key("a")).is_none(), "expired");
        assert!(cache.stale(&key("a")).is_some(), "kept for stale_if_error");
        std::thread::sleep(Duration::from_millis(30));
        assert!(cache.stale(&key("a")).is_none());
        assert!(cache.get(&key("a")).is_none());
        assert_eq!(cache.bytes(), 0);

        // A flood of distinct keys: held bytes stay under the bound, the newest are kept.
        let body = "x".repeat(500);
        for i in 0..100 {
            cache.put(key(&format!("k{i}")), &answer(&body, None));
            assert!(cache.bytes() <= 4096);
        }
        assert!(cache.get(&key("k99")).is_some());
        assert!(cache.get(&key("k0")).is_none());
        // An answer larger than the whole bound is not kept.
        cache.put(key("huge"), &answer(&"x".repeat(5000), None));
        assert!(cache.get(&key("huge")).is_none());
    }
}
