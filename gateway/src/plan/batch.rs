//! Batch forms: a root field that takes one key (`getCityByName(name:)`) answered for many
//! keys at once by another root field (`getCitiesByNames(names:)`), whose results are matched
//! back to the keys by a field of each result (`name`). Declared per upstream in
//! `[upstreams.<ns>.batch]` and checked here against the upstream's schema.

use std::collections::HashMap;
use std::sync::Arc;

use apollo_compiler::ast::Type;
use apollo_compiler::schema::ExtendedType;

use crate::config::UpstreamConfig;
use crate::diagnostic::Diagnostic;
use crate::schema::Supergraph;

/// Alias under which a batch call's results carry their key, so that results are matched to
/// items by key even when the operation did not select the key field.
pub(crate) const KEY_ALIAS: &str = "_joinery_key";

/// One checked batch form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BatchForm {
    /// The root field that takes one key, as the upstream names it.
    pub(crate) single: String,
    /// The root field that takes many keys, as the upstream names it.
    pub(crate) field: String,
    /// Its list argument that receives the keys.
    pub(crate) argument: String,
    /// That argument's type as the upstream declares it, e.g. `[String!]!`.
    pub(crate) argument_type: String,
    /// The field of each result that holds its key.
    pub(crate) key: String,
    /// Whether the single field is non-null: a key without a result is then an error.
    pub(crate) single_non_null: bool,
    /// The batch field's other arguments: (name, required).
    pub(crate) other_arguments: Vec<(String, bool)>,
}

/// Every checked batch form, by the composed name of its single-key field
/// (`weather_getCityByName`).
#[derive(Debug, Clone, Default)]
pub(crate) struct BatchForms(HashMap<String, Arc<BatchForm>>);

impl BatchForms {
    /// Checks every upstream's `batch` tables against the composed schema; every problem is
    /// reported with the position of its table.
    pub(crate) fn resolve<'a>(
        supergraph: &Supergraph,
        upstreams: impl IntoIterator<Item = &'a UpstreamConfig>,
    ) -> Result<Self, Vec<Diagnostic>> {
        let mut forms = HashMap::new();
        let mut problems = Vec::new();
        for upstream in upstreams {
            // `cache.field_ttl` names root fields too: checked here, with the batch tables.
            let field_ttl = upstream.cache.iter().flat_map(|c| &c.field_ttl);
            for f in field_ttl {
                if root_query_field(supergraph, &upstream.namespace, &f.field).is_err() {
                    problems.push(Diagnostic {
                        position: f.position.clone(),
                        message: format!(
                            "`cache.field_ttl` of upstream `{}` names `{}`, which is not one of its root query fields",
                            upstream.namespace, f.field
                        ),
                    });
                }
            }
            for b in &upstream.batch {
                match check(supergraph, &upstream.namespace, b) {
                    Ok(form) => {
                        forms.insert(
                            format!("{}_{}", upstream.namespace, b.single),
                            Arc::new(form),
                        );
                    }
                    Err(message) => problems.push(Diagnostic {
                        position: b.position.clone(),
                        message: format!(
                            "batch form of `{}` in upstream `{}`: {message}",
                            b.single, upstream.namespace
                        ),
                    }),
                }
            }
        }
        if problems.is_empty() {
            Ok(BatchForms(forms))
        } else {
            Err(problems)
        }
    }

    /// The batch form of a root field, by its composed name.
    pub(crate) fn get(&self, composed_field: &str) -> Option<&Arc<BatchForm>> {
        self.0.get(composed_field)
    }
}

/// The root query field `name` of upstream `namespace`.
fn root_query_field<'s>(
    supergraph: &'s Supergraph,
    namespace: &str,
    name: &str,
) -> Result<&'s apollo_compiler::schema::Component<apollo_compiler::ast::FieldDefinition>, String> {
    let schema = &supergraph.schema;
    let query = schema
        .schema_definition
        .query
        .as_ref()
        .map(|q| q.name.as_str())
        .unwrap_or("Query");
    schema
        .type_field(query, &format!("{namespace}_{name}"))
        .map_err(|_| format!("upstream `{namespace}` has no root query field `{name}`"))
}

fn check(
    supergraph: &Supergraph,
    namespace: &str,
    b: &crate::config::BatchConfig,
) -> Result<BatchForm, String> {
    let schema = &supergraph.schema;
    let root_field = |name: &str| root_query_field(supergraph, namespace, name);
    let single = root_field(&b.single)?;
    let batch = root_field(&b.field)?;
    if single.ty.is_list() {
        return Err(format!(
            "`{}` returns a list; a batch form is for fields that answer one key with one result",
            b.single
        ));
    }
    let item_type = single.ty.inner_named_type();
    let returns_items = match &batch.ty {
        Type::List(inner) | Type::NonNullList(inner) => {
            matches!(&**inner, Type::Named(n) | Type::NonNullNamed(n) if n == item_type)
        }
        _ => false,
    };
    if !returns_items {
        return Err(format!(
            "`{}` must return a list of `{}` (as `{}` returns one), but returns `{}`",
            b.field,
            unprefixed(supergraph, item_type),
            b.single,
            supergraph.upstream_type(&batch.ty)
        ));
    }
    let argument = batch
        .arguments
        .iter()
        .find(|a| a.name == b.argument.as_str())
        .ok_or_else(|| {
            let names: Vec<&str> = batch.arguments.iter().map(|a| a.name.as_str()).collect();
            format!(
                "`{}` has no argument `{}` (its arguments: {})",
                b.field,
                b.argument,
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )
        })?;
    if !argument.ty.is_list() {
        return Err(format!(
            "argument `{}` of `{}` must be a list to take many keys, but is `{}`",
            b.argument,
            b.field,
            supergraph.upstream_type(&argument.ty)
        ));
    }
    let key_ok = match schema.types.get(item_type) {
        Some(ExtendedType::Object(_) | ExtendedType::Interface(_)) => {
            let field = schema.type_field(item_type, &b.key).ok().ok_or_else(|| {
                format!(
                    "`{}` has no field `{}` to match results to keys by",
                    unprefixed(supergraph, item_type),
                    b.key
                )
            })?;
            !field.ty.is_list()
                && matches!(
                    schema.types.get(field.ty.inner_named_type()),
                    Some(ExtendedType::Scalar(_) | ExtendedType::Enum(_))
                )
        }
        _ => {
            return Err(format!(
                "`{}` returns `{}`, which has no fields to match results to keys by",
                b.single,
                unprefixed(supergraph, item_type)
            ))
        }
    };
    if !key_ok {
        return Err(format!(
            "key field `{}` must be a scalar or an enum (not a list or an object)",
            b.key
        ));
    }
    Ok(BatchForm {
        single: b.single.clone(),
        field: b.field.clone(),
        argument: b.argument.clone(),
        argument_type: supergraph.upstream_type(&argument.ty),
        key: b.key.clone(),
        single_non_null: single.ty.is_non_null(),
        other_arguments: batch
            .arguments
            .iter()
            .filter(|a| a.name != b.argument.as_str())
            .map(|a| {
                (
                    a.name.to_string(),
                    a.ty.is_non_null() && a.default_value.is_none(),
                )
            })
            .collect(),
    })
}

fn unprefixed<'n>(supergraph: &Supergraph, name: &'n str) -> &'n str {
    supergraph.split(name).map_or(name, |(_, n)| n)
}
