//! Running joins: wave by wave, find every object that holds a `_join` (one per list item),
//! read its exported values, send each upstream one batched request for all of them (one
//! aliased copy per distinct set of values), and put each item's results into the upstream
//! data under the `_join` key, where value completion finds them.

use std::collections::HashMap;
use std::sync::Arc;

use apollo_compiler::response::JsonMap;
use futures::future::join_all;
use indexmap::IndexMap;

use super::{Errors, Segment};
use crate::error_code::ErrorCode;
use crate::graphql_error::{GraphQLError, PathSegment};
use crate::plan::batch::{BatchForm, KEY_ALIAS};
use crate::plan::join::{Batching, Binding, JoinPlan, TypeFilter};
use crate::plan::Plan;
use crate::schema::ENTITIES_FIELD;
use crate::upstream::data::{self, Data, Object, Text};
use crate::upstream::{
    FetchError, ItemCache, ItemKey, RequestContext, UpstreamRequest, UpstreamResponse, Upstreams,
};

/// An object that holds a join: its path in the response and its exported values.
struct Instance<'p> {
    path: Vec<Segment<'p>>,
    values: Vec<Data>,
}

/// The items of one join fetch that share the same values: one aliased copy upstream, or one
/// key of a batch-form call.
struct Group {
    /// The aliases' prefix (alias batching only).
    prefix: String,
    /// The items, as indices into the entry's instances.
    items: Vec<usize>,
    /// The key as results carry it (batch forms only).
    key: Option<Text>,
}

/// What one batched upstream request resolves.
struct Entry<'p> {
    join: &'p JoinPlan,
    fetch: usize,
    instances: Arc<Vec<Instance<'p>>>,
    groups: Vec<Group>,
    /// The batch form the fetch is sent as, and the prefix of its call's alias.
    form: Option<(&'p BatchForm, String)>,
    /// Where the groups' results are kept per key (batch forms only), and each group's key.
    items: Option<(ItemCache, Vec<ItemKey>)>,
    /// The shared `_entities` call the entry is sent in and, for each group, the position of
    /// its representation there (entity lookups only).
    entities: Option<(usize, Vec<usize>)>,
}

impl<'p> Entry<'p> {
    /// The paths of a group's items.
    fn paths<'a>(&'a self, group: &'a Group) -> impl Iterator<Item = &'a [Segment<'p>]> + 'a {
        group
            .items
            .iter()
            .map(|&i| self.instances[i].path.as_slice())
    }
}

#[derive(Default)]
struct Batch<'p> {
    /// The root fields, as the upstream names them.
    fields: Vec<String>,
    declarations: Vec<String>,
    selections: String,
    variables: JsonMap,
    entries: Vec<Entry<'p>>,
    /// The `_entities` calls of the request: one, unless two lookups select differently from
    /// one entity type.
    entities: Vec<SharedEntities>,
}

/// One `_entities` call that the entity lookups of all joins of a wave share: each distinct
/// representation once, and one `... on T { … }` per entity type.
#[derive(Default)]
struct SharedEntities {
    /// `(type, "... on T { … }")`.
    fragments: Vec<(String, String)>,
    representations: Vec<apollo_compiler::response::JsonValue>,
    /// Position of each representation, by its JSON text.
    positions: HashMap<Vec<u8>, usize>,
}

impl SharedEntities {
    /// Whether a lookup of `ty` selecting `fragment` can be sent in this call: the call selects
    /// nothing from `ty` yet, or exactly the same (two selections from one type could conflict).
    fn takes(&self, ty: &str, fragment: &str) -> bool {
        self.fragments.iter().all(|(t, f)| t != ty || f == fragment)
    }

    fn alias(index: usize) -> String {
        format!("{ENTITIES_ALIAS}{index}")
    }
}

/// Prefix of the aliases of shared `_entities` calls (`_entities_0`), which no alias-batched
/// copy can have (those start with `_<number>_`).
const ENTITIES_ALIAS: &str = "_entities_";

/// Runs every wave of joins of `plan` over `data`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run(
    plan: &Plan,
    upstreams: &Upstreams,
    variables: &JsonMap,
    context: &RequestContext,
    max_fanout: usize,
    data: &mut Object,
    errors: &mut Errors,
) {
    for (wave_index, wave) in plan.waves.iter().enumerate() {
        let mut batches: IndexMap<&str, Batch> = IndexMap::new();
        for &j in wave {
            let join = &plan.joins[j];
            let instances = Arc::new(discover(data, join));
            if instances.is_empty() {
                continue;
            }
            upstreams.count_join(instances.len());
            let join_key = Text::from(join.key.as_str());
            for inst in instances.iter() {
                if let Some(obj) = object_at(data, &inst.path) {
                    // The gateway owns the join key, whatever the upstream put there.
                    obj.insert_text(&join_key, Data::Object(Object::default()));
                }
            }
            // A collected (list) value is sent as is: its length counts like a fan-out.
            let widest = instances
                .iter()
                .flat_map(|i| &i.values)
                .filter_map(|v| match v {
                    Data::Array(items) => Some(items.len()),
                    _ => None,
                })
                .max()
                .unwrap_or(0);
            if instances.len() > max_fanout || widest > max_fanout {
                let what = if instances.len() > max_fanout {
                    format!("fan out to {} items", instances.len())
                } else {
                    format!("send a list of {widest} exported values")
                };
                let message = format!(
                    "this join would {what}; the limit is {max_fanout} (server.max_join_fanout)"
                );
                let error = GraphQLError::new(ErrorCode::JoinFanoutExceeded, message);
                // One error, at the first item; it explains every item's join.
                for (i, inst) in instances.iter().enumerate() {
                    let mut path = path_value(&inst.path);
                    path.push(PathSegment::Key(join.key.clone()));
                    if i == 0 {
                        errors.at(error.clone(), path);
                    } else {
                        errors.explain(&path);
                    }
                }
                continue;
            }
            for (f, fetch) in join.fetches.iter().enumerate() {
                // A batch form's list argument cannot carry a null key. (A representation can
                // carry null: key arguments are non-null, so validation keeps nullable
                // variables out of them; an optional `@requires` argument may be null.)
                let by_field = matches!(fetch.batching, Batching::Field(_));
                // Items with the same values (as JSON text) share one group.
                let mut groups: IndexMap<Vec<u8>, Group> = IndexMap::new();
                let mut text = Vec::new();
                'items: for (i, inst) in instances.iter().enumerate() {
                    text.clear();
                    for &b in &fetch.bindings {
                        let binding = &join.bindings[b];
                        let value = &inst.values[b];
                        if value.is_null() && (binding.non_null || by_field) {
                            null_export(data, errors, join, &fetch.root_keys, inst, binding);
                            continue 'items;
                        }
                        serde_json::to_writer(&mut text, value).expect("data serializes");
                        text.push(b',');
                    }
                    match groups.get_mut(text.as_slice()) {
                        Some(group) => group.items.push(i),
                        None => {
                            let group = Group {
                                prefix: String::new(),
                                items: vec![i],
                                key: None,
                            };
                            groups.insert(text.clone(), group);
                        }
                    }
                }
                if groups.is_empty() {
                    continue;
                }
                let mut items = None;
                if let Batching::Field(_) = &fetch.batching {
                    let upstream = upstreams
                        .get(&fetch.upstream)
                        .expect("plans only name configured upstreams");
                    if let Some(cache) = upstream.item_cache(context) {
                        let (left, keys) = place_kept_items(
                            data, join, f, &instances, groups, &cache, variables, context,
                        )
                        .await;
                        groups = left;
                        if groups.is_empty() {
                            continue;
                        }
                        items = Some((cache, keys));
                    }
                }
                let batch = batches.entry(fetch.upstream.as_str()).or_default();
                for field in &fetch.fields {
                    if !batch.fields.contains(field) {
                        batch.fields.push(field.clone());
                    }
                }
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
                    instances: instances.clone(),
                    groups: Vec::with_capacity(groups.len()),
                    form: None,
                    items,
                    entities: None,
                };
                // The values a group sends are those of its first item.
                let values = |group: &Group| &instances[group.items[0]].values;
                if let Batching::Field(form) = &fetch.batching {
                    let prefix = format!("_{j}_{f}_0_");
                    let b = fetch.bindings[0];
                    let name = format!("{prefix}{}", join.bindings[b].variable);
                    batch
                        .declarations
                        .push(format!("${name}: {}", form.argument_type));
                    let mut keys = Vec::with_capacity(groups.len());
                    for mut group in groups.into_values() {
                        let value = &values(&group)[b];
                        keys.push(value.to_json());
                        group.key = Some(key_text(value));
                        entry.groups.push(group);
                    }
                    batch.variables.insert(
                        name.as_str(),
                        apollo_compiler::response::JsonValue::Array(keys),
                    );
                    for piece in &fetch.pieces {
                        piece.write(&prefix, &mut batch.selections);
                        batch.selections.push(' ');
                    }
                    entry.form = Some((form, prefix));
                    batch.entries.push(entry);
                    continue;
                }
                if let Batching::Entities(call) = &fetch.batching {
                    // One representation per distinct set of values, in the wave's shared call.
                    let mut fragment = String::new();
                    for piece in &fetch.pieces {
                        piece.write("", &mut fragment);
                    }
                    let ty = call.lookup.type_name.as_str();
                    let c = match batch.entities.iter().position(|e| e.takes(ty, &fragment)) {
                        Some(c) => c,
                        None => {
                            batch.entities.push(SharedEntities::default());
                            batch.entities.len() - 1
                        }
                    };
                    let shared = &mut batch.entities[c];
                    if !shared.fragments.iter().any(|(t, _)| t == ty) {
                        shared.fragments.push((ty.to_string(), fragment));
                    }
                    let mut positions = Vec::with_capacity(groups.len());
                    for group in groups.into_values() {
                        let values = values(&group);
                        let representation =
                            call.representation(|b| values[b].to_json(), variables);
                        let text = serde_json::to_vec(&representation).expect("JSON serializes");
                        let next = shared.representations.len();
                        let position = *shared.positions.entry(text).or_insert(next);
                        if position == next {
                            shared.representations.push(representation);
                        }
                        positions.push(position);
                        entry.groups.push(group);
                    }
                    entry.entities = Some((c, positions));
                    batch.entries.push(entry);
                    continue;
                }
                for (g, mut group) in groups.into_values().enumerate() {
                    let prefix = format!("_{j}_{f}_{g}_");
                    for &b in &fetch.bindings {
                        let binding = &join.bindings[b];
                        let name = format!("{prefix}{}", binding.variable);
                        batch.declarations.push(format!(
                            "${name}: {}",
                            plan.variable_types[&binding.variable]
                        ));
                        batch
                            .variables
                            .insert(name.as_str(), values(&group)[b].to_json());
                    }
                    for piece in &fetch.pieces {
                        piece.write(&prefix, &mut batch.selections);
                        batch.selections.push(' ');
                    }
                    group.prefix = prefix;
                    entry.groups.push(group);
                }
                batch.entries.push(entry);
            }
        }
        for batch in batches.values_mut() {
            for (c, shared) in batch.entities.iter_mut().enumerate() {
                let alias = SharedEntities::alias(c);
                batch.declarations.push(format!("${alias}: [_Any!]!"));
                batch.variables.insert(
                    alias.as_str(),
                    apollo_compiler::response::JsonValue::Array(std::mem::take(
                        &mut shared.representations,
                    )),
                );
                batch.selections.push_str(&format!(
                    "{alias}: {ENTITIES_FIELD}(representations: ${alias}) {{ "
                ));
                for (_, fragment) in &shared.fragments {
                    batch.selections.push_str(fragment);
                    batch.selections.push(' ');
                }
                batch.selections.push_str("} ");
            }
        }
        let name = format!(
            "{}__join{}",
            plan.name.as_deref().unwrap_or("Anonymous"),
            wave_index + 1
        );
        let documents: Vec<String> = batches
            .values()
            .map(|batch| {
                let declarations = if batch.declarations.is_empty() {
                    String::new()
                } else {
                    format!("({})", batch.declarations.join(", "))
                };
                format!("query {name}{declarations} {{ {}}}", batch.selections)
            })
            .collect();
        let requests: Vec<UpstreamRequest<'_>> = batches
            .values()
            .zip(&documents)
            .map(|(batch, document)| UpstreamRequest {
                operation_name: Some(&name),
                document,
                body_prefix: None,
                variables: &batch.variables,
                query: true,
                fields: &batch.fields,
                // Items kept per key make a copy of the whole answer useless.
                keep_whole: batch.entries.iter().any(|e| e.items.is_none()),
            })
            .collect();
        let sent = batches.keys().zip(&requests).map(|(upstream, request)| {
            upstreams
                .get(upstream)
                .expect("plans only name configured upstreams")
                .send(request, context)
        });
        let span = crate::telemetry::traced(|| {
            tracing::info_span!("join wave", wave = wave_index, upstreams = batches.len())
        });
        let results = tracing::Instrument::instrument(join_all(sent), span).await;
        for ((upstream, batch), result) in batches.iter().zip(results) {
            merge(data, errors, context, upstream, batch, result);
        }
    }
}

/// Puts a batched response's data into each item and maps its errors to the items' paths.
fn merge(
    data: &mut Object,
    errors: &mut Errors,
    context: &RequestContext,
    upstream: &str,
    batch: &Batch<'_>,
    result: Result<UpstreamResponse, FetchError>,
) {
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(upstream, error = %e, "join fetch failed");
            let failed = e.upstream_failed();
            for entry in &batch.entries {
                let fetch = &entry.join.fetches[entry.fetch];
                for (g, group) in entry.groups.iter().enumerate() {
                    // Items kept per key stand in for a failed upstream within `stale_if_error`.
                    let stale = entry
                        .items
                        .as_ref()
                        .filter(|_| failed)
                        .and_then(|(cache, keys)| cache.stale(&keys[g], context))
                        .and_then(|item| data::parse(&item).ok());
                    if let Some(value) = stale {
                        let root_key = Text::from(fetch.root_keys[0].as_str());
                        place(data, entry, group, &root_key, value);
                        continue;
                    }
                    for path in entry.paths(group) {
                        for key in &fetch.root_keys {
                            let full = joined_path(path, &entry.join.key, key);
                            let error =
                                GraphQLError::new(e.code(), e.to_string()).with_upstream(upstream);
                            errors.at(error, full);
                        }
                    }
                }
            }
            return;
        }
    };
    let no_data = response.data.is_none();
    // Items are kept only from complete answers.
    let fresh = response.fresh_for.filter(|_| response.errors.is_empty());
    // Indexed once: an alias-batched answer has a key per distinct set of values.
    let mut answers: HashMap<Text, Data> = response
        .data
        .unwrap_or_default()
        .into_entries()
        .into_iter()
        .collect();
    // Each shared `_entities` call's results, checked: a list of one per representation sent.
    let shared: Vec<Result<Vec<Data>, Option<String>>> = batch
        .entities
        .iter()
        .enumerate()
        .map(|(c, call)| {
            let sent = call.positions.len();
            match answers.remove(SharedEntities::alias(c).as_bytes()) {
                Some(Data::Array(items)) if items.len() == sent => Ok(items),
                // No answer: the errors say why (or the items are null).
                Some(Data::Null) | None => Err(None),
                Some(Data::Array(items)) => Err(Some(format!(
                    "{} results for {sent} representations",
                    items.len()
                ))),
                Some(_) => Err(Some("something other than a list".to_string())),
            }
        })
        .collect();
    let mut by_prefix: HashMap<&str, (&Entry<'_>, &Group)> = HashMap::new();
    let mut calls: HashMap<&str, Call<'_>> = HashMap::new();
    for entry in &batch.entries {
        let fetch = &entry.join.fetches[entry.fetch];
        if let Some((c, positions)) = &entry.entities {
            place_entities(data, errors, entry, positions, &shared[*c]);
            continue;
        }
        if let Some((form, prefix)) = &entry.form {
            let call = place_batch(data, errors, &mut answers, (entry, form, prefix), fresh);
            calls.insert(prefix.as_str(), call);
            continue;
        }
        for group in &entry.groups {
            by_prefix.insert(group.prefix.as_str(), (entry, group));
            for key in &fetch.root_keys {
                let value = answers
                    .remove(format!("{}{key}", group.prefix).as_bytes())
                    .unwrap_or(Data::Null);
                let key = Text::from(key.as_str());
                place(data, entry, group, &key, value);
            }
        }
    }
    for error in response.errors {
        let mut error = GraphQLError::from_upstream(error, upstream);
        if let Some(c) = entities_call(&error) {
            place_entities_error(errors, batch, &shared, c, &error);
            continue;
        }
        if let Some((call, _, rest)) = locate(&error, &calls) {
            let groups = call.groups_for(rest.first());
            let rest = if rest.first().and_then(PathSegment::index).is_some() {
                &rest[1..]
            } else {
                rest
            };
            let fetch = &call.entry.join.fetches[call.entry.fetch];
            for group in groups {
                for path in call.entry.paths(group) {
                    let mut full = joined_path(path, &call.entry.join.key, &fetch.root_keys[0]);
                    full.extend_from_slice(rest);
                    errors.at(error.clone(), full);
                }
            }
            continue;
        }
        match locate(&error, &by_prefix) {
            Some((&(entry, group), key, rest)) => {
                for path in entry.paths(group) {
                    let mut full = joined_path(path, &entry.join.key, key);
                    full.extend_from_slice(rest);
                    errors.at(error.clone(), full);
                }
            }
            // No data and no path: the whole request failed, so every item's fields did.
            None if no_data => {
                for entry in &batch.entries {
                    let fetch = &entry.join.fetches[entry.fetch];
                    for path in entry.groups.iter().flat_map(|g| entry.paths(g)) {
                        for key in &fetch.root_keys {
                            let full = joined_path(path, &entry.join.key, key);
                            errors.at(error.clone(), full);
                        }
                    }
                }
            }
            None => {
                error.remove_path();
                errors.push(error);
            }
        }
    }
}

/// Puts `value` under `join_key.root_key` of each item of `group` (a copy for each but the
/// last).
fn place(data: &mut Object, entry: &Entry<'_>, group: &Group, root_key: &Text, value: Data) {
    place_in(
        data,
        &entry.join.key,
        &entry.instances,
        &group.items,
        root_key,
        value,
    );
}

/// Puts `value` under `join_key.root_key` of each of `items` (a copy for each but the last).
fn place_in(
    data: &mut Object,
    join_key: &str,
    instances: &[Instance<'_>],
    items: &[usize],
    root_key: &Text,
    value: Data,
) {
    let Some((last, others)) = items.split_last() else {
        return;
    };
    let mut put = |item: usize, value: Data| {
        let path = &instances[item].path;
        if let Some(Data::Object(joined)) = object_at(data, path).and_then(|o| o.get_mut(join_key))
        {
            joined.insert_text(root_key, value);
        }
    };
    for &item in others {
        put(item, value.clone());
    }
    put(*last, value);
}

/// A batch-form or `_entities` call as answered: which group each position of the answer is
/// about.
struct Call<'e> {
    entry: &'e Entry<'e>,
    /// The group of each result, by position in the answer (`None`: null, or a key no group
    /// asked for).
    positions: Vec<Option<usize>>,
    /// Groups that got no result.
    missing: Vec<usize>,
}

impl<'e> Call<'e> {
    /// The groups an error at `index` (a position in the answer, if the path has one) is about:
    /// the group of the result there; otherwise those without a result; otherwise all.
    fn groups_for(&self, index: Option<&PathSegment>) -> Vec<&'e Group> {
        let group = index
            .and_then(PathSegment::index)
            .and_then(|i| self.positions.get(i))
            .and_then(|g| *g);
        if let Some(g) = group {
            return vec![&self.entry.groups[g]];
        }
        if self.missing.is_empty() {
            self.entry.groups.iter().collect()
        } else {
            self.missing
                .iter()
                .map(|&g| &self.entry.groups[g])
                .collect()
        }
    }
}

/// Puts each result of a batch-form call into the items whose key it carries; items whose
/// key has no result get `null` (with an error where the joined field is non-null).
/// Results are kept per key for `fresh` where the entry keeps items.
fn place_batch<'e>(
    data: &mut Object,
    errors: &mut Errors,
    answers: &mut HashMap<Text, Data>,
    (entry, form, prefix): (&'e Entry<'e>, &BatchForm, &str),
    fresh: Option<std::time::Duration>,
) -> Call<'e> {
    let keep = entry
        .items
        .as_ref()
        .zip(fresh)
        .map(|((cache, keys), fresh)| (cache, keys, fresh));
    let fetch = &entry.join.fetches[entry.fetch];
    let root_key = &fetch.root_keys[0];
    let answer = answers.remove(format!("{prefix}{root_key}").as_bytes());
    let mut results: HashMap<Text, Data> = HashMap::new();
    let mut positions = Vec::new();
    let listed = match answer {
        Some(Data::Array(items)) => {
            let group_of: HashMap<&Text, usize> = entry
                .groups
                .iter()
                .enumerate()
                .filter_map(|(g, group)| group.key.as_ref().map(|k| (k, g)))
                .collect();
            positions.reserve(items.len());
            for item in items {
                let key = item
                    .as_object()
                    .and_then(|o| o.get(KEY_ALIAS))
                    .map(key_text);
                positions.push(key.as_ref().and_then(|k| group_of.get(k).copied()));
                if let Some(key) = key {
                    results.entry(key).or_insert(item);
                }
            }
            true
        }
        Some(Data::Null) | None => false,
        Some(_) => {
            for group in &entry.groups {
                for path in entry.paths(group) {
                    let full = joined_path(path, &entry.join.key, root_key);
                    errors.at(
                        GraphQLError::new(
                            ErrorCode::UpstreamBadResponse,
                            format!("`{}` answered with something other than a list", form.field),
                        ),
                        full,
                    );
                }
            }
            false
        }
    };
    let mut missing = Vec::new();
    let root_text = Text::from(root_key.as_str());
    for (g, group) in entry.groups.iter().enumerate() {
        let key = group.key.as_ref().expect("batch-form groups have a key");
        let value = results.remove(key);
        if let Some((cache, keys, fresh)) = keep {
            match &value {
                Some(v) => cache.keep(
                    &keys[g],
                    serde_json::to_vec(v).expect("data serializes"),
                    fresh,
                ),
                // "Not found" is an answer too, unless the single field makes it an error.
                None if listed && !form.single_non_null => {
                    cache.keep(&keys[g], b"null".to_vec(), fresh)
                }
                None => {}
            }
        }
        if value.is_none() {
            missing.push(g);
            if listed && form.single_non_null {
                for path in entry.paths(group) {
                    let full = joined_path(path, &entry.join.key, root_key);
                    errors.at(
                        GraphQLError::new(
                            ErrorCode::UpstreamBadResponse,
                            format!(
                                "`{}` has no result for key {:?}, and `{}` cannot be null",
                                form.field, key, form.single
                            ),
                        ),
                        full,
                    );
                }
            }
        }
        place(data, entry, group, &root_text, value.unwrap_or(Data::Null));
    }
    Call {
        entry,
        positions,
        missing,
    }
}

/// Puts each result of a shared `_entities` call into the items of the groups whose
/// representation sits at its position. An answer that is not a list of one result per
/// representation is an error at every item: matching by position cannot be trusted then.
fn place_entities(
    data: &mut Object,
    errors: &mut Errors,
    entry: &Entry<'_>,
    positions: &[usize],
    answer: &Result<Vec<Data>, Option<String>>,
) {
    let fetch = &entry.join.fetches[entry.fetch];
    let root_key = &fetch.root_keys[0];
    let root_text = Text::from(root_key.as_str());
    for (g, group) in entry.groups.iter().enumerate() {
        let value = match answer {
            Ok(items) => items[positions[g]].clone(),
            Err(wrong) => {
                if let Some(wrong) = wrong {
                    for path in entry.paths(group) {
                        let full = joined_path(path, &entry.join.key, root_key);
                        let message = format!(
                            "`_entities` answered {wrong}; results are matched by position, so none is used"
                        );
                        errors.at(
                            GraphQLError::new(ErrorCode::UpstreamBadResponse, message),
                            full,
                        );
                    }
                }
                Data::Null
            }
        };
        place(data, entry, group, &root_text, value);
    }
}

/// The shared `_entities` call an upstream error is about, by the alias its path starts with.
fn entities_call(error: &GraphQLError) -> Option<usize> {
    error
        .path()?
        .first()?
        .key()?
        .strip_prefix(ENTITIES_ALIAS)?
        .parse()
        .ok()
}

/// Gives an upstream error inside shared `_entities` call `c` to the items it is about: those
/// whose representation sits at the position its path names. Some subgraphs leave the
/// position out: such an error is about the entities that came back null (or all, if none
/// did) among the lookups that select the field it names.
fn place_entities_error(
    errors: &mut Errors,
    batch: &Batch<'_>,
    shared: &[Result<Vec<Data>, Option<String>>],
    c: usize,
    error: &GraphQLError,
) {
    let path = error.path().unwrap_or_default();
    let rest = path.get(1..).unwrap_or_default();
    let index = rest.first().and_then(PathSegment::index);
    let rest = if index.is_some() { &rest[1..] } else { rest };
    let items = shared[c].as_ref().ok();
    let any_null = items.is_some_and(|items| items.iter().any(Data::is_null));
    for entry in &batch.entries {
        let Some((call, positions)) = &entry.entities else {
            continue;
        };
        if *call != c {
            continue;
        }
        let fetch = &entry.join.fetches[entry.fetch];
        let root_key = &fetch.root_keys[0];
        let selects = match (&fetch.batching, rest.first()) {
            (Batching::Entities(lookup), Some(PathSegment::Key(key))) => {
                lookup.selected.contains(key)
            }
            _ => true,
        };
        if index.is_none() && !selects {
            continue;
        }
        for (g, group) in entry.groups.iter().enumerate() {
            let about = match (index, items) {
                (Some(i), _) => positions[g] == i,
                (None, Some(items)) if any_null => items[positions[g]].is_null(),
                (None, _) => true,
            };
            if !about {
                continue;
            }
            for path in entry.paths(group) {
                let mut full = joined_path(path, &entry.join.key, root_key);
                full.extend_from_slice(rest);
                errors.at(error.clone(), full);
            }
        }
    }
}

/// Looks the keys of a batch-form fetch's groups up in the upstream's per-key cache, places
/// the items found, and gives the groups left to fetch with their item keys.
#[allow(clippy::too_many_arguments)]
async fn place_kept_items(
    data: &mut Object,
    join: &JoinPlan,
    f: usize,
    instances: &[Instance<'_>],
    groups: IndexMap<Vec<u8>, Group>,
    cache: &ItemCache,
    variables: &JsonMap,
    context: &RequestContext,
) -> (IndexMap<Vec<u8>, Group>, Vec<ItemKey>) {
    let fetch = &join.fetches[f];
    let b = fetch.bindings[0];
    let identity = item_identity(fetch, variables);
    let keys: Vec<ItemKey> = groups
        .values()
        .map(|g| {
            let key = &instances[g.items[0]].values[b];
            cache.key(
                &identity,
                &serde_json::to_vec(key).expect("data serializes"),
            )
        })
        .collect();
    let found = cache.get_many(&keys, context).await;
    let root_key = Text::from(fetch.root_keys[0].as_str());
    let mut missing = Vec::new();
    let mut left = IndexMap::new();
    for ((text, group), (key, hit)) in groups.into_iter().zip(keys.into_iter().zip(found)) {
        match hit.and_then(|item| data::parse(&item).ok()) {
            Some(value) => place_in(data, &join.key, instances, &group.items, &root_key, value),
            None => {
                left.insert(text, group);
                missing.push(key);
            }
        }
    }
    (left, missing)
}

/// What makes a batch-form call's results the same for the same key: its selection as one
/// call renders it, and the values of the client variables it sends.
fn item_identity(fetch: &crate::plan::join::JoinFetch, variables: &JsonMap) -> Vec<u8> {
    let mut identity = String::new();
    for piece in &fetch.pieces {
        piece.write("_", &mut identity);
        identity.push(' ');
    }
    let mut identity = identity.into_bytes();
    for v in &fetch.client_variables {
        identity.push(0);
        identity.extend_from_slice(v.as_bytes());
        identity.push(b'=');
        serde_json::to_writer(&mut identity, &variables.get(v.as_str())).expect("JSON serializes");
    }
    identity
}

/// What an upstream error is about, by the alias prefix its path starts with (`by_prefix` is
/// keyed by prefix): that entry, the response key after the prefix, and the rest of the path.
fn locate<'c, T>(
    error: &'c GraphQLError,
    by_prefix: &'c HashMap<&str, T>,
) -> Option<(&'c T, &'c str, &'c [PathSegment])> {
    let path = error.path()?;
    let alias = path.first()?.key()?;
    let (j, f, g) = parse_prefix(alias)?;
    let prefix = format!("_{j}_{f}_{g}_");
    let key = alias.strip_prefix(prefix.as_str())?;
    Some((by_prefix.get(prefix.as_str())?, key, &path[1..]))
}

/// A key as text, so that keys and results match whatever JSON type each side uses
/// (`"42"` and `42` are the same key).
fn key_text(value: &Data) -> Text {
    match value {
        Data::String(t) => t.clone(),
        other => Text::from(serde_json::to_string(other).expect("data serializes")),
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

fn joined_path(item: &[Segment<'_>], join_key: &str, field: &str) -> Vec<PathSegment> {
    let mut path = path_value(item);
    path.push(PathSegment::Key(join_key.to_string()));
    path.push(PathSegment::Key(field.to_string()));
    path
}

fn path_value(path: &[Segment<'_>]) -> Vec<PathSegment> {
    path.iter().copied().map(PathSegment::from).collect()
}

/// A required exported value is null: the joined fields of this item are null, with an error.
fn null_export(
    data: &mut Object,
    errors: &mut Errors,
    join: &JoinPlan,
    root_keys: &[String],
    inst: &Instance<'_>,
    binding: &Binding,
) {
    for key in root_keys {
        let path = joined_path(&inst.path, &join.key, key);
        if let Some(Data::Object(joined)) =
            object_at(data, &inst.path).and_then(|o| o.get_mut(&join.key))
        {
            joined.insert(key, Data::Null);
        }
        errors.at(
            GraphQLError::new(
                ErrorCode::JoinValueNull,
                format!(
                    "cannot join `{key}`: `${}` is exported from `{}`, which is null here",
                    binding.variable, binding.source
                ),
            ),
            path,
        );
    }
}

/// The object at `path` (keys and list indices) in `data`.
fn object_at<'a>(data: &'a mut Object, path: &[Segment<'_>]) -> Option<&'a mut Object> {
    let mut current = data;
    let mut segments = path.iter().peekable();
    while let Some(seg) = segments.next() {
        let Segment::Key(key) = seg else {
            return None;
        };
        let mut value = current.get_mut(key)?;
        while let Some(&&Segment::Index(i)) = segments.peek() {
            value = match value {
                Data::Array(items) => items.get_mut(i)?,
                _ => return None,
            };
            segments.next();
        }
        current = value.as_object_mut()?;
    }
    Some(current)
}

/// Every object that holds `join`, with its exported values.
fn discover<'p>(data: &Object, join: &'p JoinPlan) -> Vec<Instance<'p>> {
    let mut out = Vec::new();
    let mut stack = Vec::with_capacity(join.scope.len() + 1);
    visit_object(data, join, &mut stack, &mut Vec::new(), &mut out);
    out
}

fn passes(obj: &Object, filter: &Option<TypeFilter>) -> bool {
    let Some(filter) = filter else { return true };
    obj.get("__typename")
        .and_then(Data::as_text)
        .is_some_and(|t| {
            filter
                .types
                .contains(&format!("{}_{}", filter.namespace, t.to_string_lossless()))
        })
}

fn visit_object<'d, 'p>(
    obj: &'d Object,
    join: &'p JoinPlan,
    stack: &mut Vec<&'d Object>,
    path: &mut Vec<Segment<'p>>,
    out: &mut Vec<Instance<'p>>,
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
                path.push(Segment::Key(step.key.as_str()));
                visit_value(value, join, stack, path, out);
                path.pop();
            }
        }
    }
    stack.pop();
}

fn visit_value<'d, 'p>(
    value: &'d Data,
    join: &'p JoinPlan,
    stack: &mut Vec<&'d Object>,
    path: &mut Vec<Segment<'p>>,
    out: &mut Vec<Instance<'p>>,
) {
    match value {
        Data::Object(obj) => visit_object(obj, join, stack, path, out),
        Data::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(Segment::Index(i));
                visit_value(item, join, stack, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// An exported value: the field at `binding.path` below `obj`; collected (flattened) when the
/// path crosses lists.
fn read(obj: &Object, binding: &Binding) -> Data {
    fn walk<'v>(value: &'v Data, path: &[String], out: &mut Vec<&'v Data>) {
        match (value, path.split_first()) {
            (Data::Array(items), _) => items.iter().for_each(|i| walk(i, path, out)),
            (Data::Object(obj), Some((key, rest))) => {
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
            Data::Array(Vec::new())
        } else {
            Data::Null
        };
    };
    if !binding.collect {
        let mut v = start;
        for key in rest {
            match v.as_object().and_then(|o| o.get(key)) {
                Some(next) => v = next,
                None => return Data::Null,
            }
        }
        return v.clone();
    }
    let mut found = Vec::new();
    walk(start, rest, &mut found);
    let mut values = Vec::with_capacity(found.len());
    for v in found {
        match v {
            Data::Array(items) => values.extend(items.iter().cloned()),
            Data::Null => {}
            v => values.push(v.clone()),
        }
    }
    Data::Array(values)
}
