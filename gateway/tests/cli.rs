//! The `joinery` binary: exit codes and messages of its subcommands on real files.

use std::path::Path;
use std::process::Command;

fn joinery(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_joinery"))
        .args(args)
        .current_dir(dir)
        .env_remove("RUST_LOG")
        .env_remove("JOINERY_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn project(config: &str, operations: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("joinery.toml"), config).unwrap();
    std::fs::write(
        dir.path().join("shop.graphql"),
        "\"A product\"\ntype Product { id: ID! title: String @deprecated(reason: \"Use name\") name: String! }\ntype Query { product(id: ID!): Product }\n",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("operations")).unwrap();
    for (name, text) in operations {
        std::fs::write(dir.path().join("operations").join(name), text).unwrap();
    }
    dir
}

const CONFIG: &str =
    "[upstreams.shop]\nurl = \"http://127.0.0.1:9/graphql\"\nschema_file = \"shop.graphql\"\n";

#[test]
fn schema_prints_the_composed_sdl() {
    let dir = project(CONFIG, &[]);
    let (ok, stdout, stderr) = joinery(dir.path(), &["schema"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("shop_product(id: ID!): shop_Product"),
        "{stdout}"
    );
    assert!(
        stdout.contains("title: String @deprecated(reason: \"Use name\")"),
        "{stdout}"
    );
    assert!(stdout.contains("\"A product\""), "{stdout}");
}

#[test]
fn build_writes_the_manifest_and_plan_prints_the_fetches() {
    let dir = project(
        CONFIG,
        &[(
            "p.graphql",
            "query P($id: ID!) { item: shop_product(id: $id) { name } }\n",
        )],
    );
    let (ok, stdout, stderr) = joinery(dir.path(), &["build"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("registered 1 document(s)"), "{stdout}");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".joinery/manifest.json")).unwrap(),
    )
    .unwrap();
    let doc = &manifest["documents"][0];
    assert_eq!(
        doc["operations"][0]["variables"][0],
        serde_json::json!({ "name": "id", "type": "ID!", "required": true })
    );
    assert!(stdout.contains(doc["hash"].as_str().unwrap()));
    let (ok, stdout, _) = joinery(dir.path(), &["plan", "P"]);
    assert!(ok);
    assert!(stdout.contains("fetch from `shop` → item"), "{stdout}");
    assert!(
        stdout.contains("query P($id: ID!) { item: product(id: $id) { name } }"),
        "{stdout}"
    );
}

#[test]
fn config_and_operation_errors_fail_with_positions() {
    let dir = project(&format!("{CONFIG}timeot = \"1s\"\n"), &[]);
    let (ok, _, stderr) = joinery(dir.path(), &["check"]);
    assert!(!ok);
    assert!(
        stderr.contains("joinery.toml:4:1: unknown field `timeot`"),
        "{stderr}"
    );

    let dir = project(
        CONFIG,
        &[(
            "bad.graphql",
            "query Bad {\n  shop_product(id: 1) { nam }\n}\n",
        )],
    );
    let (ok, _, stderr) = joinery(dir.path(), &["check"]);
    assert!(!ok);
    assert!(stderr.contains("operations/bad.graphql:2:25:"), "{stderr}");
    assert!(
        !dir.path().join(".joinery").exists(),
        "check writes nothing"
    );
}

#[test]
fn serve_without_a_manifest_says_to_build() {
    let dir = project(CONFIG, &[]);
    let (ok, _, stderr) = joinery(dir.path(), &["serve"]);
    assert!(!ok);
    assert!(
        stderr.contains("does not exist: run `joinery build` first"),
        "{stderr}"
    );
}

#[test]
fn plan_prints_joins_as_a_tree_and_as_json() {
    let dir = project(
        CONFIG,
        &[(
            "j.graphql",
            "query J($id: ID! @internal) {\n  shop_product(id: \"1\") {\n    id @export(as: \"id\")\n    again: _join { shop_product(id: $id) { name } }\n  }\n}\n",
        )],
    );
    let (ok, _, stderr) = joinery(dir.path(), &["build"]);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = joinery(dir.path(), &["plan", "J"]);
    assert!(ok);
    assert!(stdout.contains("at most 2 upstream request(s)"), "{stdout}");
    assert!(
        stdout.contains("join #0 at shop_product.again (once)"),
        "{stdout}"
    );
    assert!(stdout.contains("$id ← shop_product.id"), "{stdout}");
    assert!(
        stdout.contains("shop_product: product(id: $id) { name }"),
        "{stdout}"
    );
    let (ok, stdout, _) = joinery(dir.path(), &["plan", "J", "--json"]);
    assert!(ok);
    let plan: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(plan["maxUpstreamRequests"], 2);
    assert_eq!(plan["joins"][0]["bindings"][0]["variable"], "id");
    assert_eq!(plan["joins"][0]["fetches"][0]["upstream"], "shop");
    assert_eq!(plan["internalVariables"], serde_json::json!(["id"]));
}

/// Sends one HTTP/1.1 request and returns the raw response.
fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_logs_json_with_request_ids_serves_metrics_and_stops_on_sigterm() {
    use std::io::BufRead;
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{CONFIG}"
    );
    let dir = project(
        &config,
        &[(
            "p.graphql",
            "query P($named: Boolean = true) { shop_product(id: \"1\") { name @include(if: $named) } }\n",
        )],
    );
    let (ok, _, stderr) = joinery(dir.path(), &["build"]);
    assert!(ok, "{stderr}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_joinery"))
        .arg("serve")
        .current_dir(dir.path())
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let mut lines = Vec::new();
    let (mut addr, mut metrics) = (None, None);
    while addr.is_none() || metrics.is_none() {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the server starts");
        let json: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        lines.push(json.clone());
        let address = json["address"].as_str().map(str::to_string);
        if json["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("metrics")
        {
            metrics = address;
        } else if address.is_some() {
            addr = address;
        }
    }
    let (addr, metrics) = (addr.unwrap(), metrics.unwrap());
    let scraped = http(
        &metrics,
        "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    assert!(
        scraped.contains("\njoinery_requests_in_flight 0\n"),
        "{scraped}"
    );
    assert!(scraped.ends_with("# EOF\n"), "{scraped}");
    let health = http(
        &addr,
        "GET /health HTTP/1.1\r\nhost: x\r\nx-request-id: req-42\r\nconnection: close\r\n\r\n",
    );
    // A refused variable: its value is in the answer, never in the logs.
    let refused = http(
        &addr,
        "GET /operations/P?named=SECRET-VALUE-7 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    );
    assert!(refused.contains("INVALID_VARIABLES"), "{refused}");
    assert!(refused.contains("SECRET-VALUE-7"), "{refused}");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("x-request-id: req-42"), "{health}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "graceful shutdown exits cleanly: {exit:?}");
    reader.join().unwrap();
    lines.extend(
        rx.try_iter()
            .map(|l| serde_json::from_str(&l).unwrap_or_else(|_| panic!("not JSON: {l}"))),
    );
    assert!(
        lines.iter().any(|l| l["message"] == "request refused"),
        "{lines:?}"
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.to_string().contains("SECRET-VALUE-7")),
        "a variable's value was logged: {lines:?}"
    );
    let done = lines
        .iter()
        .find(|l| l["message"] == "request done")
        .expect("a request log line");
    assert_eq!(done["span"]["id"], "req-42", "{done}");
    assert_eq!(done["status"], 200);
    assert!(lines.iter().any(|l| l["message"]
        .as_str()
        .unwrap_or("")
        .contains("shutting down")));
}

#[test]
fn introspecting_an_unreachable_upstream_fails_the_build_clearly() {
    let dir = project(
        "[upstreams.shop]\nurl = \"http://127.0.0.1:9/graphql\"\ntimeout = \"2s\"\n",
        &[],
    );
    let (ok, _, stderr) = joinery(dir.path(), &["build"]);
    assert!(!ok);
    assert!(
        stderr.contains("upstream `shop`: introspection of http://127.0.0.1:9/graphql failed"),
        "{stderr}"
    );
    assert!(stderr.contains("is the upstream running?"), "{stderr}");
}

#[test]
fn plugin_config_errors_and_unloadable_plugins_are_reported() {
    let dir = project(
        &format!("{CONFIG}policies = [\"auth\"]\n\n[policy]\nplugins = [\"nope\"]\n\n[plugins.Auth]\npath = \"auth.wasm\"\nmax_memory = \"lots\"\n"),
        &[],
    );
    let (ok, _, stderr) = joinery(dir.path(), &["check"]);
    assert!(!ok);
    for expected in [
        "joinery.toml:4:13: no plugin named `auth` is configured",
        "joinery.toml:7:12: no plugin named `nope` is configured; add a [plugins.nope] table with its `path`, or use one of: Auth",
        "joinery.toml:9:10: invalid plugin name `Auth`",
        "joinery.toml:11:14: `max_memory` must be a size",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }

    let dir = project(
        &format!("{CONFIG}\n[plugins.auth]\npath = \"auth.wasm\"\n"),
        &[],
    );
    let (ok, _, stderr) = joinery(dir.path(), &["check"]);
    assert!(!ok);
    assert!(
        stderr.contains("plugin `auth` (")
            && stderr.contains("auth.wasm): cannot read the component"),
        "{stderr}"
    );
}
