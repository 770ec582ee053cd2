//! `joinery dev`: build, serve, and on every change of the config, an operation, a schema file,
//! an imported manifest or a plugin, build again and swap the new build in. A build that fails
//! prints its errors (`file:line:column`) and the last good build keeps serving.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::config::{Config, SchemaSource};
use crate::operations::Manifest;
use crate::plugin::Plugins;
use crate::reload::Reloader;
use crate::server::{Current, Registry};

/// How often the files are looked at.
const WATCH_EVERY: Duration = Duration::from_millis(300);

/// Builds and serves the project at `config_path` until `shutdown`, rebuilding on changes.
/// `on_built` is called after every build that is served, with the address it is served on
/// (the example runner prints requests to try from it).
pub async fn run(
    config_path: &Path,
    shutdown: impl Future<Output = ()>,
    on_built: impl Fn(&Config, &Manifest, SocketAddr),
) -> anyhow::Result<()> {
    let mut shutdown = std::pin::pin!(shutdown);
    // Until a first build succeeds there is nothing to serve: wait for a fix.
    let mut seen = inputs(config_path, None);
    let (built, started) = loop {
        let started = SystemTime::now();
        match build(config_path).await {
            Ok(built) => break (built, started),
            Err(e) => report(&e),
        }
        tokio::select! {
            changed = changed(config_path, None, &seen) => seen = changed,
            _ = &mut shutdown => return Ok(()),
        }
    };
    let Built {
        config,
        plugins,
        manifest,
        registry,
    } = built;
    let gateway =
        crate::project::gateway_built(&config, &plugins, registry, Arc::default()).await?;
    let listener = tokio::net::TcpListener::bind(config.server.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.server.listen))?;
    let address = listener.local_addr()?;
    on_built(&config, &manifest, address);
    let current = Arc::new(Current::new(gateway));
    let grace = config.server.shutdown_grace;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::server::serve_current(
        current.clone(),
        listener,
        async {
            let _ = stopped.await;
        },
        grace,
    ));
    let mut reloader = Reloader::new(config_path, config.clone(), current);
    let mut config = config;
    seen = inputs(config_path, Some(&config));
    // A file written while the first build ran is newer than it: build again at once.
    let mut stale = newer_than(&seen, started);
    loop {
        if !stale {
            tokio::select! {
                changed = changed(config_path, Some(&config), &seen) => seen = changed,
                _ = &mut shutdown => break,
            }
        }
        let started = SystemTime::now();
        match build(config_path).await {
            Ok(built) => {
                if reloader
                    .swap_built(
                        built.config.clone(),
                        &built.plugins,
                        built.registry,
                        "rebuilt",
                    )
                    .await
                {
                    on_built(&built.config, &built.manifest, address);
                }
                config = built.config;
                seen = inputs(config_path, Some(&config));
            }
            Err(e) => report(&e),
        }
        stale = newer_than(&seen, started);
    }
    let _ = stop.send(());
    server.await??;
    Ok(())
}

/// A build and what it was made with, ready to serve.
struct Built {
    config: Config,
    plugins: Plugins,
    manifest: Manifest,
    registry: Registry,
}

/// Loads the config and plugins and builds (writing the manifest).
async fn build(config_path: &Path) -> anyhow::Result<Built> {
    let config = Config::load(config_path)?;
    let plugins = crate::project::load_plugins(&config)?;
    let built = crate::project::build_with(&config, &plugins, true).await?;
    tracing::info!(
        documents = built.manifest.documents.len(),
        manifest = %config.operations.manifest.display(),
        "built"
    );
    Ok(Built {
        config,
        plugins,
        manifest: built.manifest,
        registry: built.registry,
    })
}

/// Prints a failed build's errors as they are (one `file:line:column: …` per problem).
fn report(error: &anyhow::Error) {
    eprintln!("build failed; still serving the last good build (if any):\n{error:#}");
}

/// Waits until the inputs differ from `seen`; returns them.
async fn changed(config_path: &Path, config: Option<&Config>, seen: &Inputs) -> Inputs {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let now = inputs(config_path, config);
        if &now != seen {
            return now;
        }
    }
}

/// Whether a file of `inputs` changed at or after `when`.
fn newer_than(inputs: &Inputs, when: SystemTime) -> bool {
    inputs
        .iter()
        .any(|(_, stamp)| stamp.is_some_and(|(modified, _)| modified >= when))
}

/// Every file a build reads, with when it last changed.
type Inputs = Vec<(PathBuf, Option<(SystemTime, u64)>)>;

/// The files a build of `config` reads: the config, every file under the operations folder,
/// imported manifests, schema files and plugins (with no config yet, the config and the
/// default operations folder).
fn inputs(config_path: &Path, config: Option<&Config>) -> Inputs {
    let mut paths = vec![config_path.to_path_buf()];
    let base = config_path.parent().unwrap_or(Path::new("."));
    match config {
        None => files_under(&base.join("operations"), &mut paths),
        Some(config) => {
            files_under(&config.operations.dir, &mut paths);
            paths.extend(config.operations.import.iter().map(|(p, _)| p.clone()));
            for upstream in config.upstreams.values() {
                if let SchemaSource::File(path, _) = &upstream.schema {
                    paths.push(path.clone());
                }
            }
            paths.extend(config.plugins.values().map(|p| p.path.clone()));
        }
    }
    paths
        .into_iter()
        .map(|path| {
            let stamp = std::fs::metadata(&path)
                .ok()
                .and_then(|m| Some((m.modified().ok()?, m.len())));
            (path, stamp)
        })
        .collect()
}

/// The files under `dir`, recursively, in a stable order.
fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}
