//! What the answer cache and coalescing buy on the 50-item join (batch form), in one run:
//! - process CPU per request (gateway and both upstreams, all in this process) and requests/s
//!   with the cache off, and with every request a cache hit, interleaved in blocks;
//! - a burst of concurrent identical requests with coalescing on and off: upstream requests
//!   sent and the burst's wall time.
//!
//! `cargo bench -p joinery-tests --bench cache` (`JOINERY_BENCH_REQUESTS` sets the requests
//! per mode).

use std::path::Path;
use std::time::{Duration, Instant};

use cpu_time::ProcessTime;
use futures::future::join_all;
use joinery_tests::bench::post;
use joinery_tests::{RunningGateway, Upstream};
use serde_json::json;

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
const BATCH_FORM: &str = "[upstreams.weather.batch.getCityByName]\nfield = \"getCitiesByNames\"\nargument = \"names\"\nkey = \"name\"\n";
const BURST: usize = 100;

async fn gateway(
    dir: &Path,
    extra: &str,
    countries: &Upstream,
    weather: &Upstream,
) -> anyhow::Result<RunningGateway> {
    std::fs::create_dir_all(dir.join("operations"))?;
    std::fs::write(dir.join("operations/join.graphql"), OPERATION)?;
    std::fs::write(
        dir.join("joinery.toml"),
        format!(
            "[log]\nlevel = \"warn\"\n[upstreams.countries]\nurl = \"{}\"\n{extra}\n[upstreams.weather]\nurl = \"{}\"\n{BATCH_FORM}",
            countries.url(),
            weather.url()
        ),
    )?;
    RunningGateway::start(&dir.join("joinery.toml")).await
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n = joinery_tests::bench::requests(2000);
    let countries = joinery_tests::start_countries("127.0.0.1:0").await?;
    let weather = joinery_tests::start_weather("127.0.0.1:0").await?;
    let client = reqwest::Client::new();
    let codes = joinery_tests::codes_with_capital(&countries, 50).await;
    let dir = tempfile::tempdir()?;
    let cached = "[upstreams.countries.cache]\nttl = \"1h\"\n";
    let (off, on) = (
        gateway(&dir.path().join("off"), "", &countries, &weather).await?,
        gateway(
            &dir.path().join("on"),
            &format!("{cached}[upstreams.weather.cache]\nttl = \"1h\"\n"),
            &countries,
            &weather,
        )
        .await?,
    );
    let request = |g: &RunningGateway| json!({ "documentId": format!("sha256:{}", g.hash("WeatherOf50")), "variables": { "codes": codes } });
    let (req_off, req_on) = (request(&off), request(&on));
    let first = post(&client, &on.url, &req_on).await;
    assert!(first.get("errors").is_none(), "{first}");

    // Interleaved blocks of 100: CPU and wall time per request, and upstream requests.
    let (mut cpu, mut wall, mut upstream) = ([Duration::ZERO; 2], [Duration::ZERO; 2], [0; 2]);
    for _ in 0..n.div_ceil(100) {
        for (i, (g, r)) in [(&off, &req_off), (&on, &req_on)].into_iter().enumerate() {
            countries.reset();
            weather.reset();
            let (c, w) = (ProcessTime::now(), Instant::now());
            for _ in 0..100 {
                post(&client, &g.url, r).await;
            }
            cpu[i] += c.elapsed();
            wall[i] += w.elapsed();
            upstream[i] += countries.requests() + weather.requests();
        }
    }
    let done = n.div_ceil(100) * 100;
    let per = |d: Duration| d.as_secs_f64() * 1e6 / done as f64;
    println!("50-item join, {done} requests per mode, interleaved (process CPU: gateway, upstreams and client):");
    for (i, name) in ["cache off", "cache hit"].into_iter().enumerate() {
        println!(
            "  {name:<10} {:7.1} µs CPU/request  {:7.0} requests/s  {:.2} upstream requests/request",
            per(cpu[i]),
            done as f64 / wall[i].as_secs_f64(),
            upstream[i] as f64 / done as f64
        );
    }
    println!(
        "  hit / off: CPU {:.2}x, requests/s {:.2}x",
        cpu[1].as_secs_f64() / cpu[0].as_secs_f64(),
        wall[0].as_secs_f64() / wall[1].as_secs_f64()
    );

    // A burst of identical requests, each burst with variables never asked before.
    let coalesced = gateway(&dir.path().join("coalesced"), "", &countries, &weather).await?;
    let single = gateway(
        &dir.path().join("single"),
        "coalesce = false\n",
        &countries,
        &weather,
    )
    .await?;
    println!(
        "burst of {BURST} concurrent identical requests (the countries upstream takes 20 ms):"
    );
    countries.set_fault(joinery_tests::Fault::Delay(Duration::from_millis(20)));
    for (round, (name, g)) in [("coalescing on", &coalesced), ("coalescing off", &single)]
        .into_iter()
        .enumerate()
    {
        let mut request = request(g);
        request["variables"]["codes"] = json!(codes[round * 10..round * 10 + 10]);
        countries.forget();
        let started = Instant::now();
        join_all((0..BURST).map(|_| post(&client, &g.url, &request))).await;
        println!(
            "  {name:<15} {:3} countries requests, {:6.1} ms",
            countries.requests(),
            started.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(())
}
