//! Resolver plugins end to end: the Rust `rest-resolver` component adapts a REST/JSON API
//! (served on 127.0.0.1) into the `shop` namespace, next to GraphQL upstreams over HTTP.

use joinery_tests::plugins::rust_plugin;
use joinery_tests::{start_rest, Fault, Upstream};
use serde_json::{json, Value};

use crate::harness::{default_config, send_all, serve_with_4_plugin_slots, write_project, Gateway};

const PRODUCT: (&str, &str) = (
    "product.graphql",
    "query Product($id: ID!) { shop_product(id: $id) { __typename id name cents: priceCents } cheap: shop_products(limit: 2) { name } }",
);

/// Products of each country: a join from an HTTP upstream into the plugin.
const PRODUCTS_BY_COUNTRY: (&str, &str) = (
    "by-country.graphql",
    r#"query ProductsByCountry($codes: [String!], $code: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code @export(as: "code")
    _join { shop_productsIn(country: $code) { name } }
  }
}"#,
);

/// The country of each product: a join from the plugin into an HTTP upstream.
const MADE_IN: (&str, &str) = (
    "made-in.graphql",
    r#"query MadeIn($country: String!, $code: ID! @internal) {
  shop_productsIn(country: $country) {
    name
    country @export(as: "code")
    _join { countries_country(code: $code) { name } }
  }
}"#,
);

/// A plugin field next to an HTTP one: a failure of one leaves the other intact.
const MIXED: (&str, &str) = (
    "mixed.graphql",
    r#"query Mixed { shop_product(id: "2") { name } countries_country(code: "FR") { name } }"#,
);

fn config(products: &Upstream, allowed: bool, timeout: &str) -> impl Fn(&str, &str) -> String {
    let base = format!("http://{}", products.addr());
    let allowed = if allowed {
        format!("allowed_hosts = [\"{}\"]", products.addr())
    } else {
        String::new()
    };
    let path = rust_plugin("rest-resolver");
    let timeout = timeout.to_string();
    move |countries, weather| {
        format!(
            r#"{}
[upstreams.shop]
plugin = "shop"

[plugins.shop]
path = "{}"
timeout = "{timeout}"
{allowed}
[plugins.shop.config]
base_url = "{base}"
"#,
            default_config(countries, weather),
            path.display()
        )
    }
}

async fn start(products: &Upstream, allowed: bool) -> Gateway {
    let ops = [PRODUCT, PRODUCTS_BY_COUNTRY, MADE_IN, MIXED];
    let gateway = Gateway::start_with(&ops, config(products, allowed, "2s")).await;
    products.reset();
    gateway
}

#[tokio::test]
async fn a_resolver_plugin_is_a_namespaced_upstream() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let gateway = start(&products, true).await;

    let reply = gateway.run("Product", json!({ "id": "3" })).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Aliases applied, `__typename` namespaced, fields the API sent but nobody selected dropped,
    // the argument default (limit 10) replaced by the given 2.
    assert_eq!(
        reply.body,
        json!({ "data": {
            "shop_product": { "__typename": "shop_Product", "id": "3", "name": "Chef's knife", "cents": 8900 },
            "cheap": [{ "name": "Espresso cup" }, { "name": "Bread knife" }],
        } })
    );
    let uris: Vec<Value> = products
        .received()
        .iter()
        .map(|r| r["uri"].clone())
        .collect();
    assert_eq!(uris, vec![json!("/products?ids=3"), json!("/products")]);

    let missing = gateway.run("Product", json!({ "id": "404" })).await;
    assert_eq!(
        missing.body["data"]["shop_product"],
        Value::Null,
        "{}",
        missing.body
    );
    assert!(missing.body.get("errors").is_none(), "{}", missing.body);
}

#[tokio::test]
async fn joins_into_a_resolver_plugin_are_one_plugin_call_and_one_rest_call() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let gateway = start(&products, true).await;
    let reply = gateway
        .run(
            "ProductsByCountry",
            json!({ "codes": ["FR", "JP", "DE", "US"] }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let names = |code: &str| -> Vec<Value> {
        reply.body["data"]["countries_countries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["code"] == code)
            .unwrap_or_else(|| panic!("no {code} in {}", reply.body))["_join"]["shop_productsIn"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].clone())
            .collect()
    };
    assert_eq!(
        names("FR"),
        vec![json!("Cast-iron pan"), json!("Copper pot")]
    );
    assert_eq!(
        names("JP"),
        vec![json!("Chef's knife"), json!("Tea kettle")]
    );
    assert_eq!(names("DE"), vec![json!("Bread knife")]);
    assert_eq!(names("US"), Vec::<Value>::new());
    // Four joined items: the plugin got them in one call, and made one REST request.
    let received = products.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["uri"], "/products?country=DE,FR,JP,US");
}

#[tokio::test]
async fn joins_out_of_a_resolver_plugin_are_batched() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let gateway = start(&products, true).await;
    let reply = gateway.run("MadeIn", json!({ "country": "FR" })).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["data"]["shop_productsIn"],
        json!([
            { "name": "Cast-iron pan", "country": "FR", "_join": { "countries_country": { "name": "France" } } },
            { "name": "Copper pot", "country": "FR", "_join": { "countries_country": { "name": "France" } } },
        ])
    );
    assert_eq!(gateway.countries.requests(), 1);
}

#[tokio::test]
async fn plugin_errors_reach_the_client_at_the_field_path() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let gateway = start(&products, true).await;

    products.set_fault(Fault::Status(500));
    let reply = gateway.run("Mixed", json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["data"]["shop_product"], Value::Null);
    assert_eq!(reply.body["data"]["countries_country"]["name"], "France");
    let error = &reply.body["errors"][0];
    assert_eq!(error["path"], json!(["shop_product"]), "{}", reply.body);
    assert_eq!(error["extensions"]["code"], "REST_STATUS");
    assert_eq!(error["extensions"]["upstream"], "shop");
    assert!(
        error["message"].as_str().unwrap().contains("HTTP 500"),
        "{}",
        reply.body
    );

    products.set_fault(Fault::None);
    let reply = gateway.run("Mixed", json!({})).await;
    assert_eq!(
        reply.body["data"]["shop_product"]["name"], "Cast-iron pan",
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn a_resolver_plugin_reaches_only_its_allowed_hosts() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let gateway = start(&products, false).await;
    let reply = gateway.run("Mixed", json!({})).await;
    assert_eq!(
        reply.body["data"]["shop_product"],
        Value::Null,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["data"]["countries_country"]["name"], "France");
    assert_eq!(reply.code(), "REST_REFUSED", "{}", reply.body);
    assert_eq!(products.requests(), 0);
}

#[tokio::test]
async fn a_slow_resolver_call_times_out_and_the_next_succeeds() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let ops = [MIXED];
    let gateway = Gateway::start_with(&ops, config(&products, true, "150ms")).await;
    products.set_fault(Fault::Delay(std::time::Duration::from_millis(600)));
    let reply = gateway.run("Mixed", json!({})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["data"]["shop_product"],
        Value::Null,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["data"]["countries_country"]["name"], "France");
    assert_eq!(reply.code(), "PLUGIN_TIMEOUT", "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["path"], json!(["shop_product"]));
    // The plugin ran and failed: the message says so (not that nothing was sent).
    let message = reply.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.starts_with("the resolver plugin of upstream `shop` failed"),
        "{message}"
    );

    products.set_fault(Fault::None);
    let reply = gateway.run("Mixed", json!({})).await;
    assert_eq!(
        reply.body["data"]["shop_product"]["name"], "Cast-iron pan",
        "{}",
        reply.body
    );
}

#[tokio::test]
async fn upstream_policies_apply_to_resolver_plugins() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let probe = rust_plugin("probe");
    let base = config(&products, true, "2s");
    let with_policy = move |c: &str, w: &str| {
        base(c, w).replace(
            "plugin = \"shop\"\n",
            &format!(
                "plugin = \"shop\"\nforward_headers = [\"x-probe-upstream\"]\npolicies = [\"probe\"]\n\n[plugins.probe]\npath = \"{}\"\n",
                probe.display()
            ),
        )
    };
    let gateway = Gateway::start_with(&[MIXED], with_policy).await;
    let run = |mode: &'static str| {
        let request = gateway
            .client
            .post(&gateway.url)
            .header("x-probe-upstream", mode)
            .json(&json!({ "documentId": format!("sha256:{}", gateway.hash("Mixed")) }));
        gateway.send(request)
    };
    let reply = run("deny").await;
    assert_eq!(
        reply.body["data"]["shop_product"],
        Value::Null,
        "{}",
        reply.body
    );
    assert_eq!(reply.body["data"]["countries_country"]["name"], "France");
    assert_eq!(reply.code(), "POLICY_DENIED", "{}", reply.body);
    assert_eq!(reply.body["errors"][0]["path"], json!(["shop_product"]));

    // Passed: the request hook ran, then the response hook saw the plugin's answer and kept it.
    let reply = run("pass").await;
    assert_eq!(
        reply.body["data"]["shop_product"]["name"], "Cast-iron pan",
        "{}",
        reply.body
    );
    assert!(reply.body.get("errors").is_none(), "{}", reply.body);
}

#[tokio::test]
async fn serve_refuses_a_plugin_whose_schema_changed_since_the_build() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let weather = joinery_tests::start_weather("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = config(&products, true, "2s")(&countries.url(), &weather.url());
    let path = write_project(dir.path(), &text, &[MIXED]);
    let config = joinery::config::Config::load(&path).unwrap();
    joinery::project::build(&config, true).await.unwrap();
    joinery::project::gateway(&config).await.unwrap();

    // The manifest holds the schema the operations were checked against; a plugin giving
    // another one must not be served with it.
    let manifest_path = &config.operations.manifest;
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(manifest_path).unwrap()).unwrap();
    let shop = manifest["upstreams"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|u| u["namespace"] == "shop")
        .unwrap();
    shop["sdl"] = Value::from(format!("{}\n", shop["sdl"].as_str().unwrap()));
    std::fs::write(manifest_path, manifest.to_string()).unwrap();
    let err = joinery::project::gateway(&config)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("upstream `shop`: resolver plugin `shop` gives another schema than the manifest was built with; run `joinery build`"),
        "{err}"
    );
}

#[tokio::test]
async fn a_plugin_used_for_the_wrong_world_is_refused_at_load() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{}\n[policy]\nplugins = [\"shop\"]\n",
        config(&products, true, "2s")("http://127.0.0.1:1/graphql", "http://127.0.0.1:1/graphql")
    );
    let path = write_project(dir.path(), &text, &[]);
    let config = joinery::config::Config::load(&path).unwrap();
    let err = joinery::project::load_plugins(&config)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("plugin `shop`") && err.contains("[policy] plugins needs a component of the `policy-plugin` world, but it is built for the `resolver-plugin` world"),
        "{err}"
    );
}

/// Each product joined with itself again by id: a join into the plugin's `product(id:)`, whose
/// batch form `productsByIds(ids:)` answers in any order and leaves unknown ids out.
const AGAIN: (&str, &str) = (
    "again.graphql",
    r#"query Again($pid: ID! @internal) {
  shop_products(limit: 6) {
    id @export(as: "pid")
    name
    again: _join { shop_product(id: $pid) { name cents: priceCents } }
  }
}"#,
);

#[tokio::test]
async fn a_resolver_plugin_upstream_takes_a_batch_form() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let base = config(&products, true, "2s");
    let gateway = Gateway::start_with(&[AGAIN], move |countries, weather| {
        format!(
            "{}\n[upstreams.shop.batch.product]\nfield = \"productsByIds\"\nargument = \"ids\"\nkey = \"id\"\n",
            base(countries, weather)
        )
    })
    .await;
    products.reset();
    let reply = gateway.run("Again", json!({})).await;
    assert_eq!(reply.body.get("errors"), None, "{}", reply.body);
    let items = reply.body["data"]["shop_products"].as_array().unwrap();
    assert_eq!(items.len(), 6, "{}", reply.body);
    for item in items {
        let again = &item["again"]["shop_product"];
        assert_eq!(again["name"], item["name"], "{item}");
        assert!(again["cents"].is_number(), "{item}");
        assert_eq!(
            again.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["name", "cents"],
            "the key field is fetched, not shown: {item}"
        );
    }
    // The list, then one REST call for all six ids.
    let uris: Vec<String> = products
        .received()
        .iter()
        .map(|r| r["uri"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(uris.len(), 2, "{uris:?}");
    assert_eq!(uris[1].matches(',').count(), 5, "{uris:?}");

    let config = joinery::config::Config::load(&gateway.dir.path().join("joinery.toml")).unwrap();
    let registry =
        joinery::server::Registry::from_manifest(&gateway.running.manifest, &config).unwrap();
    let plan = registry.find_operation("Again").unwrap().to_string();
    assert!(
        plan.contains(
            "one call of `productsByIds` with every distinct key in `ids`, results matched by `id`"
        ),
        "{plan}"
    );
}

#[tokio::test]
async fn resolver_plugin_answers_are_cached_per_request_and_per_key() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let base = config(&products, true, "2s");
    let gateway = Gateway::start_with(&[PRODUCT, AGAIN], move |countries, weather| {
        format!(
            "{}\n[upstreams.shop.batch.product]\nfield = \"productsByIds\"\nargument = \"ids\"\nkey = \"id\"\n\n[upstreams.shop.cache]\nttl = \"1m\"\n",
            base(countries, weather)
        )
    })
    .await;
    products.reset();
    let first = gateway.run("Product", json!({ "id": "3" })).await;
    assert_eq!(products.requests(), 2);
    let again = gateway.run("Product", json!({ "id": "3" })).await;
    assert_eq!(products.requests(), 2, "answered from the cache");
    assert_eq!(again.body["data"], first.body["data"]);
    assert_eq!(again.body["extensions"]["cache"]["shop"]["stale"], false);

    // A join into the plugin's batch form: its items are kept per key.
    products.reset();
    let joined = gateway.run("Again", json!({})).await;
    assert_eq!(products.requests(), 2);
    let again = gateway.run("Again", json!({})).await;
    assert_eq!(
        products.requests(),
        2,
        "the list and every item from the cache"
    );
    assert_eq!(again.body["data"], joined.body["data"]);
}

#[tokio::test]
async fn identical_resolver_plugin_calls_in_flight_are_made_once_when_asked() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let base = config(&products, true, "2s");
    let gateway = Gateway::start_with(&[PRODUCT], move |countries, weather| {
        base(countries, weather).replace(
            "plugin = \"shop\"\n",
            "plugin = \"shop\"\ncoalesce = true\n",
        )
    })
    .await;
    products.reset();
    products.set_fault(Fault::Delay(std::time::Duration::from_millis(300)));
    let asks = (0..20).map(|_| gateway.run("Product", json!({ "id": "4" })));
    for reply in futures::future::join_all(asks).await {
        assert_eq!(
            reply.body["data"]["shop_product"]["id"], "4",
            "{}",
            reply.body
        );
    }
    // One plugin call, which made its two REST requests.
    assert_eq!(products.requests(), 2);

    // Off by default for plugins: each call is made.
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let gateway = start(&products, true).await;
    products.set_fault(Fault::Delay(std::time::Duration::from_millis(100)));
    let asks = (0..5).map(|_| gateway.run("Product", json!({ "id": "4" })));
    futures::future::join_all(asks).await;
    assert_eq!(products.requests(), 10);
}

/// `query One`: one `resolve` call making one REST request.
const ONE: (&str, &str) = (
    "one.graphql",
    "query One($id: ID!) { shop_product(id: $id) { id name } }",
);

/// Whether `reply` answered `One` for product 4.
fn answered(reply: &Value) -> bool {
    reply["data"]["shop_product"]["id"] == "4"
}

/// Plugin calls that wait on a slow API hold their instances: more of them at once than the
/// gateway has instances (256, all plugins together) wait for a free one instead of failing.
#[tokio::test]
async fn more_waiting_resolver_calls_than_instances_queue_instead_of_failing() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let gateway = Gateway::start_with(&[ONE], config(&products, true, "3s")).await;
    products.set_fault(Fault::Delay(std::time::Duration::from_millis(400)));
    let asks = (0..300).map(|_| gateway.run("One", json!({ "id": "4" })));
    let replies = futures::future::join_all(asks).await;
    let failed: Vec<_> = replies.iter().filter(|r| !answered(&r.body)).collect();
    assert!(
        failed.is_empty(),
        "{} of 300 failed, e.g. {}",
        failed.len(),
        failed[0].body
    );
    assert_eq!(products.requests(), 300);
}

/// Where the process's address space is limited (a container's `ulimit -v`), the plugins'
/// engine takes as few instances as fit and says so; calls beyond them wait for one to come
/// free, and one that waits longer than its `timeout` ends with `PLUGIN_TIMEOUT`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_limited_address_space_plugin_calls_wait_for_fewer_instances() {
    let products = start_rest("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"info\"\nformat = \"json\"\n[upstreams.shop]\nplugin = \"shop\"\n[plugins.shop]\npath = \"{}\"\ntimeout = \"1s\"\nallowed_hosts = [\"{addr}\"]\n[plugins.shop.config]\nbase_url = \"http://{addr}\"\n",
        rust_plugin("rest-resolver").display(),
        addr = products.addr()
    );
    write_project(dir.path(), &config, &[ONE]);
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_joinery_cli"));
    joinery_tests::JoineryProcess::build(binary, dir.path()).unwrap();
    // No room for even 4 instances: the gateway does not start, and says why.
    let limit = format!("--as={}", 16u64 << 30);
    let refused =
        joinery_tests::ServedGateway::start_under(&["prlimit", &limit, "--"], binary, dir.path());
    let log = refused.err().expect("no gateway starts").to_string();
    assert!(
        log.contains("plugins: the WebAssembly engine cannot start: it reserves about 8 GiB of address space (not memory) per plugin instance, for at least 4 instances: is the process's address space limited (`ulimit -v`)?"),
        "{log}"
    );

    // 3n calls of 600 ms at once on n = 4 slots: n answer at 600 ms and n more at 1.2 s; the
    // last n have waited 1 s (their `timeout`) by then.
    let gw = serve_with_4_plugin_slots(dir.path());
    let n = 4;
    products.reset();
    products.set_fault(Fault::Delay(std::time::Duration::from_millis(600)));
    let replies = send_all(&gw, ONE.1, json!({ "id": "4" }), 3 * n).await;
    let waited_too_long = |r: &&Value| {
        r["errors"][0]["extensions"]["code"] == "PLUGIN_TIMEOUT"
            && r["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("found no free instance within 1s"))
    };
    let ok = replies.iter().filter(|r| answered(r)).count();
    let busy = replies.iter().filter(waited_too_long).count();
    assert!(
        ok >= n && busy >= 1 && ok + busy == 3 * n,
        "{ok} answered and {busy} found no instance, of {}: {replies:#?}",
        3 * n
    );
    // The calls that found no instance never reached the API, and are counted apart.
    assert_eq!(products.requests(), ok);
    // Logged as the metrics listener starts, before or after the GraphQL one.
    let said = |l: &str| l.contains("metrics are served at ");
    let line = match gw.started.iter().find(|l| said(l)) {
        Some(line) => line.clone(),
        None => gw
            .process
            .wait_for(std::time::Duration::from_secs(5), said)
            .unwrap(),
    };
    let metrics = line
        .split("metrics are served at ")
        .nth(1)
        .and_then(|rest| rest.split(['"', ' ']).next())
        .unwrap_or_else(|| panic!("no metrics address in {line}"));
    let text = reqwest::get(metrics).await.unwrap().text().await.unwrap();
    let calls = |result: &str| {
        let sample = format!("joinery_plugin_calls_total{{plugin=\"shop\",result=\"{result}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(sample.as_str()))
            .and_then(|v| v.trim().parse::<usize>().ok())
    };
    assert_eq!(calls("busy"), Some(busy), "{text}");
    assert!(calls("ok") >= Some(ok), "{text}");
}
