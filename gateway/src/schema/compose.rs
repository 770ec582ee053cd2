//! Namespacing each upstream schema and composing them into one supergraph.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use apollo_compiler::ast::{self, Type};
use apollo_compiler::collections::{IndexMap, IndexSet};
use apollo_compiler::schema::{
    Component, ComponentName, DirectiveList, EnumType, ExtendedType, FieldDefinition,
    InputObjectType, InputValueDefinition, InterfaceType, ObjectType, ScalarType, UnionType,
};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Node, Schema};

use super::federation::{self, EntityLookup};
use super::{parse_upstream, SchemaError, UpstreamSdl};
use crate::diagnostic::{Diagnostic, Diagnostics, Position};

/// The composed schema clients see, plus what is needed to route back to upstreams.
#[derive(Debug)]
pub struct Supergraph {
    /// The composed schema (every upstream name prefixed with `<namespace>_`).
    pub schema: Valid<Schema>,
    /// The upstream schemas as loaded, in configuration order.
    pub upstreams: indexmap::IndexMap<String, UpstreamSdl>,
    /// Each upstream's schema as parsed and validated for composition (un-namespaced), by
    /// namespace: what later needs an upstream's own schema takes it here instead of
    /// parsing the SDL again.
    pub parsed: HashMap<String, Valid<Schema>>,
    /// The entity lookups of federation subgraphs, by composed root field name
    /// (`products_productByUpc`).
    pub entities: HashMap<String, Arc<EntityLookup>>,
    /// The input types made for nested entity keys (composed names): they exist only here,
    /// so upstreams get their values as `_Any`, inside a representation.
    pub key_inputs: HashSet<String>,
}

impl Supergraph {
    /// Splits a composed name (`countries_Country`) into namespace and upstream name.
    pub fn split<'a>(&self, name: &'a str) -> Option<(&'a str, &'a str)> {
        let (ns, rest) = name.split_once('_')?;
        self.upstreams.contains_key(ns).then_some((ns, rest))
    }

    /// A type with namespace prefixes removed, as the upstream writes it: `[countries_Filter!]`
    /// → `[Filter!]`.
    pub fn upstream_type(&self, ty: &Type) -> String {
        let name = |n: &str| {
            if self.key_inputs.contains(n) {
                "_Any".to_string()
            } else {
                self.split(n).map_or(n, |(_, n)| n).to_string()
            }
        };
        match ty {
            Type::Named(n) => name(n),
            Type::NonNullNamed(n) => format!("{}!", name(n)),
            Type::List(inner) => format!("[{}]", self.upstream_type(inner)),
            Type::NonNullList(inner) => format!("[{}]!", self.upstream_type(inner)),
        }
    }

    /// The composed SDL, as `joinery schema` prints it.
    pub fn sdl(&self) -> String {
        self.schema.to_string()
    }
}

const SHARED_SCALARS: &[&str] = &["Int", "Float", "String", "Boolean", "ID"];
/// Directives whose uses survive composition; upstream-specific ones are dropped
/// because the gateway does not define them.
const KEPT_DIRECTIVES: &[&str] = &["deprecated", "specifiedBy", "oneOf"];

struct Namespacer<'a> {
    ns: &'a str,
    roots: HashSet<Name>,
    /// `(type, field)`s left out: a subgraph's `@external` fields, which it cannot resolve.
    hidden: HashSet<(Name, Name)>,
}

impl Namespacer<'_> {
    fn name(&self, name: &Name) -> Name {
        if SHARED_SCALARS.contains(&name.as_str()) {
            name.clone()
        } else {
            Name::new(&format!("{}_{}", self.ns, name))
                .expect("prefixing a valid name keeps it valid")
        }
    }

    fn ty(&self, ty: &Type) -> Type {
        match ty {
            Type::Named(n) => Type::Named(self.name(n)),
            Type::NonNullNamed(n) => Type::NonNullNamed(self.name(n)),
            Type::List(inner) => Type::List(Box::new(self.ty(inner))),
            Type::NonNullList(inner) => Type::NonNullList(Box::new(self.ty(inner))),
        }
    }

    fn directives(&self, list: &DirectiveList) -> DirectiveList {
        DirectiveList(
            list.iter()
                .filter(|d| KEPT_DIRECTIVES.contains(&d.name.as_str()))
                .cloned()
                .collect(),
        )
    }

    fn ast_directives(&self, list: &ast::DirectiveList) -> ast::DirectiveList {
        ast::DirectiveList(
            list.iter()
                .filter(|d| KEPT_DIRECTIVES.contains(&d.name.as_str()))
                .cloned()
                .collect(),
        )
    }

    fn input_value(&self, v: &InputValueDefinition) -> InputValueDefinition {
        InputValueDefinition {
            description: v.description.clone(),
            name: v.name.clone(),
            ty: Node::new(self.ty(&v.ty)),
            default_value: v.default_value.clone(),
            directives: self.ast_directives(&v.directives),
        }
    }

    /// `None` for fields returning an upstream root type, which cannot be routed.
    fn field(&self, f: &FieldDefinition, name: Name) -> Option<FieldDefinition> {
        if self.roots.contains(f.ty.inner_named_type()) {
            tracing::warn!(
                namespace = self.ns,
                field = %f.name,
                "field returns the upstream's root type and is left out of the composed schema"
            );
            return None;
        }
        Some(FieldDefinition {
            description: f.description.clone(),
            name,
            arguments: f
                .arguments
                .iter()
                .map(|a| Node::new(self.input_value(a)))
                .collect(),
            ty: self.ty(&f.ty),
            directives: self.ast_directives(&f.directives),
        })
    }

    fn fields(
        &self,
        owner: &Name,
        fields: &IndexMap<Name, Component<FieldDefinition>>,
    ) -> IndexMap<Name, Component<FieldDefinition>> {
        fields
            .values()
            .filter(|f| !self.hidden.contains(&(owner.clone(), f.name.clone())))
            .filter_map(|f| self.field(f, f.name.clone()))
            .map(|f| (f.name.clone(), Component::new(f)))
            .collect()
    }

    fn component_names(&self, names: &IndexSet<ComponentName>) -> IndexSet<ComponentName> {
        names
            .iter()
            .map(|n| ComponentName::from(self.name(n)))
            .collect()
    }

    fn extended_type(&self, ty: &ExtendedType) -> ExtendedType {
        match ty {
            ExtendedType::Scalar(t) => ExtendedType::Scalar(Node::new(ScalarType {
                description: t.description.clone(),
                name: self.name(&t.name),
                directives: self.directives(&t.directives),
            })),
            ExtendedType::Object(t) => ExtendedType::Object(Node::new(ObjectType {
                description: t.description.clone(),
                name: self.name(&t.name),
                implements_interfaces: self.component_names(&t.implements_interfaces),
                directives: self.directives(&t.directives),
                fields: self.fields(&t.name, &t.fields),
            })),
            ExtendedType::Interface(t) => ExtendedType::Interface(Node::new(InterfaceType {
                description: t.description.clone(),
                name: self.name(&t.name),
                implements_interfaces: self.component_names(&t.implements_interfaces),
                directives: self.directives(&t.directives),
                fields: self.fields(&t.name, &t.fields),
            })),
            ExtendedType::Union(t) => ExtendedType::Union(Node::new(UnionType {
                description: t.description.clone(),
                name: self.name(&t.name),
                directives: self.directives(&t.directives),
                members: self.component_names(&t.members),
            })),
            ExtendedType::Enum(t) => ExtendedType::Enum(Node::new(EnumType {
                description: t.description.clone(),
                name: self.name(&t.name),
                directives: self.directives(&t.directives),
                values: t.values.clone(),
            })),
            ExtendedType::InputObject(t) => ExtendedType::InputObject(Node::new(InputObjectType {
                description: t.description.clone(),
                name: self.name(&t.name),
                directives: self.directives(&t.directives),
                fields: t
                    .fields
                    .iter()
                    .map(|(n, f)| (n.clone(), Component::new(self.input_value(f))))
                    .collect(),
            })),
        }
    }
}

/// Composes upstream schemas into the supergraph: every upstream-defined type and root field
/// is prefixed with `<namespace>_`; the built-in scalars are shared.
pub(crate) fn compose(upstreams: Vec<UpstreamSdl>) -> Result<Supergraph, SchemaError> {
    let mut diags = Diagnostics::default();
    let mut schema = Schema::new();
    let mut query = ObjectType {
        description: None,
        name: Name::new_static_unchecked("Query"),
        implements_interfaces: Default::default(),
        directives: Default::default(),
        fields: Default::default(),
    };
    let mut mutation = ObjectType {
        name: Name::new_static_unchecked("Mutation"),
        ..query.clone()
    };
    let mut lookups = HashMap::new();
    let mut key_inputs = HashSet::new();
    let mut parsed_upstreams = HashMap::new();
    for upstream in &upstreams {
        let parsed = match parse_upstream(upstream) {
            Ok(s) => s,
            Err(d) => {
                diags.0.extend(d.0);
                continue;
            }
        };
        let root = |op| parsed.root_operation(op).cloned();
        let (q, m) = (
            root(ast::OperationType::Query),
            root(ast::OperationType::Mutation),
        );
        if let Some(s) = root(ast::OperationType::Subscription) {
            tracing::warn!(namespace = %upstream.namespace, "subscriptions are not supported; `{s}` is left out");
        }
        let entities = if upstream.federation {
            match federation::entities(upstream, &parsed) {
                Ok(e) => e,
                Err(problems) => {
                    diags.0.extend(problems);
                    continue;
                }
            }
        } else {
            federation::Entities::default()
        };
        let namespacer = Namespacer {
            ns: &upstream.namespace,
            roots: [&q, &m, &root(ast::OperationType::Subscription)]
                .into_iter()
                .flatten()
                .cloned()
                .collect(),
            hidden: entities.external,
        };
        for (name, ty) in &parsed.types {
            if ty.is_built_in()
                || namespacer.roots.contains(name)
                || (upstream.federation && federation::is_federation_type(name))
            {
                continue;
            }
            let renamed = namespacer.extended_type(ty);
            schema.types.insert(renamed.name().clone(), renamed);
        }
        for (root_name, target) in [(q, &mut query), (m, &mut mutation)] {
            let Some(obj) = root_name.and_then(|n| parsed.get_object(&n).cloned()) else {
                continue;
            };
            for f in obj.fields.values() {
                if f.name.starts_with("__")
                    || (upstream.federation && federation::is_federation_field(&f.name))
                {
                    continue;
                }
                let name = namespacer.name(&f.name);
                if let Some(def) = namespacer.field(f, name.clone()) {
                    target.fields.insert(name, Component::new(def));
                }
            }
        }
        for input in &entities.inputs {
            let renamed =
                namespacer.extended_type(&ExtendedType::InputObject(Node::new(input.clone())));
            if schema.types.contains_key(renamed.name()) {
                diags.0.push(composed_problem(format!(
                    "upstream `{}`: the input type `{}` made for an entity key is also defined by the subgraph",
                    upstream.namespace,
                    input.name
                )));
                continue;
            }
            key_inputs.insert(renamed.name().to_string());
            schema.types.insert(renamed.name().clone(), renamed);
        }
        for (definition, lookup) in entities.lookups {
            let name = namespacer.name(&definition.name);
            if query.fields.contains_key(&name) {
                diags.0.push(composed_problem(format!(
                    "upstream `{}`: the lookup of entity `{}` would be the root field `{name}`, which the subgraph already has",
                    upstream.namespace, lookup.type_name
                )));
                continue;
            }
            if let Some(def) = namespacer.field(&definition, name.clone()) {
                query.fields.insert(name.clone(), Component::new(def));
                lookups.insert(name.to_string(), lookup);
            }
        }
        parsed_upstreams.insert(upstream.namespace.clone(), parsed);
    }
    add_joins(&mut schema, &mut diags);
    diags.into_result().map_err(SchemaError::Invalid)?;
    if query.fields.is_empty() {
        return Err(SchemaError::Invalid(Diagnostics(vec![Diagnostic {
            position: Position {
                path: "joinery.toml".into(),
                line: 1,
                column: 1,
            },
            message: "no upstream defines a Query root field, so the composed schema is empty"
                .into(),
        }])));
    }
    let def = schema.schema_definition.make_mut();
    def.query = Some(ComponentName::from(query.name.clone()));
    schema
        .types
        .insert(query.name.clone(), ExtendedType::Object(Node::new(query)));
    if !mutation.fields.is_empty() {
        let def = schema.schema_definition.make_mut();
        def.mutation = Some(ComponentName::from(mutation.name.clone()));
        schema.types.insert(
            mutation.name.clone(),
            ExtendedType::Object(Node::new(mutation)),
        );
    }
    let schema = schema.validate().map_err(|with| {
        SchemaError::Invalid(Diagnostics(
            with.errors
                .iter()
                .map(|d| composed_problem(d.error.to_string()))
                .collect(),
        ))
    })?;
    Ok(Supergraph {
        schema,
        upstreams: upstreams
            .into_iter()
            .map(|u| (u.namespace.clone(), u))
            .collect(),
        parsed: parsed_upstreams,
        entities: lookups,
        key_inputs,
    })
}

/// A problem of the composed schema as a whole.
fn composed_problem(message: String) -> Diagnostic {
    Diagnostic {
        position: Position {
            path: "<composed schema>".into(),
            line: 1,
            column: 1,
        },
        message,
    }
}

/// The gateway's own directives, defined in every composed schema.
const GATEWAY_DIRECTIVES: &str = r#"
"Copies the field's resolved value into the internal variable `as`, in the scope of the enclosing object."
directive @export(as: String!) on FIELD
"Marks a variable that only the gateway fills (from `@export`); clients cannot set it."
directive @internal on VARIABLE_DEFINITION
"#;

/// Adds `_join: Query!` to every object and interface type (but the roots) and defines the
/// gateway's directives.
fn add_joins(schema: &mut Schema, diags: &mut Diagnostics) {
    let directives = Schema::parse(GATEWAY_DIRECTIVES, "joinery-directives.graphql")
        .expect("the gateway's directive definitions parse");
    for (name, def) in &directives.directive_definitions {
        if matches!(name.as_str(), "export" | "internal") {
            schema
                .directive_definitions
                .insert(name.clone(), def.clone());
        }
    }
    let join = Component::new(FieldDefinition {
        description: Some(Node::new_str(
            "Joins data from any upstream into this object: select root fields of any namespace, with arguments from variables exported (`@export`) in this object or around it.",
        )),
        name: Name::new_static_unchecked(JOIN_FIELD),
        arguments: Vec::new(),
        ty: Type::NonNullNamed(Name::new_static_unchecked("Query")),
        directives: Default::default(),
    });
    for ty in schema.types.values_mut() {
        let fields = match ty {
            ExtendedType::Object(o) => &mut o.make_mut().fields,
            ExtendedType::Interface(i) => &mut i.make_mut().fields,
            _ => continue,
        };
        if fields.contains_key(JOIN_FIELD) {
            diags.0.push(composed_problem(format!(
                "type `{}` defines a field `{JOIN_FIELD}`, which Joinery reserves for joins",
                ty.name()
            )));
            continue;
        }
        fields.insert(Name::new_static_unchecked(JOIN_FIELD), join.clone());
    }
}

/// The field every object type gets for joins.
pub(crate) const JOIN_FIELD: &str = "_join";

#[cfg(test)]
mod tests {
    use super::*;

    fn up(ns: &str, sdl: &str) -> UpstreamSdl {
        UpstreamSdl {
            namespace: ns.into(),
            origin: format!("{ns}.graphql"),
            sdl: sdl.into(),
            federation: false,
        }
    }

    fn subgraph(ns: &str, sdl: &str) -> UpstreamSdl {
        UpstreamSdl {
            federation: true,
            ..up(ns, sdl)
        }
    }

    #[test]
    fn federation_v1_and_v2_subgraphs_get_entity_lookups_and_lose_federation_names() {
        let v1 = r#"
            scalar _Any
            union _Entity = Product
            type _Service { sdl: String }
            extend type Query { top: [Product] _entities(representations: [_Any!]!): [_Entity]! _service: _Service! }
            extend type Product @key(fields: "upc") @key(fields: "sku variant { id }") {
              upc: String! @external
              sku: String! @external
              variant: Variant @external
              weight: Int @external
              price: Int
              shipping: Int @requires(fields: "weight")
            }
            type Variant { id: ID! }
        "#;
        let v2 = r#"
            extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@shareable"])
            type Query { me: User }
            type User @federation__key(fields: "id") @federation__key(fields: "email", resolvable: false) {
              id: ID! @shareable
              email: String!
            }
        "#;
        let g = compose(vec![subgraph("shop", v1), subgraph("users", v2)]).unwrap();
        let sdl = g.sdl();
        for expected in [
            "shop_top: [shop_Product]",
            "shop_productByUpc(",
            "shop_productBySkuAndVariant(",
            "variant: shop_ProductVariantKey",
            "input shop_ProductVariantKey {
  id: ID!
}",
            "weight: Int,",
            "users_me: users_User",
            "users_userById(id: ID!): users_User",
            "price: Int",
        ] {
            assert!(
                sdl.contains(expected),
                "missing {expected:?} in
{sdl}"
            );
        }
        for hidden in [
            "_entities(",
            "_service",
            "_Any",
            "_Entity",
            "emailBy",
            "@key",
            "link__",
        ] {
            assert!(
                !sdl.contains(hidden),
                "{hidden:?} in
{sdl}"
            );
        }
        let product = &g.entities["shop_productBySkuAndVariant"];
        assert_eq!(product.type_name, "Product");
        assert_eq!(product.key, ["sku", "variant"]);
        assert_eq!(
            product.required_by("shipping"),
            Some(&["weight".to_string()][..])
        );
        assert!(!g.entities.contains_key("users_userByEmail"));
    }

    #[test]
    fn a_lookup_named_like_a_root_field_is_refused() {
        let err = compose(vec![subgraph(
            "a",
            r#"type Query { thingById(id: ID!): Thing } type Thing @key(fields: "id") { id: ID! }"#,
        )])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("`a_thingById`, which the subgraph already has"),
            "{err}"
        );
    }

    #[test]
    fn every_upstream_name_is_prefixed_and_builtins_are_shared() {
        let g = compose(vec![
            up(
                "a",
                r#"
                "A thing" type Thing implements Node { id: ID! old: String @deprecated(reason: "no") kind: Kind }
                interface Node { id: ID! }
                union U = Thing
                enum Kind { X Y }
                input F { kind: Kind = X }
                scalar Date
                type Query { thing(f: F): Thing  u: [U!]! now: Date }
                type Mutation { touch: Thing }
                "#,
            ),
            up("b", "type Thing { id: ID! } type Query { thing: Thing }"),
        ])
        .unwrap();
        let sdl = g.sdl();
        for expected in [
            "a_thing(f: a_F): a_Thing",
            "b_thing: b_Thing",
            "type a_Thing implements a_Node",
            "\"A thing\"",
            "old: String @deprecated(reason: \"no\")",
            "union a_U = a_Thing",
            "kind: a_Kind = X",
            "scalar a_Date",
            "a_touch: a_Thing",
            "_join: Query!",
            "directive @export(as: String!) on FIELD",
            "directive @internal on VARIABLE_DEFINITION",
        ] {
            assert!(sdl.contains(expected), "missing {expected:?} in\n{sdl}");
        }
        assert_eq!(g.split("a_Thing"), Some(("a", "Thing")));
        assert_eq!(g.split("c_Thing"), None);
    }

    #[test]
    fn invalid_upstream_sdl_is_reported_with_its_position() {
        let err = compose(vec![up("a", "type Query {\n  x: Missing\n}\n")]).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("a.graphql:2:"), "{text}");
        assert!(text.contains("upstream `a`"), "{text}");
    }
}
