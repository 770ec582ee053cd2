//! A Joinery project end to end: configuration → schemas → operations → manifest (build),
//! and manifest → running gateway (serve).

use std::collections::HashMap;
use std::sync::Arc;

use apollo_compiler::validation::Valid;
use apollo_compiler::Schema;

use crate::config::{Config, Transport};
use crate::diagnostic::{Diagnostic, Diagnostics, FileError};
use crate::operations::{self, Manifest, Registered};
use crate::plan::batch::BatchForms;
use crate::plan::cost::CostModel;
use crate::plan::{Plan, PlanProblem};
use crate::plugin::{LoadError, Loaded, PluginError, Plugins};
use crate::schema::{self, SchemaError, Supergraph, UpstreamSdl};
use crate::server::{Entry, Gateway, Registry};
use crate::upstream::Upstreams;

/// Why a project could not be built or served; each message says where.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// Upstream schemas could not be loaded: one line per upstream.
    #[error("{}", lines(.0))]
    Schemas(Vec<SchemaError>),
    /// The upstream schemas do not compose.
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// Plugins could not be loaded: one line per problem.
    #[error("{}", lines(.0))]
    Plugins(Vec<LoadError>),
    /// A plugin could not start, or could not give its schema.
    #[error(transparent)]
    Plugin(#[from] PluginError),
    /// The operations folder or a manifest to import could not be read.
    #[error("{place}: {source}")]
    Read {
        /// What was read, and where the configuration names it.
        place: String,
        /// Why it could not be read.
        source: FileError,
    },
    /// An operation file could not be read.
    #[error(transparent)]
    Operations(FileError),
    /// Operations, imports or settings are invalid: every problem with its position.
    #[error("{}\n{} problem(s) found; nothing was written", .0, .0 .0.len())]
    Invalid(Diagnostics),
    /// The manifest could not be read or written.
    #[error(transparent)]
    Manifest(#[from] crate::operations::ManifestError),
    /// The manifest cannot be served with this configuration.
    #[error(transparent)]
    Registry(#[from] crate::server::RegistryError),
    /// A resolver plugin gives another schema than the one the manifest was built with.
    #[error("upstream `{namespace}`: resolver plugin `{plugin}` gives another schema than the manifest was built with; run `joinery build`")]
    StaleSchema {
        /// The upstream.
        namespace: String,
        /// Its plugin.
        plugin: String,
    },
}

fn lines<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// What `joinery build` produced.
#[derive(Debug)]
pub struct BuildOutput {
    /// The manifest (already written unless the build was a check).
    pub manifest: Manifest,
    /// The composed schema and every operation's plan: what serving the manifest would
    /// make again, for `gateway_built` to serve in the same process.
    pub registry: Registry,
}

/// Loads every upstream schema (introspecting live upstreams where configured, asking
/// resolver plugins for theirs), in configuration order.
async fn load_schemas(
    config: &Config,
    plugins: &Plugins,
) -> Result<Vec<UpstreamSdl>, ProjectError> {
    let loads = config.upstreams.values().map(|u| schema::load(u, plugins));
    let results = futures::future::join_all(loads).await;
    let mut sdls = Vec::new();
    let mut failures = Vec::new();
    for r in results {
        match r {
            Ok(s) => sdls.push(s),
            Err(e) => failures.push(e),
        }
    }
    if !failures.is_empty() {
        return Err(ProjectError::Schemas(failures));
    }
    Ok(sdls)
}

/// Composes the supergraph from the configured upstreams.
pub async fn supergraph(config: &Config) -> Result<Supergraph, ProjectError> {
    let plugins = load_plugins(config)?;
    Ok(schema::compose(load_schemas(config, &plugins).await?)?)
}

/// Validates and plans every operation (folder and imports), reporting every problem with
/// its position; writes the manifest unless `write` is false. Loads every plugin, since
/// resolver plugins supply their schemas.
pub async fn build(config: &Config, write: bool) -> Result<BuildOutput, ProjectError> {
    build_with(config, &load_plugins(config)?, write).await
}

/// [`build`] with plugins already loaded.
pub async fn build_with(
    config: &Config,
    plugins: &Plugins,
    write: bool,
) -> Result<BuildOutput, ProjectError> {
    let sdls = load_schemas(config, plugins).await?;
    let supergraph = schema::compose(sdls.clone())?;
    let mut sources = operations::read_dir(&config.operations.dir).map_err(|e| match e {
        FileError::Read { ref path, .. } if *path == config.operations.dir => {
            let place = match &config.operations.dir_written {
                Some(written) => format!("{written}: the operations folder"),
                None => format!(
                    "{}: the operations folder (`[operations] dir`, by default \"operations\")",
                    config.path.display()
                ),
            };
            ProjectError::Read { place, source: e }
        }
        e => ProjectError::Operations(e),
    })?;
    let mut diags = Diagnostics::default();
    for (path, written) in &config.operations.import {
        match operations::import_manifest(path) {
            Ok((s, problems)) => {
                sources.extend(s);
                diags.0.extend(problems.0);
            }
            Err(FileError::Invalid(d)) => diags.0.extend(d.0),
            Err(e) => {
                return Err(ProjectError::Read {
                    place: format!("{written}: a manifest to import"),
                    source: e,
                })
            }
        }
    }
    let (registered, problems) = operations::register(&supergraph, sources);
    diags.0.extend(problems.0);
    let forms = match BatchForms::resolve(&supergraph, config.upstreams.values()) {
        Ok(forms) => forms,
        Err(problems) => {
            diags.0.extend(problems);
            BatchForms::default()
        }
    };
    let costs = match CostModel::resolve(&supergraph, config) {
        Ok(costs) => costs,
        Err(problems) => {
            diags.0.extend(problems);
            CostModel::from_schema(&supergraph)
        }
    };
    let entries = plan_all(&supergraph, &registered, config, &forms, &costs, &mut diags);
    for (name, (_, position)) in &config.operations.max_join_fanout {
        let known = registered
            .iter()
            .flat_map(|r| r.document.operations.iter())
            .any(|op| op.name.as_ref().is_some_and(|n| n == name.as_str()));
        if !known {
            diags.0.push(Diagnostic {
                position: position.clone(),
                message: format!(
                    "`max_join_fanout` names `{name}`, but no registered operation has that name"
                ),
            });
        }
    }
    // The parser can report one syntax error twice at the same place.
    diags.0.dedup();
    if !diags.0.is_empty() {
        return Err(ProjectError::Invalid(diags));
    }

    let manifest = Manifest::new(sdls, &registered);
    if write {
        manifest.write(&config.operations.manifest)?;
    }
    Ok(BuildOutput {
        manifest,
        registry: Registry::new(supergraph, entries),
    })
}

/// Plans every operation and checks its cost against `[operations.budget]`, a problem
/// reported at the operation's position; the plans of each document, to serve.
fn plan_all(
    supergraph: &Supergraph,
    registered: &[Registered],
    config: &Config,
    forms: &BatchForms,
    costs: &CostModel,
    diags: &mut Diagnostics,
) -> Vec<Entry> {
    let mut entries = Vec::new();
    for r in registered {
        let mut plans = Vec::new();
        for op in r.document.operations.iter() {
            let problems = match Plan::build(
                supergraph,
                r.document.clone(),
                op,
                config.policies_fill(),
                forms,
                costs,
            ) {
                Err(problems) => problems,
                Ok(plan) => {
                    let problems = over_budget(config, r, op, &plan);
                    plans.push((op.name.as_ref().map(|n| n.to_string()), Arc::new(plan)));
                    problems
                }
            };
            diags
                .0
                .extend(problems.into_iter().map(|p| plan_problem(r, p)));
        }
        entries.push(Entry {
            hash: r.hash.clone(),
            plans,
        });
    }
    entries
}

/// What of `[operations.budget]` the plan of `op` exceeds, at the operation.
fn over_budget(
    config: &Config,
    r: &Registered,
    op: &apollo_compiler::Node<apollo_compiler::executable::Operation>,
    plan: &Plan,
) -> Vec<PlanProblem> {
    let location = op
        .location()
        .and_then(|s| s.line_column_range(&r.document.sources))
        .map(|r| (r.start.line, r.start.column));
    let name = plan.name.as_deref().unwrap_or("<anonymous>");
    config
        .operations
        .budget
        .check(name, &plan.cost)
        .into_iter()
        .map(|message| PlanProblem { location, message })
        .collect()
}

/// A planning problem of a document, where its source says.
fn plan_problem(r: &Registered, problem: PlanProblem) -> Diagnostic {
    let (line, column) = problem.location.unwrap_or((1, 1));
    let (position, message) = match &r.source.entry_position {
        Some(entry) => (
            entry.clone(),
            format!(
                "in the entry's document at {line}:{column}: {}",
                problem.message
            ),
        ),
        None => (
            crate::diagnostic::Position {
                path: r.source.origin.clone(),
                line,
                column,
            },
            problem.message,
        ),
    };
    Diagnostic { position, message }
}

/// Builds the serving state from the manifest written by `joinery build`.
pub async fn gateway(config: &Config) -> Result<Arc<Gateway>, ProjectError> {
    gateway_with(config, &load_plugins(config)?).await
}

/// [`gateway`] with plugins already loaded.
pub async fn gateway_with(
    config: &Config,
    plugins: &Plugins,
) -> Result<Arc<Gateway>, ProjectError> {
    gateway_observed(config, plugins, Arc::default()).await
}

/// [`gateway_with`], counting in `metrics` (kept across reloads).
pub(crate) async fn gateway_observed(
    config: &Config,
    plugins: &Plugins,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Arc<Gateway>, ProjectError> {
    let manifest = Manifest::read(&config.operations.manifest)?;
    let registry = Registry::from_manifest(&manifest, config)?;
    // One warm instance each: a plugin that cannot start is found before serving.
    plugins.prewarm(1).await?;
    check_plugin_schemas(config, plugins, &registry.supergraph).await?;
    Ok(assemble(config, plugins, registry, metrics))
}

/// The serving state of a build made in this process with `plugins` (as `joinery dev`
/// does): its registry is served as it is, without reading the manifest back, composing,
/// validating or planning again.
pub(crate) async fn gateway_built(
    config: &Config,
    plugins: &Plugins,
    registry: Registry,
    metrics: Arc<crate::metrics::Metrics>,
) -> Result<Arc<Gateway>, ProjectError> {
    plugins.prewarm(1).await?;
    Ok(assemble(config, plugins, registry, metrics))
}

/// The gateway serving `registry` with `plugins`, whose instances are warm already.
fn assemble(
    config: &Config,
    plugins: &Plugins,
    registry: Registry,
    metrics: Arc<crate::metrics::Metrics>,
) -> Arc<Gateway> {
    plugins.observe(&metrics);
    let schemas = plugin_schemas(config, &registry.supergraph);
    Arc::new(Gateway {
        upstreams: Upstreams::new(config.upstreams.values(), plugins, &schemas)
            .with_shared_cache(&config.cache)
            .with_metrics(&metrics),
        registry,
        metrics,
        policies: config
            .policies
            .iter()
            .map(|p| {
                plugins
                    .policy(p)
                    .expect("every configured plugin is loaded")
                    .clone()
            })
            .collect(),
        max_request_bytes: config.server.max_request_bytes,
        connections: config.server.connections,
    })
}

/// Checks that each resolver plugin still gives the schema the operations were validated
/// against (the one `supergraph` was composed from).
async fn check_plugin_schemas(
    config: &Config,
    plugins: &Plugins,
    supergraph: &Supergraph,
) -> Result<(), ProjectError> {
    for upstream in config.upstreams.values() {
        let Transport::Plugin(name) = &upstream.transport else {
            continue;
        };
        let built = supergraph
            .upstreams
            .get(&upstream.namespace)
            .expect("the registry checked that the manifest has every upstream");
        let resolver = plugins
            .resolver(name)
            .expect("upstream plugins are loaded as resolvers");
        if resolver.schema().await? != built.sdl {
            return Err(ProjectError::StaleSchema {
                namespace: upstream.namespace.clone(),
                plugin: name.clone(),
            });
        }
    }
    Ok(())
}

/// The schemas of resolver-plugin upstreams, as composition parsed them.
fn plugin_schemas(config: &Config, supergraph: &Supergraph) -> HashMap<String, Valid<Schema>> {
    config
        .upstreams
        .values()
        .filter(|u| matches!(u.transport, Transport::Plugin(_)))
        .map(|u| {
            let parsed = supergraph
                .parsed
                .get(&u.namespace)
                .expect("composition parsed every upstream");
            (u.namespace.clone(), parsed.clone())
        })
        .collect()
}

/// Where compiled plugins are cached: beside the manifest.
fn plugin_cache_dir(config: &Config) -> std::path::PathBuf {
    config
        .operations
        .manifest
        .parent()
        .map(|d| d.join("plugin-cache"))
        .unwrap_or_else(|| ".joinery/plugin-cache".into())
}

/// Loads, links and checks every configured plugin; all problems are reported together.
pub fn load_plugins(config: &Config) -> Result<Plugins, ProjectError> {
    Ok(load_plugins_reporting(config)?.0)
}

/// [`load_plugins`], also telling how each plugin was loaded.
pub(crate) fn load_plugins_reporting(
    config: &Config,
) -> Result<(Plugins, Vec<Loaded>), ProjectError> {
    match Plugins::load(config.plugins_with_uses(), Some(plugin_cache_dir(config))) {
        Ok((plugins, loaded)) => {
            for l in &loaded {
                tracing::info!(plugin = %l.name, world = l.world, cached = l.cached, "plugin loaded");
            }
            Ok((plugins, loaded))
        }
        Err(errors) => Err(ProjectError::Plugins(errors)),
    }
}
