//! Value completion: writing the client's `data` straight from upstream data as JSON text,
//! following the response shape — field collection with `@skip`/`@include` and type
//! conditions, namespaced `__typename`, and the spec's null propagation (a failed non-null
//! position rewinds the output to the nearest nullable parent, which becomes `null`).

use apollo_compiler::response::{JsonMap, JsonValue};

use super::{Explained, Segment};
use crate::error_code::ErrorCode;
use crate::graphql_error::GraphQLError;
use crate::plan::shape::{
    Conditions, Field, Leaf, OutputKind, OutputType, Selection, SelectionSet,
};
use crate::upstream::data::{Data, Object};

/// A non-null position resolved to null: the parent must become null.
struct Propagate;

pub(super) struct Completer<'a, 'e> {
    variables: &'a JsonMap,
    explained: &'a Explained,
    errors: &'e mut Vec<GraphQLError>,
    path: Vec<Segment<'a>>,
    /// Whether an error already explains nulls below the current path.
    covered: bool,
}

impl<'a, 'e> Completer<'a, 'e> {
    pub(super) fn new(
        variables: &'a JsonMap,
        errors: &'e mut Vec<GraphQLError>,
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

    /// Writes the completed root object into `out` (`null` when a non-null root field
    /// failed).
    pub(super) fn root(
        &mut self,
        data: &Object,
        root_type: &str,
        set: &'a SelectionSet,
        out: &mut Vec<u8>,
    ) {
        let start = out.len();
        out.push(b'{');
        let mut first = true;
        let mut failed = false;
        self.each_field(&[set], root_type, |this, key, group| {
            this.covered = false;
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(key, out);
            if this.field(data, root_type, key, group, out).is_err() {
                failed = true;
            }
            !failed
        });
        if failed {
            out.truncate(start);
            out.extend_from_slice(b"null");
        } else {
            out.push(b'}');
        }
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

    /// Calls `f` with each response key in order and the fields that merge into it (the
    /// spec's CollectFields), until `f` returns false. A single selection set of plain fields
    /// (the common case) needs no collecting.
    fn each_field(
        &mut self,
        sets: &[&'a SelectionSet],
        runtime_type: &str,
        mut f: impl FnMut(&mut Self, &'a str, &[&'a Field]) -> bool,
    ) {
        if let [set] = sets {
            if set.plain {
                for item in &set.items {
                    if let Selection::Field(field) = item {
                        if !f(self, &field.key, std::slice::from_ref(&field)) {
                            return;
                        }
                    }
                }
                return;
            }
        }
        let mut fields: Vec<(&'a str, Vec<&'a Field>)> = Vec::new();
        for set in sets {
            self.collect_into(set, runtime_type, &mut fields);
        }
        for (key, group) in &fields {
            if !f(self, key, group) {
                return;
            }
        }
    }

    fn collect_into(
        &self,
        set: &'a SelectionSet,
        runtime_type: &str,
        out: &mut Vec<(&'a str, Vec<&'a Field>)>,
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
        data: &Object,
        runtime_type: &str,
        key: &'a str,
        group: &[&'a Field],
        out: &mut Vec<u8>,
    ) -> Result<(), Propagate> {
        let first = group[0];
        if first.typename {
            write_type_name(runtime_type, out);
            return Ok(());
        }
        self.path.push(Segment::Key(key));
        let result = match group {
            [one] => match innermost_selection(&one.ty) {
                Some(set) => self.value(data.get(key), &first.ty, &[set], out),
                None => self.value(data.get(key), &first.ty, &[], out),
            },
            _ => {
                let sets: Vec<&SelectionSet> = group
                    .iter()
                    .filter_map(|f| innermost_selection(&f.ty))
                    .collect();
                self.value(data.get(key), &first.ty, &sets, out)
            }
        };
        self.path.pop();
        result
    }

    fn value(
        &mut self,
        value: Option<&Data>,
        ty: &'a OutputType,
        sets: &[&'a SelectionSet],
        out: &mut Vec<u8>,
    ) -> Result<(), Propagate> {
        let start = out.len();
        let written = match value {
            // A field the upstream was asked for and left out: say so, unless an error
            // already explains its absence (a failed fetch or join).
            None => {
                if !self.covered && !self.explained.covers(&self.path) {
                    self.bad_answer("the upstream's answer leaves out this field");
                }
                false
            }
            Some(Data::Null) => false,
            Some(v) => match &ty.kind {
                OutputKind::Leaf(leaf) => {
                    if write_leaf(v, leaf, out) {
                        true
                    } else {
                        self.bad_value(leaf_name(leaf))
                    }
                }
                OutputKind::List(inner) => match v {
                    Data::Array(items) => self.list(items, inner, sets, out),
                    _ => self.bad_value("a list"),
                },
                OutputKind::Composite(c) => match v {
                    Data::Object(obj) => match &c.abstract_namespace {
                        None => self.object(obj, &c.type_name, sets, out),
                        Some(ns) => match obj.get("__typename").and_then(Data::as_text) {
                            Some(t) => {
                                let runtime = format!("{ns}_{}", t.to_string_lossless());
                                self.object(obj, &runtime, sets, out)
                            }
                            None => self.bad_value("an object with `__typename`"),
                        },
                    },
                    _ => self.bad_value("an object"),
                },
            },
        };
        if written {
            return Ok(());
        }
        out.truncate(start);
        if !ty.non_null {
            out.extend_from_slice(b"null");
            return Ok(());
        }
        if value.is_none_or(Data::is_null) && !self.covered && !self.explained.covers(&self.path) {
            self.report_null();
        }
        Err(Propagate)
    }

    fn list(
        &mut self,
        items: &[Data],
        inner: &'a OutputType,
        sets: &[&'a SelectionSet],
        out: &mut Vec<u8>,
    ) -> bool {
        out.push(b'[');
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            self.path.push(Segment::Index(i));
            let r = self.value(Some(item), inner, sets, out);
            self.path.pop();
            if r.is_err() {
                return false;
            }
        }
        out.push(b']');
        true
    }

    fn object(
        &mut self,
        obj: &Object,
        runtime_type: &str,
        sets: &[&'a SelectionSet],
        out: &mut Vec<u8>,
    ) -> bool {
        out.push(b'{');
        let mut first = true;
        let mut ok = true;
        self.each_field(sets, runtime_type, |this, key, group| {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            write_key(key, out);
            ok = this.field(obj, runtime_type, key, group, out).is_ok();
            ok
        });
        out.push(b'}');
        ok
    }

    /// The upstream broke its own schema; say so once, at this path.
    fn bad_value(&mut self, expected: &str) -> bool {
        self.bad_answer(&format!(
            "the upstream returned a value that is not {expected}"
        ))
    }

    fn bad_answer(&mut self, message: &str) -> bool {
        self.report(message);
        false
    }

    fn report_null(&mut self) {
        self.report("the upstream returned null for a non-null field");
    }

    /// Reports a bad upstream answer at the current path, which it then explains.
    fn report(&mut self, message: &str) {
        let mut error = GraphQLError::new(ErrorCode::UpstreamBadResponse, message);
        error.set_path(self.path.iter().copied().map(Into::into).collect());
        self.errors.push(error);
        self.covered = true;
    }
}

fn innermost_selection(ty: &OutputType) -> Option<&SelectionSet> {
    match &ty.kind {
        OutputKind::Leaf(_) => None,
        OutputKind::List(inner) => innermost_selection(inner),
        OutputKind::Composite(c) => Some(&c.selection),
    }
}

/// Response keys and type names are GraphQL names (`[_A-Za-z][_0-9A-Za-z]*`): nothing to escape.
fn write_key(key: &str, out: &mut Vec<u8>) {
    write_str(key, out);
    out.push(b':');
}

fn write_str(name: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.push(b'"');
}

/// Writes a scalar or enum value if it is one of `leaf`'s (an upstream's data is checked, not
/// trusted); false when it is not. Custom scalars pass as the upstream sends them.
fn write_leaf(value: &Data, leaf: &Leaf, out: &mut Vec<u8>) -> bool {
    match (leaf, value) {
        (Leaf::String, Data::String(t)) => write_escaped(t.as_bytes(), out),
        (Leaf::Enum(values), Data::String(t))
            if values.iter().any(|v| v.as_bytes() == t.as_bytes()) =>
        {
            write_escaped(t.as_bytes(), out)
        }
        (Leaf::Boolean, Data::Bool(b)) => {
            out.extend_from_slice(if *b { b"true" } else { b"false" })
        }
        (Leaf::Float, Data::Number(n)) => serde_json::to_writer(out, n).expect("numbers serialize"),
        (Leaf::Int, Data::Number(n)) => match int32(n) {
            Some(i) => out.extend_from_slice(i.to_string().as_bytes()),
            None => return false,
        },
        (Leaf::Id, Data::String(t)) => write_escaped(t.as_bytes(), out),
        (Leaf::Id, Data::Number(n)) if n.is_i64() || n.is_u64() => {
            write_escaped(n.to_string().as_bytes(), out)
        }
        (Leaf::Custom, Data::String(t)) => write_escaped(t.as_bytes(), out),
        (Leaf::Custom, other) => serde_json::to_writer(out, other).expect("JSON values serialize"),
        _ => return false,
    }
    true
}

/// An `Int`: a 32-bit integer, or a float without a fractional part in that range.
fn int32(n: &serde_json::Number) -> Option<i32> {
    if let Some(i) = n.as_i64() {
        return i32::try_from(i).ok();
    }
    let f = n.as_f64()?;
    (f.fract() == 0.0 && f >= f64::from(i32::MIN) && f <= f64::from(i32::MAX)).then_some(f as i32)
}

fn leaf_name(leaf: &Leaf) -> &'static str {
    match leaf {
        Leaf::Int => "an Int (a 32-bit integer)",
        Leaf::Float => "a Float",
        Leaf::String => "a String",
        Leaf::Boolean => "a Boolean",
        Leaf::Id => "an ID (a string or an integer)",
        Leaf::Enum(_) => "a value of its enum",
        Leaf::Custom => "a scalar",
    }
}

/// A JSON string of UTF-8 `text`: quotes, backslashes and control characters escaped.
fn write_escaped(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&text[start..i]);
                out.extend_from_slice(format!("\\u{b:04x}").as_bytes());
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        out.extend_from_slice(escape);
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
    out.push(b'"');
}

/// A runtime type name holds the upstream's `__typename`, which may hold anything.
fn write_type_name(name: &str, out: &mut Vec<u8>) {
    serde_json::to_writer(out, name).expect("strings serialize");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_json() {
        for text in [
            "plain",
            "q\"uote",
            "back\\slash",
            "new\nline\r\t",
            "ctl\u{1}\u{1f}",
            "é ✓ \u{7f}",
            "",
        ] {
            let mut out = Vec::new();
            write_escaped(text.as_bytes(), &mut out);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, text);
            assert_eq!(out, serde_json::to_vec(text).unwrap());
        }
    }
}
