//! `[cache]`: the Redis server behind the upstreams' in-process caches.

use std::time::Duration;

use super::check::Check;
use super::raw::RawSharedCache;

/// `[cache]`: a Redis server the answer caches of every replica share (a second layer behind
/// each upstream's in-process cache).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SharedCacheConfig {
    /// `redis://host:port[/db]` or `redis+unix:///path/to/socket`. Default none.
    pub(crate) redis: Option<String>,
    /// Longest a request waits for Redis before going on without it. Default `20ms`.
    pub(crate) redis_timeout: Duration,
}

pub(super) fn check(check: &mut Check, raw: &RawSharedCache) -> SharedCacheConfig {
    SharedCacheConfig {
        redis: raw.redis.as_ref().and_then(|url| {
            let text = url.get_ref();
            let known = ["redis://", "redis+unix://", "unix://"];
            if known.iter().any(|scheme| text.starts_with(scheme)) {
                Some(text.clone())
            } else {
                check.at(
                    url.span(),
                    format!("`redis` must be a redis:// or redis+unix:// URL, not {text:?}"),
                );
                None
            }
        }),
        redis_timeout: check.duration(&raw.redis_timeout, Duration::from_millis(20)),
    }
}
