//! `[plugins.<name>]` and `[policy]`: the WebAssembly components, what each may do, and which
//! of them run on every request.

use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use toml::Spanned;

use super::check::{parse_size, Check};
use super::raw::{RawPlugin, RawPolicy};
use crate::diagnostic::Position;

/// `[plugins.<name>]`: one WebAssembly component and the capabilities granted to it.
#[derive(Debug, Clone)]
pub struct PluginConfig {
    /// The plugin's name (the table's key), used in logs, errors and references.
    pub name: String,
    /// The component file, resolved against the config's directory.
    pub(crate) path: PathBuf,
    /// Where `path` is written, for errors about the file.
    pub(crate) written: Position,
    /// Largest linear memory one instance may grow to. Default `16MiB`.
    pub max_memory: usize,
    /// Longest one call may run (CPU and waiting for outbound HTTP). Default `100ms`.
    pub timeout: Duration,
    /// Hosts (`host` or `host:port`) the plugin may send HTTP requests to. Default none.
    pub(crate) allowed_hosts: Vec<String>,
    /// Environment variables the plugin may read as secrets. Default none.
    pub(crate) secrets: Vec<String>,
    /// Headers the plugin is shown (lower-case): of the client's request in the request hook,
    /// of the upstream request and answer in the upstream hooks, of the upstream request in a
    /// resolver. `None` (the default): all of them.
    pub(crate) visible_headers: Option<Vec<String>>,
    /// The `[plugins.<name>.config]` table, passed to the plugin as JSON. Default `{}`.
    pub(crate) config: serde_json::Value,
}

pub(super) fn check(
    check: &mut Check,
    raw: IndexMap<Spanned<String>, RawPlugin>,
) -> IndexMap<String, PluginConfig> {
    let mut plugins = IndexMap::new();
    for (key, p) in raw {
        let name = key.get_ref().clone();
        if !valid_plugin_name(&name) {
            check.at(
                key.span(),
                format!("invalid plugin name `{name}`: use lower-case letters, digits and `-`, starting with a letter (for example `auth` or `jwt-policy`)"),
            );
        }
        let max_memory = match &p.max_memory {
            None => 16 << 20,
            Some(m) => parse_size(m.get_ref()).filter(|n| *n >= 1 << 20 && *n <= 4 << 30).unwrap_or_else(|| {
                check.at(
                    m.span(),
                    format!("`max_memory` must be a size from \"1MiB\" to \"4GiB\" such as \"16MiB\" or \"512KiB\", not {:?}", m.get_ref()),
                );
                16 << 20
            }),
        };
        let timeout = check.duration(&p.timeout, Duration::from_millis(100));
        let mut allowed_hosts = Vec::new();
        for h in &p.allowed_hosts {
            let host = h.get_ref().to_ascii_lowercase();
            if host.is_empty() || host.contains(['/', ' ', '@', '?', '#']) {
                check.at(
                    h.span(),
                    format!("`allowed_hosts` entries are a host or host:port such as \"api.example.com\" or \"127.0.0.1:9000\", not {:?}", h.get_ref()),
                );
            } else {
                allowed_hosts.push(host);
            }
        }
        let secrets = p.secrets.iter().map(|s| s.get_ref().clone()).collect();
        let visible_headers = p.visible_headers.as_ref().map(|names| {
            let mut visible = Vec::new();
            for h in names {
                let name = h.get_ref().to_ascii_lowercase();
                match reqwest::header::HeaderName::from_bytes(name.as_bytes()) {
                    Ok(_) => visible.push(name),
                    Err(_) => check.at(
                        h.span(),
                        format!("`{}` is not a valid HTTP header name", h.get_ref()),
                    ),
                }
            }
            visible
        });
        let config = match p.config {
            None => serde_json::Value::Object(Default::default()),
            Some(t) => serde_json::to_value(t).unwrap_or_default(),
        };
        plugins.insert(
            name.clone(),
            PluginConfig {
                name,
                path: check.base_dir.join(p.path.get_ref()),
                written: check.position(p.path.span().start),
                max_memory,
                timeout,
                allowed_hosts,
                secrets,
                visible_headers,
                config,
            },
        );
    }
    plugins
}

/// `[policy] plugins`.
pub(super) fn policies(
    check: &mut Check,
    plugins: &IndexMap<String, PluginConfig>,
    raw: &RawPolicy,
) -> Vec<String> {
    refs(check, plugins, &raw.plugins)
}

/// The names in `list` that are configured plugins; every other one is reported.
pub(super) fn refs(
    check: &mut Check,
    plugins: &IndexMap<String, PluginConfig>,
    list: &[Spanned<String>],
) -> Vec<String> {
    let mut names = Vec::new();
    for r in list {
        if plugins.contains_key(r.get_ref()) {
            names.push(r.get_ref().clone());
        } else {
            let known: Vec<&str> = plugins.keys().map(String::as_str).collect();
            check.at(
                r.span(),
                format!(
                    "no plugin named `{}` is configured; add a [plugins.{}] table with its `path`{}",
                    r.get_ref(),
                    r.get_ref(),
                    if known.is_empty() { String::new() } else { format!(", or use one of: {}", known.join(", ")) }
                ),
            );
        }
    }
    names
}

/// Plugin names: lower-case letters, digits and `-`, starting with a letter.
pub(crate) fn valid_plugin_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// How the configuration uses a plugin, somewhere: as a policy or as a resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PluginRole {
    /// In `[policy] plugins` or an upstream's `policies`.
    Policy,
    /// As an upstream (`plugin = "…"`).
    Resolver,
}

/// One use of a plugin: its role there, and where (for messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginUse {
    /// The role it plays there.
    pub(crate) role: PluginRole,
    /// Where, e.g. "upstream `shop` (plugin)".
    pub(crate) place: String,
}

impl super::Config {
    /// Every configured plugin with the places that use it, in configuration order.
    pub fn plugins_with_uses(&self) -> Vec<(&PluginConfig, Vec<PluginUse>)> {
        self.plugins
            .values()
            .map(|p| (p, self.plugin_uses(&p.name)))
            .collect()
    }

    /// Where the configuration uses plugin `name`.
    pub(crate) fn plugin_uses(&self, name: &str) -> Vec<PluginUse> {
        let mut uses = Vec::new();
        let mut add = |role, place: String| uses.push(PluginUse { role, place });
        if self.policies.iter().any(|p| p == name) {
            add(PluginRole::Policy, "[policy] plugins".to_string());
        }
        for u in self.upstreams.values() {
            if u.policies.iter().any(|p| p == name) {
                add(
                    PluginRole::Policy,
                    format!("upstream `{}` (policies)", u.namespace),
                );
            }
            if u.transport == super::Transport::Plugin(name.to_string()) {
                add(
                    PluginRole::Resolver,
                    format!("upstream `{}` (plugin)", u.namespace),
                );
            }
        }
        uses
    }
}
