//! The 50-item join: a list of 50 countries from one API joined with the weather of each
//! capital from another. Measured in one run, interleaved:
//! - through the gateway (one persisted operation);
//! - by hand, the naive way: the list, then one weather request per item (1 + 50 requests);
//! - by hand, batched: the list, then one aliased weather request for all items (1 + 1).
//!
//! Prints latency medians and p99s with their ratios, the upstream requests per pass, and the
//! gateway's CPU per join request. `cargo bench -p joinery-tests --bench join`
//! (`JOINERY_BENCH_REQUESTS` sets the number of passes).

use std::time::{Duration, Instant};

use cpu_time::ProcessTime;
use serde_json::{json, Value};

const OPERATION: &str = r#"query WeatherOf50($codes: [String!], $capital: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code
    name
    capital @export(as: "capital")
    weather: _join { weather_getCityByName(name: $capital) { weather { temperature { actual } } } }
  }
}"#;
const LIST: &str = "query ($codes: [String!]) { countries(filter: { code: { in: $codes } }) { code name capital } }";
const ONE: &str =
    "query ($name: String!) { getCityByName(name: $name) { weather { temperature { actual } } } }";

async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON")
}

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("JOINERY_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let countries = joinery_tests::start_countries("127.0.0.1:0").await?;
    let weather = joinery_tests::start_weather("127.0.0.1:0").await?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("operations"))?;
    std::fs::write(dir.path().join("operations/join.graphql"), OPERATION)?;
    std::fs::write(
        dir.path().join("joinery.toml"),
        format!(
            "[log]\nlevel = \"warn\"\n[upstreams.countries]\nurl = \"{}\"\n[upstreams.weather]\nurl = \"{}\"\n",
            countries.url(),
            weather.url()
        ),
    )?;
    joinery::telemetry::init(&joinery::config::Config::load(&dir.path().join("joinery.toml"))?.log);
    let gateway = joinery_tests::RunningGateway::start(&dir.path().join("joinery.toml")).await?;
    let client = reqwest::Client::new();

    let all = post(
        &client,
        &countries.url(),
        &json!({ "query": "{ countries { code capital } }" }),
    )
    .await;
    let codes: Vec<String> = all["data"]["countries"]
        .as_array()
        .expect("countries")
        .iter()
        .filter(|c| c["capital"].is_string())
        .take(50)
        .map(|c| c["code"].as_str().expect("code").to_string())
        .collect();
    assert_eq!(codes.len(), 50);
    let via_gateway = json!({ "documentId": format!("sha256:{}", gateway.hash("WeatherOf50")), "variables": { "codes": codes } });
    let list = json!({ "query": LIST, "variables": { "codes": codes } });

    // One gateway pass, to check the request count and to take its batched document.
    countries.reset();
    weather.reset();
    let r = post(&client, &gateway.url, &via_gateway).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!((countries.requests(), weather.requests()), (1, 1));
    let batched_weather = weather.received().pop().expect("the join request");

    let naive = |client: reqwest::Client, countries: String, weather: String, list: Value| async move {
        let l = post(&client, &countries, &list).await;
        for c in l["data"]["countries"].as_array().expect("list") {
            post(
                &client,
                &weather,
                &json!({ "query": ONE, "variables": { "name": c["capital"] } }),
            )
            .await;
        }
    };
    let batched = |client: reqwest::Client,
                   countries: String,
                   weather: String,
                   list: Value,
                   body: Value| async move {
        post(&client, &countries, &list).await;
        post(&client, &weather, &body).await;
    };

    let (mut g, mut nv, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n + 20 {
        let t = Instant::now();
        post(&client, &gateway.url, &via_gateway).await;
        let tg = t.elapsed();
        let t = Instant::now();
        naive(client.clone(), countries.url(), weather.url(), list.clone()).await;
        let tn = t.elapsed();
        let t = Instant::now();
        batched(
            client.clone(),
            countries.url(),
            weather.url(),
            list.clone(),
            batched_weather.clone(),
        )
        .await;
        let tb = t.elapsed();
        if i >= 20 {
            g.push(tg);
            nv.push(tn);
            b.push(tb);
        }
        countries.reset();
        weather.reset();
    }

    let cpu = ProcessTime::now();
    for _ in 0..n {
        batched(
            client.clone(),
            countries.url(),
            weather.url(),
            list.clone(),
            batched_weather.clone(),
        )
        .await;
    }
    let cpu_batched = cpu.elapsed();
    countries.reset();
    weather.reset();
    let cpu = ProcessTime::now();
    for _ in 0..n {
        post(&client, &gateway.url, &via_gateway).await;
    }
    let cpu_gateway = cpu.elapsed();

    let (gm, g99) = stats(g);
    let (nm, n99) = stats(nv);
    let (bm, b99) = stats(b);
    println!("passes: {n}; 50 items each");
    println!("gateway        : median {gm:9.1} µs  p99 {g99:9.1} µs  (2 upstream requests)");
    println!("naive by hand  : median {nm:9.1} µs  p99 {n99:9.1} µs  (51 upstream requests)");
    println!("batched by hand: median {bm:9.1} µs  p99 {b99:9.1} µs  (2 upstream requests)");
    println!(
        "ratios: gateway/naive median {:.2}x p99 {:.2}x; gateway/batched median {:.2}x p99 {:.2}x",
        gm / nm,
        g99 / n99,
        gm / bm,
        g99 / b99
    );
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    println!(
        "process CPU per pass: batched by hand {:.1} µs, via gateway {:.1} µs → gateway's own CPU ≈ {:.1} µs per 50-item join",
        per(cpu_batched),
        per(cpu_gateway),
        per(cpu_gateway) - per(cpu_batched)
    );
    Ok(())
}
