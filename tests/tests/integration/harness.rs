//! A real gateway in front of real upstream servers on 127.0.0.1, built from a temporary
//! project (config + operations) exactly as `joinery build` and `joinery serve` do.

use std::path::{Path, PathBuf};

use joinery_tests::{start_countries, start_weather, RunningGateway, Upstream};
use serde_json::Value;
use tempfile::TempDir;

pub struct Gateway {
    pub countries: Upstream,
    pub weather: Upstream,
    pub url: String,
    pub dir: TempDir,
    pub client: reqwest::Client,
    pub running: RunningGateway,
}

pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn content_type(&self) -> &str {
        self.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `extensions.code` of the first error.
    pub fn code(&self) -> &str {
        self.body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or("")
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The default test configuration: countries by introspection, weather by the repo's SDL file.
pub fn default_config(countries: &str, weather: &str) -> String {
    format!(
        r#"
[operations]
dir = "operations"
manifest = "out/manifest.json"

[upstreams.countries]
url = "{countries}"
timeout = "2s"
forward_headers = ["authorization"]

[upstreams.weather]
url = "{weather}"
schema_file = "{}"
timeout = "2s"
headers = {{ "x-api-key" = "k-123" }}
"#,
        repo_root().join("schemas/weather.graphql").display()
    )
}

/// What `joinery build` reports for the project written in `dir` (config `joinery.toml`,
/// `operations`), with paths relative to `dir`; the build must fail and write no manifest.
pub async fn build_errors(dir: &Path, config: &str, operations: &[(&str, &str)]) -> String {
    let path = write_project(dir, config, operations);
    let config = joinery::config::Config::load(&path).unwrap();
    let err = joinery::project::build(&config, true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        !config.operations.manifest.exists(),
        "a failed build writes no manifest"
    );
    err.replace(&format!("{}/", dir.display()), "")
}

/// Writes a project into a temporary folder and returns its config path.
pub fn write_project(dir: &Path, config: &str, operations: &[(&str, &str)]) -> PathBuf {
    std::fs::create_dir_all(dir.join("operations")).unwrap();
    for (name, text) in operations {
        std::fs::write(dir.join("operations").join(name), text).unwrap();
    }
    let path = dir.join("joinery.toml");
    std::fs::write(&path, config).unwrap();
    path
}

impl Gateway {
    /// Starts both upstreams, builds `operations` with the default config, and serves them.
    pub async fn start(operations: &[(&str, &str)]) -> Self {
        Self::start_with(operations, default_config).await
    }

    /// Like [`Gateway::start`] with a config made from the upstream URLs.
    pub async fn start_with(
        operations: &[(&str, &str)],
        config: impl Fn(&str, &str) -> String,
    ) -> Self {
        let countries = start_countries("127.0.0.1:0").await.unwrap();
        let weather = start_weather("127.0.0.1:0").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = write_project(
            dir.path(),
            &config(&countries.url(), &weather.url()),
            operations,
        );
        let running = RunningGateway::start(&path).await.unwrap();
        countries.reset();
        weather.reset();
        Gateway {
            countries,
            weather,
            url: running.url.clone(),
            dir,
            client: reqwest::Client::new(),
            running,
        }
    }

    pub fn hash(&self, name: &str) -> String {
        self.running.hash(name)
    }

    /// POSTs `{documentId, variables}` for operation `name`.
    pub async fn run(&self, name: &str, variables: Value) -> Reply {
        self.post(serde_json::json!({
            "documentId": format!("sha256:{}", self.hash(name)),
            "operationName": name,
            "variables": variables,
        }))
        .await
    }

    /// [`Gateway::run`] with an `authorization` header.
    pub async fn run_as(&self, token: &str, name: &str, variables: Value) -> Reply {
        self.send(
            self.client
                .post(&self.url)
                .header("authorization", token)
                .json(&serde_json::json!({
                    "documentId": format!("sha256:{}", self.hash(name)),
                    "variables": variables,
                })),
        )
        .await
    }

    pub async fn post(&self, body: Value) -> Reply {
        self.send(self.client.post(&self.url).json(&body)).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// `{ countries { <fields> } }` asked of the countries upstream directly (its request
    /// count reset afterwards).
    pub async fn ask_countries(&self, fields: &str) -> Vec<Value> {
        let query = format!("{{ countries {{ {fields} }} }}");
        let body: Value = self
            .client
            .post(self.countries.url())
            .json(&serde_json::json!({ "query": query }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        self.countries.reset();
        body["data"]["countries"].as_array().unwrap().clone()
    }

    /// The first `n` countries that have a capital: (code, capital).
    pub async fn capitals(&self, n: usize) -> Vec<(String, String)> {
        self.ask_countries("code capital")
            .await
            .iter()
            .filter(|c| c["capital"].is_string())
            .take(n)
            .map(|c| {
                (
                    c["code"].as_str().unwrap().to_string(),
                    c["capital"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub async fn shutdown(&mut self) {
        self.running.shutdown().await;
    }
}

/// Shared operations used by several test modules.
pub const RENAME: (&str, &str) = (
    "rename.graphql",
    "mutation Rename($code: ID!, $name: String!) { countries_renameCountry(code: $code, name: $name) { name } }",
);

pub const COUNTRY: (&str, &str) = (
    "country.graphql",
    "query Country($code: ID!) { countries_country(code: $code) { code name capital } }",
);

/// Builds the project in `dir` and serves it with `joinery serve`, its address space limited
/// (as a container's `ulimit -v` limits it) so that the plugins' engine has 4 slots instead of
/// 256; checks that it says so.
pub fn serve_with_4_plugin_slots(dir: &Path) -> joinery_tests::ServedGateway {
    let binary = Path::new(env!("CARGO_BIN_EXE_joinery_cli"));
    joinery_tests::JoineryProcess::build(binary, dir).unwrap();
    let limit = format!("--as={}", 48u64 << 30);
    let gw =
        joinery_tests::ServedGateway::start_under(&["prlimit", &limit, "--"], binary, dir).unwrap();
    assert!(
        gw.started
            .iter()
            .any(|l| l.contains("plugins run at most 4 calls at once")),
        "{:#?}",
        gw.started
    );
    gw
}

/// Sends `count` requests at once to the served gateway `gw` for the persisted operation
/// `text` with `variables`; their JSON answers.
pub async fn send_all(
    gw: &joinery_tests::ServedGateway,
    text: &str,
    variables: Value,
    count: usize,
) -> Vec<Value> {
    let hash = joinery::operations::hash(text);
    let client = reqwest::Client::new();
    let body =
        serde_json::json!({ "documentId": format!("sha256:{hash}"), "variables": variables });
    let asks = (0..count).map(|_| async {
        let reply = client
            .post(&gw.url)
            .timeout(std::time::Duration::from_secs(30))
            .json(&body)
            .send()
            .await
            .unwrap();
        reply.json::<Value>().await.unwrap()
    });
    futures::future::join_all(asks).await
}
