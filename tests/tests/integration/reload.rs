//! Reloading a running `joinery serve` (a real process): on SIGHUP and with `--watch`, new
//! operations are served without a failed request under load, and a project that does not
//! load is refused while the old one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use joinery::operations::Manifest;
use joinery_tests::{JoineryProcess, ServedGateway};
use serde_json::{json, Value};

const JOINERY: &str = env!("CARGO_BIN_EXE_joinery_cli");

/// A project served by a `joinery serve` process, with its log lines.
struct Served {
    dir: tempfile::TempDir,
    gateway: ServedGateway,
    client: reqwest::Client,
}

impl Served {
    /// Builds a project of one operation against `countries` and serves it (`args` after
    /// `serve`).
    async fn start(countries: &str, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n[upstreams.countries]\nurl = \"{countries}\"\n"
        );
        std::fs::write(dir.path().join("joinery.toml"), config).unwrap();
        std::fs::create_dir(dir.path().join("operations")).unwrap();
        std::fs::write(
            dir.path().join("operations/country.graphql"),
            "query Country($code: ID!) { countries_country(code: $code) { code name } }\n",
        )
        .unwrap();
        build(dir.path());
        let gateway = ServedGateway::start(Path::new(JOINERY), dir.path(), args).unwrap();
        Served {
            dir,
            gateway,
            client: reqwest::Client::new(),
        }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// The hash of operation `name` in the manifest on disk.
    fn hash(&self, name: &str) -> String {
        let manifest = Manifest::read(&self.path(".joinery/manifest.json")).unwrap();
        manifest
            .documents
            .iter()
            .find(|d| d.operations.iter().any(|o| o.name.as_deref() == Some(name)))
            .unwrap_or_else(|| panic!("{name} is not in the manifest"))
            .hash
            .clone()
    }

    /// Runs `hash` and returns its HTTP status and body.
    async fn run(&self, hash: &str, variables: Value) -> (u16, Value) {
        run(&self.client, &self.gateway.url, hash, variables).await
    }

    fn hangup(&self) {
        self.gateway.process.signal("HUP").unwrap();
    }

    /// Waits for a log line whose message is `message`.
    fn wait_for(&self, message: &str) -> Value {
        let line = self
            .gateway
            .process
            .wait_for(Duration::from_secs(20), |line| {
                serde_json::from_str::<Value>(line).is_ok_and(|v| v["message"] == message)
            })
            .unwrap_or_else(|e| panic!("no `{message}` log line: {e}"));
        serde_json::from_str(&line).unwrap()
    }

    /// Waits until operation `name` (just built) is served.
    async fn wait_served(&self, name: &str) {
        let hash = self.hash(name);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let (status, body) = self.run(&hash, json!({})).await;
            if status == 200 && body["errors"].is_null() {
                return;
            }
            assert!(Instant::now() < deadline, "{name} is not served: {body}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn run(client: &reqwest::Client, url: &str, hash: &str, variables: Value) -> (u16, Value) {
    let response = client
        .post(url)
        .json(&json!({ "documentId": format!("sha256:{hash}"), "variables": variables }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn build(dir: &Path) {
    JoineryProcess::build(Path::new(JOINERY), dir).unwrap();
}

/// Adds operation `Op<i>` to the project and builds it.
fn add_operation(served: &Served, i: usize) {
    std::fs::write(
        served.path(&format!("operations/op{i}.graphql")),
        format!("query Op{i} {{ countries_country(code: \"FR\") {{ code }} }}\n"),
    )
    .unwrap();
    build(served.dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_under_load_without_a_failed_request() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let served = Served::start(&countries.url(), &[]).await;
    let country = served.hash("Country");

    // Clients that never stop asking while the gateway reloads.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let load: Vec<_> = (0..4)
        .map(|_| {
            let (stop, answered, failures) = (stop.clone(), answered.clone(), failures.clone());
            let (url, hash) = (served.gateway.url.clone(), country.clone());
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let (status, body) = run(&client, &url, &hash, json!({ "code": "FR" })).await;
                    if status == 200 && body["data"]["countries_country"]["code"] == "FR" {
                        answered.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failures.lock().unwrap().push(format!("{status} {body}"));
                    }
                }
            })
        })
        .collect();

    for i in 0..20 {
        add_operation(&served, i);
        served.hangup();
        let line = served.wait_for("reloaded");
        assert_eq!(line["reason"], "SIGHUP");
        assert_eq!(line["documents"], i + 2);
        served.wait_served(&format!("Op{i}")).await;
    }

    // A config that does not load is refused; the previous project keeps serving.
    let config_path = served.path("joinery.toml");
    let good = std::fs::read_to_string(&config_path).unwrap();
    std::fs::write(&config_path, format!("{good}timeot = \"1s\"\n")).unwrap();
    served.hangup();
    let refused =
        served.wait_for("reload refused; still serving the previous operations and config");
    let error = refused["error"].as_str().unwrap();
    assert!(
        error.contains("joinery.toml:7:1: unknown field `timeot`"),
        "{error}"
    );
    served.wait_served("Op19").await;
    // So is a manifest that is not one.
    std::fs::write(&config_path, good).unwrap();
    let op0 = served.hash("Op0");
    std::fs::write(served.path(".joinery/manifest.json"), "{ not json").unwrap();
    served.hangup();
    let refused =
        served.wait_for("reload refused; still serving the previous operations and config");
    assert!(
        refused["error"].as_str().unwrap().contains("manifest.json"),
        "{refused}"
    );
    let (status, body) = served.run(&op0, json!({})).await;
    assert_eq!(
        (status, &body["data"]["countries_country"]["code"]),
        (200, &json!("FR"))
    );

    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    assert!(
        answered.load(Ordering::Relaxed) > 100,
        "too few requests to tell"
    );
}

// Multi-threaded: `joinery build` (a blocking child process) introspects the upstream this
// runtime serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_watch_reloads_when_the_manifest_changes() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let served = Served::start(&countries.url(), &["--watch"]).await;
    add_operation(&served, 0);
    let line = served.wait_for("reloaded");
    assert_eq!(line["reason"], "a file changed");
    served.wait_served("Op0").await;
    let (status, body) = served
        .run(&served.hash("Country"), json!({ "code": "DE" }))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["data"]["countries_country"]["code"], "DE");
}

/// `joinery dev`: serves the first build, prints a failed build's errors with their position
/// while the last good build keeps serving, and serves the next good build.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_rebuilds_on_change_and_keeps_the_last_good_build() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("joinery.toml"),
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[upstreams.countries]\nurl = \"{}\"\n",
            countries.url()
        ),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("operations")).unwrap();
    std::fs::write(
        dir.path().join("operations/country.graphql"),
        "query Country($code: ID!) { countries_country(code: $code) { code } }\n",
    )
    .unwrap();
    let dev = JoineryProcess::spawn(Path::new(JOINERY), dir.path(), &["dev"]).unwrap();
    let wait_for = |text: &str| {
        dev.wait_for(Duration::from_secs(30), |line| line.contains(text))
            .unwrap_or_else(|e| panic!("no line with `{text}`: {e}"))
    };
    let line = wait_for("serving 1 operation document(s) at http://");
    let url = line.rsplit(' ').next().unwrap().to_string();
    let client = reqwest::Client::new();
    let manifest = || Manifest::read(&dir.path().join(".joinery/manifest.json")).unwrap();
    let country = manifest().documents[0].hash.clone();

    // A broken operation: its error, with its position; the last build keeps serving.
    std::fs::write(
        dir.path().join("operations/capital.graphql"),
        "query Capital {\n  countries_country(code: \"FR\") { capitol }\n}\n",
    )
    .unwrap();
    wait_for("build failed; still serving the last good build");
    let error = wait_for("does not have a field `capitol`");
    assert!(
        error.starts_with("operations/capital.graphql:2:35: "),
        "{error}"
    );
    let (status, body) = run(&client, &url, &country, json!({ "code": "JP" })).await;
    assert_eq!(
        (status, &body["data"]["countries_country"]["code"]),
        (200, &json!("JP"))
    );

    // Fixed: built and served.
    std::fs::write(
        dir.path().join("operations/capital.graphql"),
        "query Capital {\n  countries_country(code: \"FR\") { capital }\n}\n",
    )
    .unwrap();
    wait_for("serving 2 operation document(s)");
    let capital = manifest()
        .documents
        .iter()
        .find(|d| d.origin.ends_with("capital.graphql"))
        .unwrap()
        .hash
        .clone();
    let (status, body) = run(&client, &url, &capital, json!({})).await;
    assert_eq!(
        (status, &body["data"]["countries_country"]["capital"]),
        (200, &json!("Paris"))
    );
}
