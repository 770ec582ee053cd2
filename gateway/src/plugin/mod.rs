//! The WebAssembly plugin host: components compiled once (and cached on disk), instantiated
//! from an [`InstancePre`](wasmtime::component::InstancePre), kept warm in a pool, and run with
//! a memory limit and a time limit per call. A plugin that traps, loops, overflows its stack or
//! exhausts its memory fails only its call; its instance is discarded.

mod engine;
mod host;
mod policy;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::error_code::ErrorCode;
pub use policy::{Decision, Denial, Grant, PolicyPlugin, UpstreamDecision};

/// The WIT package version this gateway implements.
pub const WIT_VERSION: &str = "0.1.0";

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "policy-plugin",
        path: "../wit",
        imports: { "joinery:plugin/outbound-http.send": async },
        exports: { default: async },
    });
}

/// Why a plugin call produced no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The call ran past the plugin's `timeout`.
    #[error("plugin `{0}` did not finish within {1:?}")]
    Timeout(String, std::time::Duration),
    /// The plugin trapped, ran out of memory, overflowed its stack or answered badly.
    #[error("plugin `{0}` failed: {1}")]
    Failed(String, String),
}

impl PluginError {
    /// The client-visible code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Timeout(..) => ErrorCode::PluginTimeout,
            Self::Failed(..) => ErrorCode::PluginFailed,
        }
    }
}

/// Why a configured plugin cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[error("plugin `{name}` ({path}): {message}")]
pub struct LoadError {
    /// The plugin's name.
    pub name: String,
    /// Its component file.
    pub path: PathBuf,
    /// What is wrong and what to do.
    pub message: String,
}

/// Every configured plugin, loaded and ready to call.
#[derive(Debug, Default)]
pub struct Plugins {
    policies: HashMap<String, Arc<PolicyPlugin>>,
}

/// How loading went, for `joinery check` and start-up logs.
#[derive(Debug)]
pub struct Loaded {
    /// The plugin's name.
    pub name: String,
    /// Whether the compiled form came from the on-disk cache.
    pub cached: bool,
}

impl Plugins {
    /// Loads every plugin of `config`, compiling through the cache in `cache_dir`. Every
    /// plugin is checked, and all problems are returned together.
    pub fn load(
        config: &Config,
        cache_dir: Option<PathBuf>,
    ) -> Result<(Self, Vec<Loaded>), Vec<LoadError>> {
        if config.plugins.is_empty() {
            return Ok((Self::default(), Vec::new()));
        }
        let max_memory = config
            .plugins
            .values()
            .map(|p| p.max_memory)
            .max()
            .unwrap_or(16 << 20);
        let engine = engine::engine(max_memory).map_err(|e| {
            vec![LoadError {
                name: "*".into(),
                path: PathBuf::new(),
                message: format!("the WebAssembly engine cannot start: {e:#}"),
            }]
        })?;
        let cache = engine::ComponentCache::new(cache_dir);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client builds with static settings");
        let mut plugins = Plugins::default();
        let mut loaded = Vec::new();
        let mut errors = Vec::new();
        for p in config.plugins.values() {
            let err = |message: String| LoadError {
                name: p.name.clone(),
                path: p.path.clone(),
                message,
            };
            let bytes = match std::fs::read(&p.path) {
                Ok(b) => b,
                Err(e) => {
                    errors.push(err(format!("cannot read the component: {e}")));
                    continue;
                }
            };
            let (component, cached) = match cache.load(&engine, &bytes) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(err(format!(
                        "not a loadable WebAssembly component ({e:#}); build it for wasm32-wasip2 as a component (see plugins/README.md)"
                    )));
                    continue;
                }
            };
            let grants = Arc::new(host::Grants::new(p, http.clone()));
            match PolicyPlugin::new(&engine, &component, grants, p.timeout) {
                Ok(plugin) => {
                    plugins.policies.insert(p.name.clone(), Arc::new(plugin));
                    loaded.push(Loaded {
                        name: p.name.clone(),
                        cached,
                    });
                }
                Err(message) => errors.push(err(message)),
            }
        }
        if errors.is_empty() {
            Ok((plugins, loaded))
        } else {
            Err(errors)
        }
    }

    /// The policy plugin called `name`.
    pub fn policy(&self, name: &str) -> Option<&Arc<PolicyPlugin>> {
        self.policies.get(name)
    }
}

/// Explains why `component` does not fit `world`: an export of another WIT version, or
/// a missing one, or imports the gateway does not provide.
fn explain_mismatch(
    engine: &wasmtime::Engine,
    component: &wasmtime::component::Component,
    export: &str,
    error: &wasmtime::Error,
) -> String {
    let ty = component.component_type();
    let exports: Vec<String> = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
    let wanted = format!("joinery:plugin/{export}@{WIT_VERSION}");
    let prefix = format!("joinery:plugin/{export}@");
    if let Some(other) = exports
        .iter()
        .find(|e| e.starts_with(&prefix) && **e != wanted)
    {
        return format!(
            "it was built against WIT `{other}`, but this gateway implements `{wanted}`: rebuild it against wit/ of this gateway"
        );
    }
    if !exports.contains(&wanted) {
        return format!(
            "it does not export `{wanted}` (its exports: {}); is it built for the `{export}-plugin` world?",
            if exports.is_empty() { "none".into() } else { exports.join(", ") }
        );
    }
    format!("it cannot be linked: {error:#}; plugins may import only the joinery:plugin interfaces and the WASI interfaces of wasm32-wasip2")
}
