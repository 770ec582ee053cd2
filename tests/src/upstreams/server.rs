//! A minimal GraphQL-over-HTTP server with request recording and fault injection.

use std::{
    fmt, io,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use async_graphql::{BatchRequest, Executor};
use bytes::Bytes;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full, StreamBody};
use hyper::{
    body::Incoming, header, service::service_fn, HeaderMap, Method, Request, Response, StatusCode,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use serde_json::{json, Value};
use tokio::{
    net::TcpListener,
    sync::oneshot,
    task::{JoinHandle, JoinSet},
};

/// A fault injected by an [`Upstream`] into the requests that follow [`Upstream::set_fault`].
#[derive(Clone, Debug, Default)]
pub enum Fault {
    /// Behave normally.
    #[default]
    None,
    /// Wait this long before executing each request (without blocking other requests).
    Delay(Duration),
    /// Respond with this HTTP status and a plain-text body, without executing the request.
    Status(u16),
    /// [`Fault::Status`] for this many requests, then behave normally (an upstream that
    /// recovers).
    StatusFor(u16, usize),
    /// Respond with this HTTP status and a GraphQL body with one error and no `data`, without
    /// executing the request.
    ErrorStatus(u16),
    /// Respond `200 OK` with an `application/json` body that is not valid JSON.
    InvalidJson,
    /// Close the connection without responding.
    CloseConnection,
    /// Execute normally, then send the fields of `data` in reverse order (clients must map
    /// results by key, never by position).
    ReverseDataKeys,
    /// Execute normally, then reverse every list directly under `data` (a batch answer in
    /// another order than its keys were asked in).
    ReverseLists,
    /// Execute normally, then keep only the first N items of every list directly under `data`
    /// (a batch answer that leaves keys out).
    TruncateLists(usize),
    /// Execute normally, then change the response with this function (forged, mistyped or
    /// missing data).
    Rewrite(fn(&mut Value)),
    /// Execute normally, and send this `Cache-Control` header with the answer.
    CacheControl(&'static str),
    /// Answer `200 OK` with a valid GraphQL response of this many bytes, with its length.
    Oversized(usize),
    /// Answer `200 OK` with a chunked body that never ends (64 KiB chunks, until the client
    /// goes away).
    Endless,
}

/// What the server records, and the current fault.
#[derive(Default)]
pub(super) struct Shared {
    received: Vec<(Value, HeaderMap)>,
    fault: Fault,
}

/// A running example upstream: a GraphQL server on `POST /graphql`.
///
/// Every request to `POST /graphql` is counted and recorded (including faulted ones and those
/// whose body is not JSON, recorded as a JSON string), until [`Upstream::reset`]. Dropping the
/// `Upstream` or calling [`Upstream::stop`] closes the listener and all open connections.
pub struct Upstream {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The GraphQL endpoint, `http://<addr>/graphql`.
    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// The number of GraphQL requests (`POST /graphql`) received so far.
    pub fn requests(&self) -> usize {
        self.lock().received.len()
    }

    /// The JSON bodies of the GraphQL requests received so far, in arrival order.
    pub fn received(&self) -> Vec<Value> {
        self.lock()
            .received
            .iter()
            .map(|(body, _)| body.clone())
            .collect()
    }

    /// The headers of the GraphQL requests received so far, in arrival order.
    pub fn received_headers(&self) -> Vec<HeaderMap> {
        self.lock()
            .received
            .iter()
            .map(|(_, headers)| headers.clone())
            .collect()
    }

    /// Injects `fault` into the following requests.
    pub fn set_fault(&self, fault: Fault) {
        self.lock().fault = fault;
    }

    /// Forgets the received requests, keeping the fault (long runs would grow otherwise).
    pub fn forget(&self) {
        self.lock().received.clear();
    }

    /// Forgets the received requests and removes the fault (the data, e.g. renamed countries,
    /// is kept).
    pub fn reset(&self) {
        *self.lock() = Shared::default();
    }

    /// Stops accepting, closes the listener and the open connections, and waits for all that.
    pub async fn stop(self) {
        let Self { shutdown, task, .. } = self;
        drop(shutdown);
        // The task only ends with an error if the runtime is shutting down.
        let _ = task.await;
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        lock(&self.shared)
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a server does with each request; recording and faults are [`record`]'s.
pub(super) trait Handler: Clone + Send + Sync + 'static {
    fn handle(
        self,
        request: Request<Incoming>,
        shared: Arc<Mutex<Shared>>,
    ) -> impl std::future::Future<Output = io::Result<HttpResponse>> + Send;
}

#[derive(Clone)]
struct GraphQl<E>(E);

impl<E: Executor> Handler for GraphQl<E> {
    fn handle(
        self,
        request: Request<Incoming>,
        shared: Arc<Mutex<Shared>>,
    ) -> impl std::future::Future<Output = io::Result<HttpResponse>> + Send {
        handle(request, self.0, shared)
    }
}

/// Binds `addr` and serves `executor` on `POST /graphql` on the current tokio runtime.
pub(super) async fn start<E: Executor>(addr: &str, executor: E) -> io::Result<Upstream> {
    start_with(addr, GraphQl(executor)).await
}

/// Binds `addr` and serves `handler` on the current tokio runtime.
pub(super) async fn start_with<H: Handler>(addr: &str, handler: H) -> io::Result<Upstream> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::default();
    let (shutdown, stopped) = oneshot::channel();
    let task = tokio::spawn(serve(listener, handler, Arc::clone(&shared), stopped));
    Ok(Upstream {
        addr,
        shared,
        shutdown,
        task,
    })
}

/// Accepts connections until `stopped` resolves (its sender is dropped), then closes them all.
async fn serve<H: Handler>(
    listener: TcpListener,
    handler: H,
    shared: Arc<Mutex<Shared>>,
    mut stopped: oneshot::Receiver<()>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // E.g. too many open files: let connections close.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let (handler, shared) = (handler.clone(), Arc::clone(&shared));
                let service = service_fn(move |request| {
                    handler.clone().handle(request, Arc::clone(&shared))
                });
                connections.spawn(async move {
                    let builder = auto::Builder::new(TokioExecutor::new());
                    // Errors are the client's business (or an injected fault).
                    let _ = builder.serve_connection(TokioIo::new(stream), service).await;
                });
            }
        }
    }
    drop(listener);
    connections.shutdown().await;
}

pub(super) type HttpResponse = Response<UnsyncBoxBody<Bytes, io::Error>>;

async fn handle<E: Executor>(
    request: Request<Incoming>,
    executor: E,
    shared: Arc<Mutex<Shared>>,
) -> io::Result<HttpResponse> {
    if request.uri().path() != "/graphql" {
        return Ok(text(StatusCode::NOT_FOUND, "not found".into()));
    }
    if request.method() != Method::POST {
        let mut response = text(StatusCode::METHOD_NOT_ALLOWED, "use POST".into());
        let allow = header::HeaderValue::from_static("POST");
        response.headers_mut().insert(header::ALLOW, allow);
        return Ok(response);
    }
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(io::Error::other)?.to_bytes();
    let json = serde_json::from_slice::<Value>(&body);
    let recorded = match &json {
        Ok(value) => value.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
    };
    let fault = match record(&shared, recorded, parts.headers).await {
        Ok(fault) => fault,
        Err(answer) => return answer,
    };
    let request = match json.and_then(serde_json::from_value::<BatchRequest>) {
        Ok(request) => request,
        Err(error) => {
            let errors =
                json!({ "errors": [{ "message": format!("invalid GraphQL request: {error}") }] });
            return Ok(json_response(
                StatusCode::BAD_REQUEST,
                errors.to_string().into(),
            ));
        }
    };
    let response = executor.execute_batch(request).await;
    let mut response = serde_json::to_value(&response).map_err(io::Error::other)?;
    if let Fault::Rewrite(rewrite) = fault {
        rewrite(&mut response);
    }
    if let Some(Value::Object(data)) = response.get_mut("data") {
        match fault {
            Fault::ReverseDataKeys => *data = std::mem::take(data).into_iter().rev().collect(),
            Fault::ReverseLists => data
                .values_mut()
                .filter_map(Value::as_array_mut)
                .for_each(|items| items.reverse()),
            Fault::TruncateLists(n) => data
                .values_mut()
                .filter_map(Value::as_array_mut)
                .for_each(|items| items.truncate(n)),
            _ => {}
        }
    }
    let body = serde_json::to_vec(&response).map_err(io::Error::other)?;
    let mut answer = json_response(StatusCode::OK, body.into());
    if let Fault::CacheControl(value) = fault {
        answer.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static(value),
        );
    }
    Ok(answer)
}

/// Records a request, then applies the current fault: `Err` holds the faulted answer, `Ok`
/// the fault (if any) the handler still has to apply.
pub(super) async fn record(
    shared: &Mutex<Shared>,
    recorded: Value,
    headers: HeaderMap,
) -> Result<Fault, io::Result<HttpResponse>> {
    let fault = {
        let mut shared = lock(shared);
        shared.received.push((recorded, headers));
        match &mut shared.fault {
            Fault::StatusFor(status, left) if *left > 0 => {
                *left -= 1;
                Fault::Status(*status)
            }
            Fault::StatusFor(..) => Fault::None,
            other => other.clone(),
        }
    };
    match fault {
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            Ok(Fault::None)
        }
        Fault::Status(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Err(Ok(text(status, format!("injected fault: status {status}"))))
        }
        Fault::ErrorStatus(status) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body = json!({ "errors": [{ "message": "injected: the server is down" }] });
            Err(Ok(json_response(status, body.to_string().into())))
        }
        Fault::InvalidJson => Err(Ok(json_response(
            StatusCode::OK,
            Bytes::from_static(b"{\"data\": {\"oops\": "),
        ))),
        Fault::CloseConnection => Err(Err(io::Error::other("injected fault: close connection"))),
        Fault::Oversized(n) => {
            let filler = "x".repeat(n.saturating_sub(24));
            let body = format!(r#"{{"data":{{"x":"{filler}"}}}}"#);
            Err(Ok(json_response(StatusCode::OK, body.into())))
        }
        Fault::Endless => {
            let chunk = Bytes::from(vec![b' '; 64 << 10]);
            let stream = futures::stream::repeat_with(move || {
                Ok::<_, io::Error>(hyper::body::Frame::data(chunk.clone()))
            });
            let mut response = Response::new(StreamBody::new(stream).boxed_unsync());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            Err(Ok(response))
        }
        other => Ok(other),
    }
}

pub(super) fn text(status: StatusCode, body: String) -> HttpResponse {
    response(status, "text/plain; charset=utf-8", body.into())
}

pub(super) fn json_response(status: StatusCode, body: Bytes) -> HttpResponse {
    response(status, "application/json", body)
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body).map_err(|e| match e {}).boxed_unsync());
    *response.status_mut() = status;
    let content_type = header::HeaderValue::from_static(content_type);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}
