//! Rendering the upstream documents of a plan: the client's selections for one namespace,
//! namespace prefixes removed, fragments inlined, aliases and `@skip`/`@include` kept.

use std::fmt::Write;

use apollo_compiler::ast::{self, Value};
use apollo_compiler::executable::{self, Selection};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{ExecutableDocument, Node};
use indexmap::IndexSet;
use std::collections::HashSet;

use super::batch::{BatchForm, KEY_ALIAS};
use super::template::Template;
use crate::schema::{EntityLookup, Supergraph, ENTITIES_FIELD, JOIN_FIELD};

/// One piece of the root selection: a root field of one namespace, with the directives of
/// the root-level fragments it was reached through.
pub(crate) struct RootPiece {
    pub(crate) namespace: String,
    pub(crate) response_key: String,
    /// The field as the upstream gets it (in joins, with the places that differ per item).
    pub(crate) text: Template,
    pub(crate) variables: IndexSet<String>,
    /// The field as the client wrote it (joins render its batch form from it).
    pub(crate) field: Node<executable::Field>,
    /// Reached through root-level fragments (whose directives wrap `text`).
    pub(crate) wrapped: bool,
}

impl RootPiece {
    /// The root field as the upstream names it (the client's name without the namespace).
    pub(crate) fn upstream_field(&self) -> String {
        let name = self.field.name.as_str();
        name.strip_prefix(&self.namespace)
            .and_then(|n| n.strip_prefix('_'))
            .unwrap_or(name)
            .to_string()
    }
}

pub(crate) struct Renderer<'a> {
    pub(crate) supergraph: &'a Supergraph,
    pub(crate) document: &'a ExecutableDocument,
    /// Variables the gateway fills (`@internal`).
    pub(crate) internal: &'a HashSet<String>,
    /// Rendering a join's pieces: root aliases and internal variables become template
    /// markers, so that each batched item gets its own alias and variables.
    pub(crate) join_mode: bool,
}

/// Why an operation cannot be planned.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum RenderError {
    /// Introspection inside a `_join` (an operation's root reads the schema on its own).
    #[error("introspection fields (`{0}`) cannot be read inside `_join`: read the schema in an operation of its own")]
    Introspection(String),
    /// A field of a namespace that is not configured.
    #[error("root field `{0}` does not belong to any configured upstream")]
    UnknownNamespace(String),
}

impl Renderer<'_> {
    /// Splits the root selection set into pieces, in document order.
    pub(crate) fn root_pieces(
        &self,
        set: &executable::SelectionSet,
    ) -> Result<Vec<RootPiece>, RenderError> {
        let mut pieces = Vec::new();
        self.collect_root(set, &mut Vec::new(), &mut pieces)?;
        Ok(pieces)
    }

    fn collect_root<'d>(
        &'d self,
        set: &'d executable::SelectionSet,
        wrappers: &mut Vec<&'d executable::DirectiveList>,
        out: &mut Vec<RootPiece>,
    ) -> Result<(), RenderError> {
        for sel in &set.selections {
            match sel {
                Selection::Field(f) => {
                    if f.name == "__typename" || f.name == JOIN_FIELD {
                        continue;
                    }
                    if f.name.starts_with("__") {
                        return Err(RenderError::Introspection(f.name.to_string()));
                    }
                    let Some((ns, name)) = self.supergraph.split(&f.name) else {
                        return Err(RenderError::UnknownNamespace(f.name.to_string()));
                    };
                    let mut variables = IndexSet::new();
                    let mut text = Template::default();
                    for w in wrappers.iter() {
                        text.push_str("...");
                        self.directives(w, &mut text, &mut variables);
                        text.push_str(" { ");
                    }
                    match self.supergraph.entities.get(f.name.as_str()) {
                        Some(lookup) => self.entity_field(f, lookup, &mut text, &mut variables),
                        None => self.field(f, name, true, &mut text, &mut variables),
                    }
                    for _ in wrappers.iter() {
                        text.push_str(" }");
                    }
                    out.push(RootPiece {
                        namespace: ns.to_string(),
                        response_key: f.response_key().to_string(),
                        text,
                        variables,
                        field: f.clone(),
                        wrapped: !wrappers.is_empty(),
                    });
                }
                Selection::InlineFragment(frag) => {
                    wrappers.push(&frag.directives);
                    self.collect_root(&frag.selection_set, wrappers, out)?;
                    wrappers.pop();
                }
                Selection::FragmentSpread(spread) => {
                    let frag = &self.document.fragments[&spread.fragment_name];
                    wrappers.push(&spread.directives);
                    self.collect_root(&frag.selection_set, wrappers, out)?;
                    wrappers.pop();
                }
            }
        }
        Ok(())
    }

    fn field(
        &self,
        f: &executable::Field,
        name: &str,
        root: bool,
        out: &mut Template,
        vars: &mut IndexSet<String>,
    ) {
        // Root fields lose their prefix upstream; the alias keeps the client's response key,
        // so upstream data and error paths line up with the client's response.
        let key = f.response_key();
        if self.join_mode && root {
            out.key_prefix();
            let _ = write!(out, "{key}: ");
        } else if key.as_str() != name {
            let _ = write!(out, "{key}: ");
        }
        out.push_str(name);
        if !f.arguments.is_empty() {
            out.push('(');
            for (i, arg) in f.arguments.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                collect_variables(&arg.value, vars);
                let _ = write!(out, "{}: ", arg.name);
                self.write_value(&arg.value, out);
            }
            out.push(')');
        }
        self.directives(&f.directives, out, vars);
        if !f.selection_set.selections.is_empty() {
            out.push_str(" { ");
            self.selection_set(&f.selection_set, out, vars);
            out.push('}');
        }
    }

    /// Renders join root field `f` as a call of its batch form, for all items at once:
    /// `<key>: field(argument: $<keys>, <other arguments>) { <key alias>: key <selections> }`.
    /// `key_argument` is the argument of `f` that takes the item's key.
    pub(crate) fn batch_field(
        &self,
        f: &executable::Field,
        form: &BatchForm,
        key_argument: &str,
        out: &mut Template,
        vars: &mut IndexSet<String>,
    ) {
        out.key_prefix();
        let _ = write!(out, "{}: {}(", f.response_key(), form.field);
        for (i, arg) in f.arguments.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            collect_variables(&arg.value, vars);
            if arg.name == key_argument {
                let _ = write!(out, "{}: ", form.argument);
            } else {
                let _ = write!(out, "{}: ", arg.name);
            }
            self.write_value(&arg.value, out);
        }
        let _ = write!(out, ") {{ {KEY_ALIAS}: {} ", form.key);
        self.selection_set(&f.selection_set, out, vars);
        out.push('}');
    }

    /// Renders entity lookup `f` as an `_entities` call with the one representation its
    /// arguments make: `<key>: _entities(representations: [{__typename: "T", upc: $upc}])
    /// { ... on T { <selections> } }`. Its answer is a list of one, unwrapped by the executor.
    fn entity_field(
        &self,
        f: &executable::Field,
        lookup: &EntityLookup,
        out: &mut Template,
        vars: &mut IndexSet<String>,
    ) {
        if self.join_mode {
            out.key_prefix();
        }
        let _ = write!(
            out,
            "{}: {ENTITIES_FIELD}(representations: [{{__typename: {}",
            f.response_key(),
            serde_json::Value::from(lookup.type_name.as_str())
        );
        for arg in &f.arguments {
            collect_variables(&arg.value, vars);
            let _ = write!(out, ", {}: ", arg.name);
            self.write_value(&arg.value, out);
        }
        out.push_str("}])");
        self.directives(&f.directives, out, vars);
        out.push_str(" { ");
        self.entity_fragment(f, lookup, out, vars);
        out.push_str(" }");
    }

    /// Renders what entity lookup `f` selects, `... on T { <selections> }`: inside a join, the
    /// executor puts it in the `_entities` call it shares with the wave's other lookups.
    pub(crate) fn entity_fragment(
        &self,
        f: &executable::Field,
        lookup: &EntityLookup,
        out: &mut Template,
        vars: &mut IndexSet<String>,
    ) {
        let _ = write!(out, "... on {} {{ ", lookup.type_name);
        self.selection_set(&f.selection_set, out, vars);
        out.push('}');
    }

    fn selection_set(
        &self,
        set: &executable::SelectionSet,
        out: &mut Template,
        vars: &mut IndexSet<String>,
    ) {
        if matches!(
            self.supergraph.schema.types.get(&set.ty),
            Some(ExtendedType::Interface(_) | ExtendedType::Union(_))
        ) {
            // The executor needs the runtime type to apply fragments and name the type.
            out.push_str("__typename ");
        }
        for sel in &set.selections {
            match sel {
                Selection::Field(f) if f.name == JOIN_FIELD => continue,
                Selection::Field(f) => self.field(f, &f.name, false, out, vars),
                Selection::InlineFragment(frag) => {
                    out.push_str("...");
                    if let Some(t) = &frag.type_condition {
                        let _ = write!(out, " on {}", self.unprefixed(t));
                    }
                    self.directives(&frag.directives, out, vars);
                    out.push_str(" { ");
                    self.selection_set(&frag.selection_set, out, vars);
                    out.push('}');
                }
                Selection::FragmentSpread(spread) => {
                    let frag = &self.document.fragments[&spread.fragment_name];
                    let _ = write!(out, "... on {}", self.unprefixed(frag.type_condition()));
                    self.directives(&spread.directives, out, vars);
                    out.push_str(" { ");
                    self.selection_set(&frag.selection_set, out, vars);
                    out.push('}');
                }
            }
            out.push(' ');
        }
    }

    /// Keeps `@skip`/`@include`; gateway directives never reach upstreams.
    fn directives(
        &self,
        list: &executable::DirectiveList,
        out: &mut Template,
        vars: &mut IndexSet<String>,
    ) {
        for d in list.iter() {
            if d.name == "skip" || d.name == "include" {
                let _ = write!(out, " @{}(", d.name);
                for (i, a) in d.arguments.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    collect_variables(&a.value, vars);
                    let _ = write!(out, "{}: ", a.name);
                    self.write_value(&a.value, out);
                }
                out.push(')');
            }
        }
    }

    /// Writes a value on one line (the AST's own printer breaks objects over lines).
    fn write_value(&self, value: &Value, out: &mut Template) {
        match value {
            Value::Null => out.push_str("null"),
            Value::Enum(name) => out.push_str(name),
            Value::Variable(name) if self.join_mode && self.internal.contains(name.as_str()) => {
                out.push('$');
                out.variable(name);
            }
            Value::Variable(name) => {
                let _ = write!(out, "${name}");
            }
            Value::String(s) => out.push_str(&serde_json::Value::from(s.as_str()).to_string()),
            Value::Float(f) => out.push_str(f.as_str()),
            Value::Int(i) => out.push_str(i.as_str()),
            Value::Boolean(b) => {
                let _ = write!(out, "{b}");
            }
            Value::List(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.write_value(item, out);
                }
                out.push(']');
            }
            Value::Object(fields) => {
                out.push('{');
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let _ = write!(out, "{name}: ");
                    self.write_value(v, out);
                }
                out.push('}');
            }
        }
    }

    pub(crate) fn unprefixed<'n>(&self, name: &'n str) -> &'n str {
        self.supergraph.split(name).map_or(name, |(_, n)| n)
    }

    /// A variable type with namespace prefixes removed, e.g. `[countries_Filter!]` → `[Filter!]`.
    pub(crate) fn variable_type(&self, ty: &ast::Type) -> String {
        self.supergraph.upstream_type(ty)
    }
}

pub(crate) fn collect_variables(value: &Value, vars: &mut IndexSet<String>) {
    match value {
        Value::Variable(v) => {
            vars.insert(v.to_string());
        }
        Value::List(items) => items.iter().for_each(|v| collect_variables(v, vars)),
        Value::Object(fields) => fields.iter().for_each(|(_, v)| collect_variables(v, vars)),
        _ => {}
    }
}
