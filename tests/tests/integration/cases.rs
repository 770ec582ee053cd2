//! Cases as data (`tests/cases/`, see its README): configuration files and build projects with
//! the messages expected, the example project's schema and plans, requests with the whole
//! answers expected (run against a gateway
//! serving `tests/cases/requests/operations/`). `JOINERY_BLESS=1` writes what is said now into
//! the files instead of comparing.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::harness::{repo_root, Gateway};

fn cases_dir() -> PathBuf {
    repo_root().join("tests/cases/requests")
}

/// The operations of the cases, as the harness writes them into a project.
fn operations() -> Vec<(String, String)> {
    let mut ops: Vec<(String, String)> = std::fs::read_dir(cases_dir().join("operations"))
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&path).unwrap())
        })
        .collect();
    ops.sort();
    ops
}

/// Replaces `{{hash:Name}}` in every string of `value`.
fn fill(value: &Value, gw: &Gateway) -> Value {
    match value {
        Value::String(s) => Value::from(fill_text(s, gw)),
        Value::Array(items) => Value::Array(items.iter().map(|v| fill(v, gw)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), fill(v, gw))).collect())
        }
        other => other.clone(),
    }
}

fn fill_text(text: &str, gw: &Gateway) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{hash:") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("`{{hash:` is closed") + start;
        out.push_str(&gw.hash(&rest[start + 7..end]));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// Sends one exchange's request; the status, the content type and the JSON answer.
async fn send(gw: &Gateway, exchange: &Value) -> (u16, String, Value) {
    let method = exchange["method"].as_str().unwrap_or("POST");
    let url = match exchange["path"].as_str() {
        Some(path) => gw.url.replace("/graphql", path),
        None => gw.url.clone(),
    };
    let mut request = gw.client.request(method.parse().unwrap(), url);
    if let Some(query) = exchange.get("query") {
        let pairs: Vec<(String, String)> = serde_json::from_value(fill(query, gw)).unwrap();
        request = request.query(&pairs);
    }
    let headers = exchange
        .get("headers")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    if !headers.contains_key("content-type")
        && (exchange.get("body").is_some() || exchange.get("bodyText").is_some())
    {
        request = request.header("content-type", "application/json");
    }
    // A header given as `null` is not sent (not even the default content type).
    for (name, value) in headers.iter().filter(|(_, v)| !v.is_null()) {
        request = request.header(name, value.as_str().unwrap());
    }
    if let Some(body) = exchange.get("body") {
        request = request.body(fill(body, gw).to_string());
    } else if let Some(text) = exchange.get("bodyText").and_then(Value::as_str) {
        request = request.body(fill_text(text, gw));
    }
    let reply = gw.send(request).await;
    (reply.status, reply.content_type().to_string(), reply.body)
}

async fn run_file(path: &Path, bless: bool) -> Vec<String> {
    let mut exchanges: Vec<Value> = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let operations = operations();
    let ops: Vec<(&str, &str)> = operations
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let gw = Gateway::start(&ops).await;
    let mut failures = Vec::new();
    for exchange in exchanges.iter_mut() {
        let (status, content_type, response) = send(&gw, exchange).await;
        let name = exchange["name"].as_str().unwrap_or("?").to_string();
        if bless {
            exchange["status"] = json!(status);
            exchange["contentType"] = json!(content_type);
            exchange["response"] = response;
            continue;
        }
        let expected = (
            exchange["status"].as_u64(),
            exchange["contentType"].as_str(),
            &exchange["response"],
        );
        if expected
            != (
                Some(u64::from(status)),
                Some(content_type.as_str()),
                &response,
            )
        {
            failures.push(format!(
                "{} — {name}: expected {} {} {}, got {status} {content_type} {response}",
                path.display(),
                exchange["status"],
                exchange["contentType"],
                exchange["response"]
            ));
        }
    }
    if bless {
        let text = serde_json::to_string_pretty(&exchanges).unwrap() + "\n";
        std::fs::write(path, text).unwrap();
    }
    failures
}

#[tokio::test]
async fn every_request_case_gets_its_expected_answer() {
    let bless = std::env::var_os("JOINERY_BLESS").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no request cases found");
    let mut failures = Vec::new();
    for file in &files {
        failures.extend(run_file(file, bless).await);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Compares `actual` with the text in `expected`, or writes it there when blessing.
fn check_text(expected: &Path, actual: &str, bless: bool, failures: &mut Vec<String>) {
    if bless {
        std::fs::write(expected, actual).unwrap();
        return;
    }
    let want = std::fs::read_to_string(expected)
        .unwrap_or_else(|e| panic!("{}: {e} (run with JOINERY_BLESS=1)", expected.display()));
    if want != actual {
        failures.push(format!(
            "{}:\n--- expected\n{want}\n--- got\n{actual}",
            expected.display()
        ));
    }
}

/// Config cases (`tests/cases/config/*.toml`): what `Config::parse` says of each file, next to
/// it as `*.expected` (`ok` for a valid file). `${TOKEN}` reads `s3cret`; other names are unset.
#[test]
fn every_config_case_gets_its_expected_messages() {
    let bless = std::env::var_os("JOINERY_BLESS").is_some();
    let dir = repo_root().join("tests/cases/config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no config cases found");
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let said = match joinery::config::Config::parse(Path::new("joinery.toml"), &text, &|n| {
            (n == "TOKEN").then(|| "s3cret".to_string())
        }) {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        check_text(
            &file.with_extension("expected"),
            &format!("{said}\n"),
            bless,
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Build cases (`tests/cases/build/<case>/`): a project whose upstream schemas are files, and
/// what `joinery build` says of it in `expected.txt` (paths relative to the case).
#[tokio::test]
async fn every_build_case_gets_its_expected_messages() {
    let bless = std::env::var_os("JOINERY_BLESS").is_some();
    let dir = repo_root().join("tests/cases/build");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "no build cases found");
    let mut failures = Vec::new();
    for case in &cases {
        let case = case.canonicalize().unwrap();
        let out = tempfile::tempdir().unwrap();
        let mut config = joinery::config::Config::load(&case.join("joinery.toml")).unwrap();
        config.operations.manifest = out.path().join("manifest.json");
        let said = match joinery::project::build(&config, false).await {
            Ok(_) => "ok".to_string(),
            Err(e) => e.to_string(),
        };
        let said = said.replace(&format!("{}/", case.display()), "");
        check_text(
            &case.join("expected.txt"),
            &format!("{said}\n"),
            bless,
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The example project's composed schema and the plan of each of its operations (text and
/// JSON), as `joinery schema` and `joinery plan` print them: `tests/cases/example/`.
#[tokio::test]
async fn the_example_projects_schema_and_plans_are_as_recorded() {
    let bless = std::env::var_os("JOINERY_BLESS").is_some();
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let weather = joinery_tests::start_weather("127.0.0.1:0").await.unwrap();
    let travel = joinery_tests::start_travel("127.0.0.1:0").await.unwrap();
    let mut config = joinery::config::Config::load(&repo_root().join("joinery.toml")).unwrap();
    for (ns, upstream) in [
        ("countries", &countries),
        ("weather", &weather),
        ("travel", &travel),
    ] {
        config.upstreams[ns].transport = joinery::config::Transport::Http(upstream.url());
    }
    let out = tempfile::tempdir().unwrap();
    config.operations.manifest = out.path().join("manifest.json");
    let built = joinery::project::build(&config, false).await.unwrap();
    let registry = joinery::server::Registry::from_manifest(&built.manifest, &config).unwrap();
    let dir = repo_root().join("tests/cases/example");
    std::fs::create_dir_all(dir.join("plans")).unwrap();
    let mut failures = Vec::new();
    check_text(
        &dir.join("schema.graphql"),
        &built.registry.supergraph.sdl(),
        bless,
        &mut failures,
    );
    let mut names: Vec<&str> = built
        .manifest
        .documents
        .iter()
        .flat_map(|d| d.operations.iter().filter_map(|o| o.name.as_deref()))
        .collect();
    names.sort_unstable();
    for name in names {
        let plan = registry.find_operation(name).unwrap();
        let plans = dir.join("plans");
        check_text(
            &plans.join(format!("{name}.txt")),
            &plan.to_string(),
            bless,
            &mut failures,
        );
        let json = serde_json::to_string_pretty(&plan.to_json()).unwrap() + "\n";
        check_text(
            &plans.join(format!("{name}.json")),
            &json,
            bless,
            &mut failures,
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
