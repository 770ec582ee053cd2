//! Entity lookups of federation subgraphs in plans: what each argument of a lookup sends in
//! its representation, and the checks a lookup passes at build.

use std::collections::HashSet;
use std::sync::Arc;

use apollo_compiler::ast::Value;
use apollo_compiler::executable::{self, Selection};
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::ExecutableDocument;

use crate::schema::EntityLookup;

/// An entity lookup inside a join, sent for all items as one `_entities` call.
#[derive(Debug, Clone)]
pub(crate) struct EntityCall {
    /// The entity and its key.
    pub(crate) lookup: Arc<EntityLookup>,
    /// Each argument the operation gives the lookup, by name, and where its value comes from.
    pub(crate) arguments: Vec<(String, ArgumentSource)>,
    /// The response keys the lookup selects at its top level: an upstream error whose path
    /// names no position is about the lookups that select the key it names.
    pub(crate) selected: Vec<String>,
}

/// Where the value of an entity lookup's argument comes from.
#[derive(Debug, Clone)]
pub(crate) enum ArgumentSource {
    /// An exported value: the item's value of this binding of the join.
    Binding(usize),
    /// A client variable (absent: left out of the representation).
    Client(String),
    /// A value written in the operation.
    Constant(JsonValue),
}

impl EntityCall {
    /// One representation: `{"__typename": T, <argument>: <value>, …}`, the values of
    /// exported arguments taken from `bound` (the item's values, by binding).
    pub(crate) fn representation(
        &self,
        bound: impl Fn(usize) -> JsonValue,
        variables: &JsonMap,
    ) -> JsonValue {
        let mut representation = JsonMap::new();
        representation.insert(
            "__typename",
            JsonValue::from(self.lookup.type_name.as_str()),
        );
        for (name, source) in &self.arguments {
            let value = match source {
                ArgumentSource::Binding(b) => bound(*b),
                ArgumentSource::Client(v) => match variables.get(v.as_str()) {
                    Some(value) => value.clone(),
                    None => continue,
                },
                ArgumentSource::Constant(value) => value.clone(),
            };
            representation.insert(name.as_str(), value);
        }
        JsonValue::Object(representation)
    }
}

/// Where each argument of lookup `field` comes from, in a join whose internal variables are
/// `internal`; `bind` gives the binding of an internal variable (`None`: it cannot be bound,
/// already reported). `Err` says why the lookup cannot be sent for all items at once.
pub(crate) fn argument_sources(
    field: &executable::Field,
    internal: &HashSet<String>,
    mut bind: impl FnMut(&str) -> Result<Option<usize>, String>,
) -> Result<Vec<(String, ArgumentSource)>, String> {
    let mut sources = Vec::new();
    for arg in &field.arguments {
        let source = match &*arg.value {
            Value::Variable(v) if internal.contains(v.as_str()) => match bind(v)? {
                Some(b) => ArgumentSource::Binding(b),
                None => continue,
            },
            Value::Variable(v) => ArgumentSource::Client(v.to_string()),
            value => ArgumentSource::Constant(constant(value).ok_or_else(|| {
                format!(
                    "argument `{}` of `{}` holds a variable inside a larger value; inside `_join`, give an entity lookup's arguments as variables or as values without variables",
                    arg.name, field.name
                )
            })?),
        };
        sources.push((arg.name.to_string(), source));
    }
    Ok(sources)
}

/// A value without variables as JSON (enum values as strings, as they travel in JSON).
fn constant(value: &Value) -> Option<JsonValue> {
    Some(match value {
        Value::Null => JsonValue::Null,
        Value::Enum(name) => JsonValue::from(name.as_str()),
        Value::Variable(_) => return None,
        Value::String(s) => JsonValue::from(s.as_str()),
        Value::Float(f) => serde_json::from_str(f.as_str()).ok()?,
        Value::Int(i) => serde_json::from_str(i.as_str()).ok()?,
        Value::Boolean(b) => JsonValue::from(*b),
        Value::List(items) => JsonValue::Array(
            items
                .iter()
                .map(|v| constant(v))
                .collect::<Option<Vec<_>>>()?,
        ),
        Value::Object(fields) => {
            let mut map = JsonMap::new();
            for (name, v) in fields {
                map.insert(name.as_str(), constant(v)?);
            }
            JsonValue::Object(map)
        }
    })
}

/// Checks that every field `field` (an entity lookup) selects whose subgraph needs other
/// services' fields (`@requires`) gets them as arguments of the lookup.
pub(crate) fn check_requires(
    document: &ExecutableDocument,
    field: &executable::Field,
    lookup: &EntityLookup,
) -> Result<(), String> {
    let given: HashSet<&str> = field.arguments.iter().map(|a| a.name.as_str()).collect();
    let mut selected = Vec::new();
    top_fields(document, &field.selection_set, &mut selected);
    for name in selected.iter().map(|f| f.name.as_str()) {
        let Some(needed) = lookup.required_by(name) else {
            continue;
        };
        let missing: Vec<&str> = needed
            .iter()
            .map(String::as_str)
            .filter(|n| !given.contains(n))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "`{name}` of `{}` needs {} from another service (`@requires`), which `{}` sends in the entity's representation: give {} as argument(s) of `{}`, e.g. from an `@export` of the upstream that has it",
                lookup.type_name,
                quoted(&needed.iter().map(String::as_str).collect::<Vec<_>>()),
                field.name,
                quoted(&missing),
                field.name,
            ));
        }
    }
    Ok(())
}

fn quoted(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The response keys `field` selects at its top level (through fragments).
pub(crate) fn selected_keys(
    document: &ExecutableDocument,
    field: &executable::Field,
) -> Vec<String> {
    let mut fields = Vec::new();
    top_fields(document, &field.selection_set, &mut fields);
    fields
        .into_iter()
        .map(|f| f.response_key().to_string())
        .collect()
}

fn top_fields<'d>(
    document: &'d ExecutableDocument,
    set: &'d executable::SelectionSet,
    out: &mut Vec<&'d executable::Field>,
) {
    for selection in &set.selections {
        match selection {
            Selection::Field(f) => out.push(f),
            Selection::InlineFragment(frag) => top_fields(document, &frag.selection_set, out),
            Selection::FragmentSpread(spread) => {
                if let Some(frag) = document.fragments.get(&spread.fragment_name) {
                    top_fields(document, &frag.selection_set, out);
                }
            }
        }
    }
}
