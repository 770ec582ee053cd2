//! What one execution of an operation costs at most, measured at build: its depth, its
//! upstream requests and the fields it resolves, lists counted at their hinted sizes.
//!
//! A list's size comes from, in order: the upstream's `list_sizes` in the configuration; its
//! `@listSize` directive (a slicing argument's value, else `assumedSize`); else the
//! operation's join fan-out limit, the most items a join under the list may reach anyway.

use std::collections::HashMap;
use std::fmt;

use apollo_compiler::ast::{Type, Value};
use apollo_compiler::executable::{Field, Operation, Selection, SelectionSet};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{ExecutableDocument, Node};
use indexmap::IndexMap;

use crate::config::{Budget, Config, UpstreamConfig};
use crate::diagnostic::Diagnostic;
use crate::schema::{Supergraph, JOIN_FIELD};

/// Default join fan-out limit (`server.max_join_fanout`).
pub(crate) const DEFAULT_FANOUT: usize = 1000;

/// How lists are sized, checked against the composed schema once per build.
#[derive(Debug, Clone)]
pub(crate) struct CostModel {
    /// Hints by composed `(type, field)`.
    hints: HashMap<(String, String), Hint>,
    /// Types an object type implements, to find hints declared on interfaces.
    interfaces: HashMap<String, Vec<String>>,
    /// The longest list introspection can answer in the composed schema.
    introspection: u64,
    max_join_fanout: usize,
    fanout_overrides: HashMap<String, usize>,
}

impl Default for CostModel {
    fn default() -> Self {
        CostModel {
            hints: HashMap::new(),
            interfaces: HashMap::new(),
            introspection: DEFAULT_FANOUT as u64,
            max_join_fanout: DEFAULT_FANOUT,
            fanout_overrides: HashMap::new(),
        }
    }
}

#[derive(Debug, Clone)]
enum Hint {
    Config(u64),
    Directive {
        assumed: Option<u64>,
        slicing: Vec<String>,
    },
}

/// Where a list's counted size comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeSource {
    /// The upstream's `list_sizes` in the configuration.
    Config,
    /// `@listSize(assumedSize:)` in the upstream's schema.
    AssumedSize,
    /// The value of a slicing argument named by `@listSize(slicingArguments:)`.
    SlicingArgument(String),
    /// No hint: the operation's join fan-out limit.
    FanoutLimit,
    /// Introspection: the longest list the composed schema has.
    Schema,
}

impl fmt::Display for SizeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeSource::Config => f.write_str("list_sizes"),
            SizeSource::AssumedSize => f.write_str("@listSize(assumedSize)"),
            SizeSource::SlicingArgument(a) => write!(f, "argument `{a}`"),
            SizeSource::FanoutLimit => f.write_str("no hint: the join fan-out limit"),
            SizeSource::Schema => f.write_str("the composed schema"),
        }
    }
}

/// A list of objects the measure counted, at the size it counted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListSize {
    /// Where the list sits in the response, e.g. `countries_countries[].languages`.
    pub path: String,
    /// Items counted per parent object.
    pub size: u64,
    /// Where the size comes from.
    pub source: SizeSource,
}

/// What one execution of an operation costs at most.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cost {
    /// Deepest field nesting; a root field is at depth 1 and `_join` counts as a level.
    pub depth: usize,
    /// Upstream requests: root fetches, and one per upstream and join wave (joins are
    /// batched, so list sizes do not change it).
    pub upstream_requests: usize,
    /// Fields resolved, each once per object holding it: list items multiplied in, a join's
    /// items capped at the fan-out limit, a list of scalars counted as one field.
    pub fields: u64,
    /// The lists of objects counted, with their sizes.
    pub lists: Vec<ListSize>,
}

impl CostModel {
    /// Reads `@listSize` from every upstream schema, then checks the `list_sizes` of every
    /// upstream against the composed schema; each problem is reported where it is written.
    pub(crate) fn resolve(
        supergraph: &Supergraph,
        config: &Config,
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut model = CostModel {
            max_join_fanout: config.server.max_join_fanout,
            fanout_overrides: config
                .operations
                .max_join_fanout
                .iter()
                .map(|(name, (limit, _))| (name.clone(), *limit))
                .collect(),
            ..CostModel::from_schema(supergraph)
        };
        let mut problems = Vec::new();
        for upstream in config.upstreams.values() {
            model.config_hints(supergraph, upstream, &mut problems);
        }
        if problems.is_empty() {
            Ok(model)
        } else {
            Err(problems)
        }
    }

    /// The model of a schema with the default fan-out limit and no configured hints.
    pub(crate) fn from_schema(supergraph: &Supergraph) -> Self {
        let schema = &supergraph.schema;
        let mut model = CostModel {
            introspection: introspection_size(supergraph),
            ..CostModel::default()
        };
        for (name, ty) in &schema.types {
            if let ExtendedType::Object(o) = ty {
                model.interfaces.insert(
                    name.to_string(),
                    o.implements_interfaces
                        .iter()
                        .map(|i| i.name.to_string())
                        .collect(),
                );
            }
        }
        for (namespace, parsed) in &supergraph.parsed {
            let roots = [
                (parsed.schema_definition.query.as_ref(), "Query"),
                (parsed.schema_definition.mutation.as_ref(), "Mutation"),
            ];
            for (name, ty) in &parsed.types {
                let fields = match ty {
                    ExtendedType::Object(o) => &o.fields,
                    ExtendedType::Interface(i) => &i.fields,
                    _ => continue,
                };
                let root = roots
                    .iter()
                    .find(|(r, _)| r.is_some_and(|r| r.name == *name))
                    .map(|(_, composed)| *composed);
                for (field, def) in fields {
                    let Some(directive) = def.directives.get("listSize") else {
                        continue;
                    };
                    let assumed = match directive
                        .specified_argument_by_name("assumedSize")
                        .map(|v| &**v)
                    {
                        Some(Value::Int(n)) => n.try_to_i32().ok().map(|n| n.max(0) as u64),
                        _ => None,
                    };
                    let slicing = match directive
                        .specified_argument_by_name("slicingArguments")
                        .map(|v| &**v)
                    {
                        Some(Value::List(items)) => items
                            .iter()
                            .filter_map(|v| v.as_str().map(str::to_string))
                            .collect(),
                        _ => Vec::new(),
                    };
                    let key = match root {
                        Some(composed) => (composed.to_string(), format!("{namespace}_{field}")),
                        None => (format!("{namespace}_{name}"), field.to_string()),
                    };
                    model
                        .hints
                        .insert(key, Hint::Directive { assumed, slicing });
                }
            }
        }
        model
    }

    fn config_hints(
        &mut self,
        supergraph: &Supergraph,
        upstream: &UpstreamConfig,
        problems: &mut Vec<Diagnostic>,
    ) {
        let ns = &upstream.namespace;
        for hint in &upstream.list_sizes {
            let (ty, field) = match hint.name.split_once('.') {
                Some((ty, field)) => (format!("{ns}_{ty}"), field.to_string()),
                None => ("Query".to_string(), format!("{ns}_{}", hint.name)),
            };
            let problem = match supergraph.schema.type_field(&ty, &field) {
                Ok(def) if def.ty.is_list() => None,
                Ok(def) => Some(format!(
                    "is not a list (it is `{}`)",
                    unprefixed_type(supergraph, &def.ty)
                )),
                Err(_) if hint.name.contains('.') => {
                    Some("is not a field of the upstream's schema".to_string())
                }
                Err(_) => Some(
                    "is not one of its root query fields (write `Type.field` for other types)"
                        .to_string(),
                ),
            };
            match problem {
                None => {
                    self.hints.insert((ty, field), Hint::Config(hint.size));
                }
                Some(why) => problems.push(Diagnostic {
                    position: hint.position.clone(),
                    message: format!(
                        "`list_sizes` of upstream `{ns}` names `{}`, which {why}",
                        hint.name
                    ),
                }),
            }
        }
    }

    /// The join fan-out limit of the operation named `operation`.
    pub(crate) fn fanout(&self, operation: Option<&str>) -> usize {
        operation
            .and_then(|n| self.fanout_overrides.get(n))
            .copied()
            .unwrap_or(self.max_join_fanout)
    }

    fn hint(&self, ty: &str, field: &str) -> Option<&Hint> {
        let key = |t: &str| (t.to_string(), field.to_string());
        self.hints.get(&key(ty)).or_else(|| {
            self.interfaces
                .get(ty)?
                .iter()
                .find_map(|i| self.hints.get(&key(i)))
        })
    }
}

/// The longest list introspection can answer: types, fields of a type, arguments of a
/// field, values of an enum, directives.
fn introspection_size(supergraph: &Supergraph) -> u64 {
    let schema = &supergraph.schema;
    let per_type = schema.types.values().map(|ty| match ty {
        ExtendedType::Object(o) => o
            .fields
            .values()
            .map(|f| f.arguments.len())
            .chain([o.fields.len(), o.implements_interfaces.len()])
            .max()
            .unwrap_or(0),
        ExtendedType::Interface(i) => i
            .fields
            .values()
            .map(|f| f.arguments.len())
            .chain([i.fields.len(), i.implements_interfaces.len()])
            .max()
            .unwrap_or(0),
        ExtendedType::Union(u) => u.members.len(),
        ExtendedType::Enum(e) => e.values.len(),
        ExtendedType::InputObject(i) => i.fields.len(),
        ExtendedType::Scalar(_) => 0,
    });
    let directives = schema
        .directive_definitions
        .values()
        .map(|d| d.arguments.len().max(d.locations.len()));
    per_type
        .chain(directives)
        .chain([schema.types.len(), schema.directive_definitions.len()])
        .max()
        .unwrap_or(0) as u64
}

fn unprefixed_type(supergraph: &Supergraph, ty: &Type) -> String {
    let name = ty.inner_named_type().as_str();
    let bare = supergraph.split(name).map_or(name, |(_, n)| n);
    ty.to_string().replace(name, bare)
}

/// Measures `operation`; `upstream_requests` is left to the caller, which knows the fetches.
pub(crate) fn measure(
    model: &CostModel,
    document: &ExecutableDocument,
    operation: &Operation,
) -> Cost {
    let mut walker = Walker {
        model,
        document,
        operation,
        fanout: model.fanout(operation.name.as_ref().map(|n| n.as_str())) as u64,
        lists: Vec::new(),
    };
    let (fields, depth) = walker.sets(&[&operation.selection_set], 1, "");
    Cost {
        depth,
        upstream_requests: 0,
        fields,
        lists: walker.lists,
    }
}

struct Walker<'a> {
    model: &'a CostModel,
    document: &'a ExecutableDocument,
    operation: &'a Operation,
    fanout: u64,
    lists: Vec<ListSize>,
}

impl<'a> Walker<'a> {
    /// Fields resolved and depth below the objects of `sets` (one merged selection), of which
    /// there are `count`.
    fn sets(&mut self, sets: &[&'a SelectionSet], count: u64, path: &str) -> (u64, usize) {
        // Selections of one response key merge into one field, as in the response.
        let mut merged: IndexMap<&'a str, Vec<(&'a str, &'a Node<Field>)>> = IndexMap::new();
        for set in sets {
            self.collect(set, &mut merged);
        }
        let mut fields = 0u64;
        let mut depth = 0;
        for (key, group) in merged {
            let (parent, field) = group[0];
            let children: Vec<&SelectionSet> = group
                .iter()
                .map(|(_, f)| &f.selection_set)
                .filter(|s| !s.selections.is_empty())
                .collect();
            let here = if path.is_empty() {
                key.to_string()
            } else {
                format!("{path}.{key}")
            };
            let (own, items, below) = if field.name == JOIN_FIELD {
                // The executor refuses a join over more objects than the fan-out limit.
                let n = count.min(self.fanout);
                (n, n, here)
            } else if children.is_empty() {
                (count, count, here)
            } else if field.ty().is_list() {
                let size = self.list_size(parent, field, &here);
                (count, count.saturating_mul(size), format!("{here}[]"))
            } else {
                (count, count, here)
            };
            fields = fields.saturating_add(own);
            let (below_fields, below_depth) = if children.is_empty() {
                (0, 0)
            } else {
                self.sets(&children, items, &below)
            };
            fields = fields.saturating_add(below_fields);
            depth = depth.max(1 + below_depth);
        }
        (fields, depth)
    }

    fn collect(
        &self,
        set: &'a SelectionSet,
        merged: &mut IndexMap<&'a str, Vec<(&'a str, &'a Node<Field>)>>,
    ) {
        for selection in &set.selections {
            match selection {
                Selection::Field(f) => merged
                    .entry(f.response_key().as_str())
                    .or_default()
                    .push((set.ty.as_str(), f)),
                Selection::InlineFragment(frag) => self.collect(&frag.selection_set, merged),
                Selection::FragmentSpread(spread) => {
                    if let Some(frag) = self.document.fragments.get(&spread.fragment_name) {
                        self.collect(&frag.selection_set, merged);
                    }
                }
            }
        }
    }

    /// Items per parent object of the list `field` of `parent`; nested lists multiply.
    fn list_size(&mut self, parent: &str, field: &Field, path: &str) -> u64 {
        let (size, source) = if parent.starts_with("__") {
            (self.model.introspection, SizeSource::Schema)
        } else {
            match self.model.hint(parent, &field.name) {
                Some(Hint::Config(n)) => (*n, SizeSource::Config),
                Some(Hint::Directive { assumed, slicing }) => {
                    let sliced = slicing
                        .iter()
                        .filter_map(|a| self.argument_int(field, a).map(|n| (n, a)))
                        .max_by_key(|(n, _)| *n);
                    match (sliced, assumed) {
                        (Some((n, a)), _) => (n, SizeSource::SlicingArgument(a.clone())),
                        (None, Some(n)) => (*n, SizeSource::AssumedSize),
                        (None, None) => (self.fanout, SizeSource::FanoutLimit),
                    }
                }
                None => (self.fanout, SizeSource::FanoutLimit),
            }
        };
        let mut levels = 0u32;
        let mut ty = field.ty();
        while let Type::List(inner) | Type::NonNullList(inner) = ty {
            levels += 1;
            ty = inner;
        }
        self.lists.push(ListSize {
            path: path.to_string(),
            size,
            source,
        });
        size.saturating_pow(levels)
    }

    /// The value `argument` of `field` takes whatever the client sends: a literal, the
    /// default of the variable it reads, or the argument's default; `None` when the client
    /// chooses it (a variable without a default) or it is not an integer.
    fn argument_int(&self, field: &Field, argument: &str) -> Option<u64> {
        let given = field.arguments.iter().find(|a| a.name == argument);
        let value = match given.map(|a| &*a.value) {
            Some(Value::Variable(v)) => {
                let def = self.operation.variables.iter().find(|d| d.name == *v)?;
                def.default_value.as_deref()?
            }
            Some(value) => value,
            None => field
                .definition
                .argument_by_name(argument)?
                .default_value
                .as_deref()?,
        };
        match value {
            Value::Int(n) => n.try_to_i32().ok().map(|n| n.max(0) as u64),
            _ => None,
        }
    }
}

impl Budget {
    /// Why `cost` is over this budget, one message per limit passed; `operation` names it.
    pub fn check(&self, operation: &str, cost: &Cost) -> Vec<String> {
        let unhinted: Vec<&str> = cost
            .lists
            .iter()
            .filter(|l| l.source == SizeSource::FanoutLimit)
            .map(|l| l.path.as_str())
            .collect();
        let fields_hint = if unhinted.is_empty() {
            String::new()
        } else {
            format!(
                "; lists without a size hint count as the join fan-out limit: {} (set `list_sizes` of their upstream where they are shorter)",
                unhinted.join(", ")
            )
        };
        [
            (
                &self.max_depth,
                "max_depth",
                cost.depth as u64,
                format!("is nested {} fields deep", cost.depth),
                String::new(),
            ),
            (
                &self.max_upstream_requests,
                "max_upstream_requests",
                cost.upstream_requests as u64,
                format!("may make {} upstream requests", cost.upstream_requests),
                String::new(),
            ),
            (
                &self.max_fields,
                "max_fields",
                cost.fields,
                format!("may resolve {} fields", cost.fields),
                fields_hint,
            ),
        ]
        .into_iter()
        .filter_map(|(limit, key, measured, what, hint)| {
            let limit = limit.as_ref().filter(|l| measured > l.value)?;
            Some(format!(
                "operation `{operation}` {what}, above the budget of {} (`[operations.budget] {key}` at {}){hint}",
                limit.value, limit.position
            ))
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use super::*;
    use crate::plan::batch::BatchForms;
    use crate::plan::Plan;
    use crate::schema::{compose, UpstreamSdl};

    const SHOP: &str = r#"
        directive @listSize(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!], requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION
        type Query {
          products(first: Int = 20): [Product!]! @listSize(slicingArguments: ["first"], assumedSize: 100)
          categories: [Category!]! @listSize(assumedSize: 5)
          product(id: ID!): Product
          tags: [String!]!
        }
        type Product { id: ID! name: String! reviews: [Review!]! }
        type Category { name: String! products: [Product!]! }
        type Review { stars: Int! }
    "#;

    fn supergraph() -> Supergraph {
        compose(vec![UpstreamSdl {
            namespace: "shop".into(),
            origin: "shop.graphql".into(),
            sdl: SHOP.into(),
            federation: false,
        }])
        .unwrap()
    }

    fn config(extra: &str) -> Config {
        let text = format!("[upstreams.shop]\nurl = \"http://127.0.0.1:1/graphql\"\n{extra}");
        Config::parse(Path::new("joinery.toml"), &text, &|_| None).unwrap()
    }

    fn cost_with(model: &CostModel, supergraph: &Supergraph, text: &str) -> Cost {
        let document =
            ExecutableDocument::parse_and_validate(&supergraph.schema, text, "op.graphql").unwrap();
        let document = Arc::new(document);
        let operation = document.operations.iter().next().unwrap().clone();
        let plan = Plan::build(
            supergraph,
            document,
            &operation,
            false,
            &BatchForms::default(),
            model,
        )
        .unwrap();
        plan.cost
    }

    fn cost(text: &str) -> Cost {
        let supergraph = supergraph();
        cost_with(&CostModel::from_schema(&supergraph), &supergraph, text)
    }

    #[test]
    fn a_list_without_a_hint_counts_as_the_fanout_limit() {
        let c = cost(r#"{ shop_product(id: "1") { name reviews { stars } } shop_tags }"#);
        // shop_product, name, reviews, shop_tags once; stars once per review.
        assert_eq!(c.fields, 4 + 1000);
        assert_eq!(c.depth, 3);
        assert_eq!(c.upstream_requests, 1);
        assert_eq!(
            c.lists,
            vec![ListSize {
                path: "shop_product.reviews".into(),
                size: 1000,
                source: SizeSource::FanoutLimit,
            }]
        );
    }

    #[test]
    fn list_size_directives_read_slicing_arguments_then_assumed_size() {
        let sized = |text: &str| {
            let c = cost(text);
            (c.fields, c.lists[0].source.clone())
        };
        let slicing = SizeSource::SlicingArgument("first".into());
        assert_eq!(
            sized("{ shop_products(first: 3) { name } }"),
            (1 + 3, slicing.clone())
        );
        assert_eq!(
            sized("query($n: Int = 7) { shop_products(first: $n) { name } }"),
            (1 + 7, slicing.clone())
        );
        // The argument's default in the schema.
        assert_eq!(sized("{ shop_products { name } }"), (1 + 20, slicing));
        // The client chooses: the assumed size.
        assert_eq!(
            sized("query($n: Int) { shop_products(first: $n) { name } }"),
            (1 + 100, SizeSource::AssumedSize)
        );
        assert_eq!(
            sized("{ shop_categories { name } }"),
            (1 + 5, SizeSource::AssumedSize)
        );
    }

    #[test]
    fn configured_sizes_win_and_nested_lists_multiply() {
        let supergraph = supergraph();
        let config = config(
            "list_sizes = { categories = 2, \"Category.products\" = 10 }\n[operations]\nmax_join_fanout = { Small = 50 }\n",
        );
        let model = CostModel::resolve(&supergraph, &config).unwrap();
        let text = "query Q { shop_categories { products { name reviews { stars } } } }";
        let c = cost_with(&model, &supergraph, text);
        // categories 1, products 2, name and reviews 2 × 10 each, stars 20 × 1000.
        assert_eq!(c.fields, 1 + 2 + 20 + 20 + 20_000);
        assert_eq!(c.depth, 4);
        let sources: Vec<(&str, u64)> = c.lists.iter().map(|l| (l.path.as_str(), l.size)).collect();
        assert_eq!(
            sources,
            [
                ("shop_categories", 2),
                ("shop_categories[].products", 10),
                ("shop_categories[].products[].reviews", 1000),
            ]
        );
        let small = cost_with(&model, &supergraph, &text.replace("query Q", "query Small"));
        assert_eq!(small.fields, 1 + 2 + 20 + 20 + 20 * 50);
    }

    #[test]
    fn a_join_reaches_at_most_the_fanout_limit_and_is_a_level() {
        let c = cost(
            r#"query J($id: ID! @internal) {
                 shop_products(first: 3000) { id @export(as: "id") _join { shop_product(id: $id) { name } } }
               }"#,
        );
        // shop_products 1, id 3000; `_join`, shop_product and name once per joined item.
        assert_eq!(c.fields, 1 + 3000 + 3 * 1000);
        assert_eq!(c.depth, 4);
        assert_eq!(c.upstream_requests, 2);
    }

    #[test]
    fn fields_selected_twice_count_once() {
        let c = cost(
            r#"{ shop_product(id: "1") { name ...P } } fragment P on shop_Product { name id }"#,
        );
        assert_eq!(c.fields, 3);
    }

    #[test]
    fn hints_that_name_no_list_are_refused_where_written() {
        let supergraph = supergraph();
        let config = config(
            "list_sizes = { nope = 3, \"Product.name\" = 2, \"Nope.x\" = 1, product = 4 }\n",
        );
        let problems: Vec<String> = CostModel::resolve(&supergraph, &config)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            [
                "joinery.toml:3:16: `list_sizes` of upstream `shop` names `nope`, which is not one of its root query fields (write `Type.field` for other types)",
                "joinery.toml:3:26: `list_sizes` of upstream `shop` names `Product.name`, which is not a list (it is `String!`)",
                "joinery.toml:3:46: `list_sizes` of upstream `shop` names `Nope.x`, which is not a field of the upstream's schema",
                "joinery.toml:3:60: `list_sizes` of upstream `shop` names `product`, which is not a list (it is `Product`)",
            ]
        );
    }

    #[test]
    fn budgets_name_the_measure_the_limit_and_where_it_is_set() {
        let config = config(
            "[operations.budget]\nmax_depth = 2\nmax_fields = 100\nmax_upstream_requests = 1\n",
        );
        let c = cost(r#"{ shop_product(id: "1") { reviews { stars } } }"#);
        assert_eq!(
            config.operations.budget.check("P", &c),
            [
                "operation `P` is nested 3 fields deep, above the budget of 2 (`[operations.budget] max_depth` at joinery.toml:4:13)",
                "operation `P` may resolve 1002 fields, above the budget of 100 (`[operations.budget] max_fields` at joinery.toml:5:14); lists without a size hint count as the join fan-out limit: shop_product.reviews (set `list_sizes` of their upstream where they are shorter)",
            ]
        );
        assert!(config
            .operations
            .budget
            .check("P", &cost(r#"{ shop_product(id: "1") { name } }"#))
            .is_empty());
    }
}
