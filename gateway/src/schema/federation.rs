//! Apollo Federation subgraphs as upstreams: reading their SDL (federation v1 and v2), keeping
//! federation's own definitions from clients, and the entity lookups their `@key`s offer.
//!
//! A subgraph resolves an entity from a *representation* (`{"__typename": "Product", "upc":
//! "1"}`) through `_entities(representations: [_Any!]!)`. For every resolvable `@key` of an
//! object type, the composed schema gets a root field in the subgraph's namespace that takes
//! the key's fields as arguments (`products_productByUpc(upc: String!): products_Product`);
//! the planner sends it as an `_entities` call, one for all items of a join.

use std::collections::HashSet;
use std::sync::Arc;

use apollo_compiler::ast::{self, Type, Value};
use apollo_compiler::executable::{FieldSet, Selection, SelectionSet};
use apollo_compiler::schema::{
    Component, ExtendedType, FieldDefinition, InputObjectType, InputValueDefinition, ObjectType,
};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Node, Schema};

use super::UpstreamSdl;
use crate::diagnostic::{Diagnostic, Diagnostics, Position};

/// The subgraph field that resolves entities from representations.
pub(crate) const ENTITIES_FIELD: &str = "_entities";

/// The scalar the definitions added for federation's directives take for every argument.
const ANY_ARGUMENT: &str = "_joinery_Any";

/// Federation's directives (v1 and v2) with their arguments: defined for a subgraph SDL that
/// uses them without defining them (a v2 SDL imports them with `@link`, a v1 SDL assumes them).
const DIRECTIVES: &[(&str, &[&str])] = &[
    ("key", &["fields", "resolvable"]),
    ("external", &["reason"]),
    ("requires", &["fields"]),
    ("provides", &["fields"]),
    ("extends", &[]),
    ("shareable", &[]),
    ("inaccessible", &[]),
    ("override", &["from", "label"]),
    ("tag", &["name"]),
    ("interfaceObject", &[]),
    ("composeDirective", &["name"]),
    ("link", &["url", "as", "for", "import"]),
    ("authenticated", &[]),
    ("requiresScopes", &["scopes"]),
    ("policy", &["policies"]),
    ("cost", &["weight"]),
    (
        "listSize",
        &[
            "assumedSize",
            "slicingArguments",
            "sizedFields",
            "requireOneSlicingArgument",
        ],
    ),
    ("context", &["name"]),
    ("fromContext", &["field"]),
];

const LOCATIONS: &str = "SCHEMA | SCALAR | OBJECT | FIELD_DEFINITION | ARGUMENT_DEFINITION | INTERFACE | UNION | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION";

/// Whether a type of a subgraph's schema is federation's own (never shown to clients).
pub(crate) fn is_federation_type(name: &str) -> bool {
    matches!(
        name,
        "_Any" | "_Entity" | "_Service" | "_FieldSet" | "FieldSet" | ANY_ARGUMENT
    ) || name.starts_with("link__")
        || name.starts_with("federation__")
}

/// Whether a root field of a subgraph is federation's own.
pub(crate) fn is_federation_field(name: &str) -> bool {
    matches!(name, "_service" | ENTITIES_FIELD)
}

/// How one entity is looked up by one of its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityLookup {
    /// The entity type, as the subgraph names it (the representation's `__typename`).
    pub type_name: String,
    /// The key's top-level fields: the lookup's required arguments, sent in the representation.
    pub key: Vec<String>,
    /// Fields of the type that need fields of other services (`@requires`), each with the
    /// top-level names it needs; those are optional arguments of the lookup, sent in the
    /// representation when given.
    pub requires: Vec<(String, Vec<String>)>,
}

impl EntityLookup {
    /// The `@requires` names field `field` of the entity needs, if it has any.
    pub fn required_by(&self, field: &str) -> Option<&[String]> {
        self.requires
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, names)| names.as_slice())
    }
}

/// What a subgraph adds to the composed schema, in its own names (before namespacing).
#[derive(Debug, Default)]
pub(crate) struct Entities {
    /// Root fields that look entities up, with how.
    pub(crate) lookups: Vec<(FieldDefinition, Arc<EntityLookup>)>,
    /// Input types for the lookups' nested key fields.
    pub(crate) inputs: Vec<InputObjectType>,
    /// Fields this subgraph declares but another service resolves (`@external`, not part of a
    /// key): not selectable through this subgraph.
    pub(crate) external: HashSet<(Name, Name)>,
}

/// Parses and validates a subgraph's SDL: federation's directives and scalars are defined where
/// the SDL only uses them, and the `extend type`s of a v1 SDL whose type no definition names
/// are taken as definitions.
pub(crate) fn parse(upstream: &UpstreamSdl) -> Result<Valid<Schema>, Diagnostics> {
    let document = ast::Document::parse(&upstream.sdl, &upstream.origin)
        .map_err(|with| super::diagnostics(upstream, &with.errors))?;
    let defined: HashSet<&str> = document
        .definitions
        .iter()
        .filter(|d| !d.is_extension_definition())
        .filter_map(|d| d.name().map(Name::as_str))
        .collect();
    let mut prelude = format!("scalar {ANY_ARGUMENT}\n");
    for (name, arguments) in DIRECTIVES {
        for name in [name.to_string(), format!("federation__{name}")] {
            if defined.contains(name.as_str()) {
                continue;
            }
            prelude.push_str("directive @");
            prelude.push_str(&name);
            if !arguments.is_empty() {
                let arguments: Vec<String> = arguments
                    .iter()
                    .map(|a| format!("{a}: {ANY_ARGUMENT}"))
                    .collect();
                prelude.push_str(&format!("({})", arguments.join(", ")));
            }
            prelude.push_str(&format!(" repeatable on {LOCATIONS}\n"));
        }
    }
    for scalar in [
        "_Any",
        "_FieldSet",
        "FieldSet",
        "link__Import",
        "federation__FieldSet",
        "federation__Scope",
        "federation__Policy",
        "federation__ContextFieldValue",
    ] {
        if !defined.contains(scalar) {
            prelude.push_str(&format!("scalar {scalar}\n"));
        }
    }
    if !defined.contains("link__Purpose") {
        prelude.push_str("enum link__Purpose { SECURITY EXECUTION }\n");
    }
    let schema = Schema::builder()
        .adopt_orphan_extensions()
        .add_ast(&document)
        .parse(prelude, "<federation definitions>")
        .build()
        .map_err(|with| super::diagnostics(upstream, &with.errors))?;
    schema
        .validate()
        .map_err(|with| super::diagnostics(upstream, &with.errors))
}

/// The entity lookups of a parsed subgraph schema, with the input types they need.
pub(crate) fn entities(
    upstream: &UpstreamSdl,
    schema: &Valid<Schema>,
) -> Result<Entities, Vec<Diagnostic>> {
    let mut out = Entities::default();
    let mut problems = Vec::new();
    let mut problem = |message: String| {
        problems.push(Diagnostic {
            position: Position {
                path: upstream.origin.clone().into(),
                line: 1,
                column: 1,
            },
            message: format!("upstream `{}`: {message}", upstream.namespace),
        })
    };
    for ty in schema.types.values() {
        let ExtendedType::Object(object) = ty else {
            continue;
        };
        let keys: Vec<&str> = object
            .directives
            .iter()
            .filter(|d| is(&d.name, "key"))
            .filter(|d| {
                !matches!(
                    d.specified_argument_by_name("resolvable").map(|v| &**v),
                    Some(Value::Boolean(false))
                )
            })
            .filter_map(
                |d| match d.specified_argument_by_name("fields").map(|v| &**v) {
                    Some(Value::String(s)) => Some(s.as_str()),
                    _ => None,
                },
            )
            .collect();
        if keys.is_empty() {
            continue;
        }
        let mut key_fields: HashSet<&str> = HashSet::new();
        let mut requires = Vec::new();
        for field in object.fields.values() {
            let Some(needs) = field.directives.iter().find(|d| is(&d.name, "requires")) else {
                continue;
            };
            let Some(Value::String(set)) = needs.specified_argument_by_name("fields").map(|v| &**v)
            else {
                continue;
            };
            match field_set(schema, &object.name, set) {
                Ok(selections) => requires.push((field.name.clone(), selections)),
                Err(e) => problem(format!(
                    "`@requires(fields: {set:?})` of `{}.{}`: {e}",
                    object.name, field.name
                )),
            }
        }
        let mut parsed_keys = Vec::new();
        for key in keys {
            match field_set(schema, &object.name, key) {
                Ok(selections) => parsed_keys.push(selections),
                Err(e) => problem(format!("`@key(fields: {key:?})` of `{}`: {e}", object.name)),
            }
        }
        for selections in &parsed_keys {
            for f in fields(selections) {
                key_fields.insert(f.name.as_str());
            }
        }
        for field in object.fields.values() {
            let external = field.directives.iter().any(|d| is(&d.name, "external"));
            if external && !key_fields.contains(field.name.as_str()) {
                out.external
                    .insert((object.name.clone(), field.name.clone()));
            }
        }
        let required: Vec<(String, Vec<String>)> = requires
            .iter()
            .map(|(field, set)| {
                (
                    field.to_string(),
                    fields(set).map(|f| f.name.to_string()).collect(),
                )
            })
            .collect();
        for selections in &parsed_keys {
            let mut arguments = Vec::new();
            let mut key = Vec::new();
            for f in fields(selections) {
                key.push(f.name.to_string());
                let ty = argument_type(object, f, "Key", &mut out.inputs).non_null();
                arguments.push(argument(&f.name, ty, None));
            }
            for (_, set) in &requires {
                for f in fields(set) {
                    if arguments
                        .iter()
                        .any(|a: &Node<InputValueDefinition>| a.name == f.name)
                    {
                        continue;
                    }
                    let ty = argument_type(object, f, "Required", &mut out.inputs).nullable();
                    arguments.push(argument(
                        &f.name,
                        ty,
                        Some("Needed by a field that `@requires` it; sent in the representation."),
                    ));
                }
            }
            let by: Vec<String> = key.iter().map(|k| upper_first(k)).collect();
            let name = format!("{}By{}", lower_first(&object.name), by.join("And"));
            let description = format!(
                "Looks a `{ty}` up by its key `{fields}` (an entity of this federation subgraph, resolved through `_entities`); null when the subgraph does not find it. Inside `_join`, the lookups of all items are sent as one `_entities` call.",
                ty = object.name,
                fields = key.join(" "),
            );
            let Ok(name) = Name::new(&name) else {
                continue;
            };
            let definition = FieldDefinition {
                description: Some(Node::new_str(&description)),
                name,
                arguments,
                ty: Type::Named(object.name.clone()),
                directives: Default::default(),
            };
            let lookup = EntityLookup {
                type_name: object.name.to_string(),
                key,
                requires: required.clone(),
            };
            out.lookups.push((definition, Arc::new(lookup)));
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

fn is(directive: &str, federation_name: &str) -> bool {
    directive == federation_name || directive.strip_prefix("federation__") == Some(federation_name)
}

fn field_set(schema: &Valid<Schema>, ty: &Name, text: &str) -> Result<SelectionSet, String> {
    FieldSet::parse_and_validate(schema, ty.clone(), text, "field set")
        .map(|set| set.into_inner().selection_set)
        .map_err(|with| {
            with.errors
                .iter()
                .map(|d| d.error.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        })
}

fn fields(set: &SelectionSet) -> impl Iterator<Item = &Node<apollo_compiler::executable::Field>> {
    set.selections.iter().filter_map(|s| match s {
        Selection::Field(f) => Some(f),
        _ => None,
    })
}

fn argument(name: &Name, ty: Type, description: Option<&str>) -> Node<InputValueDefinition> {
    Node::new(InputValueDefinition {
        description: description.map(Node::new_str),
        name: name.clone(),
        ty: Node::new(ty),
        default_value: None,
        directives: Default::default(),
    })
}

/// The argument type for key field `f` of `object`: its own type for a leaf; for a field with
/// a selection, an input type with the selected fields (`<Type><Field><suffix>`), made once.
fn argument_type(
    object: &ObjectType,
    f: &apollo_compiler::executable::Field,
    suffix: &str,
    inputs: &mut Vec<InputObjectType>,
) -> Type {
    if f.selection_set.selections.is_empty() {
        return f.definition.ty.clone();
    }
    let name = format!("{}{}{suffix}", object.name, upper_first(&f.name));
    let name = Name::new(&name).expect("made of valid names");
    input_type(&name, &f.selection_set, inputs);
    wrap_like(&f.definition.ty, Type::Named(name))
}

/// Adds input type `name` with the fields of `set` (and those of its nested selections) to
/// `inputs`, unless it is there.
fn input_type(name: &Name, set: &SelectionSet, inputs: &mut Vec<InputObjectType>) {
    if inputs.iter().any(|i| i.name == *name) {
        return;
    }
    let input = InputObjectType {
        description: Some(Node::new_str(
            "The fields of a nested entity key, as the representation sends them.",
        )),
        name: name.clone(),
        directives: Default::default(),
        fields: fields(set)
            .map(|f| {
                let ty = if f.selection_set.selections.is_empty() {
                    f.definition.ty.clone()
                } else {
                    // Nested deeper: the field's own input type, named after the path.
                    let inner = Name::new(&format!("{name}{}", upper_first(&f.name)))
                        .expect("made of valid names");
                    input_type(&inner, &f.selection_set, inputs);
                    wrap_like(&f.definition.ty, Type::Named(inner))
                };
                (
                    f.name.clone(),
                    Component::new(InputValueDefinition {
                        description: None,
                        name: f.name.clone(),
                        ty: Node::new(ty),
                        default_value: None,
                        directives: Default::default(),
                    }),
                )
            })
            .collect(),
    };
    inputs.push(input);
}

/// `inner` with the list and non-null wrappers of `like`.
fn wrap_like(like: &Type, inner: Type) -> Type {
    match like {
        Type::Named(_) => inner.nullable(),
        Type::NonNullNamed(_) => inner.non_null(),
        Type::List(l) => Type::List(Box::new(wrap_like(l, inner))),
        Type::NonNullList(l) => Type::NonNullList(Box::new(wrap_like(l, inner))),
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}
