//! Per-key entries of batch-form joins: each key's result of a batch call is kept on its own,
//! so that a later join with overlapping keys asks the upstream only for the keys it has not
//! seen. Entries live in the upstream's answer caches (the same byte bound, the same Redis
//! layer) under keys that cannot be mistaken for a request body.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::header::HeaderMap;

use super::cache::Cache;
use super::in_flight::Key;
use super::shared_cache::SharedCache;
use super::{Answer, RequestContext, Upstream};

/// Starts every item key's body: a request body is JSON and never starts with a zero byte.
const ITEM_MARK: &[u8] = b"\0item\0";

/// The per-key cache of one upstream for one client request (its headers are part of every
/// key, as they are of whole answers).
#[derive(Debug)]
pub(crate) struct ItemCache {
    namespace: String,
    cache: Arc<Cache>,
    shared: Option<Arc<SharedCache>>,
    headers: HeaderMap,
    counted: super::Counted,
}

/// The key of one item: the headers, and the call's identity with the item's key.
#[derive(Debug, Clone)]
pub(crate) struct ItemKey(Arc<Key>);

impl Upstream {
    /// The per-key cache for batch-form calls of `context`'s request, when this upstream keeps
    /// answers and has no policy plugins (a policy's response hook runs on each whole answer,
    /// which an item served on its own would skip).
    pub(crate) fn item_cache(&self, context: &RequestContext) -> Option<ItemCache> {
        if !self.policies.is_empty() {
            return None;
        }
        Some(ItemCache {
            namespace: self.namespace.clone(),
            cache: self.cache.clone()?,
            shared: self.shared.clone(),
            headers: self.request_headers(context),
            counted: self.counted(),
        })
    }
}

impl ItemCache {
    /// The key of an item whose call reads `identity` (the call's rendered selection and the
    /// values of everything it sends but the key) and whose key is `key` (as JSON).
    pub(crate) fn key(&self, identity: &[u8], key: &[u8]) -> ItemKey {
        let mut body = Vec::with_capacity(ITEM_MARK.len() + identity.len() + key.len() + 1);
        body.extend_from_slice(ITEM_MARK);
        body.extend_from_slice(identity);
        body.push(0);
        body.extend_from_slice(key);
        ItemKey(Arc::new(Key::new(&self.headers, &Bytes::from(body))))
    }

    /// The fresh entry of each key (as JSON text, in the keys' order): the in-process layer
    /// first, then the shared one (one round trip for all that were missing). Entries found are
    /// noted in `context` for the response's freshness report.
    pub(crate) async fn get_many(
        &self,
        keys: &[ItemKey],
        context: &RequestContext,
    ) -> Vec<Option<Bytes>> {
        let namespace = &self.namespace;
        let mut oldest: Option<SystemTime> = None;
        let mut note = |stored: SystemTime| {
            oldest = Some(oldest.map_or(stored, |o| o.min(stored)));
        };
        let mut found: Vec<Option<Bytes>> = keys
            .iter()
            .map(|key| {
                let (answer, stored) = self.cache.get(&key.0)?;
                note(stored);
                Some(answer.body)
            })
            .collect();
        if let Some(shared) = &self.shared {
            let missing: Vec<usize> = (0..keys.len()).filter(|&i| found[i].is_none()).collect();
            let asked: Vec<&Key> = missing.iter().map(|&i| &*keys[i].0).collect();
            for (i, got) in missing
                .into_iter()
                .zip(shared.get_many(namespace, &asked).await)
            {
                let Some(got) = got else { continue };
                let Some(fresh) = got.fresh_for else { continue };
                self.cache
                    .keep(keys[i].0.clone(), &got.answer, got.stored, fresh);
                note(got.stored);
                found[i] = Some(got.answer.body);
            }
        }
        if let Some(stored) = oldest {
            context.note_cached(namespace, stored, false);
        }
        let hits = found.iter().filter(|f| f.is_some()).count();
        self.counted.cache("hit", hits);
        self.counted.cache("miss", found.len() - hits);
        found
    }

    /// Keeps `item` (JSON text) under `key`, fresh for `fresh`, in both layers.
    pub(crate) fn keep(&self, key: &ItemKey, item: Vec<u8>, fresh: Duration) {
        let answer = Answer {
            status: reqwest::StatusCode::OK,
            is_json: true,
            headers: HeaderMap::new(),
            body: Bytes::from(item),
            cache_control: None,
        };
        let (namespace, shared) = (&self.namespace, self.shared.as_ref());
        super::keep_in_layers(
            &self.cache,
            shared,
            namespace,
            key.0.clone(),
            &answer,
            fresh,
        );
    }

    /// The entry of `key` past its freshness, within `stale_if_error` (in-process layer only):
    /// for when the upstream fails. Noted in `context` as stale.
    pub(crate) fn stale(&self, key: &ItemKey, context: &RequestContext) -> Option<Bytes> {
        let (answer, stored) = self.cache.stale(&key.0)?;
        context.note_cached(&self.namespace, stored, true);
        self.counted.cache("stale", 1);
        Some(answer.body)
    }
}
