//! Running a plan: fetch stages in order, fetches of a stage in parallel, then build the
//! client's response from the upstream data.

mod complete;
mod join;

use std::collections::HashMap;

use apollo_compiler::response::JsonMap;
use futures::future::join_all;
use serde_json::{Map, Value};

use crate::error_code::ErrorCode;
use crate::graphql_error::{GraphQLError, PathSegment};
use crate::plan::{Fetch, Plan};
use crate::upstream::data::{Data, Object};
use crate::upstream::{FetchError, RequestContext, UpstreamRequest, UpstreamResponse, Upstreams};

/// A GraphQL response.
#[derive(Debug, Default)]
pub(crate) struct Response {
    /// `data` as JSON text: `null` when a non-null root field failed.
    pub(crate) data: Option<Vec<u8>>,
    /// `errors`, in the order they arose.
    pub(crate) errors: Vec<GraphQLError>,
    /// `extensions`, when there is something to say (answers served from caches).
    pub(crate) extensions: Option<Value>,
}

impl Response {
    /// The response as a JSON document: `errors` first (when there are any), then `data`.
    pub(crate) fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.data.as_ref().map_or(64, |d| d.len() + 64));
        out.push(b'{');
        if !self.errors.is_empty() {
            out.extend_from_slice(b"\"errors\":");
            serde_json::to_writer(&mut out, &self.errors).expect("errors serialize");
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

impl From<Segment<'_>> for PathSegment {
    fn from(segment: Segment<'_>) -> Self {
        match segment {
            Segment::Key(k) => PathSegment::Key(k.to_string()),
            Segment::Index(i) => PathSegment::Index(i),
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
    pub(crate) fn add(&mut self, path: &[PathSegment]) {
        let mut node = &mut self.root;
        for segment in path {
            node = match segment {
                PathSegment::Index(i) => node.indices.entry(*i).or_default(),
                PathSegment::Key(k) => node.keys.entry(k.clone()).or_default(),
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
    list: Vec<GraphQLError>,
    explained: Explained,
}

impl Errors {
    /// Adds `error` at `path`, which it explains.
    pub(crate) fn at(&mut self, mut error: GraphQLError, path: Vec<PathSegment>) {
        self.explained.add(&path);
        error.set_path(path);
        self.list.push(error);
    }

    /// Adds `error` as it is (with the path it has, or none), explaining nothing.
    pub(crate) fn push(&mut self, error: GraphQLError) {
        self.list.push(error);
    }

    /// Records that an error already added explains `path` too.
    pub(crate) fn explain(&mut self, path: &[PathSegment]) {
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
            answer.errors.into_iter().map(GraphQLError::from).collect(),
        ),
        Err(e) => (
            None,
            vec![e.to_graphql_error(&plan.document.sources).into()],
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
                            errors.explain(&[PathSegment::Key(key.clone())]);
                        }
                    }
                    for error in upstream_errors {
                        let mut error = GraphQLError::from_upstream(error, &fetch.upstream);
                        unwrap_entity_path(&mut error, &fetch.entities);
                        if data.is_some() || error.path().is_some() {
                            errors.push(error);
                            continue;
                        }
                        // No data and no path (a request error, often with an HTTP error
                        // status): every root field of the fetch failed with it.
                        for key in &fetch.root_keys {
                            errors.at(error.clone(), vec![PathSegment::Key(key.clone())]);
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
                                    let error =
                                        GraphQLError::new(ErrorCode::UpstreamBadResponse, message)
                                            .with_upstream(&fetch.upstream);
                                    errors.at(error, vec![PathSegment::Key(key.clone())]);
                                }
                            }
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(upstream = %fetch.upstream, error = %e, "upstream fetch failed");
                    for key in &fetch.root_keys {
                        let error = GraphQLError::new(e.code(), e.to_string())
                            .with_upstream(&fetch.upstream);
                        errors.at(error, vec![PathSegment::Key(key.clone())]);
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
fn unwrap_entity_path(error: &mut GraphQLError, entities: &[String]) {
    let Some(path) = error.path_mut() else {
        return;
    };
    let lookup = matches!(path.first(), Some(PathSegment::Key(k)) if entities.contains(k));
    if lookup && path.get(1) == Some(&PathSegment::Index(0)) {
        path.remove(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        /// Trie nodes visited by `Explained::covers`, to count work instead of timing it.
        pub(super) static STEPS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    fn item(i: usize) -> Vec<PathSegment> {
        vec![
            PathSegment::Key("list".into()),
            PathSegment::Index(i),
            PathSegment::Key("_join".into()),
            PathSegment::Key("f".into()),
        ]
    }

    #[test]
    fn explained_paths_cover_above_at_and_below() {
        let mut explained = Explained::default();
        explained.add(&item(3));
        fn seg(p: &[PathSegment]) -> Vec<Segment<'_>> {
            p.iter()
                .map(|s| match s {
                    PathSegment::Index(i) => Segment::Index(*i),
                    PathSegment::Key(k) => Segment::Key(k),
                })
                .collect()
        }
        let mut below = item(3);
        below.push(PathSegment::Key("x".into()));
        assert!(explained.covers(&seg(&item(3))));
        assert!(explained.covers(&seg(&below)));
        assert!(explained.covers(&seg(&item(3)[..2])));
        assert!(!explained.covers(&seg(&item(4))));
        assert!(!explained.covers(&seg(&[PathSegment::Key("other".into())])));
        assert!(!Explained::default().covers(&[]));
    }

    /// A join that fails over n items explains n paths and completion asks about each: the
    /// work per question must not grow with n (it once scanned every path: quadratic).
    #[test]
    fn asking_about_a_path_costs_its_length_not_the_number_of_paths() {
        for n in [1_000, 16_000] {
            let mut explained = Explained::default();
            let paths: Vec<Vec<PathSegment>> = (0..n).map(item).collect();
            paths.iter().for_each(|p| explained.add(p));
            STEPS.with(|s| s.set(0));
            for i in 0..n {
                let segments: Vec<Segment<'_>> = vec![
                    Segment::Key("list"),
                    Segment::Index(i),
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
