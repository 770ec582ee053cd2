//! Join analysis: where each `_join` sits, which `@export`ed values feed its variables, what it
//! depends on, and in which wave it runs. Order comes from who exports what, never from the
//! order of selections in the text.

use std::collections::HashSet;
use std::sync::Arc;

use apollo_compiler::ast::{Type, Value};
use apollo_compiler::executable::{self, Operation, Selection};
use apollo_compiler::parser::SourceSpan;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::ExecutableDocument;
use indexmap::IndexMap;

use super::batch::{BatchForm, BatchForms};
use super::entities::{self, EntityCall};
use super::render::{collect_variables, Renderer, RootPiece};
use super::shape::possible_types;
pub(crate) use super::template::Template;
use super::PlanProblem;
use crate::schema::{Supergraph, JOIN_FIELD};

/// Restricts an object on a path to some runtime types (the static type is abstract, and the
/// selection sits in fragments with type conditions).
#[derive(Debug, Clone)]
pub(crate) struct TypeFilter {
    /// Namespace that prefixes the upstream's `__typename`.
    pub(crate) namespace: String,
    /// Namespaced object types that pass.
    pub(crate) types: HashSet<String>,
}

/// One step of a path through the response: a field's response key in an object.
#[derive(Debug, Clone)]
pub(crate) struct ScopeStep {
    /// The response key.
    pub(crate) key: String,
    /// Whether the field is a list (each item is its own scope).
    pub(crate) list: bool,
    /// Which objects hold the key (for selections under type conditions).
    pub(crate) filter: Option<TypeFilter>,
}

/// One `_join` of an operation.
#[derive(Debug, Clone)]
pub(crate) struct JoinPlan {
    /// Index in [`super::Plan::joins`].
    pub(crate) id: usize,
    /// Path from the root object to the object holding the `_join` field.
    pub(crate) scope: Vec<ScopeStep>,
    /// Which scope objects get the join.
    pub(crate) scope_filter: Option<TypeFilter>,
    /// Response key of the `_join` field.
    pub(crate) key: String,
    /// The values the join reads, each from an `@export`.
    pub(crate) bindings: Vec<Binding>,
    /// One batched fetch per upstream the join selects from.
    pub(crate) fetches: Vec<JoinFetch>,
    /// Joins that must have run first (they hold this join's scope or its exports).
    pub(crate) depends_on: Vec<usize>,
    /// Wave the join runs in (1 = right after the root fetches).
    pub(crate) wave: usize,
    /// `line:column` of the `_join` field.
    pub(crate) position: (usize, usize),
}

/// Where an internal variable's value comes from.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    /// The internal variable.
    pub(crate) variable: String,
    /// Depth, along the join's scope path, of the object the export is reached from.
    pub(crate) level: usize,
    /// Response keys from that object down to the exported field.
    pub(crate) path: Vec<String>,
    /// The export sits in lists below `level`: its values are collected into a list.
    pub(crate) collect: bool,
    /// The variable is non-null: a null value cannot be sent.
    pub(crate) non_null: bool,
    /// The exporting field, as `path.to.field`, for plans.
    pub(crate) source: String,
}

/// The part of a join that goes to one upstream, batched over all its items.
#[derive(Debug, Clone)]
pub(crate) struct JoinFetch {
    /// The upstream's namespace.
    pub(crate) upstream: String,
    /// The root fields, rendered as templates (alias prefix and internal variables per item).
    pub(crate) pieces: Vec<Template>,
    /// Response keys of the root fields.
    pub(crate) root_keys: Vec<String>,
    /// The root fields as the operation names them, without the namespace (for caching
    /// rules; a batch form's single-key field, not its list field).
    pub(crate) fields: Vec<String>,
    /// Client variables the pieces use.
    pub(crate) client_variables: Vec<String>,
    /// Indices into [`JoinPlan::bindings`] of the internal variables the pieces use.
    pub(crate) bindings: Vec<usize>,
    /// How the items are batched.
    pub(crate) batching: Batching,
}

/// How one join fetch asks for all items at once.
#[derive(Debug, Clone)]
pub(crate) enum Batching {
    /// One aliased copy of the pieces per distinct set of values; `unused` says why a root
    /// field's batch form could not be used, where it has one.
    Aliases {
        /// `(root field, reason)` for each batch form not used.
        unused: Vec<(String, String)>,
    },
    /// One call of the (single) piece's batch form with every distinct key in a list; results
    /// are matched to items by their key field.
    Field(Arc<BatchForm>),
    /// One `_entities` call of a federation subgraph with every distinct representation;
    /// results are matched to items by position.
    Entities(Arc<EntityCall>),
}

impl JoinFetch {
    /// The fetch's selections as one item's copy would read without a prefix, for plans.
    pub(crate) fn selections(&self) -> String {
        let mut out = String::new();
        for p in &self.pieces {
            p.write("", &mut out);
            out.push(' ');
        }
        out.truncate(out.trim_end().len());
        out
    }
}

struct ExportSite {
    variable: String,
    object_path: Vec<ScopeStep>,
    key: String,
    ty: Type,
    leaf: bool,
    owner: Option<usize>,
    span: Option<SourceSpan>,
}

struct JoinSite<'d> {
    scope: Vec<ScopeStep>,
    scope_filter: Option<TypeFilter>,
    key: String,
    sets: Vec<&'d executable::SelectionSet>,
    owner: Option<usize>,
    span: Option<SourceSpan>,
}

pub(crate) struct Analysis {
    pub(crate) joins: Vec<JoinPlan>,
    pub(crate) waves: Vec<Vec<usize>>,
    /// Internal variables that `@export`s fill (the others are left to policy plugins).
    pub(crate) exported: HashSet<String>,
}

struct Walker<'d> {
    supergraph: &'d Supergraph,
    document: &'d ExecutableDocument,
    exports: Vec<ExportSite>,
    joins: Vec<JoinSite<'d>>,
}

fn keys(steps: &[ScopeStep]) -> Vec<&str> {
    steps.iter().map(|s| s.key.as_str()).collect()
}

impl<'d> Walker<'d> {
    fn walk(
        &mut self,
        set: &'d executable::SelectionSet,
        path: &mut Vec<ScopeStep>,
        filter: Option<TypeFilter>,
        owner: Option<usize>,
    ) {
        for sel in &set.selections {
            match sel {
                Selection::Field(f) if f.name == JOIN_FIELD => {
                    let key = f.response_key().to_string();
                    let existing = self
                        .joins
                        .iter()
                        .position(|j| j.key == key && keys(&j.scope) == keys(path));
                    let index = existing.unwrap_or_else(|| {
                        self.joins.push(JoinSite {
                            scope: path.clone(),
                            scope_filter: filter.clone(),
                            key: key.clone(),
                            sets: Vec::new(),
                            owner,
                            span: f.location(),
                        });
                        self.joins.len() - 1
                    });
                    self.joins[index].sets.push(&f.selection_set);
                    path.push(ScopeStep {
                        key,
                        list: false,
                        filter: filter.clone(),
                    });
                    self.walk(&f.selection_set, path, None, Some(index));
                    path.pop();
                }
                Selection::Field(f) => {
                    if let Some(export) = f.directives.get("export") {
                        let variable = match export.specified_argument_by_name("as").map(|v| &**v) {
                            Some(Value::String(s)) => s.clone(),
                            _ => String::new(),
                        };
                        let leaf = matches!(
                            self.supergraph.schema.types.get(f.ty().inner_named_type()),
                            Some(ExtendedType::Scalar(_) | ExtendedType::Enum(_))
                        );
                        let key = f.response_key().to_string();
                        let duplicate = self.exports.iter().any(|e| {
                            e.variable == variable
                                && e.key == key
                                && keys(&e.object_path) == keys(path)
                        });
                        if !duplicate {
                            self.exports.push(ExportSite {
                                variable,
                                object_path: path.clone(),
                                key,
                                ty: f.ty().clone(),
                                leaf,
                                owner,
                                span: export.location(),
                            });
                        }
                    }
                    if !f.selection_set.selections.is_empty() {
                        path.push(ScopeStep {
                            key: f.response_key().to_string(),
                            list: f.ty().is_list(),
                            filter: filter.clone(),
                        });
                        self.walk(&f.selection_set, path, None, owner);
                        path.pop();
                    }
                }
                Selection::InlineFragment(frag) => {
                    let narrowed = self.narrow(&set.ty, frag.type_condition.as_deref(), &filter);
                    self.walk(&frag.selection_set, path, narrowed, owner);
                }
                Selection::FragmentSpread(spread) => {
                    let frag = &self.document.fragments[&spread.fragment_name];
                    let narrowed = self.narrow(&set.ty, Some(frag.type_condition()), &filter);
                    self.walk(&frag.selection_set, path, narrowed, owner);
                }
            }
        }
    }

    /// The filter for selections under a type condition inside an object of static type `ty`.
    fn narrow(
        &self,
        ty: &str,
        condition: Option<&str>,
        filter: &Option<TypeFilter>,
    ) -> Option<TypeFilter> {
        let schema = &self.supergraph.schema;
        let (Some(condition), true) = (
            condition,
            matches!(
                schema.types.get(ty),
                Some(ExtendedType::Interface(_) | ExtendedType::Union(_))
            ),
        ) else {
            return filter.clone();
        };
        let namespace = self.supergraph.split(ty).map(|(ns, _)| ns.to_string())?;
        let mut types = possible_types(schema, condition);
        if let Some(f) = filter {
            types.retain(|t| f.types.contains(t));
        }
        Some(TypeFilter { namespace, types })
    }
}

/// Type compatibility of an exported field with the variable it fills; nullability is checked
/// when the value is known, so a nullable field may feed a non-null variable.
fn compatible(variable: &Type, field: &Type, collect: bool) -> bool {
    let variable = if collect {
        match variable {
            Type::List(inner) | Type::NonNullList(inner) => &**inner,
            _ => return false,
        }
    } else {
        variable
    };
    match (variable, field) {
        (Type::List(v) | Type::NonNullList(v), Type::List(f) | Type::NonNullList(f)) => {
            compatible(v, f, false)
        }
        (Type::Named(v) | Type::NonNullNamed(v), Type::Named(f) | Type::NonNullNamed(f)) => {
            v == f
                || (v == "ID" && (f == "String" || f == "Int"))
                || (v == "String" && f == "ID")
                || (v == "Float" && f == "Int")
        }
        _ => false,
    }
}

/// Analyses the joins of `operation`; `internal` are its `@internal` variables.
pub(crate) fn analyse(
    supergraph: &Supergraph,
    document: &ExecutableDocument,
    operation: &Operation,
    internal: &HashSet<String>,
    policies_fill: bool,
    forms: &BatchForms,
) -> Result<Analysis, Vec<PlanProblem>> {
    let mut problems = Vec::new();
    let at = |span: Option<SourceSpan>| {
        span.and_then(|s| s.line_column_range(&document.sources))
            .map(|r| (r.start.line, r.start.column))
    };
    let mut walker = Walker {
        supergraph,
        document,
        exports: Vec::new(),
        joins: Vec::new(),
    };
    walker.walk(&operation.selection_set, &mut Vec::new(), None, None);
    let Walker {
        exports,
        joins: sites,
        ..
    } = walker;

    for (i, e) in exports.iter().enumerate() {
        let problem = |message: String| PlanProblem {
            location: at(e.span),
            message,
        };
        match operation.variables.iter().find(|v| v.name == e.variable.as_str()) {
            None => problems.push(problem(format!(
                "`@export(as: \"{v}\")` fills a variable the operation does not declare: add `${v}: <type> @internal` to the operation's variables",
                v = e.variable
            ))),
            Some(_) if !internal.contains(&e.variable) => problems.push(problem(format!(
                "variable `${v}` receives an export, so it must be declared `@internal` (clients cannot set internal variables): write `${v}: <type> @internal`",
                v = e.variable
            ))),
            Some(_) => {}
        }
        if !e.leaf {
            problems.push(problem(format!(
                "only scalars, enums and lists of them can be exported; `{}` is of type `{}`",
                e.key, e.ty
            )));
        }
        if exports[..i]
            .iter()
            .any(|o| o.variable == e.variable && keys(&o.object_path) == keys(&e.object_path))
        {
            problems.push(problem(format!(
                "`{}` is exported twice in the same scope; each object may export a name once",
                e.variable
            )));
        }
    }
    for v in &operation.variables {
        if !policies_fill
            && internal.contains(v.name.as_str())
            && !exports.iter().any(|e| e.variable == v.name.as_str())
        {
            problems.push(PlanProblem {
                location: at(v.location()),
                message: format!(
                    "internal variable `${}` is never filled: export a field into it with `@export(as: \"{}\")`, configure a policy plugin that fills it, or drop `@internal`",
                    v.name, v.name
                ),
            });
        }
    }

    let mut joins = Vec::new();
    for (id, site) in sites.iter().enumerate() {
        let position = at(site.span).unwrap_or((1, 1));
        let problem = |message: String| PlanProblem {
            location: Some(position),
            message,
        };
        let renderer = Renderer {
            supergraph,
            document,
            internal,
            join_mode: true,
        };
        let mut by_upstream: IndexMap<String, Vec<RootPiece>> = IndexMap::new();
        for set in &site.sets {
            match renderer.root_pieces(set) {
                Ok(pieces) => {
                    for p in pieces {
                        by_upstream.entry(p.namespace.clone()).or_default().push(p);
                    }
                }
                Err(e) => problems.push(problem(e.to_string())),
            }
        }
        let mut binder = Binder {
            site,
            exports: &exports,
            operation,
            internal,
            id,
            bindings: Vec::new(),
            depends_on: site.owner.into_iter().collect(),
            problems: Vec::new(),
        };
        let mut fetches = Vec::new();
        for (upstream, pieces) in by_upstream {
            let mut aliased = JoinFetch::new(&upstream, Batching::Aliases { unused: Vec::new() });
            for p in &pieces {
                if let Some(lookup) = supergraph.entities.get(p.field.name.as_str()) {
                    match entity_fetch(&renderer, &mut binder, &upstream, p, lookup, internal) {
                        Ok(fetch) => fetches.push(fetch),
                        Err(message) => binder.problems.push(message),
                    }
                    continue;
                }
                let Some(form) = forms.get(&p.field.name) else {
                    binder.add(&mut aliased, p.text.clone(), &p.variables, p);
                    continue;
                };
                let call = batch_call(p, &pieces, form, internal).and_then(|(argument, variable)| {
                    match binder.binding(variable) {
                        Some(b) if binder.bindings[b].collect => Err(format!(
                            "`${variable}` collects many values per item; a batch form takes one key per item"
                        )),
                        _ => Ok(argument),
                    }
                });
                match call {
                    Ok(argument) => {
                        let mut text = Template::default();
                        let mut variables = indexmap::IndexSet::new();
                        renderer.batch_field(&p.field, form, argument, &mut text, &mut variables);
                        let mut fetch = JoinFetch::new(&upstream, Batching::Field(form.clone()));
                        binder.add(&mut fetch, text, &variables, p);
                        fetches.push(fetch);
                    }
                    Err(reason) => {
                        if let Batching::Aliases { unused } = &mut aliased.batching {
                            unused.push((p.response_key.clone(), reason));
                        }
                        binder.add(&mut aliased, p.text.clone(), &p.variables, p);
                    }
                }
            }
            if !aliased.pieces.is_empty() {
                fetches.push(aliased);
            }
        }
        let Binder {
            bindings,
            mut depends_on,
            problems: binding_problems,
            ..
        } = binder;
        problems.extend(binding_problems.into_iter().map(problem));
        depends_on.sort_unstable();
        depends_on.dedup();
        joins.push(JoinPlan {
            id,
            scope: site.scope.clone(),
            scope_filter: site.scope_filter.clone(),
            key: site.key.clone(),
            bindings,
            fetches,
            depends_on,
            wave: 0,
            position,
        });
    }

    let waves = waves(&mut joins, &mut problems);
    if problems.is_empty() {
        let exported = exports.iter().map(|e| e.variable.clone()).collect();
        Ok(Analysis {
            joins,
            waves,
            exported,
        })
    } else {
        Err(problems)
    }
}

impl JoinFetch {
    fn new(upstream: &str, batching: Batching) -> Self {
        JoinFetch {
            upstream: upstream.to_string(),
            pieces: Vec::new(),
            root_keys: Vec::new(),
            fields: Vec::new(),
            client_variables: Vec::new(),
            bindings: Vec::new(),
            batching,
        }
    }
}

/// The fetch of entity lookup `p` inside a join: one `_entities` call for all items.
fn entity_fetch(
    renderer: &Renderer<'_>,
    binder: &mut Binder<'_, '_>,
    upstream: &str,
    p: &RootPiece,
    lookup: &Arc<crate::schema::EntityLookup>,
    internal: &HashSet<String>,
) -> Result<JoinFetch, String> {
    let name = &p.field.name;
    if p.wrapped
        || p.field
            .directives
            .iter()
            .any(|d| d.name == "skip" || d.name == "include")
    {
        return Err(format!(
            "entity lookup `{name}` is under `@skip`/`@include`; inside `_join`, put the condition on a field around the `_join` instead"
        ));
    }
    entities::check_requires(renderer.document, &p.field, lookup)?;
    let mut used = indexmap::IndexSet::new();
    let arguments = entities::argument_sources(&p.field, internal, |v| {
        used.insert(v.to_string());
        match binder.binding(v) {
            Some(b) if binder.bindings[b].collect => Err(format!(
                "`${v}` collects many values per item; an entity lookup takes one value per item for `{name}`"
            )),
            other => Ok(other),
        }
    })?;
    let mut text = Template::default();
    let mut variables = indexmap::IndexSet::new();
    renderer.entity_fragment(&p.field, lookup, &mut text, &mut variables);
    if let Some(v) = variables.iter().find(|v| internal.contains(*v)) {
        return Err(format!(
            "`${v}` is used inside the selection of entity lookup `{name}`; there, only client variables can be used"
        ));
    }
    variables.extend(used);
    let call = EntityCall {
        lookup: lookup.clone(),
        arguments,
        selected: entities::selected_keys(renderer.document, &p.field),
    };
    let mut fetch = JoinFetch::new(upstream, Batching::Entities(Arc::new(call)));
    binder.add(&mut fetch, text, &variables, p);
    Ok(fetch)
}

/// Resolves the internal variables of one join's pieces to bindings, once each.
struct Binder<'a, 'd> {
    site: &'a JoinSite<'d>,
    exports: &'a [ExportSite],
    operation: &'a Operation,
    internal: &'a HashSet<String>,
    id: usize,
    bindings: Vec<Binding>,
    depends_on: Vec<usize>,
    problems: Vec<String>,
}

impl Binder<'_, '_> {
    /// The index of `variable`'s binding, made on first use; `None` (and a problem) when no
    /// export can fill it.
    fn binding(&mut self, variable: &str) -> Option<usize> {
        if let Some(i) = self.bindings.iter().position(|b| b.variable == variable) {
            return Some(i);
        }
        match bind(
            self.site,
            variable,
            self.exports,
            self.operation,
            &mut self.depends_on,
            self.id,
        ) {
            Ok(b) => {
                self.bindings.push(b);
                Some(self.bindings.len() - 1)
            }
            Err(message) => {
                if !self.problems.contains(&message) {
                    self.problems.push(message);
                }
                None
            }
        }
    }

    /// Adds one rendered root field to `fetch`.
    fn add(
        &mut self,
        fetch: &mut JoinFetch,
        text: Template,
        variables: &indexmap::IndexSet<String>,
        piece: &RootPiece,
    ) {
        let response_key = piece.response_key.as_str();
        let field = piece.upstream_field();
        if !fetch.fields.contains(&field) {
            fetch.fields.push(field);
        }
        for v in variables {
            if !self.internal.contains(v) {
                if !fetch.client_variables.contains(v) {
                    fetch.client_variables.push(v.clone());
                }
                continue;
            }
            if let Some(index) = self.binding(v) {
                if !fetch.bindings.contains(&index) {
                    fetch.bindings.push(index);
                }
            }
        }
        if !fetch.root_keys.iter().any(|k| k == response_key) {
            fetch.root_keys.push(response_key.to_string());
        }
        fetch.pieces.push(text);
    }
}

/// Whether root field `p` of a join can be sent as a call of its batch form: the argument
/// that takes the item's key and the key's variable, or why not.
fn batch_call<'p>(
    p: &'p RootPiece,
    pieces: &[RootPiece],
    form: &BatchForm,
    internal: &HashSet<String>,
) -> Result<(&'p str, &'p str), String> {
    if p.wrapped
        || p.field
            .directives
            .iter()
            .any(|d| d.name == "skip" || d.name == "include")
    {
        return Err("it is selected under `@skip`/`@include`".into());
    }
    if pieces
        .iter()
        .filter(|o| o.response_key == p.response_key)
        .count()
        > 1
    {
        return Err(format!("`{}` is selected more than once", p.response_key));
    }
    let mut key = None;
    for arg in &p.field.arguments {
        if let Value::Variable(v) = &*arg.value {
            if internal.contains(v.as_str()) {
                if key.is_some() {
                    return Err(
                        "more than one argument takes an exported value; a batch form takes one key"
                            .into(),
                    );
                }
                key = Some((arg.name.as_str(), v.as_str()));
                continue;
            }
        }
        let mut used = indexmap::IndexSet::new();
        collect_variables(&arg.value, &mut used);
        if used.iter().any(|v| internal.contains(v)) {
            return Err(format!(
                "argument `{}` holds an exported value inside a larger value",
                arg.name
            ));
        }
        if !form
            .other_arguments
            .iter()
            .any(|(n, _)| n == arg.name.as_str())
        {
            return Err(format!("`{}` has no argument `{}`", form.field, arg.name));
        }
    }
    let Some(key) = key else {
        return Err("no argument takes an exported value".into());
    };
    for (name, required) in &form.other_arguments {
        if *required && !p.field.arguments.iter().any(|a| a.name == name.as_str()) {
            return Err(format!(
                "`{}` requires argument `{name}`, which this call does not give",
                form.field
            ));
        }
    }
    Ok(key)
}

/// Finds the export that fills `variable` for the join at `site`: the nearest one whose
/// object shares the longest path prefix with the join's scope.
fn bind(
    site: &JoinSite<'_>,
    variable: &str,
    exports: &[ExportSite],
    operation: &Operation,
    depends_on: &mut Vec<usize>,
    id: usize,
) -> Result<Binding, String> {
    let scope_keys = keys(&site.scope);
    let mut join_path = scope_keys.clone();
    join_path.push(&site.key);
    let mut best: Vec<(usize, &ExportSite)> = Vec::new();
    for e in exports.iter().filter(|e| e.variable == variable) {
        let e_keys = keys(&e.object_path);
        if e_keys.starts_with(&join_path) {
            return Err(format!(
                "cycle: this join reads `${variable}`, which is exported inside the join itself (by `{}`)",
                e.key
            ));
        }
        let d = scope_keys
            .iter()
            .zip(&e_keys)
            .take_while(|(a, b)| a == b)
            .count();
        match best.first() {
            Some((bd, _)) if *bd > d => {}
            Some((bd, _)) if *bd == d => best.push((d, e)),
            _ => best = vec![(d, e)],
        }
    }
    let (level, export) = match best.as_slice() {
        [] => {
            return Err(format!(
                "this join reads `${variable}`, but no field in a scope it can see exports it: add `@export(as: \"{variable}\")` to a field of this object or of an object around it"
            ))
        }
        [(d, e)] => (*d, *e),
        _ => {
            return Err(format!(
                "this join reads `${variable}`, which several fields export at the same distance; export it once"
            ))
        }
    };
    if let Some(owner) = export.owner {
        if owner == id {
            return Err(format!(
                "cycle: this join reads `${variable}`, which its own results export"
            ));
        }
        depends_on.push(owner);
    }
    let rest = &export.object_path[level..];
    let collect = rest.iter().any(|s| s.list);
    let definition = operation
        .variables
        .iter()
        .find(|v| v.name == variable)
        .expect("internal variables are declared");
    if !compatible(&definition.ty, &export.ty, collect) {
        let hint = if collect {
            " (the export sits inside a list, so its values are collected: the variable must be a list)"
        } else {
            ""
        };
        return Err(format!(
            "`{}` of type `{}` cannot fill `${variable}` of type `{}`{hint}",
            export.key, export.ty, definition.ty
        ));
    }
    let mut path: Vec<String> = rest.iter().map(|s| s.key.clone()).collect();
    path.push(export.key.clone());
    let source = display_path(&export.object_path, &export.key);
    Ok(Binding {
        variable: variable.to_string(),
        level,
        path,
        collect,
        non_null: definition.ty.is_non_null(),
        source,
    })
}

/// A path for people: `countries[].capital` (lists marked with `[]`).
pub(crate) fn display_path(steps: &[ScopeStep], last: &str) -> String {
    let mut parts: Vec<String> = steps
        .iter()
        .map(|s| {
            if s.list {
                format!("{}[]", s.key)
            } else {
                s.key.clone()
            }
        })
        .collect();
    parts.push(last.to_string());
    parts.join(".")
}

/// Orders joins into waves by their dependencies; reports cycles.
fn waves(joins: &mut [JoinPlan], problems: &mut Vec<PlanProblem>) -> Vec<Vec<usize>> {
    fn depth(
        i: usize,
        joins: &[JoinPlan],
        memo: &mut [Option<usize>],
        visiting: &mut Vec<usize>,
    ) -> Option<usize> {
        if let Some(d) = memo[i] {
            return Some(d);
        }
        if visiting.contains(&i) {
            return None;
        }
        visiting.push(i);
        let mut d = 1;
        for &dep in &joins[i].depends_on {
            d = d.max(depth(dep, joins, memo, visiting)? + 1);
        }
        visiting.pop();
        memo[i] = Some(d);
        Some(d)
    }
    let mut memo = vec![None; joins.len()];
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for i in 0..joins.len() {
        match depth(i, joins, &mut memo, &mut Vec::new()) {
            Some(d) => {
                joins[i].wave = d;
                if waves.len() < d {
                    waves.resize(d, Vec::new());
                }
                waves[d - 1].push(i);
            }
            None => problems.push(PlanProblem {
                location: Some(joins[i].position),
                message: "cycle: this join depends, through exports, on its own results".into(),
            }),
        }
    }
    waves
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_mark_item_prefixes_and_variables() {
        let mut t = Template::default();
        t.key_prefix();
        t.push_str("w: city(name: $");
        t.variable("c");
        t.push_str(", x: $y) { a }");
        let mut out = String::new();
        t.write("_3_", &mut out);
        assert_eq!(out, "_3_w: city(name: $_3_c, x: $y) { a }");
    }

    #[test]
    fn compatibility_follows_input_coercion() {
        let named = |n: &str| Type::Named(apollo_compiler::Name::new(n).unwrap());
        assert!(compatible(&named("ID").non_null(), &named("String"), false));
        assert!(compatible(&named("Float"), &named("Int"), false));
        assert!(!compatible(&named("Int"), &named("String"), false));
        assert!(compatible(&named("ID").list(), &named("String"), true));
        assert!(!compatible(&named("ID"), &named("String"), true));
        assert!(compatible(
            &named("String").list(),
            &named("String").list(),
            false
        ));
    }
}
