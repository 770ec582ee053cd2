//! The 50-item join: a list of 50 countries from one API joined with the weather of each
//! capital from another, in both batching modes. Measured in one run, interleaved:
//! - through a gateway that batches by aliases (50 aliased `getCityByName` in one request);
//! - through a gateway that uses the weather API's batch form (one `getCitiesByNames` call);
//! - by hand, the naive way: the list, then one weather request per item (1 + 50 requests);
//! - by hand, sending exactly the two documents each gateway sends (1 + 1).
//!
//! Prints latency medians and p99s, and for each mode the gateway's own CPU per join (process
//! CPU through the gateway minus process CPU of sending its documents by hand) and the CPU of
//! the upstream work by hand, so that the two modes' costs to the upstreams compare too.
//! `cargo bench -p joinery-tests --bench join` (`JOINERY_BENCH_REQUESTS` sets the passes).

use std::path::Path;
use std::time::{Duration, Instant};

use cpu_time::ProcessTime;
use joinery_tests::bench::post;
use joinery_tests::{RunningGateway, Upstream};
use serde_json::{json, Value};

/// The served binary's allocator, so that allocation costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OPERATION: &str = r#"query WeatherOf50($codes: [String!], $capital: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code
    name
    capital @export(as: "capital")
    weather: _join { weather_getCityByName(name: $capital) { weather { temperature { actual } } } }
  }
}"#;
const ONE: &str =
    "query ($name: String!) { getCityByName(name: $name) { weather { temperature { actual } } } }";
const BATCH_FORM: &str = "[upstreams.weather.batch.getCityByName]\nfield = \"getCitiesByNames\"\nargument = \"names\"\nkey = \"name\"\n";

fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

/// One gateway on the two upstreams, with or without the weather API's batch form.
struct Mode {
    name: &'static str,
    gateway: RunningGateway,
    request: Value,
    /// The two upstream requests one pass makes: (countries body, weather body).
    sent: (Value, Value),
    latencies: Vec<Duration>,
    by_hand: Vec<Duration>,
}

async fn mode(
    name: &'static str,
    dir: &Path,
    extra: &str,
    countries: &Upstream,
    weather: &Upstream,
    codes: &[String],
) -> anyhow::Result<Mode> {
    std::fs::create_dir_all(dir.join("operations"))?;
    std::fs::write(dir.join("operations/join.graphql"), OPERATION)?;
    std::fs::write(
        dir.join("joinery.toml"),
        format!(
            "[log]\nlevel = \"warn\"\n[upstreams.countries]\nurl = \"{}\"\n[upstreams.weather]\nurl = \"{}\"\n{extra}",
            countries.url(),
            weather.url()
        ),
    )?;
    let gateway = RunningGateway::start(&dir.join("joinery.toml")).await?;
    let request = json!({ "documentId": format!("sha256:{}", gateway.hash("WeatherOf50")), "variables": { "codes": codes } });
    countries.reset();
    weather.reset();
    let r = post(&reqwest::Client::new(), &gateway.url, &request).await;
    assert!(r.get("errors").is_none(), "{r}");
    assert_eq!((countries.requests(), weather.requests()), (1, 1));
    let sent = (
        countries.received().pop().expect("the root request"),
        weather.received().pop().expect("the join request"),
    );
    Ok(Mode {
        name,
        gateway,
        request,
        sent,
        latencies: Vec::new(),
        by_hand: Vec::new(),
    })
}

async fn by_hand(client: &reqwest::Client, countries: &str, weather: &str, sent: &(Value, Value)) {
    post(client, countries, &sent.0).await;
    post(client, weather, &sent.1).await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n = joinery_tests::bench::requests(300);
    let countries = joinery_tests::start_countries("127.0.0.1:0").await?;
    let weather = joinery_tests::start_weather("127.0.0.1:0").await?;
    let client = reqwest::Client::new();
    let codes = joinery_tests::codes_with_capital(&countries, 50).await;

    let dir = tempfile::tempdir()?;
    joinery::telemetry::init(&joinery::config::LogConfig {
        format: joinery::config::LogFormat::Human,
        level: "warn".into(),
    });
    let mut modes = [
        mode(
            "aliases",
            &dir.path().join("aliases"),
            "",
            &countries,
            &weather,
            &codes,
        )
        .await?,
        mode(
            "batch form",
            &dir.path().join("field"),
            BATCH_FORM,
            &countries,
            &weather,
            &codes,
        )
        .await?,
    ];

    let (countries_url, weather_url) = (countries.url(), weather.url());
    let mut naive = Vec::new();
    for i in 0..n + 20 {
        for m in modes.iter_mut() {
            let t = Instant::now();
            post(&client, &m.gateway.url, &m.request).await;
            let tg = t.elapsed();
            let t = Instant::now();
            by_hand(&client, &countries_url, &weather_url, &m.sent).await;
            let th = t.elapsed();
            if i >= 20 {
                m.latencies.push(tg);
                m.by_hand.push(th);
            }
        }
        let t = Instant::now();
        let list = post(&client, &countries_url, &modes[0].sent.0).await;
        for c in list["data"]["countries_countries"]
            .as_array()
            .expect("list")
        {
            post(
                &client,
                &weather_url,
                &json!({ "query": ONE, "variables": { "name": c["capital"] } }),
            )
            .await;
        }
        if i >= 20 {
            naive.push(t.elapsed());
        }
        countries.reset();
        weather.reset();
    }

    println!("passes: {n}; 50 items each");
    let (nm, n99) = stats(naive);
    println!("naive by hand (1 + 50 requests): median {nm:9.1} µs  p99 {n99:9.1} µs");
    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    for m in &modes {
        let cpu = ProcessTime::now();
        for _ in 0..n {
            by_hand(&client, &countries_url, &weather_url, &m.sent).await;
        }
        let cpu_by_hand = cpu.elapsed();
        countries.reset();
        weather.reset();
        let cpu = ProcessTime::now();
        for _ in 0..n {
            post(&client, &m.gateway.url, &m.request).await;
        }
        let cpu_gateway = cpu.elapsed();
        countries.reset();
        weather.reset();
        let (gm, g99) = stats(m.latencies.clone());
        let (hm, h99) = stats(m.by_hand.clone());
        println!("{}:", m.name);
        println!(
            "  gateway             : median {gm:9.1} µs  p99 {g99:9.1} µs  (2 upstream requests; weather document {} bytes)",
            m.sent.1.to_string().len()
        );
        println!("  its documents by hand: median {hm:9.1} µs  p99 {h99:9.1} µs");
        println!(
            "  ratios: gateway/naive median {:.2}x; gateway/by hand median {:.2}x p99 {:.2}x",
            gm / nm,
            gm / hm,
            g99 / h99
        );
        println!(
            "  process CPU per pass: by hand {:.1} µs (client + upstreams), via gateway {:.1} µs → gateway's own CPU ≈ {:.1} µs per 50-item join",
            per(cpu_by_hand),
            per(cpu_gateway),
            per(cpu_gateway) - per(cpu_by_hand)
        );
    }
    Ok(())
}
