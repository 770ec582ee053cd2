//! The resolver-plugin transport: an upstream request (a GraphQL document the planner
//! rendered for this namespace) is turned into the flat field list of the `resolver`
//! interface, and the plugin's root values are shaped by the document's selections — aliases
//! applied, only selected fields kept, `__typename` filled — into a GraphQL response.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use apollo_compiler::ast::Value as GqlValue;
use apollo_compiler::executable::{Field, Selection, SelectionSet};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Node, Schema};
use indexmap::IndexMap;
use lru::LruCache;
use serde_json::{Map, Value};

use super::{FetchError, UpstreamRequest, UpstreamResponse};
use crate::plugin::{FieldError, ResolverPlugin, ResolverRequest, SelectedField};

/// Parsed upstream documents kept per plugin upstream. Plans render a bounded set of documents
/// (joins one per batch size), so a small cache holds the working set.
const DOCUMENT_CACHE: usize = 256;

/// A resolver plugin serving one namespace.
pub(crate) struct PluginTransport {
    plugin: Arc<ResolverPlugin>,
    schema: Arc<Valid<Schema>>,
    documents: Mutex<LruCache<String, Arc<Valid<ExecutableDocument>>>>,
}

impl std::fmt::Debug for PluginTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginTransport")
            .field("plugin", &self.plugin.name())
            .finish_non_exhaustive()
    }
}

/// Fields collected under one response key, in document order.
type Collected<'d> = IndexMap<&'d str, Vec<&'d Node<Field>>>;

impl PluginTransport {
    /// `schema` is the plugin's schema as the manifest holds it (un-namespaced).
    pub(crate) fn new(plugin: Arc<ResolverPlugin>, schema: Valid<Schema>) -> Self {
        Self {
            plugin,
            schema: Arc::new(schema),
            documents: Mutex::new(LruCache::new(
                NonZeroUsize::new(DOCUMENT_CACHE).expect("non-zero"),
            )),
        }
    }

    /// Resolves one upstream request.
    pub(crate) async fn send(
        &self,
        namespace: &str,
        request: &UpstreamRequest<'_>,
        headers: reqwest::header::HeaderMap,
        operation: &str,
    ) -> Result<UpstreamResponse, FetchError> {
        let bad = |message: String| FetchError::BadResponse(namespace.to_string(), message);
        let document = self.document(request.document).map_err(bad)?;
        let op = document
            .operations
            .get(request.operation_name)
            .map_err(|_| bad("the gateway's request names no operation".into()))?;
        let variables: Map<String, Value> = match serde_json::to_value(request.variables) {
            Ok(Value::Object(variables)) => variables,
            _ => Map::new(),
        };
        let shaper = Shaper {
            schema: &self.schema,
            document: &document,
            variables: &variables,
        };
        let roots = shaper.collect(&op.selection_set, None);
        let mut fields = Vec::new();
        let root_keys: Vec<&str> = roots
            .iter()
            .filter(|(_, f)| f[0].name != "__typename")
            .map(|(k, _)| *k)
            .collect();
        for key in &root_keys {
            shaper.list(&roots[key], None, &mut fields);
        }
        let request = ResolverRequest {
            mutation: op.operation_type == apollo_compiler::executable::OperationType::Mutation,
            operation_name: operation.to_string(),
            headers,
            fields,
        };
        let answers = self
            .plugin
            .resolve(request)
            .await
            .map_err(|e| FetchError::Resolver(namespace.to_string(), e))?;
        let mut data = Map::new();
        let mut errors = Vec::new();
        let root_type = op.selection_set.ty.as_str();
        for (key, fields) in &roots {
            if fields[0].name == "__typename" {
                data.insert(key.to_string(), Value::from(root_type));
            }
        }
        for (key, answer) in root_keys.iter().zip(answers) {
            let mut path = vec![Value::from(*key)];
            let value = match answer {
                Ok(value) => shaper.shape(value, &roots[key], &mut path, &mut errors),
                Err(e) => {
                    errors.push(field_error(e, path));
                    Value::Null
                }
            };
            data.insert(key.to_string(), value);
        }
        // Keep the document's key order, `__typename` included.
        let data: Map<String, Value> = roots.keys().filter_map(|k| data.remove_entry(*k)).collect();
        Ok(UpstreamResponse {
            data: Some(super::data::Object::from(data)),
            errors,
            fresh_for: None,
        })
    }

    fn document(&self, query: &str) -> Result<Arc<Valid<ExecutableDocument>>, String> {
        let mut cache = self
            .documents
            .lock()
            .expect("the cache lock is never poisoned");
        if let Some(d) = cache.get(query) {
            return Ok(d.clone());
        }
        let parsed =
            ExecutableDocument::parse_and_validate(&self.schema, query, "upstream request")
                .map_err(|e| {
                    format!(
                        "the gateway's request does not fit the plugin's schema: {}",
                        e.errors
                    )
                })?;
        let parsed = Arc::new(parsed);
        cache.put(query.to_string(), parsed.clone());
        Ok(parsed)
    }
}

fn field_error(e: FieldError, mut path: Vec<Value>) -> Value {
    path.extend(e.path);
    let mut error = serde_json::json!({ "message": e.message, "path": path });
    if let Some(code) = e.code {
        error["extensions"] = serde_json::json!({ "code": code });
    }
    error
}

struct Shaper<'a> {
    schema: &'a Schema,
    document: &'a ExecutableDocument,
    variables: &'a Map<String, Value>,
}

impl<'a> Shaper<'a> {
    /// Collects the fields of `set` by response key, following fragments whose type condition
    /// applies to `concrete` (all of them when the type is not known), minus `@skip`ped ones.
    fn collect(&self, set: &'a SelectionSet, concrete: Option<&str>) -> Collected<'a> {
        let mut out = Collected::new();
        self.collect_into(set, concrete, &mut out);
        out
    }

    fn collect_into(&self, set: &'a SelectionSet, concrete: Option<&str>, out: &mut Collected<'a>) {
        for selection in &set.selections {
            if !self.included(selection.directives()) {
                continue;
            }
            match selection {
                Selection::Field(f) => out.entry(f.response_key().as_str()).or_default().push(f),
                Selection::InlineFragment(inline) => {
                    if self.applies(inline.type_condition.as_ref().map(|n| n.as_str()), concrete) {
                        self.collect_into(&inline.selection_set, concrete, out);
                    }
                }
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = self.document.fragments.get(&spread.fragment_name) {
                        if self.applies(Some(fragment.type_condition().as_str()), concrete) {
                            self.collect_into(&fragment.selection_set, concrete, out);
                        }
                    }
                }
            }
        }
    }

    fn applies(&self, condition: Option<&str>, concrete: Option<&str>) -> bool {
        match (condition, concrete) {
            (None, _) | (_, None) => true,
            (Some(c), Some(t)) => c == t || self.schema.is_subtype(c, t),
        }
    }

    fn included(&self, directives: &apollo_compiler::executable::DirectiveList) -> bool {
        let flag = |name: &str| {
            directives
                .get(name)
                .and_then(|d| d.specified_argument_by_name("if"))
                .map(|v| match v.as_ref() {
                    GqlValue::Boolean(b) => *b,
                    GqlValue::Variable(var) => {
                        self.variables.get(var.as_str()) == Some(&Value::Bool(true))
                    }
                    _ => false,
                })
        };
        flag("skip") != Some(true) && flag("include") != Some(false)
    }

    /// Appends the fields under one response key, and their sub-selections, to `out`.
    fn list(&self, fields: &[&'a Node<Field>], parent: Option<u32>, out: &mut Vec<SelectedField>) {
        let first = fields[0];
        let index = out.len() as u32;
        out.push(SelectedField {
            parent,
            key: first.response_key().to_string(),
            name: first.name.to_string(),
            arguments: Value::Object(self.arguments(first)).to_string(),
        });
        let mut children = Collected::new();
        for f in fields {
            self.collect_into(&f.selection_set, None, &mut children);
        }
        for (_, sub) in children {
            if sub[0].name != "__typename" {
                self.list(&sub, Some(index), out);
            }
        }
    }

    /// The field's arguments with variables substituted and defaults applied.
    fn arguments(&self, field: &Field) -> Map<String, Value> {
        let mut args = Map::new();
        for def in &field.definition.arguments {
            let given = field
                .arguments
                .iter()
                .find(|a| a.name == def.name)
                .map(|a| &a.value);
            let value = match given.map(|v| v.as_ref()) {
                // An absent variable leaves the argument unset, so its default applies.
                Some(GqlValue::Variable(v)) if !self.variables.contains_key(v.as_str()) => None,
                Some(v) => Some(self.json(v)),
                None => None,
            };
            let value = value.or_else(|| def.default_value.as_ref().map(|d| self.json(d)));
            if let Some(value) = value {
                args.insert(def.name.to_string(), value);
            }
        }
        args
    }

    fn json(&self, value: &GqlValue) -> Value {
        match value {
            GqlValue::Null => Value::Null,
            GqlValue::Enum(e) => Value::from(e.as_str()),
            GqlValue::Variable(v) => self
                .variables
                .get(v.as_str())
                .cloned()
                .unwrap_or(Value::Null),
            GqlValue::String(s) => Value::from(s.as_str()),
            GqlValue::Float(f) => f.try_to_f64().map_or(Value::Null, Value::from),
            GqlValue::Int(i) => i
                .as_str()
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| i.try_to_f64().map(Value::from))
                .unwrap_or(Value::Null),
            GqlValue::Boolean(b) => Value::Bool(*b),
            GqlValue::List(items) => Value::Array(items.iter().map(|v| self.json(v)).collect()),
            GqlValue::Object(fields) => Value::Object(
                fields
                    .iter()
                    .map(|(k, v)| (k.to_string(), self.json(v)))
                    .collect(),
            ),
        }
    }

    /// Shapes a plugin value for the fields under one response key.
    fn shape(
        &self,
        value: Value,
        fields: &[&'a Node<Field>],
        path: &mut Vec<Value>,
        errors: &mut Vec<Value>,
    ) -> Value {
        let first = fields[0];
        if first.selection_set.selections.is_empty() {
            return value;
        }
        match value {
            Value::Array(items) => Value::Array(
                items
                    .into_iter()
                    .enumerate()
                    .map(|(i, item)| {
                        path.push(Value::from(i));
                        let shaped = self.shape(item, fields, path, errors);
                        path.pop();
                        shaped
                    })
                    .collect(),
            ),
            Value::Object(mut object) => {
                let declared = first.selection_set.ty.as_str();
                let concrete = if self.schema.get_object(declared).is_some() {
                    declared.to_string()
                } else {
                    match object.get("__typename").and_then(Value::as_str) {
                        Some(t) if self.schema.is_subtype(declared, t) => t.to_string(),
                        other => {
                            errors.push(serde_json::json!({
                                "message": format!(
                                    "the resolver plugin answered an object of the abstract type `{declared}` without a `__typename` naming one of its types (it gave {})",
                                    other.map_or("none".to_string(), |t| format!("`{t}`"))
                                ),
                                "path": path.clone(),
                            }));
                            return Value::Null;
                        }
                    }
                };
                let mut collected = Collected::new();
                for f in fields {
                    self.collect_into(&f.selection_set, Some(&concrete), &mut collected);
                }
                let mut out = Map::with_capacity(collected.len());
                for (key, sub) in collected {
                    let name = sub[0].name.as_str();
                    let v = if name == "__typename" {
                        Value::from(concrete.as_str())
                    } else {
                        // The response key wins, for a field selected twice with other arguments.
                        let raw = if key != name && object.contains_key(key) {
                            object.remove(key)
                        } else {
                            object.get(name).cloned()
                        };
                        path.push(Value::from(key));
                        let shaped = self.shape(raw.unwrap_or(Value::Null), &sub, path, errors);
                        path.pop();
                        shaped
                    };
                    out.insert(key.to_string(), v);
                }
                Value::Object(out)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SDL: &str = r#"
interface Node { id: ID! }
type Book implements Node { id: ID! title: String! }
type Film implements Node { id: ID! minutes: Int! }
type Query { node(id: ID!): Node  nodes: [Node!]!  book(id: ID!, lang: String = "en"): Book }
"#;

    const QUERY: &str = r#"query Q($skip: Boolean!, $id: ID!) {
  node(id: $id) { __typename id ... on Book { title } ... on Film { minutes } }
  b: book(id: "2") { t: title title @skip(if: $skip) }
  nodes { id }
}"#;

    fn with_shaper(variables: Value, f: impl FnOnce(&Shaper<'_>, &SelectionSet)) {
        let schema = Schema::parse_and_validate(SDL, "s.graphql").unwrap();
        let doc = ExecutableDocument::parse_and_validate(&schema, QUERY, "q.graphql").unwrap();
        let op = doc.operations.get(None).unwrap();
        let variables = variables.as_object().unwrap().clone();
        let shaper = Shaper {
            schema: &schema,
            document: &doc,
            variables: &variables,
        };
        f(&shaper, &op.selection_set);
    }

    #[test]
    fn the_selection_is_listed_flat_with_arguments_and_defaults() {
        with_shaper(json!({ "skip": true, "id": "7" }), |shaper, set| {
            let roots = shaper.collect(set, None);
            let mut fields = Vec::new();
            for f in roots.values() {
                shaper.list(f, None, &mut fields);
            }
            let listed: Vec<(Option<u32>, &str, &str, &str)> = fields
                .iter()
                .map(|f| {
                    (
                        f.parent,
                        f.key.as_str(),
                        f.name.as_str(),
                        f.arguments.as_str(),
                    )
                })
                .collect();
            assert_eq!(
                listed,
                vec![
                    (None, "node", "node", r#"{"id":"7"}"#),
                    (Some(0), "id", "id", "{}"),
                    (Some(0), "title", "title", "{}"),
                    (Some(0), "minutes", "minutes", "{}"),
                    (None, "b", "book", r#"{"id":"2","lang":"en"}"#),
                    (Some(4), "t", "title", "{}"),
                    (None, "nodes", "nodes", "{}"),
                    (Some(6), "id", "id", "{}"),
                ]
            );
        });
    }

    #[test]
    fn values_are_shaped_by_the_selection() {
        with_shaper(json!({ "skip": false, "id": "1" }), |shaper, set| {
            let roots = shaper.collect(set, None);
            let shape = |key: &str, value: Value, errors: &mut Vec<Value>| {
                shaper.shape(value, &roots[key], &mut vec![Value::from(key)], errors)
            };
            let mut errors = Vec::new();
            assert_eq!(
                shape(
                    "node",
                    json!({ "__typename": "Film", "id": "1", "minutes": 90, "title": "no" }),
                    &mut errors
                ),
                json!({ "__typename": "Film", "id": "1", "minutes": 90 })
            );
            assert_eq!(
                shape("b", json!({ "id": "2", "title": "Dune" }), &mut errors),
                json!({ "t": "Dune", "title": "Dune" })
            );
            assert_eq!(
                shape(
                    "nodes",
                    json!([{ "__typename": "Book", "id": "a" }, { "__typename": "Film", "id": "b" }]),
                    &mut errors
                ),
                json!([{ "id": "a" }, { "id": "b" }])
            );
            assert!(errors.is_empty(), "{errors:?}");
            // An abstract type without `__typename` cannot be shaped: null, with an error there.
            assert_eq!(
                shape("nodes", json!([{ "id": "a" }]), &mut errors),
                json!([null])
            );
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0]["path"], json!(["nodes", 0]));
            assert!(errors[0]["message"]
                .as_str()
                .unwrap()
                .contains("`Node` without a `__typename`"));
        });
    }

    #[test]
    fn skipped_fields_are_left_out() {
        with_shaper(json!({ "skip": true, "id": "1" }), |shaper, set| {
            let roots = shaper.collect(set, None);
            let mut errors = Vec::new();
            let shaped = shaper.shape(
                json!({ "title": "Dune" }),
                &roots["b"],
                &mut vec![Value::from("b")],
                &mut errors,
            );
            assert_eq!(shaped, json!({ "t": "Dune" }));
        });
    }
}
