//! What a plugin instance may reach: the capabilities granted in `joinery.toml`, and an empty
//! WASI context (no files, no environment, no sockets) for the parts of WASI that language
//! runtimes link against.

use std::sync::Arc;

use reqwest::header::HeaderMap;
use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::joinery::plugin::{config, log, outbound_http, types};
use crate::config::PluginConfig;

/// Largest body a plugin may send or receive over outbound HTTP.
const MAX_HTTP_BODY: usize = 4 << 20;
/// Longest log message kept.
const MAX_LOG_MESSAGE: usize = 4 << 10;

/// The capabilities of one plugin, shared by all of its instances.
#[derive(Debug)]
pub(crate) struct Grants {
    pub(crate) name: String,
    config_json: String,
    secrets: Vec<(String, Option<String>)>,
    allowed_hosts: Vec<String>,
    visible_headers: Option<Vec<String>>,
    max_memory: usize,
    http: reqwest::Client,
}

impl Grants {
    pub(crate) fn new(config: &PluginConfig, http: reqwest::Client) -> Self {
        Self {
            name: config.name.clone(),
            config_json: config.config.to_string(),
            // Secrets are read once, so the plugin sees the environment of start-up only.
            secrets: config
                .secrets
                .iter()
                .map(|n| (n.clone(), std::env::var(n).ok()))
                .collect(),
            allowed_hosts: config.allowed_hosts.clone(),
            visible_headers: config.visible_headers.clone(),
            max_memory: config.max_memory,
            http,
        }
    }

    /// Whether the plugin is shown header `name` (any case).
    pub(crate) fn sees_header(&self, name: &str) -> bool {
        self.visible_headers
            .as_ref()
            .is_none_or(|visible| visible.iter().any(|v| v.eq_ignore_ascii_case(name)))
    }

    pub(crate) fn max_memory(&self) -> usize {
        self.max_memory
    }

    fn host_allowed(&self, url: &reqwest::Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let host = host.to_ascii_lowercase();
        let with_port = url.port_or_known_default().map(|p| format!("{host}:{p}"));
        self.allowed_hosts
            .iter()
            .any(|a| *a == host || Some(a) == with_port.as_ref())
    }
}

/// The data of one plugin instance's store.
pub(crate) struct HostState {
    grants: Arc<Grants>,
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    /// When the current call's time is up (set per call; read by the epoch callback).
    pub(crate) deadline: std::time::Instant,
    /// The largest linear memory the instance has grown to, in bytes.
    pub(crate) peak_memory: usize,
    /// The memory growth the limits refused, if one was (a refusal traps the call).
    pub(crate) refused_memory: Option<usize>,
}

/// The store's limits, with the largest memory granted noted on the way.
impl wasmtime::ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let granted = self.limits.memory_growing(current, desired, maximum);
        match granted {
            Ok(true) => self.peak_memory = self.peak_memory.max(desired),
            _ => self.refused_memory = Some(desired),
        }
        granted
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.memory_grow_failed(error)
    }

    fn table_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.limits.table_grow_failed(error)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl HostState {
    pub(crate) fn new(grants: Arc<Grants>) -> Self {
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let limits = StoreLimitsBuilder::new()
            .memory_size(grants.max_memory)
            .instances(64)
            .tables(256)
            .memories(32)
            .trap_on_grow_failure(true)
            .build();
        Self {
            deadline: std::time::Instant::now(),
            peak_memory: 0,
            refused_memory: None,
            grants,
            wasi,
            table: ResourceTable::new(),
            limits,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// The headers behind a `header-map` handle, lent to the plugin for one call: the request's
/// own map, shared, not copied. The plugin reads only the headers it asks for, so the ones it
/// ignores cost nothing to pass. (`pub` because the generated bindings re-export it.)
#[allow(unreachable_pub)]
pub struct Headers(Arc<HeaderMap>);

impl HostState {
    /// Lends `headers` for one call, as a borrowed handle; [`HostState::reclaim`] takes them
    /// back when it returns (see [`super::pool::lending`]).
    pub(crate) fn lend(&mut self, headers: Arc<HeaderMap>) -> Resource<Headers> {
        let own = self
            .table
            .push(Headers(headers))
            .expect("a store's resource table holds a handle per call");
        // Lowering an owned handle into a `borrow` parameter would move it into the store's
        // handle table for good (one entry per call, until the store's limit); a borrowed
        // one passes straight through.
        Resource::new_borrow(own.rep())
    }

    /// Takes back the headers lent as handle `rep` for a call that has returned.
    pub(crate) fn reclaim(&mut self, rep: u32) {
        // A call cannot keep a borrowed handle past its return (the component model checks),
        // so the entry is still there; a missing one would be harmless.
        let _ = self.table.delete(Resource::<Headers>::new_own(rep));
    }

    /// The text values of header `name` (any case) in `map`, if the plugin is shown it; values
    /// that are not ASCII text are left out.
    fn named<'a>(
        &'a self,
        map: &Resource<Headers>,
        name: &str,
    ) -> wasmtime::Result<impl Iterator<Item = &'a str> + 'a> {
        let Headers(headers) = self.table.get(map)?;
        let values = match self.grants.sees_header(name) {
            true => Some(headers.get_all(name).iter()),
            false => None,
        };
        Ok(values.into_iter().flatten().filter_map(|v| v.to_str().ok()))
    }
}

impl types::Host for HostState {}

impl types::HostHeaderMap for HostState {
    fn get(&mut self, map: Resource<Headers>, name: String) -> wasmtime::Result<Option<String>> {
        let mut values = self.named(&map, &name)?;
        let Some(first) = values.next() else {
            return Ok(None);
        };
        let mut value = first.to_string();
        for more in values {
            value.push_str(", ");
            value.push_str(more);
        }
        Ok(Some(value))
    }

    fn get_all(&mut self, map: Resource<Headers>, name: String) -> wasmtime::Result<Vec<String>> {
        Ok(self.named(&map, &name)?.map(str::to_string).collect())
    }

    fn entries(&mut self, map: Resource<Headers>) -> wasmtime::Result<Vec<(String, String)>> {
        let Headers(headers) = self.table.get(&map)?;
        Ok(headers
            .iter()
            .filter(|(n, _)| self.grants.sees_header(n.as_str()))
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect())
    }

    fn drop(&mut self, map: Resource<Headers>) -> wasmtime::Result<()> {
        self.table.delete(map)?;
        Ok(())
    }
}

impl log::Host for HostState {
    fn write(&mut self, level: log::Level, mut message: String) {
        if message.len() > MAX_LOG_MESSAGE {
            let mut end = MAX_LOG_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let plugin = self.grants.name.as_str();
        match level {
            log::Level::Trace => tracing::trace!(plugin, "{message}"),
            log::Level::Debug => tracing::debug!(plugin, "{message}"),
            log::Level::Info => tracing::info!(plugin, "{message}"),
            log::Level::Warn => tracing::warn!(plugin, "{message}"),
            log::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl config::Host for HostState {
    fn get(&mut self) -> String {
        self.grants.config_json.clone()
    }

    fn secret(&mut self, name: String) -> Option<String> {
        self.grants
            .secrets
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.clone())
    }
}

impl outbound_http::Host for HostState {
    async fn send(
        &mut self,
        request: outbound_http::Request,
    ) -> Result<outbound_http::Response, outbound_http::Error> {
        use outbound_http::Error;
        let url =
            reqwest::Url::parse(&request.url).map_err(|e| Error::InvalidUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || !self.grants.host_allowed(&url) {
            tracing::warn!(plugin = %self.grants.name, url = %url, "plugin HTTP request to a host it was not granted");
            return Err(Error::HostNotAllowed(format!(
                "`{}` is not in this plugin's allowed_hosts",
                url.host_str().unwrap_or_default()
            )));
        }
        if request.body.len() > MAX_HTTP_BODY {
            return Err(Error::Transport("request body larger than 4 MiB".into()));
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| Error::Transport(format!("invalid method {:?}", request.method)))?;
        // No timeout of its own: the call's time limit covers the request (a call cut at its
        // limit drops it), and a second timer per request costs every call.
        let mut builder = self.grants.http.request(method, url).body(request.body);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder
            .send()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?;
        let status = response.status().as_u16();
        let all = request.response_headers.iter().any(|n| n == "*");
        let headers = response
            .headers()
            .iter()
            .filter(|(n, _)| {
                all || request
                    .response_headers
                    .iter()
                    .any(|wanted| wanted.eq_ignore_ascii_case(n.as_str()))
            })
            .filter_map(|(n, v)| Some((n.to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| Error::Transport(e.to_string()))?
        {
            if body.len() + chunk.len() > MAX_HTTP_BODY {
                return Err(Error::Transport("response body larger than 4 MiB".into()));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(outbound_http::Response {
            status,
            headers,
            body,
        })
    }
}
