//! `joinery.toml`: the model, its defaults, loading and validation.
//!
//! Every problem is reported with `file:line:column`, all of them in one run. Each section
//! of the file has a module with its types and its checks; [`Config::parse`] runs them.

mod check;
mod observability;
mod operations;
mod plugins;
mod raw;
mod server;
mod shared_cache;
#[cfg(test)]
mod tests;
mod upstream;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diagnostic::{read_text, Diagnostics};
use check::Check;
use raw::RawConfig;

pub use crate::diagnostic::FileError;
pub(crate) use check::reserved_header;
pub(crate) use observability::{ExplorerConfig, MetricsConfig, TracesConfig};
pub use observability::{LogConfig, LogFormat};
pub(crate) use operations::{Budget, OperationsConfig};
pub(crate) use plugins::valid_plugin_name;
pub(crate) use plugins::{PluginConfig, PluginRole, PluginUse};
pub(crate) use server::{ConnectionLimits, ServerConfig};
pub(crate) use shared_cache::SharedCacheConfig;
pub use upstream::Transport;
pub(crate) use upstream::{
    BatchConfig, BreakerConfig, CacheConfig, RetryConfig, SchemaSource, UpstreamConfig,
};

/// The whole configuration of one Joinery project.
#[derive(Debug, Clone)]
pub struct Config {
    /// The config file, as given.
    pub path: PathBuf,
    /// `[server]`
    pub server: ServerConfig,
    /// `[operations]`
    pub operations: OperationsConfig,
    /// `[log]`
    pub log: LogConfig,
    /// `[upstreams.<namespace>]`, in file order.
    pub upstreams: IndexMap<String, UpstreamConfig>,
    /// `[plugins.<name>]`, in file order.
    pub plugins: IndexMap<String, PluginConfig>,
    /// `[policy] plugins`: policy plugins whose request hook runs on every request, in order.
    pub policies: Vec<String>,
    /// `[cache]`: what the upstream caches share.
    pub(crate) cache: SharedCacheConfig,
    /// `[metrics]`: where Prometheus metrics are served.
    pub metrics: MetricsConfig,
    /// `[explorer]`: where the operations explorer is served.
    pub explorer: ExplorerConfig,
    /// `[traces]`: where OpenTelemetry traces go.
    pub traces: TracesConfig,
}

impl Config {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<Self, FileError> {
        let text = read_text(path)?;
        Self::parse(path, &text, &|name| std::env::var(name).ok())
    }

    /// Like [`Config::load`], for commands that work with plugins only (`joinery plugin call`
    /// and `test`): a plugin project's `joinery.toml` needs no upstreams.
    pub fn load_for_plugins(path: &Path) -> Result<Self, FileError> {
        let text = read_text(path)?;
        Self::parse_checked(path, &text, &|name| std::env::var(name).ok(), false)
    }

    /// Parses and validates config `text` that was read from `path`; `env` looks up
    /// `${NAME}` references in header values.
    pub fn parse(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, FileError> {
        Self::parse_checked(path, text, env, true)
    }

    fn parse_checked(
        path: &Path,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
        needs_upstreams: bool,
    ) -> Result<Self, FileError> {
        let raw: RawConfig = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(e) => {
                let mut diags = Diagnostics::default();
                check::structure_problems(path, text, e, &mut diags);
                return Err(FileError::Invalid(diags));
            }
        };
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let mut check = Check::new(path, text, &base_dir, env);

        // Problems are reported in the order of these calls, the order the checks had before
        // the sections became modules (users and tests read the whole list); that order
        // interleaves `[server]` with the observability sections, hence its three steps.
        let listen = server::listen(&mut check, &raw.server);
        let metrics = observability::metrics(&mut check, &raw.metrics);
        let explorer = observability::explorer(&mut check, &raw.explorer);
        let traces = observability::traces(&mut check, &raw.traces);
        let requests = server::requests(&mut check, &raw.server);
        let log = observability::log(&mut check, &raw.log);
        let server = server::check(&mut check, &raw.server, listen, requests);
        let plugins = plugins::check(&mut check, raw.plugins);
        let policies = plugins::policies(&mut check, &plugins, &raw.policy);
        let cache = shared_cache::check(&mut check, &raw.cache);
        let upstreams = upstream::check(&mut check, raw.upstreams, &plugins);
        let operations = operations::check(&mut check, &raw.operations);
        if needs_upstreams && upstreams.is_empty() {
            check.at(
                0..0,
                "no upstreams are configured: add at least one table such as\n  [upstreams.countries]\n  url = \"http://127.0.0.1:4001/graphql\"".into(),
            );
        }
        check.finish()?;

        Ok(Config {
            path: path.to_path_buf(),
            server,
            operations,
            log,
            upstreams,
            plugins,
            policies,
            cache,
            metrics,
            explorer,
            traces,
        })
    }
}

impl Config {
    /// Whether policy plugins may fill `@internal` variables that no `@export` fills.
    pub(crate) fn policies_fill(&self) -> bool {
        !self.policies.is_empty()
    }
}
