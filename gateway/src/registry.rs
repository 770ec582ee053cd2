//! The persisted operations the gateway serves: hash → document → plans, built once at start.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::Config;
use crate::diagnostic::Diagnostics;
use crate::operations::{self, Manifest, Source};
use crate::plan::batch::BatchForms;
use crate::plan::cost::CostModel;
use crate::plan::Plan;
use crate::schema::{compose, Supergraph};

/// One registered document and the plan of each of its operations.
#[derive(Debug)]
pub(crate) struct Entry {
    /// sha256 of the document text.
    pub(crate) hash: String,
    /// Plans by operation name (`None` for the anonymous operation).
    pub(crate) plans: Vec<(Option<String>, Arc<Plan>)>,
}

/// Every persisted document by hash.
#[derive(Debug)]
pub struct Registry {
    /// The supergraph the documents were validated against.
    pub supergraph: Supergraph,
    /// The types that implement each interface of the supergraph (for introspection).
    pub(crate) implementers: apollo_compiler::collections::HashMap<
        apollo_compiler::Name,
        apollo_compiler::schema::Implementers,
    >,
    entries: HashMap<String, Arc<Entry>>,
}

/// Why the registry could not be built from a manifest.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The manifest's schemas do not compose (it was edited, or the gateway changed).
    #[error("the manifest's schemas do not compose: {0}")]
    Schema(#[from] crate::schema::SchemaError),
    /// A document in the manifest no longer validates or plans.
    #[error("manifest document {hash} ({origin}): {message}")]
    Document {
        /// Its hash.
        hash: String,
        /// Where it came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// A batch form in the configuration does not fit the manifest's schemas.
    #[error("{0}")]
    Batch(String),
    /// A `list_sizes` hint in the configuration does not fit the manifest's schemas.
    #[error("{0}")]
    ListSizes(String),
    /// The manifest was built for other upstreams than the configuration names.
    #[error("the manifest was built for upstreams [{manifest}] but the configuration names [{config}]; run `joinery build`")]
    UpstreamsChanged {
        /// Namespaces in the manifest.
        manifest: String,
        /// Namespaces in the configuration.
        config: String,
    },
}

impl Registry {
    /// Validates and plans every document of the manifest against the configuration, whose
    /// upstreams must be the manifest's.
    pub fn from_manifest(manifest: &Manifest, config: &Config) -> Result<Self, RegistryError> {
        let namespaces: Vec<&str> = config.upstreams.keys().map(String::as_str).collect();
        let policies_fill = config.policies_fill();
        let built: Vec<&str> = manifest
            .upstreams
            .iter()
            .map(|u| u.namespace.as_str())
            .collect();
        let mut a = built.clone();
        let mut b = namespaces.clone();
        a.sort_unstable();
        b.sort_unstable();
        if a != b {
            return Err(RegistryError::UpstreamsChanged {
                manifest: built.join(", "),
                config: namespaces.join(", "),
            });
        }
        let supergraph = compose(manifest.upstreams.clone())?;
        let forms = BatchForms::resolve(&supergraph, config.upstreams.values())
            .map_err(|d| RegistryError::Batch(Diagnostics(d).to_string()))?;
        let costs = CostModel::resolve(&supergraph, config)
            .map_err(|d| RegistryError::ListSizes(Diagnostics(d).to_string()))?;
        let mut entries = Vec::new();
        for doc in &manifest.documents {
            let fail = |message: String| RegistryError::Document {
                hash: doc.hash.clone(),
                origin: doc.origin.clone(),
                message,
            };
            if operations::hash(&doc.document) != doc.hash {
                return Err(fail("the hash does not match the document".into()));
            }
            let source = Source {
                origin: doc.origin.clone().into(),
                text: doc.document.clone(),
                entry_position: None,
            };
            let document = operations::validate(&supergraph, &source).map_err(|d| {
                fail(
                    d.iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                )
            })?;
            let document = Arc::new(document);
            let mut plans = Vec::new();
            for op in document.operations.iter() {
                let plan = Plan::build(
                    &supergraph,
                    document.clone(),
                    op,
                    policies_fill,
                    &forms,
                    &costs,
                )
                .map_err(|problems| {
                    fail(
                        problems
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; "),
                    )
                })?;
                plans.push((op.name.as_ref().map(|n| n.to_string()), Arc::new(plan)));
            }
            entries.push(Entry {
                hash: doc.hash.clone(),
                plans,
            });
        }
        Ok(Registry::new(supergraph, entries))
    }

    /// The documents of `entries`, validated and planned against `supergraph` already (by a
    /// build in this process, which need not be repeated to serve them).
    pub(crate) fn new(supergraph: Supergraph, entries: Vec<Entry>) -> Self {
        Registry {
            implementers: supergraph.schema.implementers_map(),
            supergraph,
            entries: entries
                .into_iter()
                .map(|e| (e.hash.clone(), Arc::new(e)))
                .collect(),
        }
    }

    /// The document with this hash (lower-case hex).
    pub(crate) fn get(&self, hash: &str) -> Option<&Arc<Entry>> {
        self.entries.get(hash)
    }

    /// Number of registered documents.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The operation named `name` in any document: its document's hash and its plan.
    pub(crate) fn find_named(&self, name: &str) -> Option<(&str, &Arc<Plan>)> {
        self.entries.values().find_map(|e| {
            e.plans
                .iter()
                .find(|(n, _)| n.as_deref() == Some(name))
                .map(|(_, p)| (e.hash.as_str(), p))
        })
    }

    /// Every named operation with its plan (an operation registered in several documents
    /// once).
    pub(crate) fn named_operations(&self) -> impl Iterator<Item = (&str, &Arc<Plan>)> {
        let mut seen = std::collections::HashSet::new();
        self.entries
            .values()
            .flat_map(|e| e.plans.iter())
            .filter_map(|(n, p)| Some((n.as_deref()?, p)))
            .filter(move |(n, _)| seen.insert(*n))
    }

    /// The plan of the operation named `name` in any document.
    pub fn find_operation(&self, name: &str) -> Option<&Arc<Plan>> {
        self.entries
            .values()
            .flat_map(|e| e.plans.iter())
            .find(|(n, _)| n.as_deref() == Some(name))
            .map(|(_, p)| p)
    }
}
