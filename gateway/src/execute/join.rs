//! Running joins: wave by wave, find every object that holds a `_join` (one per list item),
//! read its exported values, send each upstream one batched request for all of them (one
//! aliased copy per distinct set of values), and put each item's results into the upstream
//! data under the `_join` key, where value completion finds them.

use std::collections::HashMap;

use apollo_compiler::response::{JsonMap, JsonValue};
use futures::future::join_all;
use indexmap::IndexMap;
use serde_json::{Map, Value};

use super::{attribute, Explained};
use crate::error_code::ErrorCode;
use crate::plan::join::{Binding, JoinPlan, TypeFilter};
use crate::plan::Plan;
use crate::upstream::{FetchError, RequestContext, UpstreamResponse, Upstreams};

/// An object that holds a join: its path in the response and its exported values.
struct Instance {
    path: Vec<Value>,
    values: Vec<Value>,
}

/// The items of one join fetch that share the same values: one aliased copy upstream.
struct Group {
    prefix: String,
    paths: Vec<Vec<Value>>,
}

/// What one batched upstream request resolves.
struct Entry<'p> {
    join: &'p JoinPlan,
    fetch: usize,
    groups: Vec<Group>,
}

#[derive(Default)]
struct Batch<'p> {
    declarations: Vec<String>,
    selections: String,
    variables: JsonMap,
    entries: Vec<Entry<'p>>,
}

/// Runs every wave of joins of `plan` over `data`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    plan: &Plan,
    upstreams: &Upstreams,
    variables: &JsonMap,
    headers: &RequestContext,
    max_fanout: usize,
    data: &mut Map<String, Value>,
    errors: &mut Vec<Value>,
    explained: &mut Explained,
) {
    for (wave_index, wave) in plan.waves.iter().enumerate() {
        let mut batches: IndexMap<&str, Batch> = IndexMap::new();
        for &j in wave {
            let join = &plan.joins[j];
            let instances = discover(data, join);
            if instances.is_empty() {
                continue;
            }
            for inst in &instances {
                if let Some(obj) = object_at(data, &inst.path) {
                    obj.entry(join.key.clone())
                        .or_insert_with(|| Value::Object(Map::new()));
                }
            }
            if instances.len() > max_fanout {
                let mut error = ErrorCode::JoinFanoutExceeded.error(format!(
                    "this join would fan out to {} items; the limit is {max_fanout} (server.max_join_fanout)",
                    instances.len()
                ));
                let mut path = instances[0].path.clone();
                path.push(Value::from(join.key.as_str()));
                error["path"] = Value::from(path);
                errors.push(error);
                for inst in &instances {
                    let mut path = inst.path.clone();
                    path.push(Value::from(join.key.as_str()));
                    explained.0.push(path);
                }
                continue;
            }
            for (f, fetch) in join.fetches.iter().enumerate() {
                let mut groups: IndexMap<String, (Vec<&Value>, Vec<Vec<Value>>)> = IndexMap::new();
                'items: for inst in &instances {
                    let mut values = Vec::with_capacity(fetch.bindings.len());
                    for &b in &fetch.bindings {
                        let binding = &join.bindings[b];
                        let value = &inst.values[b];
                        if value.is_null() && binding.non_null {
                            null_export(
                                data,
                                errors,
                                explained,
                                join,
                                &fetch.root_keys,
                                inst,
                                binding,
                            );
                            continue 'items;
                        }
                        values.push(value);
                    }
                    let key = serde_json::to_string(&values).expect("JSON values serialize");
                    groups
                        .entry(key)
                        .or_insert_with(|| (values, Vec::new()))
                        .1
                        .push(inst.path.clone());
                }
                if groups.is_empty() {
                    continue;
                }
                let batch = batches.entry(fetch.upstream.as_str()).or_default();
                for v in &fetch.client_variables {
                    let declaration = format!("${v}: {}", plan.variable_types[v]);
                    if !batch.declarations.contains(&declaration) {
                        batch.declarations.push(declaration);
                    }
                    if let Some(value) = variables.get(v.as_str()) {
                        batch.variables.insert(v.as_str(), value.clone());
                    }
                }
                let mut entry = Entry {
                    join,
                    fetch: f,
                    groups: Vec::with_capacity(groups.len()),
                };
                for (g, (values, paths)) in groups.into_values().enumerate() {
                    let prefix = format!("_{j}_{f}_{g}_");
                    for (&b, value) in fetch.bindings.iter().zip(values) {
                        let binding = &join.bindings[b];
                        let name = format!("{prefix}{}", binding.variable);
                        batch.declarations.push(format!(
                            "${name}: {}",
                            plan.variable_types[&binding.variable]
                        ));
                        let json: JsonValue =
                            serde_json::from_value(value.clone()).expect("JSON converts");
                        batch.variables.insert(name.as_str(), json);
                    }
                    for piece in &fetch.pieces {
                        piece.write(&prefix, &mut batch.selections);
                        batch.selections.push(' ');
                    }
                    entry.groups.push(Group { prefix, paths });
                }
                batch.entries.push(entry);
            }
        }
        let name = format!(
            "{}__join{}",
            plan.name.as_deref().unwrap_or("Anonymous"),
            wave_index + 1
        );
        let sent = batches.iter().map(|(upstream, batch)| {
            let declarations = if batch.declarations.is_empty() {
                String::new()
            } else {
                format!("({})", batch.declarations.join(", "))
            };
            let document = format!("query {name}{declarations} {{ {}}}", batch.selections);
            let body = serde_json::json!({
                "operationName": name,
                "query": document,
                "variables": batch.variables,
            });
            let upstream = upstreams
                .get(upstream)
                .expect("plans only name configured upstreams");
            upstream.send(
                serde_json::to_vec(&body).expect("JSON values serialize"),
                headers,
            )
        });
        let results = join_all(sent).await;
        for ((upstream, batch), result) in batches.iter().zip(results) {
            merge(data, errors, explained, upstream, batch, result);
        }
    }
}

/// Puts a batched response's data into each item and maps its errors to the items' paths.
fn merge(
    data: &mut Map<String, Value>,
    errors: &mut Vec<Value>,
    explained: &mut Explained,
    upstream: &str,
    batch: &Batch<'_>,
    result: Result<UpstreamResponse, FetchError>,
) {
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(upstream, error = %e, "join fetch failed");
            for entry in &batch.entries {
                let fetch = &entry.join.fetches[entry.fetch];
                for group in &entry.groups {
                    for path in &group.paths {
                        for key in &fetch.root_keys {
                            let full = joined_path(path, &entry.join.key, key);
                            let mut error = e.code().error(e.to_string());
                            error["path"] = Value::from(full.clone());
                            error["extensions"]["upstream"] = Value::from(upstream);
                            errors.push(error);
                            explained.0.push(full);
                        }
                    }
                }
            }
            return;
        }
    };
    let mut upstream_data = response.data.unwrap_or_default();
    let mut by_prefix: HashMap<&str, (&Entry<'_>, &Group)> = HashMap::new();
    for entry in &batch.entries {
        let fetch = &entry.join.fetches[entry.fetch];
        for group in &entry.groups {
            by_prefix.insert(group.prefix.as_str(), (entry, group));
            for key in &fetch.root_keys {
                let value = upstream_data
                    .remove(&format!("{}{key}", group.prefix))
                    .unwrap_or(Value::Null);
                for path in &group.paths {
                    if let Some(Value::Object(joined)) =
                        object_at(data, path).and_then(|o| o.get_mut(&entry.join.key))
                    {
                        joined.insert(key.clone(), value.clone());
                    }
                }
            }
        }
    }
    for error in response.errors {
        let located = error
            .get("path")
            .and_then(Value::as_array)
            .and_then(|p| p.first())
            .and_then(Value::as_str)
            .and_then(|alias| {
                let (j, f, g) = parse_prefix(alias)?;
                let prefix = format!("_{j}_{f}_{g}_");
                let key = alias.strip_prefix(&prefix)?.to_string();
                by_prefix.get(prefix.as_str()).map(|found| (*found, key))
            });
        match located {
            Some(((entry, group), key)) => {
                let rest: Vec<Value> = error["path"]
                    .as_array()
                    .map(|p| p[1..].to_vec())
                    .unwrap_or_default();
                for path in &group.paths {
                    let mut full = joined_path(path, &entry.join.key, &key);
                    full.extend(rest.iter().cloned());
                    let mut e = attribute(error.clone(), upstream);
                    e["path"] = Value::from(full.clone());
                    errors.push(e);
                    explained.0.push(full);
                }
            }
            None => {
                let mut e = attribute(error, upstream);
                if let Some(obj) = e.as_object_mut() {
                    obj.remove("path");
                }
                errors.push(e);
            }
        }
    }
}

/// `_<join>_<fetch>_<group>_…` → the three numbers.
fn parse_prefix(alias: &str) -> Option<(usize, usize, usize)> {
    let mut parts = alias.strip_prefix('_')?.splitn(4, '_');
    let j = parts.next()?.parse().ok()?;
    let f = parts.next()?.parse().ok()?;
    let g = parts.next()?.parse().ok()?;
    Some((j, f, g))
}

fn joined_path(item: &[Value], join_key: &str, field: &str) -> Vec<Value> {
    let mut path = item.to_vec();
    path.push(Value::from(join_key));
    path.push(Value::from(field));
    path
}

/// A required exported value is null: the joined fields of this item are null, with an error.
fn null_export(
    data: &mut Map<String, Value>,
    errors: &mut Vec<Value>,
    explained: &mut Explained,
    join: &JoinPlan,
    root_keys: &[String],
    inst: &Instance,
    binding: &Binding,
) {
    for key in root_keys {
        let path = joined_path(&inst.path, &join.key, key);
        if let Some(Value::Object(joined)) =
            object_at(data, &inst.path).and_then(|o| o.get_mut(&join.key))
        {
            joined.insert(key.clone(), Value::Null);
        }
        let mut error = ErrorCode::JoinValueNull.error(format!(
            "cannot join `{key}`: `${}` is exported from `{}`, which is null here",
            binding.variable, binding.source
        ));
        error["path"] = Value::from(path.clone());
        errors.push(error);
        explained.0.push(path);
    }
}

/// The object at `path` (keys and list indices) in `data`.
fn object_at<'a>(
    data: &'a mut Map<String, Value>,
    path: &[Value],
) -> Option<&'a mut Map<String, Value>> {
    let mut current = data;
    let mut segments = path.iter().peekable();
    while let Some(seg) = segments.next() {
        let mut value = current.get_mut(seg.as_str()?)?;
        while let Some(Value::Number(n)) = segments.peek() {
            let i = n.as_u64()? as usize;
            value = value.as_array_mut()?.get_mut(i)?;
            segments.next();
        }
        current = value.as_object_mut()?;
    }
    Some(current)
}

/// Every object that holds `join`, with its exported values.
fn discover(data: &Map<String, Value>, join: &JoinPlan) -> Vec<Instance> {
    let mut out = Vec::new();
    let mut stack = Vec::with_capacity(join.scope.len() + 1);
    visit_object(data, join, &mut stack, &mut Vec::new(), &mut out);
    out
}

fn passes(obj: &Map<String, Value>, filter: &Option<TypeFilter>) -> bool {
    let Some(filter) = filter else { return true };
    obj.get("__typename")
        .and_then(Value::as_str)
        .is_some_and(|t| filter.types.contains(&format!("{}_{t}", filter.namespace)))
}

fn visit_object<'d>(
    obj: &'d Map<String, Value>,
    join: &JoinPlan,
    stack: &mut Vec<&'d Map<String, Value>>,
    path: &mut Vec<Value>,
    out: &mut Vec<Instance>,
) {
    let depth = stack.len();
    stack.push(obj);
    if depth == join.scope.len() {
        if passes(obj, &join.scope_filter) {
            let values = join
                .bindings
                .iter()
                .map(|b| read(stack[b.level], b))
                .collect();
            out.push(Instance {
                path: path.clone(),
                values,
            });
        }
    } else {
        let step = &join.scope[depth];
        if passes(obj, &step.filter) {
            if let Some(value) = obj.get(&step.key) {
                path.push(Value::from(step.key.as_str()));
                visit_value(value, join, stack, path, out);
                path.pop();
            }
        }
    }
    stack.pop();
}

fn visit_value<'d>(
    value: &'d Value,
    join: &JoinPlan,
    stack: &mut Vec<&'d Map<String, Value>>,
    path: &mut Vec<Value>,
    out: &mut Vec<Instance>,
) {
    match value {
        Value::Object(obj) => visit_object(obj, join, stack, path, out),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Value::from(i));
                visit_value(item, join, stack, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// An exported value: the field at `binding.path` below `obj`; collected (flattened) when the
/// path crosses lists.
fn read(obj: &Map<String, Value>, binding: &Binding) -> Value {
    fn walk<'v>(value: &'v Value, path: &[String], out: &mut Vec<&'v Value>) {
        match (value, path.split_first()) {
            (Value::Array(items), _) => items.iter().for_each(|i| walk(i, path, out)),
            (Value::Object(obj), Some((key, rest))) => {
                if let Some(v) = obj.get(key) {
                    walk(v, rest, out);
                }
            }
            (v, None) => out.push(v),
            _ => {}
        }
    }
    let (first, rest) = binding.path.split_first().expect("a binding names a field");
    let Some(start) = obj.get(first) else {
        return if binding.collect {
            Value::Array(Vec::new())
        } else {
            Value::Null
        };
    };
    if !binding.collect {
        let mut v = start;
        for key in rest {
            match v.get(key) {
                Some(next) => v = next,
                None => return Value::Null,
            }
        }
        return v.clone();
    }
    let mut found = Vec::new();
    walk(start, rest, &mut found);
    let mut values = Vec::with_capacity(found.len());
    for v in found {
        match v {
            Value::Array(items) => values.extend(items.iter().cloned()),
            Value::Null => {}
            v => values.push(v.clone()),
        }
    }
    Value::Array(values)
}
