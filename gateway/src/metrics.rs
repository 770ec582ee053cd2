//! What a running gateway counts, for Prometheus: requests by operation and result, their
//! latency, upstream calls and errors, cache lookups, join fan-out and plugin calls. Labels are
//! names from the configuration and the manifest only (operations, upstreams, plugins, error
//! codes), never client input or variable values, so their number stays bounded.

use std::sync::atomic::AtomicI64;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The label of a request whose persisted operation was not found.
pub(crate) const NO_OPERATION: &str = "(none)";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: String,
    status: u16,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabel {
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamResult {
    upstream: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamCode {
    upstream: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpstreamLabel {
    upstream: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginResult {
    plugin: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginLabel {
    plugin: String,
}

/// Latency buckets from 100 µs to about 26 s.
fn latency() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 19,
    ))
}

/// The gateway's metrics and their registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: Family<OperationLabel, Histogram, fn() -> Histogram>,
    in_flight: Gauge<i64, AtomicI64>,
    upstream_requests: Family<UpstreamResult, Counter>,
    upstream_errors: Family<UpstreamCode, Counter>,
    upstream_seconds: Family<UpstreamLabel, Histogram, fn() -> Histogram>,
    cache_lookups: Family<UpstreamResult, Counter>,
    join_fanout: Histogram,
    plugin_calls: Family<PluginResult, Counter>,
    plugin_seconds: Family<PluginLabel, Histogram, fn() -> Histogram>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut metrics = Metrics {
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(latency),
            in_flight: Gauge::default(),
            upstream_requests: Family::default(),
            upstream_errors: Family::default(),
            upstream_seconds: Family::new_with_constructor(latency),
            cache_lookups: Family::default(),
            join_fanout: Histogram::new([
                1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0,
            ]),
            plugin_calls: Family::default(),
            plugin_seconds: Family::new_with_constructor(latency),
            registry: Registry::with_prefix("joinery"),
        };
        let registry = &mut metrics.registry;
        registry.register(
            "requests",
            "Client requests, by persisted operation, HTTP status and result code (`ok`, `errors` for a response with GraphQL errors, or the code of a refused request)",
            metrics.requests.clone(),
        );
        registry.register_with_unit(
            "request_duration",
            "Time to answer a client request, by persisted operation",
            Unit::Seconds,
            metrics.request_seconds.clone(),
        );
        registry.register(
            "requests_in_flight",
            "Client requests being answered",
            metrics.in_flight.clone(),
        );
        registry.register(
            "upstream_requests",
            "Requests sent to upstreams (cache hits and coalesced requests excluded), by upstream and result (`ok`, `http_<status>` for an answer that is not a success, or the code of a timeout or unreachable upstream)",
            metrics.upstream_requests.clone(),
        );
        registry.register(
            "upstream_errors",
            "Upstream requests whose fields got an error, by upstream and error code (timeouts, unreachable upstreams, unusable answers, policy denials, plugin failures)",
            metrics.upstream_errors.clone(),
        );
        registry.register_with_unit(
            "upstream_request_duration",
            "Time an upstream request took, policies and retries included, by upstream",
            Unit::Seconds,
            metrics.upstream_seconds.clone(),
        );
        registry.register(
            "cache_lookups",
            "Answer cache lookups, by upstream and result (`hit`, `miss`, `stale` for an answer served after a failure); per-key items count one each",
            metrics.cache_lookups.clone(),
        );
        registry.register(
            "join_fanout",
            "Items a `_join` runs for (after de-duplication of their calls: the list's length)",
            metrics.join_fanout.clone(),
        );
        registry.register(
            "plugin_calls",
            "Plugin calls, by plugin and result (`ok`, `failed`, `timeout`)",
            metrics.plugin_calls.clone(),
        );
        registry.register_with_unit(
            "plugin_call_duration",
            "Time a plugin call took, by plugin",
            Unit::Seconds,
            metrics.plugin_seconds.clone(),
        );
        metrics
    }
}

impl Metrics {
    /// The metrics in Prometheus' text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String does not fail");
        text
    }

    /// Counts a request being answered until the returned guard is dropped.
    pub fn in_flight(&self) -> InFlight<'_> {
        self.in_flight.inc();
        InFlight(&self.in_flight)
    }

    /// Records an answered client request.
    pub fn request(&self, operation: &str, status: u16, code: &str, took: Duration) {
        self.requests
            .get_or_create(&RequestLabels {
                operation: operation.to_string(),
                status,
                code: code.to_string(),
            })
            .inc();
        self.request_seconds
            .get_or_create(&OperationLabel {
                operation: operation.to_string(),
            })
            .observe(took.as_secs_f64());
    }

    /// The metrics of one upstream, recorded through handles made on first use.
    pub fn upstream(self: &Arc<Self>, upstream: &str) -> UpstreamMetrics {
        UpstreamMetrics {
            metrics: self.clone(),
            upstream: upstream.to_string(),
            ok: OnceLock::new(),
            seconds: OnceLock::new(),
            hit: OnceLock::new(),
            miss: OnceLock::new(),
        }
    }

    /// The metrics of one plugin, recorded through handles made on first use.
    pub fn plugin(self: &Arc<Self>, plugin: &str) -> PluginMetrics {
        PluginMetrics {
            metrics: self.clone(),
            plugin: plugin.to_string(),
            ok: OnceLock::new(),
            seconds: OnceLock::new(),
        }
    }

    fn upstream_result(&self, upstream: &str, result: &str) -> Counter {
        // `get_or_create`'s guard lives to the end of the statement that holds it: resolve
        // one series per statement, or a second lookup in the family waits on the first.
        let counter = self
            .upstream_requests
            .get_or_create(&UpstreamResult {
                upstream: upstream.to_string(),
                result: result.to_string(),
            })
            .clone();
        counter
    }

    fn cache_result(&self, upstream: &str, result: &str) -> Counter {
        let counter = self
            .cache_lookups
            .get_or_create(&UpstreamResult {
                upstream: upstream.to_string(),
                result: result.to_string(),
            })
            .clone();
        counter
    }

    /// Records a `_join` over `items` items.
    pub fn join(&self, items: usize) {
        self.join_fanout.observe(items as f64);
    }

    fn plugin_result(&self, plugin: &str, result: &str) -> Counter {
        let counter = self
            .plugin_calls
            .get_or_create(&PluginResult {
                plugin: plugin.to_string(),
                result: result.to_string(),
            })
            .clone();
        counter
    }
}

/// One upstream's metrics. The series every request touches (`ok`, its latency, cache hits and
/// misses) are looked up once, on first use, so that recording them costs no label lookup and
/// no label strings per request; rarer results are looked up when they happen.
#[derive(Debug)]
pub struct UpstreamMetrics {
    metrics: Arc<Metrics>,
    upstream: String,
    ok: OnceLock<Counter>,
    seconds: OnceLock<Histogram>,
    hit: OnceLock<Counter>,
    miss: OnceLock<Counter>,
}

impl UpstreamMetrics {
    /// Records a request: `result` is `ok`, `http_<status>` or an error code.
    pub fn request(&self, result: &str, took: Duration) {
        if result == "ok" {
            self.ok
                .get_or_init(|| self.metrics.upstream_result(&self.upstream, "ok"))
                .inc();
        } else {
            self.metrics.upstream_result(&self.upstream, result).inc();
        }
        self.seconds
            .get_or_init(|| {
                let histogram = self
                    .metrics
                    .upstream_seconds
                    .get_or_create(&UpstreamLabel {
                        upstream: self.upstream.clone(),
                    })
                    .clone();
                histogram
            })
            .observe(took.as_secs_f64());
    }

    /// Records a request whose fields got the error `code`.
    pub fn error(&self, code: &str) {
        self.metrics
            .upstream_errors
            .get_or_create(&UpstreamCode {
                upstream: self.upstream.clone(),
                code: code.to_string(),
            })
            .inc();
    }

    /// Records `n` cache lookups that ended as `result` (`hit`, `miss`, `stale`).
    pub fn cache(&self, result: &str, n: usize) {
        if n == 0 {
            return;
        }
        let counter = match result {
            "hit" => &self.hit,
            "miss" => &self.miss,
            other => {
                self.metrics
                    .cache_result(&self.upstream, other)
                    .inc_by(n as u64);
                return;
            }
        };
        counter
            .get_or_init(|| self.metrics.cache_result(&self.upstream, result))
            .inc_by(n as u64);
    }
}

/// One plugin's metrics, its `ok` calls and latency looked up once (see [`UpstreamMetrics`]).
#[derive(Debug)]
pub struct PluginMetrics {
    metrics: Arc<Metrics>,
    plugin: String,
    ok: OnceLock<Counter>,
    seconds: OnceLock<Histogram>,
}

impl PluginMetrics {
    /// Records a call: `result` is `ok`, `failed` or `timeout`.
    pub fn call(&self, result: &str, took: Duration) {
        if result == "ok" {
            self.ok
                .get_or_init(|| self.metrics.plugin_result(&self.plugin, "ok"))
                .inc();
        } else {
            self.metrics.plugin_result(&self.plugin, result).inc();
        }
        self.seconds
            .get_or_init(|| {
                let histogram = self
                    .metrics
                    .plugin_seconds
                    .get_or_create(&PluginLabel {
                        plugin: self.plugin.clone(),
                    })
                    .clone();
                histogram
            })
            .observe(took.as_secs_f64());
    }

    /// Records a call that never ran: `busy` (no instance came free in time), or `failed` or
    /// `timeout` (its instance could not be created). Not timed: it did not run.
    pub fn refused(&self, result: &str) {
        self.metrics.plugin_result(&self.plugin, result).inc();
    }
}

/// A request counted in flight; uncounted when dropped.
#[derive(Debug)]
pub struct InFlight<'a>(&'a Gauge<i64, AtomicI64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}
