//! The response shape of an operation: what the executor walks to build the client's
//! response from upstream data (field order, aliases, fragments, conditions, nullability).

use std::collections::HashSet;

use apollo_compiler::ast::{self, Value};
use apollo_compiler::executable::{self, Selection as ExecSelection};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::ExecutableDocument;

use crate::schema::Supergraph;

/// A selection set as the executor walks it.
#[derive(Debug, Clone, Default)]
pub(crate) struct SelectionSet {
    /// Fields and fragments in document order.
    pub(crate) items: Vec<Selection>,
    /// Only fields, without conditions, each response key once: the fields as they stand are
    /// what field collection would give.
    pub(crate) plain: bool,
}

/// One selection.
#[derive(Debug, Clone)]
pub(crate) enum Selection {
    /// A field.
    Field(Field),
    /// An inline fragment or an inlined fragment spread.
    Fragment(Fragment),
}

/// A field of the response.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// The response key (alias or name).
    pub(crate) key: String,
    /// `true` for `__typename`, answered by the gateway with namespaced type names.
    pub(crate) typename: bool,
    /// `@skip` / `@include` conditions on variables.
    pub(crate) conditions: Conditions,
    /// The field's type and sub-selection.
    pub(crate) ty: OutputType,
}

/// A fragment whose selections apply when the object's type matches.
#[derive(Debug, Clone)]
pub(crate) struct Fragment {
    /// Object types the type condition matches (`None`: no condition).
    pub(crate) types: Option<HashSet<String>>,
    /// `@skip` / `@include` conditions on variables.
    pub(crate) conditions: Conditions,
    /// The fragment's selections.
    pub(crate) selection: SelectionSet,
}

/// `@skip`/`@include` on variables: each `(variable, value that includes)` must hold.
#[derive(Debug, Clone, Default)]
pub(crate) struct Conditions(pub Vec<(String, bool)>);

/// An output type with its sub-selection.
#[derive(Debug, Clone)]
pub(crate) struct OutputType {
    /// `true` for `T!`.
    pub(crate) non_null: bool,
    /// What the value holds.
    pub(crate) kind: OutputKind,
}

/// The kind of an output value.
#[derive(Debug, Clone)]
pub(crate) enum OutputKind {
    /// A scalar or enum: checked against its type, then passed on.
    Leaf(Leaf),
    /// A list of values.
    List(Box<OutputType>),
    /// An object, interface or union value.
    Composite(Box<Composite>),
}

/// What a scalar or enum value from an upstream must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Leaf {
    /// A 32-bit integer.
    Int,
    /// A number.
    Float,
    /// A string.
    String,
    /// `true` or `false`.
    Boolean,
    /// A string, or an integer (sent on as a string).
    Id,
    /// One of these enum values (as the upstream names them).
    Enum(Vec<String>),
    /// A custom scalar: passed on as the upstream sends it.
    Custom,
}

/// A composite value's static type and selections.
#[derive(Debug, Clone)]
pub(crate) struct Composite {
    /// The static (namespaced) type name.
    pub(crate) type_name: String,
    /// Namespace prefix used to name runtime types read from upstream `__typename`; `None`
    /// when the static type is an object type (its runtime type is known).
    pub(crate) abstract_namespace: Option<String>,
    /// The selections.
    pub(crate) selection: SelectionSet,
}

/// Builds response shapes for one document.
pub(crate) struct ShapeBuilder<'a> {
    pub(crate) supergraph: &'a Supergraph,
    pub(crate) document: &'a ExecutableDocument,
}

/// `None` when the directives exclude the selection whatever the variables.
pub(crate) fn conditions(directives: &executable::DirectiveList) -> Option<Conditions> {
    let mut out = Conditions::default();
    for d in directives.iter() {
        let include_when = match d.name.as_str() {
            "skip" => false,
            "include" => true,
            _ => continue,
        };
        match d.specified_argument_by_name("if").map(|v| &**v) {
            Some(Value::Boolean(b)) if *b != include_when => return None,
            Some(Value::Variable(v)) => out.0.push((v.to_string(), include_when)),
            _ => {}
        }
    }
    Some(out)
}

impl ShapeBuilder<'_> {
    pub(crate) fn selection_set(&self, set: &executable::SelectionSet) -> SelectionSet {
        let mut items = Vec::with_capacity(set.selections.len());
        for sel in &set.selections {
            let Some(conditions) = conditions(sel.directives()) else {
                continue;
            };
            match sel {
                ExecSelection::Field(f) => items.push(Selection::Field(Field {
                    key: f.response_key().to_string(),
                    typename: f.name == "__typename",
                    conditions,
                    ty: self.output_type(f.ty(), &f.selection_set),
                })),
                ExecSelection::InlineFragment(frag) => items.push(Selection::Fragment(Fragment {
                    types: frag.type_condition.as_ref().map(|t| self.possible_types(t)),
                    conditions,
                    selection: self.selection_set(&frag.selection_set),
                })),
                ExecSelection::FragmentSpread(spread) => {
                    let frag = &self.document.fragments[&spread.fragment_name];
                    items.push(Selection::Fragment(Fragment {
                        types: Some(self.possible_types(frag.type_condition())),
                        conditions,
                        selection: self.selection_set(&frag.selection_set),
                    }))
                }
            }
        }
        let plain = items.iter().enumerate().all(|(i, item)| match item {
            Selection::Field(f) => {
                f.conditions.0.is_empty()
                    && !items[..i]
                        .iter()
                        .any(|o| matches!(o, Selection::Field(o) if o.key == f.key))
            }
            Selection::Fragment(_) => false,
        });
        SelectionSet { items, plain }
    }

    fn output_type(&self, ty: &ast::Type, set: &executable::SelectionSet) -> OutputType {
        let kind = match ty {
            ast::Type::List(inner) | ast::Type::NonNullList(inner) => {
                OutputKind::List(Box::new(self.output_type(inner, set)))
            }
            ast::Type::Named(name) | ast::Type::NonNullNamed(name) => {
                match self.supergraph.schema.types.get(name) {
                    Some(ExtendedType::Object(_)) => OutputKind::Composite(Box::new(Composite {
                        type_name: name.to_string(),
                        abstract_namespace: None,
                        selection: self.selection_set(set),
                    })),
                    Some(ExtendedType::Interface(_) | ExtendedType::Union(_)) => {
                        OutputKind::Composite(Box::new(Composite {
                            type_name: name.to_string(),
                            abstract_namespace: self
                                .supergraph
                                .split(name)
                                .map(|(ns, _)| ns.to_string()),
                            selection: self.selection_set(set),
                        }))
                    }
                    Some(ExtendedType::Enum(e)) => OutputKind::Leaf(Leaf::Enum(
                        e.values.keys().map(|v| v.to_string()).collect(),
                    )),
                    _ => OutputKind::Leaf(match name.as_str() {
                        "Int" => Leaf::Int,
                        "Float" => Leaf::Float,
                        "String" => Leaf::String,
                        "Boolean" => Leaf::Boolean,
                        "ID" => Leaf::Id,
                        _ => Leaf::Custom,
                    }),
                }
            }
        };
        OutputType {
            non_null: ty.is_non_null(),
            kind,
        }
    }

    fn possible_types(&self, name: &str) -> HashSet<String> {
        possible_types(&self.supergraph.schema, name)
    }
}

/// The object types a type condition on `name` matches.
pub(crate) fn possible_types(schema: &apollo_compiler::Schema, name: &str) -> HashSet<String> {
    match schema.types.get(name) {
        Some(ExtendedType::Object(_)) => HashSet::from([name.to_string()]),
        Some(ExtendedType::Union(u)) => u.members.iter().map(|m| m.to_string()).collect(),
        Some(ExtendedType::Interface(_)) => schema
            .types
            .values()
            .filter_map(|t| match t {
                ExtendedType::Object(o)
                    if o.implements_interfaces.iter().any(|i| i.as_str() == name) =>
                {
                    Some(o.name.to_string())
                }
                _ => None,
            })
            .collect(),
        _ => HashSet::new(),
    }
}
