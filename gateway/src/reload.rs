//! Reloading a serving gateway: on `SIGHUP`, and with `joinery serve --watch` when the config,
//! the manifest or a plugin file changes, the project is loaded again (config, plugins,
//! manifest, plans) and, only if all of it loads, swapped in whole. Requests in flight finish
//! on the gateway they started with; a project that fails to load is refused with a log line
//! and the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::plugin::Plugins;
use crate::server::{Current, Gateway, Registry};

/// How often `--watch` looks at the files.
const WATCH_EVERY: Duration = Duration::from_millis(300);

/// What reloading needs: where the config is, what serves now, and what keeps counting.
#[derive(Debug)]
pub(crate) struct Reloader {
    config_path: PathBuf,
    current: Arc<Current>,
    metrics: Arc<Metrics>,
    /// The config the serving gateway was made from (for what a reload cannot change).
    config: Config,
}

impl Reloader {
    /// A reloader of the project at `config_path`, now serving `current` made from `config`.
    pub(crate) fn new(config_path: &Path, config: Config, current: Arc<Current>) -> Self {
        let metrics = current.load().metrics.clone();
        Self {
            config_path: config_path.to_path_buf(),
            current,
            metrics,
            config,
        }
    }

    /// Reloads on every `SIGHUP` and, with `watch`, whenever a file the project is made of
    /// changes; never returns.
    pub(crate) async fn run(mut self, watch: bool) {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(signal) => Some(signal),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP: reload by signal is off");
                None
            }
        };
        let mut seen = self.fingerprint();
        let mut tick = tokio::time::interval(WATCH_EVERY);
        let mut stale = false;
        loop {
            let why = if stale {
                "a file changed"
            } else {
                tokio::select! {
                    Some(()) = async { hangup.as_mut()?.recv().await } => "SIGHUP",
                    _ = tick.tick(), if watch => {
                        if self.fingerprint() == seen {
                            continue;
                        }
                        "a file changed"
                    }
                }
            };
            let started = SystemTime::now();
            self.reload(why).await;
            seen = self.fingerprint();
            // A file written while the reload read the project is newer than it: again.
            stale = watch
                && seen
                    .iter()
                    .any(|stamp| stamp.is_some_and(|(modified, _)| modified >= started));
        }
    }

    /// Loads the project again and swaps it in if it loads; says which way it went.
    pub(crate) async fn reload(&mut self, why: &str) -> bool {
        let made = async {
            let config = Config::load(&self.config_path)?;
            let plugins = crate::project::load_plugins(&config)?;
            let gateway =
                crate::project::gateway_observed(&config, &plugins, self.metrics.clone()).await?;
            anyhow::Ok((config, gateway))
        };
        self.swap(made.await, why)
    }

    /// Swaps in what a build in this process made from `config` with `plugins` (as `joinery
    /// dev` builds), served as built rather than loaded again; says which way it went.
    pub(crate) async fn swap_built(
        &mut self,
        config: Config,
        plugins: &Plugins,
        registry: Registry,
        why: &str,
    ) -> bool {
        let made =
            crate::project::gateway_built(&config, plugins, registry, self.metrics.clone()).await;
        self.swap(
            made.map(|gateway| (config, gateway)).map_err(Into::into),
            why,
        )
    }

    /// Swaps in the gateway made, or logs why there is none and keeps the serving one.
    fn swap(&mut self, made: anyhow::Result<(Config, Arc<Gateway>)>, why: &str) -> bool {
        match made {
            Ok((config, gateway)) => {
                for unchanged in self.needs_restart(&config) {
                    tracing::warn!(
                        "`{unchanged}` changed: it takes effect when the gateway restarts"
                    );
                }
                let documents = gateway.registry.len();
                self.current.store(gateway);
                self.config = config;
                tracing::info!(reason = why, documents, "reloaded");
                true
            }
            Err(e) => {
                tracing::error!(reason = why, error = %format!("{e:#}"), "reload refused; still serving the previous operations and config");
                false
            }
        }
    }

    /// Settings of `config` that differ from the serving one but only apply at start-up.
    fn needs_restart(&self, config: &Config) -> Vec<&'static str> {
        let (old, new) = (&self.config, config);
        [
            ("server.listen", old.server.listen != new.server.listen),
            (
                "server.shutdown_grace",
                old.server.shutdown_grace != new.server.shutdown_grace,
            ),
            (
                "server connection limits",
                old.server.connections != new.server.connections,
            ),
            ("metrics.listen", old.metrics.listen != new.metrics.listen),
            ("log", old.log != new.log),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }

    /// When each file the project is made of last changed: the config, the manifest and the
    /// plugins of the serving config.
    fn fingerprint(&self) -> Vec<Option<(SystemTime, u64)>> {
        std::iter::once(self.config_path.as_path())
            .chain(std::iter::once(self.config.operations.manifest.as_path()))
            .chain(self.config.plugins.values().map(|p| p.path.as_path()))
            .map(|path| {
                let meta = std::fs::metadata(path).ok()?;
                Some((meta.modified().ok()?, meta.len()))
            })
            .collect()
    }
}
