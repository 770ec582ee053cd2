//! The HTTP server: GraphQL-over-HTTP on `/graphql`, `/health`, request ids, graceful shutdown.

mod connection;
mod explorer;
mod response;
mod rest;

use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::config::ConnectionLimits;
use crate::error_code::ErrorCode;
use crate::execute;
use crate::metrics::Metrics;
use crate::pipeline::Pipeline;
pub(crate) use crate::pipeline::{GraphQLRequest, RequestError};
use crate::plugin::PolicyPlugin;
pub(crate) use crate::registry::Entry;
pub use crate::registry::{Registry, RegistryError};
use crate::upstream::Upstreams;
pub use explorer::serve_explorer;
pub(crate) use response::MediaType;

/// Everything a running gateway serves from; shared by all connections.
#[derive(Debug)]
pub struct Gateway {
    /// Persisted documents and their plans.
    pub registry: Registry,
    /// Upstream clients.
    pub(crate) upstreams: Upstreams,
    /// Largest accepted request body.
    pub(crate) max_request_bytes: usize,
    /// Limits on client connections.
    pub(crate) connections: ConnectionLimits,
    /// Policy plugins whose request hook runs on every request, in order.
    pub(crate) policies: Vec<Arc<PolicyPlugin>>,
    /// What the gateway counts (served by [`serve_metrics`] where configured).
    pub metrics: Arc<Metrics>,
}

const REQUEST_ID: &str = "x-request-id";

impl Gateway {
    /// Answers one HTTP request.
    pub(crate) async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        let started = Instant::now();
        let request_id = request_id(&req);
        let span = tracing::info_span!(
            "request",
            id = %request_id,
            method = %req.method(),
            path = %req.uri().path(),
            operation = tracing::field::Empty,
            hash = tracing::field::Empty,
        );
        crate::telemetry::continue_trace(&span, req.headers());
        let mut response = async {
            let response = match req.uri().path() {
                "/health" => response::json_response(
                    StatusCode::OK,
                    MediaType::Json,
                    &serde_json::json!({ "status": "ok", "documents": self.registry.len() }),
                ),
                "/graphql" => {
                    let _in_flight = self.metrics.in_flight();
                    self.graphql(req, started).await
                }
                "/operations/openapi.json" => rest::openapi(self),
                path if path.starts_with("/operations/") => {
                    let _in_flight = self.metrics.in_flight();
                    self.rest(req, started).await
                }
                _ => response::json_response(
                    StatusCode::NOT_FOUND,
                    MediaType::Json,
                    &serde_json::json!({ "errors": [{ "message": "not found: GraphQL is served at /graphql" }] }),
                ),
            };
            tracing::info!(
                status = response.status().as_u16(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "request done"
            );
            response
        }
        .instrument(span)
        .await;
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, v);
        }
        response
    }

    async fn graphql(&self, req: Request<Incoming>, started: Instant) -> Response<Full<Bytes>> {
        let media = MediaType::negotiate(req.headers());
        let mut operation = None;
        let result = match media {
            Ok(_) => self.graphql_inner(req, &mut operation).await,
            Err(_) => Ok(execute::Response::default()),
        };
        self.respond(media, operation, result, started)
    }

    /// The HTTP response to a GraphQL request (or to an operation's REST endpoint), counted
    /// in the metrics under the operation it ran, if one was found.
    fn respond(
        &self,
        media: Result<MediaType, RequestError>,
        operation: Option<String>,
        result: Result<execute::Response, RequestError>,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        let (response, code) = match (media, result) {
            (Err(e), _) => {
                let code = e.code.as_str();
                (e.into_response(MediaType::Json), code)
            }
            (Ok(media), Ok(executed)) => {
                let code = if executed.errors.is_empty() {
                    "ok"
                } else {
                    "errors"
                };
                (response::graphql_response(media, &executed), code)
            }
            (Ok(media), Err(e)) => {
                if e.quotes_values {
                    tracing::info!(code = e.code.as_str(), "request refused");
                } else {
                    // Debug-formatted: messages may quote client text, which must not forge
                    // log lines.
                    tracing::info!(code = e.code.as_str(), message = ?e.message, "request refused");
                }
                let code = e.code.as_str();
                (e.into_response(media), code)
            }
        };
        self.metrics.request(
            operation.as_deref().unwrap_or(crate::metrics::NO_OPERATION),
            response.status().as_u16(),
            code,
            started.elapsed(),
        );
        response
    }

    async fn graphql_inner(
        &self,
        req: Request<Incoming>,
        operation: &mut Option<String>,
    ) -> Result<execute::Response, RequestError> {
        let (parts, body) = req.into_parts();
        let request = match parts.method {
            Method::GET => GraphQLRequest::from_query_string(parts.uri.query().unwrap_or(""))?,
            Method::POST => GraphQLRequest::from_json(&self.json_body(&parts, body).await?)?,
            other => {
                return Err(RequestError::new(
                    ErrorCode::MethodNotAllowed,
                    format!("method {other} is not allowed: use GET or POST"),
                )
                .with_status(StatusCode::METHOD_NOT_ALLOWED))
            }
        };
        self.pipeline()
            .run(&parts.method, parts.headers, request, operation)
            .await
    }

    /// Reads a POST body that must be JSON (`application/json`), within the size and time
    /// limits.
    async fn json_body(
        &self,
        parts: &hyper::http::request::Parts,
        body: Incoming,
    ) -> Result<Bytes, RequestError> {
        // A missing type is refused too: a cross-site `fetch` can send a body without
        // one (no preflight), and must not run operations with ambient credentials.
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()));
        let essence = content_type
            .as_deref()
            .and_then(|t| t.split(';').next())
            .unwrap_or("")
            .trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            let given = match &content_type {
                Some(t) => format!("not {t:?}"),
                None => "and this request has no Content-Type".to_string(),
            };
            return Err(RequestError::new(
                ErrorCode::UnsupportedMediaType,
                format!("POST bodies must be application/json, {given}"),
            )
            .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE));
        }
        let too_large = || {
            RequestError::new(
                ErrorCode::RequestTooLarge,
                format!("the request body exceeds {} bytes", self.max_request_bytes),
            )
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        };
        // Refused before reading when the client announces too much.
        let announced = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if announced.is_some_and(|n| n > self.max_request_bytes as u64) {
            return Err(too_large());
        }
        let read = Limited::new(body, self.max_request_bytes).collect();
        let bytes = tokio::time::timeout(self.connections.body_timeout, read)
            .await
            .map_err(|_| {
                RequestError::new(
                    ErrorCode::RequestTimeout,
                    format!(
                        "the request body did not arrive within {:?} (server.body_timeout)",
                        self.connections.body_timeout
                    ),
                )
                .with_status(StatusCode::REQUEST_TIMEOUT)
            })?
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    too_large()
                } else {
                    RequestError::bad_request(format!("the request body could not be read: {e}"))
                }
            })?
            .to_bytes();
        Ok(bytes)
    }

    /// The request pipeline over this gateway's registry, upstreams and policies.
    pub(crate) fn pipeline(&self) -> Pipeline<'_> {
        Pipeline {
            registry: &self.registry,
            upstreams: &self.upstreams,
            policies: &self.policies,
        }
    }

    /// Runs a parsed GraphQL request: finds its persisted operation, runs the policy plugins,
    /// coerces the variables and executes the plan. Only the fuzz targets call it.
    #[cfg(feature = "fuzzing")]
    pub(crate) async fn run(
        &self,
        method: &Method,
        headers: hyper::HeaderMap,
        request: GraphQLRequest,
    ) -> Result<execute::Response, RequestError> {
        self.pipeline()
            .run(method, headers, request, &mut None)
            .await
    }
}

fn request_id(req: &Request<Incoming>) -> String {
    if let Some(id) = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
    {
        return id.to_string();
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    let mut h = SEED.get_or_init(Default::default).build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    format!("{:016x}", h.finish())
}

/// Serves `metrics` at `/metrics` on `listener` (Prometheus' text format; `[metrics] listen`),
/// until the task is dropped.
pub async fn serve_metrics(metrics: Arc<Metrics>, listener: TcpListener) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "metrics are served at http://{local}/metrics");
    serve_side(listener, move |req| {
        let response = if req.uri().path() == "/metrics" && req.method() == Method::GET {
            Response::builder()
                .header(
                    CONTENT_TYPE,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                )
                .body(Full::new(Bytes::from(metrics.encode())))
        } else {
            Response::builder()
                .status(StatusCode::NOT_FOUND)
                .body(Full::new(Bytes::from_static(
                    b"metrics are served at /metrics\n",
                )))
        };
        std::future::ready(response.expect("static parts are valid"))
    })
    .await
}

/// Serves an address of its own (metrics, the explorer): one small HTTP/1 connection per
/// client, each request answered by `answer`, until the task is dropped.
async fn serve_side<F, R>(listener: TcpListener, answer: F) -> std::io::Result<()>
where
    F: Fn(Request<Incoming>) -> R + Clone + Send + Sync + 'static,
    R: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let local = listener.local_addr()?;
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!(address = %local, error = %e, "cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let answer = answer.clone();
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let answered = answer(req);
            async move { Ok::<_, Infallible>(answered.await) }
        });
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = connection.await {
                tracing::debug!(address = %local, error = %e, "a connection ended with an error");
            }
        });
    }
}

/// The gateway requests are served from now: a reload swaps it whole, and each request keeps
/// the one it started with until it is answered.
pub type Current = arc_swap::ArcSwap<Gateway>;

/// Serves `gateway` on `listener` until `shutdown` completes, then lets requests in flight
/// finish for up to `grace`.
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    serve_current(Arc::new(Current::new(gateway)), listener, shutdown, grace).await
}

/// [`serve`], answering each request from the gateway `current` holds when it arrives.
/// Connection limits are the first gateway's (a reload does not change them).
pub async fn serve_current(
    current: Arc<Current>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> std::io::Result<()> {
    let limits = current.load().connections;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // A client that trickles its headers must not hold a connection forever.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(Duration::from_secs(10));
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(limits.http2_max_streams)
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let local: SocketAddr = listener.local_addr()?;
    tracing::info!(address = %local, documents = current.load().registry.len(), "joinery is serving GraphQL at http://{local}/graphql");
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    // Set at shutdown: connections with no request in flight close at once, whatever their
    // protocol (an idle HTTP/2 client need not answer GOAWAY before the grace runs out).
    let (stopping_tx, stopping) = tokio::sync::watch::channel(false);
    let mut warned = connection::Warnings::default();
    loop {
        // At the connection limit, new connections wait in the listen queue.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        if slots.available_permits() == 0 {
            warned.full(limits.max_connections);
        }
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, usually: back off instead of spinning.
                        warned.accept_failed(&e);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let activity = Arc::new(connection::Activity::default());
                let service = {
                    let (current, activity) = (current.clone(), activity.clone());
                    hyper::service::service_fn(move |req| {
                        let (gateway, activity) = (current.load_full(), activity.clone());
                        async move {
                            let _busy = activity.start();
                            Ok::<_, Infallible>(gateway.handle(req).await)
                        }
                    })
                };
                let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let conn = graceful.watch(conn);
                let mut stopping = stopping.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    tokio::select! {
                        ended = conn => if let Err(e) = ended {
                            tracing::debug!(error = %e, "connection ended with an error");
                        },
                        _ = activity.idle(limits.idle_timeout) => {
                            tracing::debug!("closing a connection idle for {:?}", limits.idle_timeout);
                        }
                        _ = activity.drained(&mut stopping) => {
                            tracing::debug!("closing an idle connection at shutdown");
                        }
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    tracing::info!("shutting down: finishing requests in flight");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(grace) => tracing::warn!("grace period over; closing remaining connections"),
    }
    Ok(())
}
