//! Policy plugins end to end: real components built from `plugins/`, a real gateway, real
//! upstreams. The probe plugin misbehaves on request; every misbehaviour must fail only its
//! own request, with a clear error, while the next request succeeds.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use joinery_tests::plugins::rust_plugin;
use serde_json::{json, Value};

use crate::harness::{default_config, send_all, serve_with_4_plugin_slots, Gateway, COUNTRY};

const SECRET: &str = "test-secret-do-not-use-in-production";

/// `$code` is filled by the JWT policy from the token's `sub` claim.
const MY_COUNTRY: (&str, &str) = (
    "my-country.graphql",
    "query MyCountry($code: ID! @internal) { countries_country(code: $code) { code name } }",
);

const WEATHER: (&str, &str) = (
    "weather.graphql",
    "query CityWeather($name: String!) { weather_getCityByName(name: $name) { name } }",
);

fn token(claims: Value, secret: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{header}.{payload}.{signature}")
}

fn jwt_config(countries: &str, weather: &str) -> String {
    format!(
        r#"{}
policies = []

[policy]
plugins = ["auth"]

[plugins.auth]
path = "{jwt}"
secrets = ["JOINERY_TEST_JWT_SECRET"]
[plugins.auth.config]
secret = "JOINERY_TEST_JWT_SECRET"
claim = "sub"
variable = "code"

[plugins.weather-key]
path = "{jwt}"
[plugins.weather-key.config]
upstream_headers = {{ "x-plugin-key" = "weather-only" }}
"#,
        default_config(countries, weather).replace(
            "headers = { \"x-api-key\" = \"k-123\" }",
            "headers = { \"x-api-key\" = \"k-123\" }\npolicies = [\"weather-key\"]"
        ),
        jwt = rust_plugin("jwt-policy").display(),
    )
    .replacen("policies = []\n", "", 1)
}

async fn jwt_gateway() -> Gateway {
    Gateway::start_with(&[MY_COUNTRY, WEATHER], jwt_config).await
}

async fn run_with_token(
    gw: &Gateway,
    name: &str,
    variables: Value,
    token: Option<&str>,
) -> crate::harness::Reply {
    let mut request = gw.client.post(&gw.url).json(&json!({
        "documentId": format!("sha256:{}", gw.hash(name)),
        "operationName": name,
        "variables": variables,
    }));
    if let Some(t) = token {
        request = request.header("authorization", format!("Bearer {t}"));
    }
    gw.send(request).await
}

#[tokio::test]
async fn jwt_policy_fills_an_internal_variable_from_a_verified_claim() {
    let gw = jwt_gateway().await;
    let good = token(json!({ "sub": "FR", "exp": 4_000_000_000u64 }), SECRET);
    let reply = run_with_token(&gw, "MyCountry", json!({}), Some(&good)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["data"]["countries_country"],
        json!({ "code": "FR", "name": "France" })
    );
    assert!(reply.body.get("errors").is_none(), "{}", reply.body);

    let other = token(json!({ "sub": "DE" }), SECRET);
    let reply = run_with_token(&gw, "MyCountry", json!({}), Some(&other)).await;
    assert_eq!(reply.body["data"]["countries_country"]["code"], "DE");
}

#[tokio::test]
async fn jwt_policy_denies_missing_forged_and_expired_tokens() {
    let gw = jwt_gateway().await;
    let cases = [
        (
            None,
            "an `Authorization: Bearer <token>` header is required",
        ),
        (
            Some(token(json!({ "sub": "FR" }), "wrong-secret")),
            "the token's signature does not verify",
        ),
        (
            Some(token(json!({ "sub": "FR", "exp": 1_000u64 }), SECRET)),
            "the token has expired",
        ),
        (Some("not-a-jwt".to_string()), "the token is not a JWT"),
    ];
    for (t, message) in cases {
        let reply = run_with_token(&gw, "MyCountry", json!({}), t.as_deref()).await;
        assert_eq!(reply.status, 401, "{}", reply.body);
        assert_eq!(reply.code(), "UNAUTHENTICATED");
        assert_eq!(reply.body["errors"][0]["message"], message);
        assert!(reply.body.get("data").is_none());
    }
    assert_eq!(
        gw.countries.requests(),
        0,
        "a denied request reaches no upstream"
    );
}

#[tokio::test]
async fn clients_cannot_set_a_variable_a_policy_fills() {
    let gw = jwt_gateway().await;
    let good = token(json!({ "sub": "FR" }), SECRET);
    let reply = run_with_token(&gw, "MyCountry", json!({ "code": "DE" }), Some(&good)).await;
    assert_eq!(reply.code(), "INVALID_VARIABLES");
    assert!(reply.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("`$code` is internal"));
    assert_eq!(gw.countries.requests(), 0);
}

#[tokio::test]
async fn an_upstream_policy_adds_its_header_to_that_upstream_only() {
    let gw = jwt_gateway().await;
    let good = token(json!({ "sub": "FR" }), SECRET);
    let reply = run_with_token(&gw, "CityWeather", json!({ "name": "Paris" }), Some(&good)).await;
    assert!(reply.body.get("errors").is_none(), "{}", reply.body);
    let reply = run_with_token(&gw, "MyCountry", json!({}), Some(&good)).await;
    assert!(reply.body.get("errors").is_none(), "{}", reply.body);

    let weather = gw.weather.received_headers();
    assert_eq!(weather.len(), 1);
    assert_eq!(weather[0]["x-plugin-key"], "weather-only");
    assert_eq!(weather[0]["x-api-key"], "k-123", "configured headers stay");
    let countries = gw.countries.received_headers();
    assert_eq!(countries.len(), 1);
    assert!(countries[0].get("x-plugin-key").is_none());
}

fn probe_config(countries: &str, weather: &str) -> String {
    let port = countries
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    format!(
        r#"{}
[policy]
plugins = ["probe"]

[plugins.probe]
path = "{}"
timeout = "200ms"
max_memory = "16MiB"
allowed_hosts = ["{port}"]
"#,
        default_config(countries, weather),
        rust_plugin("probe").display(),
    )
}

async fn probe(gw: &Gateway, mode: &str, arg: &str) -> crate::harness::Reply {
    probe_with(gw, &[("x-probe", mode), ("x-probe-arg", arg)]).await
}

/// The Country operation with these request headers (a name may come twice).
async fn probe_with(gw: &Gateway, headers: &[(&str, &str)]) -> crate::harness::Reply {
    let request = headers
        .iter()
        .fold(gw.client.post(&gw.url), |r, (n, v)| r.header(*n, *v))
        .json(&json!({
            "documentId": format!("sha256:{}", gw.hash("Country")),
            "variables": { "code": "FR" },
        }));
    gw.send(request).await
}

/// After any failure the gateway and the plugin keep serving.
async fn still_serving(gw: &Gateway) {
    let reply = probe(gw, "ok", "").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["countries_country"]["name"], "France");
}

#[tokio::test]
async fn a_policy_grant_adds_headers_to_upstream_requests() {
    let gw = Gateway::start_with(&[COUNTRY], probe_config).await;
    still_serving(&gw).await;
    let headers = gw.countries.received_headers();
    assert_eq!(headers[0]["x-probe-seen"], "Country");
}

#[tokio::test]
async fn hostile_plugins_fail_only_their_request() {
    let gw = Gateway::start_with(&[COUNTRY], probe_config).await;
    let cases = [
        ("loop", "PLUGIN_TIMEOUT", 504, "did not finish within 200ms"),
        (
            "sleep",
            "PLUGIN_TIMEOUT",
            504,
            "did not finish within 200ms",
        ),
        (
            "memory",
            "PLUGIN_FAILED",
            500,
            "it exceeded its memory limit: it asked for ",
        ),
        ("stack", "PLUGIN_FAILED", 500, "overflowed its stack"),
        ("trap", "PLUGIN_FAILED", 500, "panic or abort"),
        ("exit", "PLUGIN_FAILED", 500, "it exited (status 1)"),
        ("big-output", "PLUGIN_FAILED", 500, "exceeds the 1 MiB"),
        ("bad-denial", "PLUGIN_FAILED", 500, "not in 400..=599"),
    ];
    for (mode, code, status, message) in cases {
        let started = std::time::Instant::now();
        let reply = probe(&gw, mode, "").await;
        // Stopped at its limits, not when it gives up (the sleep would last 30 s).
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "{mode} took {:?}",
            started.elapsed()
        );
        assert_eq!(reply.code(), code, "{mode}: {}", reply.body);
        assert_eq!(reply.status, status, "{mode}");
        let text = reply.body["errors"][0]["message"].as_str().unwrap();
        assert!(
            text.contains("plugin `probe`") && text.contains(message),
            "{mode}: {text}"
        );
        still_serving(&gw).await;
    }
    assert_eq!(
        gw.countries.requests(),
        cases.len(),
        "only the healthy requests reached the upstream"
    );
}

#[tokio::test]
async fn plugins_cannot_set_headers_the_gateway_owns_nor_flood_clients() {
    let gw = Gateway::start_with(&[COUNTRY], probe_config).await;
    for header in [
        "content-length=1",
        "host=evil.example",
        "transfer-encoding=chunked",
        "expect=100-continue",
    ] {
        let reply = probe(&gw, "set-header", header).await;
        assert_eq!(
            (reply.status, reply.code()),
            (500, "PLUGIN_FAILED"),
            "{header}: {}",
            reply.body
        );
        let name = header.split('=').next().unwrap();
        let text = reply.body["errors"][0]["message"].as_str().unwrap();
        assert!(
            text.contains(&format!("header `{name}`, which the gateway sets itself")),
            "{text}"
        );
    }
    assert_eq!(gw.countries.requests(), 0, "no such request was sent");
    let reply = probe(&gw, "set-header", "x-tenant=7").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(gw.countries.received_headers()[0]["x-tenant"], "7");

    // A 100 KB denial message reaches the client cut to about 1 KiB.
    let reply = probe(&gw, "long-denial", "").await;
    assert_eq!((reply.status, reply.code()), (403, "TOO_CHATTY"));
    let text = reply.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        text.len() < 1100 && text.ends_with("… (cut)"),
        "{}",
        text.len()
    );
}

#[tokio::test]
async fn the_sandbox_has_no_files_environment_or_sockets() {
    let gw = Gateway::start_with(&[COUNTRY], probe_config).await;
    let secret_file = gw.dir.path().join("joinery.toml");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    for (mode, arg) in [
        ("file", "/etc/passwd"),
        ("file", secret_file.to_str().unwrap()),
        ("env", ""),
        ("socket", addr.as_str()),
    ] {
        let reply = probe(&gw, mode, arg).await;
        assert_eq!(reply.status, 418, "{mode}: {}", reply.body);
        assert_eq!(reply.code(), "SANDBOX_HELD", "{mode} {arg}: {}", reply.body);
    }
    assert!(
        listener.accept().is_err(),
        "the plugin's socket never connected"
    );
    still_serving(&gw).await;
}

#[tokio::test]
async fn outbound_http_reaches_only_the_granted_hosts() {
    let gw = Gateway::start_with(&[COUNTRY], probe_config).await;
    let reply = probe(&gw, "fetch", &gw.countries.url()).await;
    assert_eq!(reply.code(), "FETCHED", "{}", reply.body);
    let message = reply.body["errors"][0]["message"].as_str().unwrap();
    // Only the response header it asked for (any case) comes back.
    assert!(
        message.starts_with(r#"200 [("content-type", "application/json")] "#)
            && message.contains("__typename"),
        "{message}"
    );
    assert_eq!(gw.countries.requests(), 1, "the granted host was called");

    for url in [
        gw.weather.url(),
        "http://localhost:1/".to_string(),
        "file:///etc/passwd".to_string(),
    ] {
        let reply = probe(&gw, "fetch", &url).await;
        assert_eq!(reply.code(), "FETCH_REFUSED", "{url}: {}", reply.body);
        assert!(
            reply.body["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("HostNotAllowed"),
            "{}",
            reply.body
        );
    }
    assert_eq!(
        gw.weather.requests(),
        0,
        "the unlisted host was never called"
    );
}

fn plugin_project(dir: &std::path::Path, path: &std::path::Path) -> joinery::config::Config {
    let text = format!(
        "[upstreams.countries]\nurl = \"http://127.0.0.1:9/graphql\"\n\n[plugins.probe]\npath = \"{}\"\n",
        path.display()
    );
    let file = dir.join("joinery.toml");
    std::fs::write(&file, &text).unwrap();
    joinery::config::Config::load(&file).unwrap()
}

#[test]
fn compiled_plugins_are_cached_and_corrupt_entries_are_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let config = plugin_project(dir.path(), &rust_plugin("probe"));
    let cache = dir.path().join("cache");
    let load = || {
        let (_, loaded) =
            joinery::plugin::Plugins::load(config.plugins_with_uses(), Some(cache.clone()))
                .unwrap();
        loaded[0].cached
    };
    assert!(!load(), "the first load compiles");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(entries.len(), 1, "one compiled entry: {entries:?}");
    assert!(entries[0].extension().is_some_and(|e| e == "cwasm"));
    let first = entries[0].clone();
    assert!(load(), "a restart loads the compiled form");

    let data = std::fs::read(&entries[0]).unwrap();
    std::fs::write(&entries[0], &data[..data.len() / 2]).unwrap();
    assert!(!load(), "a truncated entry is not loaded but recompiled");
    assert!(load(), "and rewritten");

    // An intact entry under another component's key is not that component's compiled form.
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = plugin_project(&other_dir, &rust_plugin("jwt-policy"));
    let (_, loaded) =
        joinery::plugin::Plugins::load(other.plugins_with_uses(), Some(cache.clone())).unwrap();
    assert!(!loaded[0].cached);
    let mut entries: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    entries.sort();
    assert_eq!(entries.len(), 2, "{entries:?}");
    let jwt_entry = if entries[0] == first {
        &entries[1]
    } else {
        &entries[0]
    };
    std::fs::copy(&first, jwt_entry).unwrap();
    let (plugins, loaded) =
        joinery::plugin::Plugins::load(other.plugins_with_uses(), Some(cache.clone())).unwrap();
    assert!(
        !loaded[0].cached,
        "the swapped entry is refused and recompiled"
    );
    assert!(plugins.policy("probe").is_some());
}

#[test]
fn plugins_that_cannot_load_are_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm not really").unwrap();
    // What a C compiler makes: a core module (the smallest there is).
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let cases = [
        (dir.path().join("missing.wasm"), "cannot read the component"),
        (garbage, "not a loadable WebAssembly component"),
        (
            core,
            "it is a core WebAssembly module, not a component: build it for wasm32-wasip2, or make a component of a wasm32-wasi (preview 1) module with `joinery plugin componentize`",
        ),
        (
            rust_plugin("not-a-policy"),
            "does not export `joinery:plugin/policy@0.2.0` (its exports: wasi:cli/run@",
        ),
        (
            rust_plugin("other-wit-version"),
            "it was built against WIT `joinery:plugin/policy@0.1.0`, but this gateway implements `joinery:plugin/policy@0.2.0`: rebuild it against wit/ of this gateway",
        ),
    ];
    for (path, message) in cases {
        let config = plugin_project(dir.path(), &path);
        let errors = joinery::plugin::Plugins::load(config.plugins_with_uses(), None).unwrap_err();
        assert_eq!(errors.len(), 1);
        let text = errors[0].to_string();
        // Said where the config names the component.
        let written = format!("{}:5:8: plugin `probe` (", config.path.display());
        assert!(text.starts_with(&written), "{text}");
        assert!(text.contains(message), "{text}");
    }
}

#[tokio::test]
async fn an_upstream_hook_denies_or_fails_only_that_upstreams_fields() {
    let config = |c: &str, w: &str| {
        probe_config(c, w).replace(
            "timeout = \"2s\"\nforward_headers",
            "timeout = \"2s\"\npolicies = [\"probe\"]\nforward_headers",
        )
    };
    let gw = Gateway::start_with(&[COUNTRY], config).await;
    let reply = probe(&gw, "upstream", "deny").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["data"]["countries_country"],
        Value::Null,
        "{:?}",
        gw.countries.received_headers()
    );
    assert_eq!(reply.code(), "POLICY_DENIED", "{}", reply.body);
    let message = reply.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("NO_UPSTREAM") && message.contains("countries is off limits"),
        "{message}"
    );
    assert_eq!(
        reply.body["errors"][0]["path"],
        json!(["countries_country"])
    );

    let reply = probe(&gw, "upstream", "trap").await;
    assert_eq!(reply.body["data"]["countries_country"], Value::Null);
    assert_eq!(reply.code(), "PLUGIN_FAILED", "{}", reply.body);
    assert_eq!(
        gw.countries.requests(),
        0,
        "neither request reached the upstream"
    );

    let reply = probe(&gw, "upstream", "pass").await;
    assert_eq!(
        reply.body["data"]["countries_country"]["name"], "France",
        "{}",
        reply.body
    );
    let headers = gw.countries.received_headers();
    assert!(
        headers[0].get("x-probe-upstream").is_none(),
        "the hook removed the header"
    );
}

#[tokio::test]
async fn an_upstream_response_hook_keeps_rewrites_or_refuses_answers() {
    let config = |c: &str, w: &str| {
        probe_config(c, w).replace(
            "timeout = \"2s\"\nforward_headers",
            "timeout = \"2s\"\npolicies = [\"probe\"]\nforward_headers",
        )
    };
    let gw = Gateway::start_with(&[COUNTRY], config).await;
    // The probe's response hook acts on markers in the answer: France is renamed to each.
    let rename = |name: &'static str| {
        let client = gw.client.clone();
        let url = gw.countries.url();
        async move {
            let body = json!({ "query": format!("mutation {{ renameCountry(code: \"FR\", name: \"{name}\") {{ name }} }}") });
            let reply: Value = client
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(reply["data"]["renameCountry"]["name"], name, "{reply}");
        }
    };

    rename("PROBE_REWRITE_RESPONSE").await;
    let reply = probe(&gw, "ok", "").await;
    assert_eq!(
        reply.body["data"]["countries_country"]["name"], "rewritten (status 200)",
        "{}",
        reply.body
    );

    rename("PROBE_DENY_RESPONSE").await;
    let reply = probe(&gw, "ok", "").await;
    assert_eq!(
        reply.body["data"]["countries_country"],
        Value::Null,
        "{}",
        reply.body
    );
    assert_eq!(reply.code(), "POLICY_DENIED", "{}", reply.body);
    assert_eq!(
        reply.body["errors"][0]["path"],
        json!(["countries_country"])
    );
    let message = reply.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("RESPONSE_REFUSED")
            && message.contains("countries answered something off limits"),
        "{message}"
    );

    rename("PROBE_TRAP_RESPONSE").await;
    let reply = probe(&gw, "ok", "").await;
    assert_eq!(reply.body["data"]["countries_country"], Value::Null);
    assert_eq!(reply.code(), "PLUGIN_FAILED", "{}", reply.body);

    // A replacement that is not a GraphQL response is checked like any upstream answer.
    rename("PROBE_BAD_RESPONSE").await;
    let reply = probe(&gw, "ok", "").await;
    assert_eq!(reply.body["data"]["countries_country"], Value::Null);
    assert_eq!(reply.code(), "UPSTREAM_BAD_RESPONSE", "{}", reply.body);

    rename("France").await;
    still_serving(&gw).await;
}

#[test]
fn a_memory_limit_below_the_plugins_initial_memory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = plugin_project(dir.path(), &rust_plugin("jwt-policy"));
    config.plugins["probe"].max_memory = 1 << 20;
    let errors = joinery::plugin::Plugins::load(config.plugins_with_uses(), None).unwrap_err();
    let text = errors[0].to_string();
    assert!(
        text.contains(
            "its memory starts at 1.1 MiB, above its `max_memory` of 1.0 MiB: raise `max_memory`"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_memory_limit_below_the_initial_memory_is_named_when_another_plugin_has_more() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = plugin_project(dir.path(), &rust_plugin("jwt-policy"));
    config.plugins["probe"].max_memory = 1 << 20;
    let mut roomy = config.plugins["probe"].clone();
    roomy.name = "roomy".into();
    roomy.max_memory = 64 << 20;
    config.plugins.insert("roomy".into(), roomy);
    let text = match joinery::plugin::Plugins::load(config.plugins_with_uses(), None) {
        Err(errors) => errors[0].to_string(),
        Ok((plugins, _)) => plugins.prewarm(1).await.unwrap_err().to_string(),
    };
    assert!(
        text.contains("plugin `probe`")
            && text.contains("its memory starts at 1.1 MiB, above its `max_memory` of 1.0 MiB: raise `max_memory`"),
        "{text}"
    );
}

#[tokio::test]
async fn a_plugin_sees_only_its_visible_headers() {
    async fn shown(gw: &Gateway) -> String {
        let headers = [
            ("x-probe", "headers"),
            ("authorization", "Bearer secret"),
            ("cookie", "session=1"),
        ];
        let reply = probe_with(gw, &headers).await;
        assert_eq!(reply.status, 403, "{}", reply.body);
        reply.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_string()
    }
    // By default, every client header.
    let gw = Gateway::start_with(&[COUNTRY], probe_config).await;
    let all = shown(&gw).await;
    for name in ["authorization", "cookie", "x-probe", "content-type"] {
        assert!(all.contains(name), "{all}");
    }

    let gw = Gateway::start_with(&[COUNTRY], |countries, weather| {
        probe_config(countries, weather).replace(
            "max_memory = \"16MiB\"",
            "max_memory = \"16MiB\"\nvisible_headers = [\"X-Probe\", \"x-probe-arg\", \"authorization\"]",
        )
    })
    .await;
    assert_eq!(shown(&gw).await, "authorization,x-probe");
    // The upstream hook too: the header that would make it deny is not shown to it.
    let reply = probe(&gw, "upstream", "deny").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["countries_country"]["name"], "France");
}

/// A plugin reads headers on demand: `get` takes a name in any case and joins a repeated
/// header's values, `get-all` lists them, and neither shows a header `visible_headers` hides.
#[tokio::test]
async fn a_plugin_reads_the_headers_it_asks_for() {
    async fn read(gw: &Gateway, name: &str) -> String {
        let headers = [
            ("x-probe", "header"),
            ("x-probe-arg", name),
            ("x-tenant", "north"),
            ("x-tenant", "south"),
            ("cookie", "session=1"),
        ];
        let reply = probe_with(gw, &headers).await;
        assert_eq!(reply.status, 403, "{}", reply.body);
        assert_eq!(reply.code(), "HEADER_SEEN", "{}", reply.body);
        reply.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .to_string()
    }
    let gw = Gateway::start_with(&[COUNTRY], probe_config).await;
    assert_eq!(
        read(&gw, "X-Tenant").await,
        r#"Some("north, south") ["north", "south"]"#
    );
    assert_eq!(
        read(&gw, "cookie").await,
        r#"Some("session=1") ["session=1"]"#
    );
    assert_eq!(read(&gw, "x-absent").await, "None []");

    let gw = Gateway::start_with(&[COUNTRY], |countries, weather| {
        probe_config(countries, weather).replace(
            "max_memory = \"16MiB\"",
            "max_memory = \"16MiB\"\nvisible_headers = [\"x-probe\", \"x-probe-arg\", \"x-tenant\"]",
        )
    })
    .await;
    assert_eq!(read(&gw, "cookie").await, "None []");
    assert_eq!(
        read(&gw, "x-tenant").await,
        r#"Some("north, south") ["north", "south"]"#
    );
}

/// The headers lent for a call are taken back when it returns: an instance serves more calls
/// than it may hold handles (4096) without running out.
#[tokio::test]
async fn lent_headers_are_taken_back_after_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let config = plugin_project(dir.path(), &rust_plugin("probe"));
    let (plugins, _) = joinery::plugin::Plugins::load(config.plugins_with_uses(), None).unwrap();
    let probe = plugins.policy("probe").unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", "Bearer x".parse().unwrap());
    let headers = std::sync::Arc::new(headers);
    for call in 0..5000 {
        let decision = probe
            .on_request("Country", "h", headers.clone(), "{}")
            .await;
        assert!(decision.is_ok(), "call {call}: {decision:?}");
    }
}

/// WIT versions link as semver: a plugin built against a later release of the same series
/// (`0.2.1` here, the gateway implements `0.2.0`) loads, says which version it was built
/// against, and is called; another series (`0.1.0`) is refused (see the test above).
#[tokio::test]
async fn a_plugin_built_against_a_compatible_wit_release_is_loaded_and_called() {
    let dir = tempfile::tempdir().unwrap();
    let config = plugin_project(dir.path(), &rust_plugin("newer-wit-patch"));
    let (_, loaded) = joinery::plugin::Plugins::load(config.plugins_with_uses(), None).unwrap();
    assert_eq!(loaded[0].version, "0.2.1");
    assert_eq!(loaded[0].world, "policy-plugin");

    let path = rust_plugin("newer-wit-patch");
    let gw = Gateway::start_with(&[COUNTRY], |countries, weather| {
        format!(
            "{}\n[policy]\nplugins = [\"newer\"]\n\n[plugins.newer]\npath = \"{}\"\n",
            default_config(countries, weather),
            path.display()
        )
    })
    .await;
    let reply = gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["message"], "called for Country");
}

/// `joinery plugin call`: each hook called from JSON input, without a gateway.
#[tokio::test]
async fn plugin_call_runs_one_hook_from_json_input() {
    use joinery::plugin_call::{call, Hook};
    let products = joinery_tests::start_rest("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[upstreams.countries]\nurl = \"http://127.0.0.1:9/graphql\"\n\n[plugins.probe]\npath = \"{}\"\n\n[plugins.shop]\npath = \"{}\"\nallowed_hosts = [\"{}\"]\n[plugins.shop.config]\nbase_url = \"http://{}\"\n",
        rust_plugin("probe").display(),
        rust_plugin("rest-resolver").display(),
        products.addr(),
        products.addr(),
    );
    let file = dir.path().join("joinery.toml");
    std::fs::write(&file, &text).unwrap();
    let config = joinery::config::Config::load(&file).unwrap();
    let plugins = joinery::project::load_plugins(&config).unwrap();

    let called = call(
        &plugins,
        "probe",
        Hook::Request,
        r#"{"operation_name": "Country", "headers": {"X-Probe": "headers", "cookie": "a=1"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        called.answer,
        json!({ "deny": { "status": 403, "code": "HEADERS_SEEN", "message": "cookie,x-probe" } })
    );
    let (peak, max) = called.memory;
    assert!(peak > 0 && peak <= max && max == 16 << 20, "{peak} {max}");

    let called = call(
        &plugins,
        "probe",
        Hook::UpstreamRequest,
        r#"{"namespace": "countries", "headers": {"x-probe-upstream": "deny"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(called.answer["deny"]["code"], "NO_UPSTREAM");
    let called = call(
        &plugins,
        "probe",
        Hook::UpstreamResponse,
        r#"{"namespace": "countries", "status": 201, "body": {"data": {"x": "PROBE_REWRITE_RESPONSE"}}}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        called.answer,
        json!({ "replace": r#"{"data":{"x":"rewritten (status 201)"}}"# })
    );

    let called = call(
        &plugins,
        "shop",
        Hook::Resolve,
        r#"{"query": "query P($id: ID!) { product(id: $id) { name } }", "variables": {"id": "3"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        called.answer,
        json!({ "data": { "product": { "name": "Chef's knife" } } })
    );

    // Mistakes say what is wrong.
    let wrong = |hook, input: &'static str, name: &'static str| {
        let plugins = &plugins;
        async move {
            call(plugins, name, hook, input)
                .await
                .unwrap_err()
                .to_string()
        }
    };
    let e = wrong(Hook::Request, r#"{"header": {}}"#, "probe").await;
    assert!(
        e.contains("the input is not what `--hook request` takes: unknown field `header`"),
        "{e}"
    );
    let e = wrong(Hook::Resolve, "{}", "probe").await;
    assert_eq!(e, "no resolver plugin named `probe` is configured");
    let e = wrong(Hook::Request, "{}", "shop").await;
    assert_eq!(e, "no policy plugin named `shop` is configured");
    let e = wrong(Hook::Resolve, r#"{"query": "{ nothing }"}"#, "shop").await;
    assert!(e.contains("does not fit the plugin's schema"), "{e}");
    let e = wrong(Hook::Request, r#"{"headers": {"x probe": "1"}}"#, "probe").await;
    assert_eq!(e, "`x probe` in the input's `headers` is no header name");
    let e = wrong(
        Hook::Request,
        r#"{"headers": {"x-probe": "a\nb"}}"#,
        "probe",
    )
    .await;
    assert_eq!(
        e,
        "the value of `x-probe` in the input's `headers` is no header value"
    );
}

/// The epoch clock that stops a looping plugin sleeps while no plugin code runs (an idle
/// gateway is not woken 500 times a second, sparse calls pay a few ticks each), and wakes for
/// the next call: a loop after a long idle time is still stopped at its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_clock_sleeps_when_idle_and_still_stops_a_loop() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("operations")).unwrap();
    std::fs::write(dir.path().join("operations/country.graphql"), COUNTRY.1).unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"info\"\nformat = \"json\"\n[upstreams.countries]\nurl = \"{}\"\n[policy]\nplugins = [\"probe\"]\n[plugins.probe]\npath = \"{}\"\ntimeout = \"200ms\"\n",
        countries.url(),
        rust_plugin("probe").display()
    );
    std::fs::write(dir.path().join("joinery.toml"), config).unwrap();
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_joinery_cli"));
    joinery_tests::JoineryProcess::build(binary, dir.path()).unwrap();
    let gw = joinery_tests::ServedGateway::start(binary, dir.path(), &[]).unwrap();
    let hash = joinery::operations::hash(COUNTRY.1);
    let client = reqwest::Client::new();
    let send = |mode: &str| {
        client
            .post(&gw.url)
            .header("x-probe", mode)
            .timeout(std::time::Duration::from_secs(10))
            .json(&json!({ "documentId": format!("sha256:{hash}"), "variables": { "code": "FR" } }))
            .send()
    };
    assert_eq!(send("ok").await.unwrap().status(), 200);

    // 10 ms without calls put the clock to sleep.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let before = gw.process.switches_of("joinery-epoch");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let woken = gw.process.switches_of("joinery-epoch") - before;
    assert!(woken <= 2, "the idle clock woke {woken} times in 500 ms");

    // Sparse calls (one each 50 ms) each wake it once and let it sleep again soon after: a
    // few ticks per call, not the 25 the gap holds.
    let before = gw.process.switches_of("joinery-epoch");
    for _ in 0..10 {
        assert_eq!(send("ok").await.unwrap().status(), 200);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let woken = gw.process.switches_of("joinery-epoch") - before;
    assert!(
        woken <= 10 * 8,
        "the clock woke {woken} times for 10 sparse calls"
    );

    let started = std::time::Instant::now();
    let reply = send("loop").await.unwrap();
    let took = started.elapsed();
    assert_eq!(reply.status(), 504);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "PLUGIN_TIMEOUT",
        "{body}"
    );
    assert!(
        took < std::time::Duration::from_secs(2),
        "the loop was stopped after {took:?}"
    );
    assert_eq!(send("ok").await.unwrap().status(), 200, "still serving");
}

/// With few engine slots (a limited address space) and more plugins than half of them, no
/// plugin keeps warm instances: those of plugins not being called would hold the slots that
/// another one waits for (here, already to start).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_plugins_share_a_small_engine_without_starving_one_another() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("operations")).unwrap();
    std::fs::write(dir.path().join("operations/country.graphql"), COUNTRY.1).unwrap();
    let names = ["a", "b", "c", "d", "e"];
    let mut config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"info\"\nformat = \"json\"\n[upstreams.countries]\nurl = \"{}\"\n[policy]\nplugins = {names:?}\n",
        countries.url()
    );
    for name in names {
        config.push_str(&format!(
            "[plugins.{name}]\npath = \"{}\"\n",
            rust_plugin("allow-policy").display()
        ));
    }
    std::fs::write(dir.path().join("joinery.toml"), config).unwrap();
    // 4 slots, and 5 plugins.
    let gw = serve_with_4_plugin_slots(dir.path());
    for reply in send_all(&gw, COUNTRY.1, json!({ "code": "FR" }), 8).await {
        assert_eq!(
            reply["data"]["countries_country"]["name"], "France",
            "{reply}"
        );
    }
}
