//! Running a plan: fetch stages in order, fetches of a stage in parallel, then build the
//! client's response from the upstream data.

mod complete;
mod join;

use std::collections::HashMap;

use apollo_compiler::response::JsonMap;
use futures::future::join_all;
use serde_json::{Map, Value};

use crate::error_code::ErrorCode;
use crate::plan::{Fetch, Plan};
use crate::upstream::data::{Data, Object};
use crate::upstream::{FetchError, RequestContext, UpstreamRequest, UpstreamResponse, Upstreams};

/// A GraphQL response.
#[derive(Debug, Default)]
pub(crate) struct Response {
    /// `data` as JSON text: `null` when a non-null root field failed.
    pub data: Option<Vec<u8>>,
    /// `errors`, in the order they arose.
    pub errors: Vec<Value>,
    /// `extensions`, when there is something to say (answers served from caches).
    pub extensions: Option<Value>,
}

impl Response {
    /// The response as a JSON document: `errors` first (when there are any), then `data`.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.as_ref().map_or(64, |d| d.len() + 64));
        out.push(b'{');
        if !self.errors.is_empty() {
            out.extend_from_slice(b"\"errors\":");
            serde_json::to_writer(&mut out, &self.errors).expect("JSON values serialize");
        }
        if let Some(data) = &self.data {
            if !self.errors.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(b"\"data\":");
            out.extend_from_slice(data);
        }
        if let Some(extensions) = &self.extensions {
            if out.len() > 1 {
                out.push(b',');
            }
            out.extend_from_slice(b"\"extensions\":");
            serde_json::to_writer(&mut out, extensions).expect("JSON values serialize");
        }
        out.push(b'}');
        out
    }
}

/// One step of a response path, borrowed from the plan while completing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Segment<'a> {
    /// A response key.
    Key(&'a str),
    /// A list index.
    Index(usize),
}

impl Segment<'_> {
    fn to_value(self) -> Value {
        match self {
            Segment::Key(k) => Value::from(k),
            Segment::Index(i) => Value::from(i),
        }
    }
}

/// Paths at or below which an error is already reported, so that null propagation adds none:
/// a trie, so that asking about a path costs its length, not the number of paths (a join that
/// fails over many items explains one path per item).
#[derive(Debug, Default)]
pub(crate) struct Explained {
    root: PathNode,
}

#[derive(Debug, Default)]
struct PathNode {
    end: bool,
    keys: HashMap<String, PathNode>,
    indices: HashMap<usize, PathNode>,
}

impl Explained {
    /// Records that an error explains `path` and everything below it.
    pub(crate) fn add(&mut self, path: &[Value]) {
        let mut node = &mut self.root;
        for segment in path {
            node = match segment {
                Value::Number(n) => node
                    .indices
                    .entry(n.as_u64().unwrap_or(u64::MAX) as usize)
                    .or_default(),
                Value::String(k) => node.keys.entry(k.clone()).or_default(),
                other => node.keys.entry(other.to_string()).or_default(),
            };
        }
        node.end = true;
    }

    /// Whether an explained path is at, above or below `path`.
    fn covers(&self, path: &[Segment<'_>]) -> bool {
        let mut node = &self.root;
        for segment in path {
            #[cfg(test)]
            tests::STEPS.with(|s| s.set(s.get() + 1));
            if node.end {
                return true;
            }
            let next = match segment {
                Segment::Key(k) => node.keys.get(*k),
                Segment::Index(i) => node.indices.get(i),
            };
            match next {
                Some(n) => node = n,
                None => return false,
            }
        }
        node.end || !node.keys.is_empty() || !node.indices.is_empty()
    }
}

/// The errors of one response, and the paths they explain: null propagation adds no error of
/// its own at or below an explained path.
#[derive(Debug, Default)]
pub(crate) struct Errors {
    list: Vec<Value>,
    explained: Explained,
}

impl Errors {
    /// Adds `error` at `path`, which it explains.
    pub(crate) fn at(&mut self, mut error: Value, path: Vec<Value>) {
        self.explained.add(&path);
        error["path"] = Value::from(path);
        self.list.push(error);
    }

    /// Adds `error` as it is (with the path it has, or none), explaining nothing.
    pub(crate) fn push(&mut self, error: Value) {
        self.list.push(error);
    }

    /// Records that an error already added explains `path` too.
    pub(crate) fn explain(&mut self, path: &[Value]) {
        self.explained.add(path);
    }
}

/// Answers an operation that reads the schema (`__schema`, `__type`, `__typename`) from
/// `schema`, as a GraphQL server would; no upstream is asked.
pub(crate) fn introspect(
    schema: &apollo_compiler::validation::Valid<apollo_compiler::Schema>,
    implementers: &apollo_compiler::collections::HashMap<
        apollo_compiler::Name,
        apollo_compiler::schema::Implementers,
    >,
    plan: &Plan,
    variables: JsonMap,
) -> Response {
    let operation = plan
        .document
        .operations
        .get(plan.name.as_deref())
        .expect("a plan's operation is in its document");
    let variables = apollo_compiler::validation::Valid::assume_valid(variables);
    let answer = apollo_compiler::introspection::partial_execute(
        schema,
        implementers,
        &plan.document,
        operation,
        &variables,
    );
    let (data, errors) = match answer {
        Ok(answer) => (
            answer.data,
            answer
                .errors
                .into_iter()
                .map(|e| serde_json::to_value(e).expect("errors serialize"))
                .collect(),
        ),
        Err(e) => (
            None,
            vec![
                serde_json::to_value(e.to_graphql_error(&plan.document.sources))
                    .expect("errors serialize"),
            ],
        ),
    };
    Response {
        data: data.map(|d| serde_json::to_vec(&d).expect("JSON serializes")),
        errors,
        extensions: None,
    }
}

/// Executes `plan` with coerced `variables`; `headers` are the client's request headers.
pub(crate) async fn execute(
    plan: &Plan,
    upstreams: &Upstreams,
    variables: &JsonMap,
    headers: &RequestContext,
) -> Response {
    let mut root = Object::default();
    let mut errors = Errors::default();
    for stage in &plan.stages {
        let results = join_all(
            stage
                .iter()
                .map(|fetch| run_fetch(plan, fetch, upstreams, variables, headers)),
        )
        .await;
        for (fetch, result) in stage.iter().zip(results) {
            match result {
                Ok(UpstreamResponse {
                    data,
                    errors: upstream_errors,
                    ..
                }) => {
                    if !upstream_errors.is_empty() {
                        // The upstream's errors explain its fields' nulls, wherever they point.
                        for key in &fetch.root_keys {
                            errors.explain(&[Value::from(key.as_str())]);
                        }
                    }
                    for error in upstream_errors {
                        let mut error = attribute(error, &fetch.upstream);
                        unwrap_entity_path(&mut error, &fetch.entities);
                        if data.is_some() || error.get("path").is_some() {
                            errors.push(error);
                            continue;
                        }
                        // No data and no path (a request error, often with an HTTP error
                        // status): every root field of the fetch failed with it.
                        for key in &fetch.root_keys {
                            errors.at(error.clone(), vec![Value::from(key.as_str())]);
                        }
                    }
                    // Only the fetch's own root fields: an upstream cannot write another's.
                    if let Some(mut data) = data {
                        for key in &fetch.root_keys {
                            let Some(value) = data.remove(key) else {
                                continue;
                            };
                            if !fetch.entities.contains(key) {
                                root.insert(key, value);
                                continue;
                            }
                            match unwrap_entity(value) {
                                Ok(value) => root.insert(key, value),
                                Err(message) => {
                                    let mut error = ErrorCode::UpstreamBadResponse.error(message);
                                    error["extensions"]["upstream"] =
                                        Value::from(fetch.upstream.as_str());
                                    errors.at(error, vec![Value::from(key.as_str())]);
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(upstream = %fetch.upstream, error = %e, "upstream fetch failed");
                    for key in &fetch.root_keys {
                        let mut error = e.code().error(e.to_string());
                        error["extensions"]["upstream"] = Value::from(fetch.upstream.as_str());
                        errors.at(error, vec![Value::from(key.as_str())]);
                    }
                }
            }
        }
    }
    if !plan.joins.is_empty() {
        join::run(
            plan,
            upstreams,
            variables,
            headers,
            plan.max_join_fanout,
            &mut root,
            &mut errors,
        )
        .await;
    }
    let root_type = match plan.kind {
        apollo_compiler::executable::OperationType::Mutation => "Mutation",
        _ => "Query",
    };
    let mut data = Vec::with_capacity(4096);
    let Errors {
        mut list,
        explained,
    } = errors;
    complete::Completer::new(variables, &mut list, &explained)
        .root(&root, root_type, &plan.root, &mut data);
    Response {
        data: Some(data),
        errors: list,
        extensions: cache_extensions(headers),
    }
}

/// `{"cache": {"<upstream>": {"dataAsOf": …, "ageSeconds": …, "stale": …}}}` for the upstreams
/// that answered from a cache: the oldest answer of each, and whether any was stale.
fn cache_extensions(context: &RequestContext) -> Option<Value> {
    let cached = context.cached.lock().expect("never poisoned");
    if cached.is_empty() {
        return None;
    }
    let mut by_upstream: indexmap::IndexMap<&str, (std::time::SystemTime, bool)> =
        indexmap::IndexMap::new();
    for c in cached.iter() {
        let entry = by_upstream
            .entry(&c.upstream)
            .or_insert((c.stored, c.stale));
        entry.0 = entry.0.min(c.stored);
        entry.1 |= c.stale;
    }
    let now = std::time::SystemTime::now();
    let upstreams: Map<String, Value> = by_upstream
        .into_iter()
        .map(|(upstream, (stored, stale))| {
            let age = now.duration_since(stored).unwrap_or_default().as_secs();
            let note = serde_json::json!({
                "dataAsOf": humantime::format_rfc3339_seconds(stored).to_string(),
                "ageSeconds": age,
                "stale": stale,
            });
            (upstream.to_string(), note)
        })
        .collect();
    Some(serde_json::json!({ "cache": upstreams }))
}

async fn run_fetch(
    plan: &Plan,
    fetch: &Fetch,
    upstreams: &Upstreams,
    variables: &JsonMap,
    headers: &RequestContext,
) -> Result<UpstreamResponse, FetchError> {
    let upstream = upstreams
        .get(&fetch.upstream)
        .expect("plans only name configured upstreams");
    let mut vars = JsonMap::new();
    for name in &fetch.variables {
        if let Some(v) = variables.get(name.as_str()) {
            vars.insert(name.as_str(), v.clone());
        }
    }
    let request = UpstreamRequest {
        operation_name: plan.name.as_deref(),
        document: &fetch.document,
        body_prefix: Some(&fetch.body_prefix),
        variables: &vars,
        query: plan.kind != apollo_compiler::executable::OperationType::Mutation,
        fields: &fetch.fields,
        keep_whole: true,
    };
    upstream.send(&request, headers).await
}

/// The entity an `_entities` call with one representation answered: its one result.
fn unwrap_entity(value: Data) -> Result<Data, String> {
    match value {
        Data::Array(mut items) if items.len() == 1 => Ok(items.pop().expect("one item")),
        Data::Null => Ok(Data::Null),
        Data::Array(items) => Err(format!(
            "`_entities` answered {} results for 1 representation",
            items.len()
        )),
        _ => Err("`_entities` answered something other than a list".into()),
    }
}

/// An error inside an entity lookup's answer has the path `[key, 0, …]`: the client's
/// response has no list there.
fn unwrap_entity_path(error: &mut Value, entities: &[String]) {
    let Some(path) = error.get_mut("path").and_then(Value::as_array_mut) else {
        return;
    };
    let lookup = path
        .first()
        .and_then(Value::as_str)
        .is_some_and(|k| entities.iter().any(|e| e == k));
    if lookup && path.get(1).and_then(Value::as_u64) == Some(0) {
        path.remove(1);
    }
}

/// Names the upstream in an upstream error; its locations point into the upstream document,
/// which the client never saw, so they are dropped. Paths already match the client's response
/// because upstream documents keep the client's response keys.
pub(crate) fn attribute(mut error: Value, upstream: &str) -> Value {
    if !error.is_object() {
        error = serde_json::json!({ "message": error.to_string() });
    }
    let obj = error.as_object_mut().expect("made an object above");
    obj.remove("locations");
    let ext = obj
        .entry("extensions")
        .or_insert_with(|| Value::Object(Map::new()));
    if !ext.is_object() {
        *ext = Value::Object(Map::new());
    }
    ext["upstream"] = Value::from(upstream);
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Trie nodes visited by `Explained::covers`, to count work instead of timing it.
        pub(super) static STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn item(i: usize) -> Vec<Value> {
        vec![
            Value::from("list"),
            Value::from(i),
            Value::from("_join"),
            Value::from("f"),
        ]
    }

    #[test]
    fn explained_paths_cover_above_at_and_below() {
        let mut explained = Explained::default();
        explained.add(&item(3));
        fn seg(p: &[Value]) -> Vec<Segment<'_>> {
            p.iter()
                .map(|v| match v {
                    Value::Number(n) => Segment::Index(n.as_u64().unwrap() as usize),
                    v => Segment::Key(v.as_str().unwrap()),
                })
                .collect()
        }
        let mut below = item(3);
        below.push(Value::from("x"));
        assert!(explained.covers(&seg(&item(3))));
        assert!(explained.covers(&seg(&below)));
        assert!(explained.covers(&seg(&item(3)[..2])));
        assert!(!explained.covers(&seg(&item(4))));
        assert!(!explained.covers(&seg(&[Value::from("other")])));
        assert!(!Explained::default().covers(&[]));
    }

    /// A join that fails over n items explains n paths and completion asks about each: the
    /// work per question must not grow with n (it once scanned every path: quadratic).
    #[test]
    fn asking_about_a_path_costs_its_length_not_the_number_of_paths() {
        for n in [1_000, 16_000] {
            let mut explained = Explained::default();
            let paths: Vec<Vec<Value>> = (0..n).map(item).collect();
            paths.iter().for_each(|p| explained.add(p));
            STEPS.with(|s| s.set(0));
            for p in &paths {
                let segments: Vec<Segment<'_>> = vec![
                    Segment::Key("list"),
                    Segment::Index(p[1].as_u64().unwrap() as usize),
                    Segment::Key("_join"),
                    Segment::Key("f"),
                ];
                assert!(explained.covers(&segments));
            }
            let steps = STEPS.with(|s| s.get());
            assert!(steps <= n * 4, "{steps} steps for {n} paths");
        }
    }
}
