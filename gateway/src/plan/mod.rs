//! Compiling a registered operation into a plan, once, before any request: the upstream
//! fetches with their pre-rendered documents, and the response shape.

pub(crate) mod batch;
pub(crate) mod cost;
pub(crate) mod entities;
pub(crate) mod join;
mod render;
pub(crate) mod shape;
pub(crate) mod template;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use apollo_compiler::executable::{Operation, OperationType};
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Node};
use indexmap::IndexMap;

use crate::schema::Supergraph;
use batch::BatchForms;
use cost::{Cost, CostModel};
use join::{Batching, JoinPlan};
use render::{Renderer, RootPiece};
use shape::{SelectionSet, ShapeBuilder};

/// Everything needed to execute one operation of a registered document.
#[derive(Debug)]
pub struct Plan {
    /// The operation's name, if any.
    pub(crate) name: Option<String>,
    /// Query or mutation.
    pub(crate) kind: OperationType,
    /// The validated document the operation belongs to (variable coercion reads it).
    pub(crate) document: Arc<Valid<ExecutableDocument>>,
    /// The root selection set as the client asked for it.
    pub(crate) root: SelectionSet,
    /// Stages run one after the other; the fetches of one stage run in parallel. A query has
    /// one stage; a mutation has one per run of consecutive root fields of one upstream, so
    /// that root fields run in document order.
    pub stages: Vec<Vec<Fetch>>,
    /// The operation's `_join`s.
    pub(crate) joins: Vec<JoinPlan>,
    /// Joins by wave: a wave runs after the root stages and the waves before it; the joins of
    /// one wave run together, one request per upstream.
    pub waves: Vec<Vec<usize>>,
    /// The operation without its `@internal` variables: what client variables are coerced against.
    pub(crate) client_operation: Node<Operation>,
    /// The operation without the variables exports fill: what variables are coerced against
    /// once policy plugins have filled theirs.
    pub(crate) policy_operation: Node<Operation>,
    /// Names of the `@internal` variables.
    pub(crate) internal: Vec<String>,
    /// Internal variables filled by `@export`s; the other internal variables are filled by
    /// policy plugins before execution.
    pub(crate) exported: Vec<String>,
    /// Variable types as upstreams see them (namespace prefixes removed), by name.
    pub(crate) variable_types: HashMap<String, String>,
    /// Whether the operation reads the composed schema (`__schema`, `__type`): it is answered
    /// by the gateway from that schema, and asks no upstream.
    pub(crate) introspection: bool,
    /// What one execution costs at most (depth, upstream requests, fields).
    pub(crate) cost: Cost,
    /// Most objects one `_join` may fan out to in one request: the operation's own
    /// `[operations] max_join_fanout`, else `server.max_join_fanout`.
    pub(crate) max_join_fanout: usize,
}

/// A reason an operation cannot be planned, at `line:column` of its document when known.
#[derive(Debug, Clone)]
pub(crate) struct PlanProblem {
    /// `(line, column)` in the document.
    pub(crate) location: Option<(usize, usize)>,
    /// What is wrong and what to do.
    pub(crate) message: String,
}

impl fmt::Display for PlanProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location {
            Some((line, column)) => write!(f, "{line}:{column}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// One request to one upstream.
#[derive(Debug)]
pub struct Fetch {
    /// The upstream's namespace.
    pub(crate) upstream: String,
    /// The upstream document, prefixes removed.
    pub(crate) document: String,
    /// The JSON request body up to the variables: `{"operationName":…,"query":…,"variables":`.
    pub(crate) body_prefix: String,
    /// Variables the document declares (names without `$`).
    pub(crate) variables: Vec<String>,
    /// Response keys of the root fields this fetch resolves.
    pub(crate) root_keys: Vec<String>,
    /// The root fields, as the upstream names them (for caching rules).
    pub(crate) fields: Vec<String>,
    /// Response keys of the root fields that are entity lookups: sent as `_entities` with one
    /// representation, their answer is a list of one.
    pub(crate) entities: Vec<String>,
}

impl Plan {
    /// Compiles `operation` of `document` and measures its cost with `costs`. With
    /// `policies_fill`, internal variables that no `@export` fills are left to policy plugins
    /// instead of being an error.
    pub(crate) fn build(
        supergraph: &Supergraph,
        document: Arc<Valid<ExecutableDocument>>,
        operation: &Node<Operation>,
        policies_fill: bool,
        forms: &BatchForms,
        costs: &CostModel,
    ) -> Result<Self, Vec<PlanProblem>> {
        let mut plan = Self::compile(supergraph, document, operation, policies_fill, forms)?;
        plan.max_join_fanout = costs.fanout(plan.name.as_deref());
        plan.cost = Cost {
            upstream_requests: plan.max_upstream_requests(),
            ..cost::measure(costs, &plan.document, operation)
        };
        Ok(plan)
    }

    fn compile(
        supergraph: &Supergraph,
        document: Arc<Valid<ExecutableDocument>>,
        operation: &Node<Operation>,
        policies_fill: bool,
        forms: &BatchForms,
    ) -> Result<Self, Vec<PlanProblem>> {
        let internal: HashSet<String> = operation
            .variables
            .iter()
            .filter(|v| v.directives.has("internal"))
            .map(|v| v.name.to_string())
            .collect();
        let op_location = operation
            .location()
            .and_then(|s| s.line_column_range(&document.sources))
            .map(|r| (r.start.line, r.start.column));
        if let Some(plan) = Self::introspection(&document, operation, &internal, op_location)? {
            return Ok(plan);
        }
        let renderer = Renderer {
            supergraph,
            document: &document,
            internal: &internal,
            join_mode: false,
        };
        let pieces = renderer
            .root_pieces(&operation.selection_set)
            .map_err(|e| {
                vec![PlanProblem {
                    location: op_location,
                    message: e.to_string(),
                }]
            })?;
        let analysis = join::analyse(
            supergraph,
            &document,
            operation,
            &internal,
            policies_fill,
            forms,
        )?;
        let mut problems = Vec::new();
        for p in &pieces {
            if let Some(lookup) = supergraph.entities.get(p.field.name.as_str()) {
                if let Err(message) = entities::check_requires(&document, &p.field, lookup) {
                    problems.push(PlanProblem {
                        location: p
                            .field
                            .location()
                            .and_then(|s| s.line_column_range(&document.sources))
                            .map(|r| (r.start.line, r.start.column)),
                        message,
                    });
                }
            }
            for v in p
                .variables
                .iter()
                .filter(|v| analysis.exported.contains(*v))
            {
                problems.push(PlanProblem {
                    location: op_location,
                    message: format!(
                        "internal variable `${v}` is used by `{}` outside any `_join`, where no export can have filled it yet",
                        p.response_key
                    ),
                });
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let groups = group(pieces, operation.operation_type);
        let op_name = operation.name.as_ref().map(|n| n.to_string());
        let keyword = match operation.operation_type {
            OperationType::Mutation => "mutation",
            _ => "query",
        };
        let stages = groups
            .into_iter()
            .map(|stage| {
                stage
                    .into_iter()
                    .map(|(ns, pieces)| {
                        let mut variables: Vec<String> = Vec::new();
                        let mut root_keys: Vec<String> = Vec::new();
                        let mut fields: Vec<String> = Vec::new();
                        let mut entity_keys: Vec<String> = Vec::new();
                        for p in &pieces {
                            if supergraph.entities.contains_key(p.field.name.as_str())
                                && !entity_keys.contains(&p.response_key)
                            {
                                entity_keys.push(p.response_key.clone());
                            }
                            let field = p.upstream_field();
                            if !fields.contains(&field) {
                                fields.push(field);
                            }
                            for v in &p.variables {
                                if !variables.contains(v) {
                                    variables.push(v.clone());
                                }
                            }
                            if !root_keys.contains(&p.response_key) {
                                root_keys.push(p.response_key.clone());
                            }
                        }
                        let mut doc = String::from(keyword);
                        if let Some(name) = &op_name {
                            doc.push(' ');
                            doc.push_str(name);
                        }
                        if !variables.is_empty() {
                            let defs: Vec<String> = variables
                                .iter()
                                .map(|v| {
                                    let def = operation
                                        .variables
                                        .iter()
                                        .find(|d| d.name == v.as_str())
                                        .expect("validation guarantees variables are defined");
                                    format!("${v}: {}", renderer.variable_type(&def.ty))
                                })
                                .collect();
                            doc.push('(');
                            doc.push_str(&defs.join(", "));
                            doc.push(')');
                        }
                        doc.push_str(" { ");
                        for p in &pieces {
                            p.text.write("", &mut doc);
                            doc.push(' ');
                        }
                        doc.push('}');
                        let body_prefix = format!(
                            "{{\"operationName\":{},\"query\":{},\"variables\":",
                            serde_json::to_string(&op_name).expect("strings serialize"),
                            serde_json::to_string(&doc).expect("strings serialize"),
                        );
                        Fetch {
                            upstream: ns,
                            document: doc,
                            body_prefix,
                            variables,
                            root_keys,
                            fields,
                            entities: entity_keys,
                        }
                    })
                    .collect()
            })
            .collect();
        let root = ShapeBuilder {
            supergraph,
            document: &document,
        }
        .selection_set(&operation.selection_set);
        let variable_types = operation
            .variables
            .iter()
            .map(|v| (v.name.to_string(), renderer.variable_type(&v.ty)))
            .collect();
        let mut client_operation = Operation::clone(operation);
        client_operation
            .variables
            .retain(|v| !internal.contains(v.name.as_str()));
        let mut policy_operation = Operation::clone(operation);
        policy_operation
            .variables
            .retain(|v| !analysis.exported.contains(v.name.as_str()));
        let mut internal: Vec<String> = internal.into_iter().collect();
        internal.sort();
        let mut exported: Vec<String> = analysis.exported.into_iter().collect();
        exported.sort();
        Ok(Plan {
            name: op_name,
            kind: operation.operation_type,
            root,
            stages,
            joins: analysis.joins,
            waves: analysis.waves,
            client_operation: Node::new(client_operation),
            policy_operation: Node::new(policy_operation),
            internal,
            exported,
            variable_types,
            document,
            introspection: false,
            cost: Cost::default(),
            max_join_fanout: cost::DEFAULT_FANOUT,
        })
    }

    /// The number of upstream requests one execution makes at most: one per root fetch, and
    /// one per upstream and join wave, however many items the joins fan out to.
    pub fn max_upstream_requests(&self) -> usize {
        let root: usize = self.stages.iter().map(Vec::len).sum();
        let joins: usize = self
            .waves
            .iter()
            .map(|wave| {
                let mut upstreams: Vec<&str> = wave
                    .iter()
                    .flat_map(|&j| self.joins[j].fetches.iter().map(|f| f.upstream.as_str()))
                    .collect();
                upstreams.sort_unstable();
                upstreams.dedup();
                upstreams.len()
            })
            .sum();
        root + joins
    }
}

/// Groups root pieces into stages of per-namespace fetches. Queries: one stage, one fetch per
/// namespace. Mutations: consecutive pieces of one namespace share a fetch; a repeated response
/// key joins the fetch of its first occurrence (the fields merge and must run once).
fn group(pieces: Vec<RootPiece>, kind: OperationType) -> Vec<IndexMap<String, Vec<RootPiece>>> {
    let mut stages: Vec<IndexMap<String, Vec<RootPiece>>> = Vec::new();
    for piece in pieces {
        if kind != OperationType::Mutation {
            if stages.is_empty() {
                stages.push(IndexMap::new());
            }
            stages[0]
                .entry(piece.namespace.clone())
                .or_default()
                .push(piece);
            continue;
        }
        let earlier = stages.iter().position(|s| {
            s.values()
                .flatten()
                .any(|p| p.response_key == piece.response_key)
        });
        let index = match earlier {
            Some(i) => i,
            None => match stages.last() {
                Some(last) if last.contains_key(&piece.namespace) => stages.len() - 1,
                _ => {
                    stages.push(IndexMap::new());
                    stages.len() - 1
                }
            },
        };
        stages[index]
            .entry(piece.namespace.clone())
            .or_default()
            .push(piece);
    }
    stages
}

impl JoinPlan {
    /// The join's position in the response, e.g. `countries_countries[].weather`.
    pub(crate) fn path(&self) -> String {
        join::display_path(&self.scope, &self.key)
    }

    fn per_item(&self) -> bool {
        self.scope.iter().any(|s| s.list)
    }
}

impl Plan {
    /// The plan as JSON, for tools (`joinery plan --json`).
    pub fn to_json(&self) -> serde_json::Value {
        let kind = match self.kind {
            OperationType::Mutation => "mutation",
            _ => "query",
        };
        serde_json::json!({
            "operation": self.name,
            "kind": kind,
            "maxUpstreamRequests": self.max_upstream_requests(),
            "introspection": self.introspection,
            "cost": {
                "depth": self.cost.depth,
                "upstreamRequests": self.cost.upstream_requests,
                "fields": self.cost.fields,
                "lists": self.cost.lists.iter().map(|l| serde_json::json!({
                    "path": l.path,
                    "size": l.size,
                    "from": l.source.to_string(),
                })).collect::<Vec<_>>(),
            },
            "internalVariables": self.internal,
            "stages": self.stages.iter().map(|stage| stage.iter().map(|f| serde_json::json!({
                "upstream": f.upstream,
                "rootFields": f.root_keys,
                "variables": f.variables,
                "document": f.document,
            })).collect::<Vec<_>>()).collect::<Vec<_>>(),
            "waves": self.waves,
            "joins": self.joins.iter().map(|j| serde_json::json!({
                "id": j.id,
                "path": j.path(),
                "wave": j.wave,
                "dependsOn": j.depends_on,
                "perItem": j.per_item(),
                "bindings": j.bindings.iter().map(|b| serde_json::json!({
                    "variable": b.variable,
                    "from": b.source,
                    "collected": b.collect,
                })).collect::<Vec<_>>(),
                "fetches": j.fetches.iter().map(|f| serde_json::json!({
                    "upstream": f.upstream,
                    "rootFields": f.root_keys,
                    "clientVariables": f.client_variables,
                    "selections": f.selections(),
                    "batching": match &f.batching {
                        Batching::Aliases { unused } => serde_json::json!({
                            "kind": "aliases",
                            "batchFormsNotUsed": unused.iter().map(|(field, reason)| serde_json::json!({
                                "field": field,
                                "reason": reason,
                            })).collect::<Vec<_>>(),
                        }),
                        Batching::Field(form) => serde_json::json!({
                            "kind": "field",
                            "field": form.field,
                            "argument": form.argument,
                            "key": form.key,
                        }),
                        Batching::Entities(call) => serde_json::json!({
                            "kind": "entities",
                            "entity": call.lookup.type_name,
                            "key": call.lookup.key,
                        }),
                    },
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

impl Plan {
    /// The plan of an operation that reads the schema (`__schema`, `__type`, with `__typename`
    /// at most beside them); `None` for an operation that does not. One that mixes them with
    /// upstream fields is refused: the two answers come from different places.
    fn introspection(
        document: &Arc<Valid<ExecutableDocument>>,
        operation: &Node<Operation>,
        internal: &HashSet<String>,
        location: Option<(usize, usize)>,
    ) -> Result<Option<Self>, Vec<PlanProblem>> {
        let mut schema_fields = false;
        let mut concrete = None;
        for field in operation.root_fields(document) {
            match field.name.as_str() {
                "__schema" | "__type" => schema_fields = true,
                "__typename" => {}
                other => concrete = concrete.or(Some(other.to_string())),
            }
        }
        if !schema_fields {
            return Ok(None);
        }
        if let Some(field) = concrete {
            return Err(vec![PlanProblem {
                location,
                message: format!(
                    "an operation that reads `__schema` or `__type` can select nothing else at its root (it selects `{field}`): the gateway answers it from the composed schema; put `{field}` in an operation of its own"
                ),
            }]);
        }
        let mut client_operation = Operation::clone(operation);
        client_operation
            .variables
            .retain(|v| !internal.contains(v.name.as_str()));
        let mut internal: Vec<String> = internal.iter().cloned().collect();
        internal.sort();
        Ok(Some(Plan {
            name: operation.name.as_ref().map(|n| n.to_string()),
            kind: operation.operation_type,
            document: document.clone(),
            root: SelectionSet {
                items: Vec::new(),
                plain: true,
            },
            stages: Vec::new(),
            joins: Vec::new(),
            waves: Vec::new(),
            policy_operation: Node::new(client_operation.clone()),
            client_operation: Node::new(client_operation),
            internal,
            exported: Vec::new(),
            variable_types: HashMap::new(),
            introspection: true,
            cost: Cost::default(),
            max_join_fanout: cost::DEFAULT_FANOUT,
        }))
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            OperationType::Mutation => "mutation",
            _ => "query",
        };
        writeln!(
            f,
            "{kind} {} — at most {} upstream request(s), whatever the number of list items",
            self.name.as_deref().unwrap_or("<anonymous>"),
            self.max_upstream_requests()
        )?;
        writeln!(
            f,
            "cost: depth {}, {} upstream request(s), at most {} field(s) resolved",
            self.cost.depth, self.cost.upstream_requests, self.cost.fields
        )?;
        for list in &self.cost.lists {
            writeln!(
                f,
                "  {} counted as {} item(s) ({})",
                list.path, list.size, list.source
            )?;
        }
        if self.introspection {
            writeln!(f, "└─ answered by the gateway from the composed schema")?;
        }
        let stages = self.stages.len();
        for (i, stage) in self.stages.iter().enumerate() {
            let last = i + 1 == stages && self.waves.is_empty();
            let (branch, cont) = if last {
                ("└─", "   ")
            } else {
                ("├─", "│  ")
            };
            let parallel = if stage.len() > 1 {
                ", fetches in parallel"
            } else {
                ""
            };
            writeln!(f, "{branch} stage {}{parallel}", i + 1)?;
            for fetch in stage {
                writeln!(
                    f,
                    "{cont}  fetch from `{}` → {}",
                    fetch.upstream,
                    fetch.root_keys.join(", ")
                )?;
                writeln!(f, "{cont}    {}", fetch.document)?;
            }
        }
        for (w, wave) in self.waves.iter().enumerate() {
            let last = w + 1 == self.waves.len();
            let (branch, cont) = if last {
                ("└─", "   ")
            } else {
                ("├─", "│  ")
            };
            writeln!(
                f,
                "{branch} join wave {} (after {})",
                w + 1,
                if w == 0 {
                    "the root fetches".to_string()
                } else {
                    format!("wave {w}")
                }
            )?;
            for &j in wave {
                let join = &self.joins[j];
                let after = if join.depends_on.is_empty() {
                    String::new()
                } else {
                    let deps: Vec<String> =
                        join.depends_on.iter().map(|d| format!("#{d}")).collect();
                    format!(", needs join {}", deps.join(", "))
                };
                let scope = if join.per_item() {
                    "once per list item"
                } else {
                    "once"
                };
                writeln!(
                    f,
                    "{cont}  join #{} at {} ({scope}{after})",
                    join.id,
                    join.path()
                )?;
                for b in &join.bindings {
                    let how = if b.collect {
                        "all values collected into a list"
                    } else {
                        "the item's own value"
                    };
                    writeln!(f, "{cont}    ${} ← {} ({how})", b.variable, b.source)?;
                }
                for fetch in &join.fetches {
                    let batched = match (&fetch.batching, join.per_item()) {
                        (Batching::Field(form), true) => format!(
                            "one call of `{}` with every distinct key in `{}`, results matched by `{}`",
                            form.field, form.argument, form.key
                        ),
                        (Batching::Field(form), false) => format!(
                            "one call of `{}`, the result matched by `{}`",
                            form.field, form.key
                        ),
                        (Batching::Aliases { .. }, true) => {
                            "one request for all items, one aliased copy per distinct set of values"
                                .to_string()
                        }
                        (Batching::Aliases { .. }, false) => "one request".to_string(),
                        (Batching::Entities(call), true) => format!(
                            "one `_entities` call with every distinct `{}` representation, results matched by position",
                            call.lookup.type_name
                        ),
                        (Batching::Entities(call), false) => format!(
                            "one `_entities` call for the `{}`",
                            call.lookup.type_name
                        ),
                    };
                    writeln!(
                        f,
                        "{cont}    fetch from `{}` → {} ({batched})",
                        fetch.upstream,
                        fetch.root_keys.join(", ")
                    )?;
                    writeln!(f, "{cont}      {}", fetch.selections())?;
                    if let Batching::Aliases { unused } = &fetch.batching {
                        for (field, reason) in unused {
                            writeln!(
                                f,
                                "{cont}      (batch form of `{field}` not used: {reason})"
                            )?;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}
