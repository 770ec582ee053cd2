//! Resolver plugin cost and fresh-instance cost, in one run:
//!
//! 1. fresh instances: instantiating a Rust policy and a Rust resolver component (pooling
//!    allocator, `InstancePre`), per instance;
//! 2. `resolve` called directly on a warm `rest-resolver` (one REST GET inside), interleaved
//!    with the same REST GET sent by the host itself and with the plugin's whole work done
//!    natively by the host (the GET and its JSON): the differences are the plugin's cost, in
//!    latency and in process CPU; then a call that makes no HTTP call, alone and with 20
//!    fields selected below its root (the cost of handing each selected field over);
//! 3. the same product through the gateway (persisted operation → plugin → REST) interleaved
//!    with the client's own REST GET, and a GraphQL-over-HTTP upstream through the gateway
//!    for reference; process CPU per request for each, and for the plugin upstream with
//!    `coalesce = true` (what sharing a plugin's answer costs).
//!
//! `cargo bench -p joinery-tests --bench resolvers` (set `JOINERY_BENCH_REQUESTS` to change N).

use std::time::{Duration, Instant};

use cpu_time::ProcessTime;
use joinery::plugin::{ResolverRequest, SelectedField};
use joinery_tests::bench::{context_switches, micros, percentile, timed};
use joinery_tests::plugins::rust_plugin;
use serde_json::json;

/// The served binary's allocator, so that allocation costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const PRODUCT: &str = "query Product($id: ID!) { shop_product(id: $id) { id name priceCents } }";
/// The same through an upstream of the same plugin with coalescing on.
const PRODUCT_SHARED: &str =
    "query ProductShared($id: ID!) { shared_product(id: $id) { id name priceCents } }";
const COUNTRY: &str =
    "query Country($code: ID!) { countries_country(code: $code) { code name capital } }";

fn summary(label: &str, samples: &mut [Duration], base: Option<f64>) -> f64 {
    samples.sort();
    let median = micros(percentile(samples, 0.5));
    let ratio = base.map_or(String::new(), |b| format!("  ratio {:.2}x", median / b));
    println!(
        "{label:46}: median {median:7.1} µs  p99 {:7.1} µs{ratio}",
        micros(percentile(samples, 0.99))
    );
    median
}

/// A `resolve` request for one product's name.
fn request() -> ResolverRequest {
    ResolverRequest {
        mutation: false,
        operation_name: "Product".into(),
        headers: Default::default(),
        fields: vec![
            SelectedField {
                parent: None,
                key: "product".into(),
                name: "product".into(),
                arguments: r#"{"id":"3"}"#.into(),
            },
            SelectedField {
                parent: Some(0),
                key: "name".into(),
                name: "name".into(),
                arguments: "{}".into(),
            },
        ],
    }
}

/// What `rest-resolver` does for [`request`], done by the host in Rust: the GET, the REST
/// answer parsed, the product picked by id and written as the field's JSON, which the
/// gateway parses back (as it parses a plugin's answer).
async fn native(client: &reqwest::Client, url: &str) -> serde_json::Value {
    let body = client
        .get(url)
        .send()
        .await
        .expect("sent")
        .bytes()
        .await
        .expect("read");
    let found: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
    let product = found
        .as_array()
        .and_then(|all| all.iter().find(|p| p["id"] == "3"))
        .cloned()
        .unwrap_or_default();
    serde_json::from_str(&product.to_string()).expect("JSON")
}

/// Section 2: `resolve()` against the host's GET and its native equivalent, in latency and
/// in process CPU per call (interleaved blocks).
async fn direct_calls(
    n: usize,
    shop: &joinery::plugin::ResolverPlugin,
    client: &reqwest::Client,
    rest_url: &str,
    products: &joinery_tests::Upstream,
) -> anyhow::Result<()> {
    for _ in 0..200 {
        shop.resolve(request()).await?;
        timed(client.get(rest_url), b"Chef").await;
        native(client, rest_url).await;
    }
    // The sides take turns in blocks: latency and process CPU of each call are measured with
    // the runtime busy with that side (alternating call by call, each call would mostly time
    // the wake-up of threads the other side left asleep).
    const BLOCK: usize = 50;
    let mut latency: [Vec<Duration>; 3] = Default::default();
    let mut cpu = [Duration::ZERO; 3];
    let mut switches = [0u64; 3];
    for block in 0..n.div_ceil(BLOCK) {
        for side in 0..3 {
            let (spent, before) = (ProcessTime::now(), context_switches());
            for _ in 0..BLOCK {
                let started = Instant::now();
                match side {
                    0 => assert!(shop.resolve(request()).await?[0].is_ok()),
                    1 => drop(timed(client.get(rest_url), b"Chef").await),
                    _ => assert_eq!(native(client, rest_url).await["name"], "Chef's knife"),
                }
                latency[side].push(started.elapsed());
            }
            cpu[side] += spent.elapsed();
            switches[side] += context_switches() - before;
        }
        if block % 10 == 0 {
            products.reset();
        }
    }
    let [direct, host, natively] = &mut latency;
    println!("requests per side: {}", host.len());
    let base = summary("REST GET from the host", host, None);
    let own = summary("its work done natively (GET + JSON)", natively, Some(base));
    let resolve = summary(
        "resolve() on a warm rest-resolver (1 GET)",
        direct,
        Some(base),
    );
    println!(
        "  → resolve() costs {:.1} µs over the GET, {:.1} µs over its work done natively",
        resolve - base,
        resolve - own
    );
    let calls = (n.div_ceil(BLOCK) * BLOCK) as f64;
    let per_call = |side: usize| micros(cpu[side]) / calls;
    // The call alone: a field the plugin answers with an error at once, no HTTP; and the same
    // with 20 fields selected below it, in alternating blocks: what each field's three strings
    // cost to hand over (each is one allocation call into the guest).
    const EXTRA_FIELDS: u32 = 20;
    let alone = |extra: u32| {
        let mut alone = request();
        alone.fields.truncate(1);
        alone.fields[0].name = "unknown".into();
        alone.fields.extend((0..extra).map(|k| SelectedField {
            parent: Some(0),
            key: format!("field{k}"),
            name: format!("field{k}"),
            arguments: "{}".into(),
        }));
        alone
    };
    let mut spent = [Duration::ZERO; 2];
    for _ in 0..n.div_ceil(BLOCK) {
        for (side, extra) in [0, EXTRA_FIELDS].into_iter().enumerate() {
            let requests: Vec<_> = (0..BLOCK).map(|_| alone(extra)).collect();
            let started = ProcessTime::now();
            for request in requests {
                assert!(shop.resolve(request).await?[0].is_err());
            }
            spent[side] += started.elapsed();
        }
    }
    let [one, more] = spent.map(|d| micros(d) / calls);
    println!(
        "process CPU per call of resolve() with no HTTP call (a field it refuses at once): {one:.1} µs; with {EXTRA_FIELDS} fields selected below it {more:.1} µs, {:.2} µs per field",
        (more - one) / EXTRA_FIELDS as f64
    );
    println!(
        "process CPU per call (client and REST API in this process): resolve() {:.1} µs, the GET {:.1} µs, natively {:.1} µs → resolve() costs {:.1} µs over the GET, {:.1} µs over its work done natively; context switches per call {:.2} / {:.2} / {:.2}",
        per_call(0),
        per_call(1),
        per_call(2),
        per_call(0) - per_call(1),
        per_call(0) - per_call(2),
        switches[0] as f64 / calls,
        switches[1] as f64 / calls,
        switches[2] as f64 / calls,
    );
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n = joinery_tests::bench::requests(2000);
    let products = std::sync::Arc::new(joinery_tests::start_rest("127.0.0.1:0").await?);
    let countries = joinery_tests::start_countries("127.0.0.1:0").await?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("operations"))?;
    std::fs::write(dir.path().join("operations/product.graphql"), PRODUCT)?;
    std::fs::write(dir.path().join("operations/country.graphql"), COUNTRY)?;
    std::fs::write(dir.path().join("operations/shared.graphql"), PRODUCT_SHARED)?;
    let config_text = format!(
        "[log]\nlevel = \"warn\"\n[upstreams.countries]\nurl = \"{}\"\n[upstreams.shop]\nplugin = \"shop\"\n[upstreams.shared]\nplugin = \"shop\"\ncoalesce = true\n[plugins.shop]\npath = \"{}\"\ntimeout = \"2s\"\nallowed_hosts = [\"{}\"]\n[plugins.shop.config]\nbase_url = \"http://{}\"\n[plugins.probe]\npath = \"{}\"\n",
        countries.url(),
        rust_plugin("rest-resolver").display(),
        products.addr(),
        products.addr(),
        rust_plugin("probe").display(),
    );
    let path = dir.path().join("joinery.toml");
    std::fs::write(&path, config_text)?;
    let config = joinery::config::Config::load(&path)?;
    joinery::telemetry::init(&config.log);
    let plugins = joinery::project::load_plugins(&config)?;
    let shop = plugins.resolver("shop").expect("loaded").clone();
    let probe = plugins.policy("probe").expect("loaded").clone();

    // 1. Fresh instances (the pool keeps 32; the rest are instantiated and dropped).
    let fresh = 500;
    let started = Instant::now();
    probe.prewarm(fresh).await?;
    let policy_fresh = micros(started.elapsed()) / fresh as f64;
    let started = Instant::now();
    shop.prewarm(fresh).await?;
    let resolver_fresh = micros(started.elapsed()) / fresh as f64;
    println!("fresh instance, probe (Rust policy): {policy_fresh:.1} µs; rest-resolver (Rust resolver): {resolver_fresh:.1} µs (mean of {fresh})");

    // 2. The resolve call on a warm instance vs the same REST GET from the host, and vs the
    //    plugin's whole work done natively. Run in a runtime task, as the gateway runs it (a
    //    caller outside the runtime adds thread hand-offs to every wake-up).
    let client = reqwest::Client::new();
    let rest_url = format!("http://{}/products?ids=3", products.addr());
    let (shop2, client2, rest2) = (shop.clone(), client.clone(), rest_url.clone());
    let products2 = products.clone();
    tokio::spawn(async move { direct_calls(n, &shop2, &client2, &rest2, &products2).await })
        .await??;

    // 3. Through the gateway.
    let gateway = joinery_tests::RunningGateway::start(&path).await?;
    let post = |name: &str, variables: serde_json::Value| {
        client.post(&gateway.url).json(&json!({
            "documentId": format!("sha256:{}", gateway.hash(name)),
            "variables": variables,
        }))
    };
    for _ in 0..200 {
        timed(post("Product", json!({ "id": "3" })), b"Chef").await;
        timed(post("Country", json!({ "code": "FR" })), b"France").await;
    }
    let mut samples = [
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    ];
    for i in 0..n {
        samples[0].push(timed(client.get(&rest_url), b"Chef").await);
        samples[1].push(timed(post("Product", json!({ "id": "3" })), b"Chef").await);
        samples[2].push(timed(post("Country", json!({ "code": "FR" })), b"France").await);
        if i % 500 == 0 {
            products.reset();
            countries.reset();
        }
    }
    let base = summary("client's own REST GET", &mut samples[0], None);
    summary(
        "gateway → rest-resolver → REST",
        &mut samples[1],
        Some(base),
    );
    summary(
        "gateway → GraphQL upstream over HTTP (reference)",
        &mut samples[2],
        Some(base),
    );
    // CPU in interleaved blocks, so that drift of the machine falls on every side alike.
    let sides = [
        ("Product", json!({ "id": "3" }), &b"Chef"[..]),
        ("ProductShared", json!({ "id": "3" }), &b"Chef"[..]),
        ("Country", json!({ "code": "FR" }), &b"France"[..]),
    ];
    let mut cpu = [Duration::ZERO; 3];
    let blocks = 10;
    for _ in 0..blocks {
        for (side, (name, variables, expect)) in sides.iter().enumerate() {
            let started = ProcessTime::now();
            for _ in 0..n / blocks {
                timed(post(name, variables.clone()), expect).await;
            }
            cpu[side] += started.elapsed();
        }
    }
    let per = |d: Duration| micros(d) / (n / blocks * blocks) as f64;
    let (plugin_cpu, shared_cpu, http_cpu) = (per(cpu[0]), per(cpu[1]), per(cpu[2]));
    println!(
        "process CPU per request (gateway, upstream and client in one process): resolver plugin {plugin_cpu:.1} µs ({shared_cpu:.1} µs with coalesce = true), HTTP upstream {http_cpu:.1} µs"
    );
    Ok(())
}
