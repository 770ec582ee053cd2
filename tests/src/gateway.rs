//! Running a Joinery project in-process, as `joinery build` followed by `joinery serve` would,
//! on an ephemeral port of 127.0.0.1: used by the integration tests and the benchmarks.

use std::path::Path;
use std::time::Duration;

use joinery::config::Config;
use joinery::operations::Manifest;
use tokio::sync::oneshot;

/// A gateway serving a built project.
pub struct RunningGateway {
    /// `http://127.0.0.1:PORT/graphql`.
    pub url: String,
    /// The manifest the build wrote.
    pub manifest: Manifest,
    /// `http://127.0.0.1:PORT/metrics`, served as `[metrics] listen` serves it.
    pub metrics_url: String,
    /// `http://127.0.0.1:PORT/`, the explorer, served as `[explorer] listen` serves it.
    pub explorer_url: String,
    /// The metrics and explorer servers.
    sides: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl RunningGateway {
    /// Builds the project at `config_path` (writing its manifest) and serves it.
    pub async fn start(config_path: &Path) -> anyhow::Result<Self> {
        let config = Config::load(config_path)?;
        let plugins = joinery::project::load_plugins(&config)?;
        let built = joinery::project::build_with(&config, &plugins, true).await?;
        let gateway = joinery::project::gateway_with(&config, &plugins).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/graphql", listener.local_addr()?);
        let metrics_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let metrics_url = format!("http://{}/metrics", metrics_listener.local_addr()?);
        let explorer_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let explorer_url = format!("http://{}/", explorer_listener.local_addr()?);
        let current = std::sync::Arc::new(joinery::server::Current::new(gateway));
        let sides = vec![
            tokio::spawn(joinery::server::serve_metrics(
                current.load().metrics.clone(),
                metrics_listener,
            )),
            tokio::spawn(joinery::server::serve_explorer(
                current.clone(),
                explorer_listener,
            )),
        ];
        let (tx, rx) = oneshot::channel::<()>();
        let shutdown = async {
            let _ = rx.await;
        };
        let server = tokio::spawn(joinery::server::serve_current(
            current,
            listener,
            shutdown,
            Duration::from_secs(5),
        ));
        Ok(RunningGateway {
            url,
            manifest: built.manifest,
            metrics_url,
            explorer_url,
            sides,
            shutdown: Some(tx),
            server: Some(server),
        })
    }

    /// The hash of the document that holds operation `name`.
    pub fn hash(&self, name: &str) -> String {
        self.manifest
            .documents
            .iter()
            .find(|d| d.operations.iter().any(|o| o.name.as_deref() == Some(name)))
            .unwrap_or_else(|| panic!("no registered operation is named {name}"))
            .hash
            .clone()
    }

    /// Stops accepting, lets requests in flight finish, and waits for the server to end.
    pub async fn shutdown(&mut self) {
        for side in &self.sides {
            side.abort();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("the server task does not panic")
                .expect("the server ends cleanly");
        }
    }
}
