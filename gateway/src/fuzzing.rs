//! Fuzzing entry points, shared by the fuzz targets in `tests/fuzz` and by the test that replays
//! their corpus. Each takes arbitrary bytes, runs them through the gateway's own code, and
//! panics only when a promise is broken: a panic inside the gateway, a response that is not
//! GraphQL-over-HTTP JSON, an error without a message, a key the gateway adds for itself shown to
//! a client, or a configuration problem reported outside the file.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use apollo_compiler::response::JsonValue;
use bytes::Bytes;
use futures::future::BoxFuture;
use hyper::{HeaderMap, Method};
use serde_json::Value;

use crate::config::Config;
use crate::diagnostic::FileError;
use crate::plan::batch::KEY_ALIAS;
use crate::server::{Gateway, GraphQLRequest, MediaType};
use crate::upstream::{Answerer, Upstreams};

/// A gateway built in memory from a project whose upstreams answer in process, with one
/// runtime to run requests on.
#[derive(Debug)]
pub struct Fixture {
    gateway: Gateway,
    answers: Arc<Queue>,
    runtime: tokio::runtime::Runtime,
    operations: Vec<(String, String)>,
    config_path: PathBuf,
}

/// Upstream answers given by the fuzz input, taken in the order requests are sent.
#[derive(Debug, Default)]
struct Queue(Mutex<VecDeque<Bytes>>);

impl Answerer for Queue {
    fn answer(&self, _namespace: &str, _body: Vec<u8>) -> BoxFuture<'static, Bytes> {
        let next = self
            .0
            .lock()
            .expect("the queue is never poisoned")
            .pop_front();
        // When the input has no more answers, the upstream answers with nothing usable.
        let body = next.unwrap_or_else(|| Bytes::from_static(b"{}"));
        Box::pin(async move { body })
    }
}

impl Fixture {
    /// Builds the project of `config_path` (schemas from files only: nothing is introspected),
    /// its upstreams answered by the fuzz input.
    pub fn load(config_path: &Path) -> anyhow::Result<Self> {
        let answers = Arc::new(Queue::default());
        Self::load_with(config_path, answers.clone(), answers)
    }

    /// [`Fixture::load`] with another answerer (recording seeds from live upstreams).
    pub fn load_answered_by(
        config_path: &Path,
        answerer: Arc<dyn Answerer>,
    ) -> anyhow::Result<Self> {
        Self::load_with(config_path, Arc::new(Queue::default()), answerer)
    }

    fn load_with(
        config_path: &Path,
        answers: Arc<Queue>,
        answerer: Arc<dyn Answerer>,
    ) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let config = Config::load(config_path)?;
        let plugins = crate::project::load_plugins(&config)?;
        let built = runtime.block_on(crate::project::build_with(&config, &plugins, false))?;
        let mut operations: Vec<(String, String)> = built
            .manifest
            .documents
            .iter()
            .flat_map(|d| {
                d.operations
                    .iter()
                    .filter_map(|op| Some((op.name.clone()?, d.hash.clone())))
            })
            .collect();
        operations.sort();
        let gateway = Gateway {
            registry: built.registry,
            upstreams: Upstreams::in_process(config.upstreams.values(), &plugins, answerer),
            policies: Vec::new(),
            max_request_bytes: config.server.max_request_bytes,
            connections: config.server.connections,
            metrics: Default::default(),
        };
        Ok(Fixture {
            gateway,
            answers,
            runtime,
            operations,
            config_path: config_path.to_path_buf(),
        })
    }

    /// The named operations, as (name, document hash), sorted by name.
    pub fn operations(&self) -> &[(String, String)] {
        &self.operations
    }

    /// The operation an input's first byte picks.
    fn pick(&self, byte: u8) -> &(String, String) {
        &self.operations[usize::from(byte) % self.operations.len()]
    }

    /// Runs `request` as sent with `method`; returns the HTTP status and body the client gets,
    /// after checking that the body is a well-formed GraphQL response.
    pub fn run(&self, method: Method, request: GraphQLRequest) -> (u16, Vec<u8>) {
        let (status, body) = self.respond(method, request);
        check_response(&body);
        (status, body)
    }

    fn respond(&self, method: Method, request: GraphQLRequest) -> (u16, Vec<u8>) {
        let result = self
            .runtime
            .block_on(self.gateway.run(&method, HeaderMap::new(), request));
        let (status, body) = match result {
            Ok(response) => (200, response.to_json()),
            Err(e) => {
                let response = e.into_response(MediaType::GraphQLResponse);
                let status = response.status().as_u16();
                assert!(
                    (400..600).contains(&status),
                    "a refused request answered with status {status}"
                );
                let body = futures::executor::block_on(http_body_util::BodyExt::collect(
                    response.into_body(),
                ))
                .expect("a full body cannot fail")
                .to_bytes()
                .to_vec();
                (status, body)
            }
        };
        (status, body)
    }

    /// The request of operation `name` with `variables`, by `documentId`.
    pub fn request_for(&self, name: &str, variables: Option<JsonValue>) -> Option<GraphQLRequest> {
        let (_, hash) = self.operations.iter().find(|(n, _)| n == name)?;
        Some(GraphQLRequest {
            document_id: Some(format!("sha256:{hash}")),
            variables,
            ..GraphQLRequest::default()
        })
    }
}

/// A client request: a POST body, or (first byte odd) a GET query string after the first byte.
/// Returns the status and body the client gets, when the request parses.
pub fn request(fixture: &Fixture, input: &[u8]) -> Option<(u16, Vec<u8>)> {
    let parsed = match input.split_first() {
        Some((first, rest)) if first % 2 == 1 => (
            Method::GET,
            GraphQLRequest::from_query_string(&String::from_utf8_lossy(rest)),
        ),
        _ => (Method::POST, GraphQLRequest::from_json(input)),
    };
    match parsed {
        (method, Ok(request)) => Some(fixture.run(method, request)),
        (_, Err(e)) => {
            let response = e.into_response(MediaType::GraphQLResponse);
            assert_eq!(
                response.status().as_u16(),
                400,
                "a request that does not parse"
            );
            None
        }
    }
}

/// Variables for one operation: the first byte picks the operation, the rest is the
/// `variables` JSON. Returns the status and body the client gets, when the variables are JSON.
pub fn variables(fixture: &Fixture, input: &[u8]) -> Option<(u16, Vec<u8>)> {
    let (first, rest) = input.split_first()?;
    let variables = serde_json::from_slice::<JsonValue>(rest).ok()?;
    let (name, _) = fixture.pick(*first);
    let request = fixture
        .request_for(name, Some(variables))
        .expect("picked from the fixture's operations");
    Some(fixture.run(Method::POST, request))
}

/// Upstream answers for one operation: the first byte picks the operation; the rest, split at
/// NUL bytes, is the client's variables and then the upstream answers in the order the
/// gateway sends its requests. Returns the status and body the client gets, when the variables
/// are JSON.
pub fn answers(fixture: &Fixture, input: &[u8]) -> Option<(u16, Vec<u8>)> {
    let request = queue_answers(fixture, input)?;
    Some(fixture.run(Method::POST, request))
}

/// [`answers`] without checking the response: what the gateway alone spends on a request,
/// for benchmarks.
pub fn answers_unchecked(fixture: &Fixture, input: &[u8]) -> Option<(u16, Vec<u8>)> {
    let request = queue_answers(fixture, input)?;
    Some(fixture.respond(Method::POST, request))
}

/// Queues the upstream answers of an [`answers`] input; returns the client's request.
fn queue_answers(fixture: &Fixture, input: &[u8]) -> Option<GraphQLRequest> {
    let (first, rest) = input.split_first()?;
    let mut parts = rest.split(|b| *b == 0);
    let variables = serde_json::from_slice::<JsonValue>(parts.next().unwrap_or_default()).ok()?;
    {
        let mut queue = fixture.answers.0.lock().expect("never poisoned");
        queue.clear();
        queue.extend(parts.map(Bytes::copy_from_slice));
    }
    let (name, _) = fixture.pick(*first);
    let request = fixture
        .request_for(name, Some(variables))
        .expect("picked from the fixture's operations");
    Some(request)
}

/// A configuration file's text, read as if it were the fixture's `joinery.toml`.
pub fn config(fixture: &Fixture, input: &[u8]) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let path = &fixture.config_path;
    match Config::parse(path, text, &|name| (name == "FUZZ").then(|| "value".into())) {
        Ok(_) | Err(FileError::Read { .. }) => {}
        Err(FileError::Invalid(diags)) => {
            assert!(
                !diags.0.is_empty(),
                "an invalid configuration without a problem"
            );
            let lines: Vec<&str> = text.split('\n').collect();
            for d in &diags.0 {
                let p = &d.position;
                // Problems in the file itself must point into it; problems about other files
                // (schemas, operations) name those files.
                if p.path != *path {
                    continue;
                }
                assert!(
                    p.line >= 1 && p.line <= lines.len(),
                    "{d}: line outside the file"
                );
                let width = lines[p.line - 1].chars().count();
                assert!(
                    p.column >= 1 && p.column <= width + 1,
                    "{d}: column outside its line"
                );
                assert!(!d.message.is_empty(), "{d}: a problem without a message");
            }
        }
    }
}

/// The promises every response body keeps.
fn check_response(body: &[u8]) {
    let text = std::str::from_utf8(body).expect("responses are UTF-8");
    let value: Value = serde_json::from_str(text).expect("responses are JSON");
    let object = value.as_object().expect("responses are JSON objects");
    assert!(
        object
            .keys()
            .all(|k| k == "data" || k == "errors" || k == "extensions"),
        "unexpected top-level keys in {text}"
    );
    assert!(
        object.contains_key("data") || object.contains_key("errors"),
        "neither data nor errors: {text}"
    );
    if let Some(errors) = object.get("errors") {
        let errors = errors.as_array().expect("errors is a list");
        assert!(!errors.is_empty(), "an empty errors list: {text}");
        for error in errors {
            assert!(
                error.get("message").is_some_and(Value::is_string),
                "an error without a message: {error}"
            );
            if let Some(path) = error.get("path") {
                let path = path.as_array().expect("a path is a list");
                assert!(
                    path.iter().all(|s| s.is_string() || s.is_u64()),
                    "a path segment that is neither a key nor an index: {error}"
                );
            }
        }
    }
    if let Some(data) = object.get("data") {
        assert!(
            data.is_object() || data.is_null(),
            "data is not an object: {text}"
        );
        assert!(
            !contains_key(data, KEY_ALIAS),
            "the gateway's own key reached the client: {text}"
        );
    }
}

fn contains_key(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(o) => o.iter().any(|(k, v)| k == key || contains_key(v, key)),
        Value::Array(a) => a.iter().any(|v| contains_key(v, key)),
        _ => false,
    }
}
