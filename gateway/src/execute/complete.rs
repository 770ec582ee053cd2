//! Value completion: building the client's response from upstream data following the
//! response shape — field collection with `@skip`/`@include` and type conditions, namespaced
//! `__typename`, and the spec's null propagation.

use apollo_compiler::response::{JsonMap, JsonValue};
use serde_json::{Map, Value};

use super::Explained;
use crate::error_code::ErrorCode;
use crate::plan::shape::{Conditions, Field, OutputKind, OutputType, Selection, SelectionSet};

/// A non-null position resolved to null: the parent must become null.
struct Propagate;

pub(super) struct Completer<'a> {
    variables: &'a JsonMap,
    explained: &'a Explained,
    errors: &'a mut Vec<Value>,
    path: Vec<Value>,
    /// Whether an error already explains nulls below the current path.
    covered: bool,
}

impl<'a> Completer<'a> {
    pub(super) fn new(
        variables: &'a JsonMap,
        errors: &'a mut Vec<Value>,
        explained: &'a Explained,
    ) -> Self {
        Completer {
            variables,
            explained,
            errors,
            path: Vec::new(),
            covered: false,
        }
    }

    /// Completes the root object; `covered` lists root keys whose failures are already reported.
    pub(super) fn root(
        &mut self,
        data: &Map<String, Value>,
        root_type: &str,
        set: &SelectionSet,
        covered: &[String],
    ) -> Value {
        let fields = self.collect(&[set], root_type);
        let mut out = Map::with_capacity(fields.len());
        for (key, group) in fields {
            self.covered = covered.iter().any(|k| k == key);
            match self.field(data, root_type, key, &group) {
                Ok(v) => {
                    out.insert(key.to_string(), v);
                }
                Err(Propagate) => return Value::Null,
            }
        }
        Value::Object(out)
    }

    fn enabled(&self, conditions: &Conditions) -> bool {
        conditions.0.iter().all(|(var, include_when)| {
            let value = matches!(
                self.variables.get(var.as_str()),
                Some(JsonValue::Bool(true))
            );
            value == *include_when
        })
    }

    /// CollectFields: response keys in order, each with the fields that merge into it.
    fn collect<'s>(
        &self,
        sets: &[&'s SelectionSet],
        runtime_type: &str,
    ) -> Vec<(&'s str, Vec<&'s Field>)> {
        let mut out: Vec<(&'s str, Vec<&'s Field>)> = Vec::new();
        for set in sets {
            self.collect_into(set, runtime_type, &mut out);
        }
        out
    }

    fn collect_into<'s>(
        &self,
        set: &'s SelectionSet,
        runtime_type: &str,
        out: &mut Vec<(&'s str, Vec<&'s Field>)>,
    ) {
        for item in &set.items {
            match item {
                Selection::Field(f) => {
                    if !self.enabled(&f.conditions) {
                        continue;
                    }
                    match out.iter_mut().find(|(k, _)| *k == f.key) {
                        Some((_, group)) => group.push(f),
                        None => out.push((&f.key, vec![f])),
                    }
                }
                Selection::Fragment(frag) => {
                    let applies = frag.types.as_ref().is_none_or(|t| t.contains(runtime_type));
                    if applies && self.enabled(&frag.conditions) {
                        self.collect_into(&frag.selection, runtime_type, out);
                    }
                }
            }
        }
    }

    fn field(
        &mut self,
        data: &Map<String, Value>,
        runtime_type: &str,
        key: &str,
        group: &[&Field],
    ) -> Result<Value, Propagate> {
        let first = group[0];
        if first.typename {
            return Ok(Value::from(runtime_type));
        }
        self.path.push(Value::from(key));
        let sets: Vec<&SelectionSet> = group
            .iter()
            .filter_map(|f| innermost_selection(&f.ty))
            .collect();
        let result = self.value(data.get(key), &first.ty, &sets);
        self.path.pop();
        result
    }

    fn value(
        &mut self,
        value: Option<&Value>,
        ty: &OutputType,
        sets: &[&SelectionSet],
    ) -> Result<Value, Propagate> {
        let completed = match value {
            None | Some(Value::Null) => None,
            Some(v) => match &ty.kind {
                OutputKind::Leaf => Some(v.clone()),
                OutputKind::List(inner) => match v {
                    Value::Array(items) => self.list(items, inner, sets),
                    _ => self.bad_value("a list"),
                },
                OutputKind::Composite(c) => match v {
                    Value::Object(obj) => {
                        let runtime = match &c.abstract_namespace {
                            None => Some(c.type_name.clone()),
                            Some(ns) => obj
                                .get("__typename")
                                .and_then(Value::as_str)
                                .map(|t| format!("{ns}_{t}")),
                        };
                        match runtime {
                            Some(runtime) => self.object(obj, &runtime, sets),
                            None => self.bad_value("an object with `__typename`"),
                        }
                    }
                    _ => self.bad_value("an object"),
                },
            },
        };
        match completed {
            Some(v) => Ok(v),
            None if ty.non_null => {
                if value.is_none_or(Value::is_null)
                    && !self.covered
                    && !self.explained.covers(&self.path)
                {
                    self.report_null();
                }
                Err(Propagate)
            }
            None => Ok(Value::Null),
        }
    }

    fn list(
        &mut self,
        items: &[Value],
        inner: &OutputType,
        sets: &[&SelectionSet],
    ) -> Option<Value> {
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            self.path.push(Value::from(i));
            let r = self.value(Some(item), inner, sets);
            self.path.pop();
            out.push(r.ok()?);
        }
        Some(Value::Array(out))
    }

    fn object(
        &mut self,
        obj: &Map<String, Value>,
        runtime_type: &str,
        sets: &[&SelectionSet],
    ) -> Option<Value> {
        let fields = self.collect(sets, runtime_type);
        let mut out = Map::with_capacity(fields.len());
        for (key, group) in fields {
            let v = self.field(obj, runtime_type, key, &group).ok()?;
            out.insert(key.to_string(), v);
        }
        Some(Value::Object(out))
    }

    /// The upstream broke its own schema; say so once, at this path.
    fn bad_value(&mut self, expected: &str) -> Option<Value> {
        let mut error = ErrorCode::UpstreamBadResponse.error(format!(
            "the upstream returned a value that is not {expected}"
        ));
        error["path"] = Value::from(self.path.clone());
        self.errors.push(error);
        self.covered = true;
        None
    }

    fn report_null(&mut self) {
        let mut error =
            ErrorCode::UpstreamBadResponse.error("the upstream returned null for a non-null field");
        error["path"] = Value::from(self.path.clone());
        self.errors.push(error);
        self.covered = true;
    }
}

fn innermost_selection(ty: &OutputType) -> Option<&SelectionSet> {
    match &ty.kind {
        OutputKind::Leaf => None,
        OutputKind::List(inner) => innermost_selection(inner),
        OutputKind::Composite(c) => Some(&c.selection),
    }
}
