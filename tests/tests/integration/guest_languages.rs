//! Plugins written in JavaScript and Python, built by the test suite with componentize-js and
//! componentize-py (`joinery_tests::plugins::{js_plugin, python_plugin}`), end to end through
//! a real gateway: `js-policy` authenticates API keys, `py-resolver` adapts the books part of
//! the REST/JSON test API (`joinery_tests::start_rest`) on 127.0.0.1.

use std::ops::Deref;

use joinery_tests::plugins::{js_plugin, plugins_dir, python_plugin};
use joinery_tests::{start_rest, Fault, Upstream};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::harness::{
    default_config, send_all, serve_with_4_plugin_slots, write_project, Gateway, Reply,
};

/// A gateway whose manifest lives in a folder of its own, with a compile cache shared by
/// every test: compiling a component that carries a JavaScript or Python engine takes
/// seconds, so each test would otherwise spend them again.
struct Guest {
    gw: Gateway,
    _manifest_dir: TempDir,
}

impl Deref for Guest {
    type Target = Gateway;

    fn deref(&self) -> &Gateway {
        &self.gw
    }
}

/// Removes the cache entries older than every guest component now built: they were compiled
/// from components that have been rebuilt since.
fn prune(cache: &std::path::Path) {
    let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let target = plugins_dir().join("target");
    let oldest_component = ["js", "python"]
        .iter()
        .filter_map(|language| std::fs::read_dir(target.join(language)).ok())
        .flatten()
        .filter_map(|plugin| {
            let dir = plugin.ok()?.path();
            modified(&dir.join(format!("{}.wasm", dir.file_name()?.to_str()?)))
        })
        .min();
    let (Some(oldest), Ok(entries)) = (oldest_component, std::fs::read_dir(cache)) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if modified(&path).is_some_and(|m| m < oldest) {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn start(operations: &[(&str, &str)], config: impl Fn(&str, &str) -> String) -> Guest {
    // One start at a time in this process: the first compiles and writes the cache entry, the
    // others read it.
    static STARTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = STARTING.lock().await;
    let manifest_dir = tempfile::tempdir().unwrap();
    let cache = plugins_dir().join("target/gateway-plugin-cache");
    std::fs::create_dir_all(&cache).unwrap();
    prune(&cache);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&cache, manifest_dir.path().join("plugin-cache")).unwrap();
    let manifest = manifest_dir.path().join("manifest.json");
    let gw = Gateway::start_with(operations, |c, w| {
        let config = config(c, w);
        let shared = config.replace(
            "manifest = \"out/manifest.json\"",
            &format!("manifest = \"{}\"", manifest.display()),
        );
        assert_ne!(config, shared, "the config names its manifest");
        shared
    })
    .await;
    Guest {
        gw,
        _manifest_dir: manifest_dir,
    }
}

// --- JavaScript: API-key policy -------------------------------------------------------------

/// `$code` is filled by the API-key policy with the key's tenant.
const MY_COUNTRY: (&str, &str) = (
    "my-country.graphql",
    "query MyCountry($code: ID! @internal) { countries_country(code: $code) { code name } }",
);

const WEATHER: (&str, &str) = (
    "weather.graphql",
    "query CityWeather($name: String!) { weather_getCityByName(name: $name) { name } }",
);

/// Limits for components that carry a language runtime. Their linear memory starts at about
/// 9 MiB (JavaScript) and 13 MiB (Python), close to the 16 MiB default; the time limit leaves
/// room for a loaded test machine.
const RUNTIME_LIMITS: &str = "max_memory = \"64MiB\"\ntimeout = \"2s\"";

fn keys_config(countries: &str, weather: &str) -> String {
    let js = js_plugin("js-policy");
    format!(
        r#"{}
[policy]
plugins = ["keys"]

[plugins.keys]
path = "{js}"
{RUNTIME_LIMITS}
[plugins.keys.config]
variable = "code"
[plugins.keys.config.keys]
"key-1" = "FR"
"key-2" = "DE"

[plugins.weather-key]
path = "{js}"
{RUNTIME_LIMITS}
[plugins.weather-key.config.upstream_headers]
"x-plugin-key" = "weather-only"
"#,
        default_config(countries, weather).replace(
            "headers = { \"x-api-key\" = \"k-123\" }",
            "headers = { \"x-api-key\" = \"k-123\" }\npolicies = [\"weather-key\"]"
        ),
        js = js.display(),
    )
}

async fn run_with_key(gw: &Gateway, name: &str, variables: Value, key: Option<&str>) -> Reply {
    let mut request = gw.client.post(&gw.url).json(&json!({
        "documentId": format!("sha256:{}", gw.hash(name)),
        "operationName": name,
        "variables": variables,
    }));
    if let Some(key) = key {
        request = request.header("x-api-key", key);
    }
    gw.send(request).await
}

#[tokio::test]
async fn js_policy_refuses_missing_and_unknown_api_keys() {
    let gw = start(&[MY_COUNTRY, WEATHER], keys_config).await;

    let reply = run_with_key(&gw, "MyCountry", json!({}), None).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    assert_eq!(reply.code(), "UNAUTHENTICATED");
    assert_eq!(
        reply.body["errors"][0]["message"],
        "an `x-api-key` header is required"
    );
    assert!(reply.body.get("data").is_none(), "{}", reply.body);

    let reply = run_with_key(&gw, "MyCountry", json!({}), Some("key-404")).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.code(), "FORBIDDEN");
    assert_eq!(
        reply.body["errors"][0]["message"],
        "this API key is not known"
    );

    let reply = run_with_key(&gw, "CityWeather", json!({ "name": "Paris" }), None).await;
    assert_eq!(
        reply.status, 401,
        "every operation needs a key: {}",
        reply.body
    );

    assert_eq!(
        gw.countries.requests(),
        0,
        "a denied request reaches no upstream"
    );
    assert_eq!(gw.weather.requests(), 0);
}

#[tokio::test]
async fn js_policy_fills_the_internal_variable_with_the_keys_tenant() {
    let gw = start(&[MY_COUNTRY, WEATHER], keys_config).await;
    let reply = run_with_key(&gw, "MyCountry", json!({}), Some("key-1")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({ "data": { "countries_country": { "code": "FR", "name": "France" } } })
    );
    let reply = run_with_key(&gw, "MyCountry", json!({}), Some("key-2")).await;
    assert_eq!(reply.body["data"]["countries_country"]["code"], "DE");

    // The client cannot choose the tenant itself.
    let reply = run_with_key(&gw, "MyCountry", json!({ "code": "JP" }), Some("key-1")).await;
    assert_eq!(reply.code(), "INVALID_VARIABLES", "{}", reply.body);
    assert_eq!(gw.countries.requests(), 2);
}

#[tokio::test]
async fn js_upstream_hook_sets_its_header_on_that_upstream_only() {
    let gw = start(&[MY_COUNTRY, WEATHER], keys_config).await;
    let reply = run_with_key(
        &gw,
        "CityWeather",
        json!({ "name": "Paris" }),
        Some("key-1"),
    )
    .await;
    assert_eq!(
        reply.body,
        json!({ "data": { "weather_getCityByName": { "name": "Paris" } } })
    );
    let reply = run_with_key(&gw, "MyCountry", json!({}), Some("key-1")).await;
    assert!(reply.body.get("errors").is_none(), "{}", reply.body);

    let weather = gw.weather.received_headers();
    assert_eq!(weather.len(), 1);
    assert_eq!(weather[0]["x-plugin-key"], "weather-only");
    assert_eq!(weather[0]["x-api-key"], "k-123", "configured headers stay");
    let countries = gw.countries.received_headers();
    assert_eq!(countries.len(), 1);
    assert!(countries[0].get("x-plugin-key").is_none());
}

// --- Python: a REST/JSON API as a namespace -------------------------------------------------

/// The paths (and queries) the REST API was asked for, in order.
fn uris(api: &Upstream) -> Vec<String> {
    api.received()
        .iter()
        .map(|r| r["uri"].as_str().unwrap_or_default().to_string())
        .collect()
}

const ALL_BOOKS: (&str, &str) = (
    "books.graphql",
    "query AllBooks { books_books { id title author } }",
);

const ONE_BOOK: (&str, &str) = (
    "book.graphql",
    "query OneBook($id: ID!) { books_book(id: $id) { title author } }",
);

/// Two root fields of the plugin beside a GraphQL upstream's, with an alias.
const SHELF: (&str, &str) = (
    "shelf.graphql",
    r#"query Shelf {
  first: books_book(id: "1") { title }
  missing: books_book(id: "99") { title }
  books_books { id }
  countries_country(code: "FR") { name }
}"#,
);

/// The books namespace served by `py-resolver` against `base_url`, granted `allowed_host`.
fn books_config(countries: &str, weather: &str, base_url: &str, allowed_host: &str) -> String {
    format!(
        r#"{}
[upstreams.books]
plugin = "books"
timeout = "5s"

[plugins.books]
path = "{}"
{RUNTIME_LIMITS}
allowed_hosts = ["{allowed_host}"]
[plugins.books.config]
base_url = "{base_url}"
"#,
        default_config(countries, weather),
        python_plugin("py-resolver").display(),
    )
}

async fn books_gateway(api: &Upstream, allowed_host: Option<&str>) -> Guest {
    let base_url = format!("http://{}", api.addr());
    let granted = allowed_host
        .map(str::to_string)
        .unwrap_or_else(|| base_url.trim_start_matches("http://").to_string());
    start(&[ALL_BOOKS, ONE_BOOK, SHELF], move |c, w| {
        books_config(c, w, &base_url, &granted)
    })
    .await
}

#[tokio::test]
async fn python_resolver_serves_a_rest_api_as_a_namespace() {
    let api = start_rest("127.0.0.1:0").await.unwrap();
    let gw = books_gateway(&api, None).await;
    let reply = gw.run("AllBooks", json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({ "data": { "books_books": [
            { "id": "1", "title": "Dune", "author": "Frank Herbert" },
            { "id": "2", "title": "The Left Hand of Darkness", "author": "Ursula K. Le Guin" },
            { "id": "3", "title": "Solaris", "author": "Stanisław Lem" },
        ] } })
    );

    let reply = gw.run("OneBook", json!({ "id": "3" })).await;
    assert_eq!(
        reply.body,
        json!({ "data": { "books_book": { "title": "Solaris", "author": "Stanisław Lem" } } })
    );

    // A book that does not exist is null, without an error (the REST API answered 404).
    let reply = gw.run("OneBook", json!({ "id": "99" })).await;
    assert_eq!(reply.body, json!({ "data": { "books_book": null } }));

    let paths = uris(&api);
    assert_eq!(paths, ["/books", "/books/3", "/books/99"]);
}

#[tokio::test]
async fn python_resolver_answers_every_root_field_of_a_request_in_order() {
    let api = start_rest("127.0.0.1:0").await.unwrap();
    let gw = books_gateway(&api, None).await;
    let reply = gw.run("Shelf", json!({})).await;
    assert_eq!(
        reply.body,
        json!({ "data": {
            "first": { "title": "Dune" },
            "missing": null,
            "books_books": [{ "id": "1" }, { "id": "2" }, { "id": "3" }],
            "countries_country": { "name": "France" },
        } })
    );
    let mut paths = uris(&api);
    paths.sort();
    assert_eq!(paths, ["/books", "/books/1", "/books/99"]);
    assert!(api
        .received_headers()
        .iter()
        .all(|h| h.get("accept").is_some_and(|v| v == "application/json")));
}

#[tokio::test]
async fn python_resolver_reports_a_failing_rest_api_at_the_fields_path() {
    let api = start_rest("127.0.0.1:0").await.unwrap();
    let gw = books_gateway(&api, None).await;
    api.set_fault(Fault::Status(503));
    let reply = gw.run("OneBook", json!({ "id": "1" })).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["data"],
        json!({ "books_book": null }),
        "{}",
        reply.body
    );
    let error = &reply.body["errors"][0];
    assert_eq!(error["path"], json!(["books_book"]), "{}", reply.body);
    assert_eq!(error["extensions"]["code"], "REST_ERROR", "{}", reply.body);
    assert_eq!(
        error["message"],
        format!(
            "the REST API answered 503 to GET http://{}/books/1",
            api.addr()
        )
    );

    // Only the plugin's fields fail; the recovered API answers the next request.
    api.set_fault(Fault::None);
    let reply = gw.run("OneBook", json!({ "id": "1" })).await;
    assert_eq!(reply.body["data"]["books_book"]["title"], "Dune");
}

#[tokio::test]
async fn python_resolver_cannot_reach_a_host_it_was_not_granted() {
    let api = start_rest("127.0.0.1:0").await.unwrap();
    let gw = books_gateway(&api, Some("127.0.0.1:1")).await;
    let reply = gw.run("Shelf", json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // `books_books` is non-null, so its error nulls `data` (the GraphQL spec's null propagation).
    let errors = reply.body["errors"].as_array().unwrap();
    let error = errors
        .iter()
        .find(|e| e["path"] == json!(["first"]))
        .unwrap_or_else(|| panic!("an error at `first`: {}", reply.body));
    assert_eq!(error["extensions"]["code"], "REST_UNREACHABLE");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("host not allowed") && message.contains("allowed_hosts"),
        "{message}"
    );
    assert_eq!(api.requests(), 0, "no request left the sandbox");
}

/// An instance of `py-resolver` creates 14 core instances, so it takes two of the engine's
/// slots (a slot holds 8): where the address space leaves the engine few slots, calls beyond
/// what they hold wait for them, instead of failing on wasmtime's limit of core instances.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_resolver_calls_wait_for_the_slots_their_instances_take() {
    let api = start_rest("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"info\"\nformat = \"json\"\n[upstreams.books]\nplugin = \"books\"\ntimeout = \"20s\"\n[plugins.books]\npath = \"{}\"\nmax_memory = \"64MiB\"\ntimeout = \"10s\"\nallowed_hosts = [\"{addr}\"]\n[plugins.books.config]\nbase_url = \"http://{addr}\"\n",
        python_plugin("py-resolver").display(),
        addr = api.addr()
    );
    write_project(dir.path(), &config, &[ONE_BOOK]);
    // 4 slots: 2 instances of this plugin at once.
    let gw = serve_with_4_plugin_slots(dir.path());
    api.set_fault(Fault::Delay(std::time::Duration::from_millis(300)));
    for reply in send_all(&gw, ONE_BOOK.1, json!({ "id": "3" }), 6).await {
        assert_eq!(reply["data"]["books_book"]["title"], "Solaris", "{reply}");
    }
}
