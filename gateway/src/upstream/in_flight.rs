//! Request coalescing: identical queries to one upstream that are in flight at the same moment
//! are sent once, and every asker gets the answer. Identical means the same JSON body and the
//! same headers (forwarded client headers and those policy plugins set included), so that an
//! answer never reaches a request that would have been sent differently.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt, Shared, WeakShared};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::{Answer, FetchError};

type Request = BoxFuture<'static, Result<Answer, FetchError>>;
/// Hashed with aHash: keys hold whole request bodies, which SipHash takes a microsecond or more
/// to hash, and aHash is built to resist collisions forced by chosen input (client variables).
type Table = HashMap<Arc<Key>, (u64, WeakShared<Request>), ahash::RandomState>;

/// What makes two upstream requests the same: every header sent and the whole body.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(super) struct Key {
    headers: Vec<(HeaderName, HeaderValue)>,
    body: Bytes,
}

impl Key {
    pub(super) fn new(headers: &HeaderMap, body: &Bytes) -> Self {
        Key {
            headers: headers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone()))
                .collect(),
            body: body.clone(),
        }
    }

    /// A SHA-256 digest of `namespace` and the key, in hex.
    pub(super) fn digest(&self, namespace: &str) -> String {
        use sha2::{Digest, Sha256};
        let mut hash = Sha256::new();
        hash.update(namespace.as_bytes());
        for (name, value) in &self.headers {
            hash.update([0]);
            hash.update(name.as_str().as_bytes());
            hash.update([0]);
            hash.update(value.as_bytes());
        }
        hash.update([1]);
        hash.update(&self.body);
        hex::encode(hash.finalize())
    }

    /// Bytes the key holds.
    pub(super) fn size(&self) -> usize {
        self.body.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len())
                .sum::<usize>()
    }
}

/// The requests of one upstream in flight, by what they send.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    next_id: AtomicU64,
    /// Weak, so that a flight nobody waits for any more is dropped (and its request cancelled)
    /// rather than kept alive by this table.
    flights: Mutex<Table>,
}

/// Takes a flight's entry out of the table when the flight ends or is dropped.
struct Landing {
    table: Arc<InFlight>,
    key: Arc<Key>,
    id: u64,
}

impl Drop for Landing {
    fn drop(&mut self) {
        let mut flights = self.table.lock();
        // A flight dropped by its last waiter may already have been replaced by a new one.
        if flights.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            flights.remove(&self.key);
        }
    }
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.flights.lock().expect("the table is never poisoned")
    }

    /// The answer to sending `body` with `headers`: from the identical request in flight if
    /// there is one, else from `send(headers, body)`, shared with identical requests that come
    /// while it is in flight.
    pub(super) async fn join<F>(
        self: &Arc<Self>,
        headers: HeaderMap,
        body: Bytes,
        send: impl FnOnce(HeaderMap, Bytes) -> F,
    ) -> Result<Answer, FetchError>
    where
        F: std::future::Future<Output = Result<Answer, FetchError>> + Send + 'static,
    {
        let key = Arc::new(Key::new(&headers, &body));
        self.join_keyed(key, headers, body, send).await
    }

    /// [`InFlight::join`] with the request's key made already (the cache made it).
    pub(super) async fn join_keyed<F>(
        self: &Arc<Self>,
        key: Arc<Key>,
        headers: HeaderMap,
        body: Bytes,
        send: impl FnOnce(HeaderMap, Bytes) -> F,
    ) -> Result<Answer, FetchError>
    where
        F: std::future::Future<Output = Result<Answer, FetchError>> + Send + 'static,
    {
        let flight: Shared<Request> = {
            let mut flights = self.lock();
            match flights.get(&key).and_then(|(_, weak)| weak.upgrade()) {
                Some(flight) => flight,
                None => {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let landing = Landing {
                        table: self.clone(),
                        key: key.clone(),
                        id,
                    };
                    let request = send(headers, body);
                    let flight = async move {
                        let _landing = landing;
                        request.await
                    }
                    .boxed()
                    .shared();
                    let weak = flight.downgrade().expect("a new flight has not ended");
                    flights.insert(key, (id, weak));
                    flight
                }
            }
        };
        flight.await
    }

    /// Number of flights in the table (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    fn answer(body: &'static str) -> Answer {
        Answer {
            status: reqwest::StatusCode::OK,
            is_json: true,
            headers: Default::default(),
            body: Bytes::from_static(body.as_bytes()),
            cache_control: None,
        }
    }

    #[tokio::test]
    async fn identical_requests_in_flight_are_sent_once_and_the_table_empties() {
        let table = Arc::new(InFlight::default());
        let sent = Arc::new(AtomicUsize::new(0));
        let ask = |body: &'static str, auth: &'static str| {
            let (table, sent) = (table.clone(), sent.clone());
            async move {
                let mut headers = HeaderMap::new();
                headers.insert("authorization", HeaderValue::from_static(auth));
                table
                    .join(headers, Bytes::from_static(body.as_bytes()), move |_, b| {
                        sent.fetch_add(1, Ordering::SeqCst);
                        async move {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(Answer {
                                body: b,
                                ..answer("")
                            })
                        }
                    })
                    .await
            }
        };
        let same = futures::future::join_all((0..10).map(|_| ask("{\"a\":1}", "x"))).await;
        assert_eq!(sent.load(Ordering::SeqCst), 1);
        assert!(same.iter().all(|r| r.as_ref().unwrap().body == "{\"a\":1}"));
        assert_eq!(table.len(), 0);

        // Another body or another header value is another request.
        sent.store(0, Ordering::SeqCst);
        let (a, b, c) = futures::join!(
            ask("{\"a\":1}", "x"),
            ask("{\"a\":2}", "x"),
            ask("{\"a\":1}", "y")
        );
        assert_eq!(sent.load(Ordering::SeqCst), 3);
        assert_eq!(a.unwrap().body, "{\"a\":1}");
        assert_eq!(b.unwrap().body, "{\"a\":2}");
        assert_eq!(c.unwrap().body, "{\"a\":1}");
        assert_eq!(table.len(), 0);
    }

    #[tokio::test]
    async fn a_flight_nobody_waits_for_is_dropped_and_leaves_the_table() {
        let table = Arc::new(InFlight::default());
        let sending = table.join(HeaderMap::new(), Bytes::from_static(b"{}"), |_, _| {
            futures::future::pending()
        });
        // Polled once (the flight starts), then given up.
        assert!(futures::poll!(Box::pin(sending)).is_pending());
        assert_eq!(table.len(), 0);
        // A later identical request is sent anew.
        let again = table
            .join(HeaderMap::new(), Bytes::from_static(b"{}"), |_, _| async {
                Ok(answer("{\"data\":{}}"))
            })
            .await;
        assert_eq!(again.unwrap().body, "{\"data\":{}}");
        assert_eq!(table.len(), 0);
    }
}
