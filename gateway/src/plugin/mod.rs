//! The WebAssembly plugin host: components compiled once (and cached on disk), instantiated
//! from an [`InstancePre`](wasmtime::component::InstancePre), kept warm in a pool, and run with
//! a memory limit and a time limit per call. A plugin that traps, loops, overflows its stack or
//! exhausts its memory fails only its call; its instance is discarded.

pub(crate) mod contract;
mod engine;
mod host;
mod policy;
mod pool;
mod resolver;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{PluginConfig, PluginRole, PluginUse};
use crate::error_code::ErrorCode;
pub use policy::PolicyPlugin;
pub(crate) use policy::{Decision, Denial, ResponseDecision, UpstreamDecision};
pub(crate) use resolver::FieldError;
pub use resolver::{ResolverPlugin, ResolverRequest, SelectedField};

/// The WIT package version this gateway implements.
pub(crate) const WIT_VERSION: &str = "0.2.0";

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        world: "policy-plugin",
        path: "../wit",
        imports: {
            "joinery:plugin/outbound-http.send": async,
            "joinery:plugin/types": trappable,
        },
        with: { "joinery:plugin/types.header-map": super::host::Headers },
        // Export parameters borrow the host's strings instead of copies.
        ownership: Borrowing { duplicate_if_necessary: true },
        exports: { default: async },
    });
}

pub(crate) mod resolver_bindings {
    wasmtime::component::bindgen!({
        world: "resolver-plugin",
        path: "../wit",
        with: {
            "joinery:plugin/types": super::bindings::joinery::plugin::types,
            "joinery:plugin/log": super::bindings::joinery::plugin::log,
            "joinery:plugin/config": super::bindings::joinery::plugin::config,
            "joinery:plugin/outbound-http": super::bindings::joinery::plugin::outbound_http,
        },
        ownership: Borrowing { duplicate_if_necessary: true },
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
    /// No instance came free within the plugin's `timeout`: the gateway's plugins were running
    /// as many calls as their engine holds.
    #[error("plugin `{0}` found no free instance within {1:?}: the gateway's plugins hold as many instances as they can ({2} slots)")]
    Busy(String, std::time::Duration, usize),
}

impl PluginError {
    /// The client-visible code.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::Timeout(..) | Self::Busy(..) => ErrorCode::PluginTimeout,
            Self::Failed(..) => ErrorCode::PluginFailed,
        }
    }

    /// The HTTP status of a request that a failing request hook ends (fail closed).
    pub(crate) fn status(&self) -> u16 {
        match self {
            Self::Timeout(..) | Self::Busy(..) => 504,
            Self::Failed(..) => 500,
        }
    }
}

/// Why a configured plugin cannot be loaded.
#[derive(Debug, thiserror::Error)]
#[error("{}", self.describe())]
pub struct LoadError {
    /// The plugin's name.
    pub(crate) name: String,
    /// Its component file.
    pub(crate) path: PathBuf,
    /// Where the config names the file (none for problems of the engine itself).
    pub(crate) written: Option<crate::diagnostic::Position>,
    /// What is wrong and what to do.
    pub(crate) message: String,
}

impl LoadError {
    /// Where and what: the config line, the plugin and its file, or only the message for a
    /// problem of the engine all plugins share.
    fn describe(&self) -> String {
        if self.path.as_os_str().is_empty() {
            return format!("plugins: {}", self.message);
        }
        let at = self.written.as_ref().map(|w| format!("{w}: "));
        format!(
            "{}plugin `{}` ({}): {}",
            at.unwrap_or_default(),
            self.name,
            self.path.display(),
            self.message
        )
    }
}

/// Every configured plugin, loaded and ready to call.
#[derive(Debug, Default)]
pub struct Plugins {
    policies: HashMap<String, Arc<PolicyPlugin>>,
    resolvers: HashMap<String, Arc<ResolverPlugin>>,
}

/// How loading went, for `joinery check` and start-up logs.
#[derive(Debug)]
pub struct Loaded {
    /// The plugin's name.
    pub(crate) name: String,
    /// Whether the compiled form came from the on-disk cache.
    pub cached: bool,
    /// The world it implements: `policy-plugin` or `resolver-plugin`.
    pub world: &'static str,
    /// The version of the WIT package it was built against (semver-compatible with the one
    /// this gateway implements, or it would not have loaded).
    pub version: String,
}

impl Plugins {
    /// Loads `configured` plugins (each with where the configuration uses it, which decides
    /// the world it is checked against), compiling through the cache in `cache_dir`. Every
    /// plugin is checked, and all problems are returned together.
    pub fn load(
        configured: Vec<(&PluginConfig, Vec<PluginUse>)>,
        cache_dir: Option<PathBuf>,
    ) -> Result<(Self, Vec<Loaded>), Vec<LoadError>> {
        if configured.is_empty() {
            return Ok((Self::default(), Vec::new()));
        }
        let max_memory = configured
            .iter()
            .map(|(p, _)| p.max_memory)
            .max()
            .unwrap_or(16 << 20);
        let runtime = engine::runtime(max_memory, configured.len()).map_err(|e| {
            vec![LoadError {
                name: "*".into(),
                path: PathBuf::new(),
                written: None,
                message: format!("the WebAssembly engine cannot start: {e:#}"),
            }]
        })?;
        let engine = &runtime.engine;
        let cache = engine::ComponentCache::new(cache_dir);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("the HTTP client builds with static settings");
        let mut plugins = Plugins::default();
        let mut loaded = Vec::new();
        let mut errors = Vec::new();
        for (p, uses) in configured {
            let err = |message: String| LoadError {
                name: p.name.clone(),
                path: p.path.clone(),
                written: Some(p.written.clone()),
                message,
            };
            let bytes = match std::fs::read(&p.path) {
                Ok(b) => b,
                Err(e) => {
                    errors.push(err(format!("cannot read the component: {e}")));
                    continue;
                }
            };
            // Read from the component itself: a memory that starts above the limit could not
            // be instantiated (and would only say so in wasmtime's words).
            let shape = Shape::of(&bytes);
            if let Some(initial) = shape.initial_memory.filter(|&n| n > p.max_memory as u64) {
                errors.push(err(memory_message(Some(initial), p.max_memory)));
                continue;
            }
            let (component, cached) = match cache.load(engine, &bytes) {
                Ok(c) => c,
                Err(e) => {
                    errors.push(err(not_loadable(&bytes, &e)));
                    continue;
                }
            };
            let grants = Arc::new(host::Grants::new(p, http.clone()));
            // The version its export of `interface` carries, if it exports it.
            let exports = |interface: &str| {
                let prefix = format!("joinery:plugin/{interface}@");
                component
                    .component_type()
                    .exports(engine)
                    .find_map(|(name, _)| name.strip_prefix(&prefix).map(str::to_string))
            };
            let used_as: Vec<(&str, &str)> = uses
                .iter()
                .map(|u| (world_of(u.role), u.place.as_str()))
                .collect();
            // A component that is neither is checked as the world its use asks for, so that
            // the error explains what that world needs.
            let (world, version) = if let Some(v) = exports("resolver") {
                ("resolver-plugin", v)
            } else if let Some(v) = exports("policy") {
                ("policy-plugin", v)
            } else {
                let world = used_as.first().map_or("policy-plugin", |(w, _)| *w);
                (world, WIT_VERSION.to_string())
            };
            if let Some((wanted, place)) = used_as.iter().find(|(w, _)| *w != world) {
                errors.push(err(format!(
                    "{place} needs a component of the `{wanted}` world, but it is built for the `{world}` world"
                )));
                continue;
            }
            let weight = match runtime.slots_for(&component, shape.core_instances) {
                Ok(w) => w,
                Err(message) => {
                    errors.push(err(message));
                    continue;
                }
            };
            let made = if world == "resolver-plugin" {
                ResolverPlugin::new(&runtime, &component, grants, p.timeout, weight).map(|r| {
                    plugins.resolvers.insert(p.name.clone(), Arc::new(r));
                })
            } else {
                PolicyPlugin::new(&runtime, &component, grants, p.timeout, weight).map(|r| {
                    plugins.policies.insert(p.name.clone(), Arc::new(r));
                })
            };
            match made {
                Ok(()) => loaded.push(Loaded {
                    name: p.name.clone(),
                    cached,
                    world,
                    version,
                }),
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

    /// Counts every plugin's calls in `metrics` from now on.
    pub(crate) fn observe(&self, metrics: &Arc<crate::metrics::Metrics>) {
        for p in self.policies.values() {
            p.observe(metrics);
        }
        for r in self.resolvers.values() {
            r.observe(metrics);
        }
    }

    /// Instantiates `n` fresh instances of every plugin and keeps them warm (up to each
    /// pool's size), so that a plugin that cannot start is found before serving.
    pub async fn prewarm(&self, n: usize) -> Result<(), PluginError> {
        for p in self.policies.values() {
            p.prewarm(n).await?;
        }
        for r in self.resolvers.values() {
            r.prewarm(n).await?;
        }
        Ok(())
    }

    /// The resolver plugin called `name`.
    pub fn resolver(&self, name: &str) -> Option<&Arc<ResolverPlugin>> {
        self.resolvers.get(name)
    }
}

/// The world a plugin must implement for `role`.
fn world_of(role: PluginRole) -> &'static str {
    match role {
        PluginRole::Policy => "policy-plugin",
        PluginRole::Resolver => "resolver-plugin",
    }
}

/// What the gateway reads of a component's bytes before compiling it, in one pass.
struct Shape {
    /// The largest initial size of its linear memories (of its core modules, or of the module
    /// itself), in bytes; `None` when it cannot be read (the engine then says why it will not
    /// load).
    initial_memory: Option<u64>,
    /// The core instances one instance of it creates: the modules it instantiates, nested
    /// components included.
    core_instances: u32,
}

impl Shape {
    fn of(bytes: &[u8]) -> Self {
        let mut largest = Some(0u64);
        let mut core_instances = 0;
        for payload in wasmparser::Parser::new(0).parse_all(bytes) {
            match payload {
                Ok(wasmparser::Payload::MemorySection(memories)) => {
                    for memory in memories {
                        let size = memory.ok().map(|m| {
                            m.initial
                                .saturating_mul(1u64 << m.page_size_log2.unwrap_or(16))
                        });
                        largest = largest.zip(size).map(|(a, b)| a.max(b));
                    }
                }
                Ok(wasmparser::Payload::InstanceSection(instances)) => {
                    let created = instances
                        .into_iter()
                        .filter(|i| matches!(i, Ok(wasmparser::Instance::Instantiate { .. })));
                    core_instances += created.count() as u32;
                }
                Ok(_) => {}
                Err(_) => largest = None,
            }
        }
        Self {
            initial_memory: largest,
            core_instances,
        }
    }
}

fn memory_message(needed: Option<u64>, max_memory: usize) -> String {
    let needed = match needed {
        Some(n) => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        None => "more".into(),
    };
    format!(
        "its memory starts at {needed}, above its `max_memory` of {:.1} MiB: raise `max_memory`, or make the component start smaller (JavaScript and Python runtimes start at 9 to 13 MiB, QuickJS at about 1.4 MiB; in C, Zig and Rust the stack is part of the initial memory: lower it with `-Wl,-z,stack-size=65536` (clang), `--stack 65536` (zig, whose default is 16 MiB) or `-C link-arg=-zstack-size=65536` (Rust))",
        max_memory as f64 / (1 << 20) as f64
    )
}

/// Error codes a plugin may give: 1-64 characters of `A-Z`, `0-9` and `_`.
fn valid_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Explains why `component` does not fit `world`: an export of another WIT version, or
/// a missing one, or imports the gateway does not provide.
/// Whether WIT package versions `a` and `b` are semver-compatible as wasmtime links them:
/// the same major version, or for `0.x` the same minor (`0.1.0` and `0.1.7`; not `0.2.0`).
fn semver_compatible(a: &str, b: &str) -> bool {
    let track = |v: &str| -> Option<(u64, u64)> {
        let mut parts = v.split(['.', '-', '+']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        Some(if major == 0 { (0, minor) } else { (major, 0) })
    };
    matches!((track(a), track(b)), (Some(x), Some(y)) if x == y)
}

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
        let version = &other[prefix.len()..];
        if semver_compatible(version, WIT_VERSION) {
            return format!(
                "it was built against WIT `{other}`, which is compatible with this gateway's `{wanted}` by version, but it needs something this gateway lacks ({error:#}): rebuild it against wit/ of this gateway"
            );
        }
        return format!(
            "it was built against WIT `{other}`, but this gateway implements `{wanted}`: rebuild it against wit/ of this gateway"
        );
    }
    if !exports.contains(&wanted) {
        return format!(
            "it does not export `{wanted}` (its exports: {}); is it built for the `policy-plugin` or `resolver-plugin` world?",
            if exports.is_empty() { "none".into() } else { exports.join(", ") }
        );
    }
    format!("it cannot be linked: {error:#}; plugins may import only the joinery:plugin interfaces and the WASI interfaces of wasm32-wasip2")
}

/// Why `bytes` do not load as a component, by cause, with what to change.
fn not_loadable(bytes: &[u8], error: &wasmtime::Error) -> String {
    use wasmparser::{Parser, Validator, WasmFeatures};
    if Parser::is_core_wasm(bytes) {
        return "it is a core WebAssembly module, not a component: build it for wasm32-wasip2, or make a component of a wasm32-wasi (preview 1) module with `joinery plugin componentize` (C, Zig: see plugins/README.md)".into();
    }
    let asynchronous = WasmFeatures::CM_ASYNC
        | WasmFeatures::CM_ASYNC_STACKFUL
        | WasmFeatures::CM_MORE_ASYNC_BUILTINS
        | WasmFeatures::CM_THREADING;
    let valid = |features| {
        Validator::new_with_features(features)
            .validate_all(bytes)
            .is_ok()
    };
    if Parser::is_component(bytes)
        && valid(WasmFeatures::all())
        && !valid(WasmFeatures::all() - asynchronous)
    {
        return "it uses the component model's async features, which this gateway does not enable: build it without them (a QuickJS component: `jco componentize --backend qjs --backend-qjs-disable-async`)".into();
    }
    format!(
        "not a loadable WebAssembly component ({error:#}); build it for wasm32-wasip2 as a component (see plugins/README.md)"
    )
}

#[cfg(test)]
mod tests {
    use super::semver_compatible;

    #[test]
    fn wit_versions_are_compatible_within_a_series() {
        for (a, b) in [("0.1.0", "0.1.7"), ("0.1.1", "0.1.0"), ("1.2.0", "1.0.3")] {
            assert!(semver_compatible(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("0.2.0", "0.1.0"),
            ("0.0.9", "0.1.0"),
            ("2.0.0", "1.9.0"),
            ("x", "0.1.0"),
        ] {
            assert!(!semver_compatible(a, b), "{a} {b}");
        }
    }
}
