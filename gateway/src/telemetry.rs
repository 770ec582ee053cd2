//! Logging with `tracing` (readable lines or JSON, filtered by the config or `RUST_LOG`), and
//! with `[traces] endpoint`, OpenTelemetry traces exported over OTLP/HTTP: a span per client
//! request (operation name and hash, never variable values), per upstream request, per join
//! wave and per plugin call, continuing the client's W3C `traceparent` and passing it on to
//! upstreams.

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{LogConfig, LogFormat, TracesConfig};

/// Whether spans are exported (spans only traces need are not made otherwise).
static TRACING: AtomicBool = AtomicBool::new(false);

/// Flushes the spans not yet exported when the gateway stops.
#[derive(Debug)]
pub(crate) struct Traces(SdkTracerProvider);

impl Traces {
    /// Exports what is left and stops the exporter.
    pub(crate) fn shutdown(self) {
        if let Err(e) = self.0.shutdown() {
            tracing::warn!(error = %e, "the last spans could not be exported");
        }
    }
}

/// Installs the global subscriber; a second call is a no-op (tests start several gateways).
pub fn init(log: &LogConfig) {
    let _ = install(log, None);
}

/// [`init`], exporting traces where `traces` says. Returns what flushes them at the end.
pub(crate) fn init_with_traces(
    log: &LogConfig,
    traces: &TracesConfig,
) -> anyhow::Result<Option<Traces>> {
    let Some(endpoint) = &traces.endpoint else {
        init(log);
        return Ok(None);
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(endpoint.as_str())
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()
        .map_err(|e| anyhow::anyhow!("cannot export traces to {endpoint}: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(
            opentelemetry_sdk::Resource::builder()
                .with_service_name(traces.service_name.clone())
                .build(),
        )
        .build();
    if install(log, Some(&provider)) {
        TRACING.store(true, Ordering::Relaxed);
    }
    Ok(Some(Traces(provider)))
}

/// Installs the subscriber (with the OpenTelemetry layer when `provider` is given); says
/// whether it was installed.
fn install(log: &LogConfig, provider: Option<&SdkTracerProvider>) -> bool {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&log.level));
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match log.format {
        LogFormat::Human => lines.boxed(),
        LogFormat::Json => lines
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let spans = provider.map(|p| tracing_opentelemetry::layer().with_tracer(p.tracer("joinery")));
    tracing_subscriber::registry()
        .with(filter)
        .with(lines)
        .with(spans)
        .try_init()
        .is_ok()
}

/// A span for traces only: `make()` when traces are exported, else a span that costs nothing.
pub(crate) fn traced(make: impl FnOnce() -> Span) -> Span {
    if TRACING.load(Ordering::Relaxed) {
        make()
    } else {
        Span::none()
    }
}

/// Makes `span` continue the trace of the client's `traceparent` header, if it sent one.
pub(crate) fn continue_trace(span: &Span, headers: &hyper::HeaderMap) {
    if TRACING.load(Ordering::Relaxed) {
        let parent =
            TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
        let _ = span.set_parent(parent);
    }
}

/// Adds the `traceparent` of the current span to an upstream request's `headers`.
pub(crate) fn pass_trace_on(headers: &mut hyper::HeaderMap) {
    if TRACING.load(Ordering::Relaxed) {
        let context = Span::current().context();
        TraceContextPropagator::new()
            .inject_context(&context, &mut opentelemetry_http::HeaderInjector(headers));
    }
}
