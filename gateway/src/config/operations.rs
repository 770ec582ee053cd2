//! `[operations]`: where persisted operations come from, per-operation limits and the budget.

use std::path::PathBuf;

use indexmap::IndexMap;
use toml::Spanned;

use super::check::Check;
use super::raw::RawOperations;
use crate::diagnostic::Position;

/// `[operations]`: where persisted operations come from and where the manifest goes.
#[derive(Debug, Clone)]
pub struct OperationsConfig {
    /// Folder of `*.graphql` operation documents. Default `operations`.
    pub(crate) dir: PathBuf,
    /// Where `dir` is written (none when it is the default), for errors about the folder.
    pub(crate) dir_written: Option<Position>,
    /// Manifest written by `joinery build` and read by `joinery serve`. Default `.joinery/manifest.json`.
    pub manifest: PathBuf,
    /// Client-generated manifests to register as well (Apollo persisted query manifest or
    /// graphql-codegen persisted documents), with where each is written. Default none.
    pub(crate) import: Vec<(PathBuf, Position)>,
    /// Per-operation overrides of `server.max_join_fanout`, by operation name, with where each
    /// is written (the build checks that the operation exists). Default none.
    pub(crate) max_join_fanout: IndexMap<String, (usize, Position)>,
    /// `[operations.budget]`: the most an operation may cost, checked by `joinery build`.
    pub budget: Budget,
}

/// `[operations.budget]`: limits on what `joinery build` measures of each operation; one above
/// a limit is refused with its position. Every limit is off by default: persisted operations
/// are written and reviewed by the API's owners, so a budget is a choice, not a guess.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Budget {
    /// Deepest field nesting (`_join` counts as a level).
    pub max_depth: Option<Limit>,
    /// Most upstream requests one execution makes.
    pub max_upstream_requests: Option<Limit>,
    /// Most fields resolved in one execution, list items multiplied in.
    pub max_fields: Option<Limit>,
}

/// One budget limit and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    /// The limit.
    pub value: u64,
    /// Where it is written.
    pub(crate) position: Position,
}

pub(super) fn check(check: &mut Check, raw: &RawOperations) -> OperationsConfig {
    let mut fanout_overrides = IndexMap::new();
    for (name, limit) in &raw.max_join_fanout {
        if *limit.get_ref() < 1 {
            check.at(
                limit.span(),
                format!(
                    "the join fan-out limit of `{}` must be at least 1",
                    name.get_ref()
                ),
            );
            continue;
        }
        fanout_overrides.insert(
            name.get_ref().clone(),
            (*limit.get_ref() as usize, check.position(name.span().start)),
        );
    }
    let budget = Budget {
        max_depth: limit(check, &raw.budget.max_depth, "max_depth"),
        max_upstream_requests: limit(
            check,
            &raw.budget.max_upstream_requests,
            "max_upstream_requests",
        ),
        max_fields: limit(check, &raw.budget.max_fields, "max_fields"),
    };
    let base_dir = check.base_dir;
    OperationsConfig {
        dir: base_dir.join(raw.dir.as_ref().map_or("operations", |d| d.get_ref())),
        dir_written: raw.dir.as_ref().map(|d| check.position(d.span().start)),
        manifest: base_dir.join(raw.manifest.as_deref().unwrap_or(".joinery/manifest.json")),
        import: raw
            .import
            .iter()
            .map(|p| (base_dir.join(p.get_ref()), check.position(p.span().start)))
            .collect(),
        max_join_fanout: fanout_overrides,
        budget,
    }
}

/// A budget limit, which must be at least 1.
fn limit(check: &mut Check, raw: &Option<Spanned<i64>>, name: &str) -> Option<Limit> {
    let n = raw.as_ref()?;
    if *n.get_ref() < 1 {
        check.at(n.span(), format!("`{name}` must be at least 1"));
        return None;
    }
    Some(Limit {
        value: *n.get_ref() as u64,
        position: check.position(n.span().start),
    })
}
