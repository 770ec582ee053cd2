//! Gateway overhead: the same persisted operation sent through the gateway and straight to the
//! upstream (the exact document the gateway sends), interleaved in one run so that the machine's
//! noise hits both alike. Prints latency ratios (median, p99) and the gateway's CPU per request.
//!
//! `cargo bench -p joinery-tests --bench overhead` (set `JOINERY_BENCH_REQUESTS` to change N).

use std::time::{Duration, Instant};

use cpu_time::ProcessTime;
use serde_json::{json, Value};

const CODES: [&str; 8] = ["FR", "DE", "JP", "BR", "CA", "IN", "NG", "AU"];
const OPERATION: &str = "query Country($code: ID!) { countries_country(code: $code) { code name capital currency continent { name } } }";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn timed(client: &reqwest::Client, url: &str, body: &Value) -> Duration {
    let started = Instant::now();
    let response = client
        .post(url)
        .json(body)
        .send()
        .await
        .expect("request sent");
    assert!(response.status().is_success());
    let bytes = response.bytes().await.expect("body read");
    assert!(!bytes.is_empty());
    started.elapsed()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n = joinery_tests::bench_requests(3000);
    let countries = joinery_tests::start_countries("127.0.0.1:0").await?;
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("operations"))?;
    std::fs::write(dir.path().join("operations/country.graphql"), OPERATION)?;
    std::fs::write(
        dir.path().join("joinery.toml"),
        format!(
            "[log]\nlevel = \"warn\"\n[upstreams.countries]\nurl = \"{}\"\n",
            countries.url()
        ),
    )?;
    let config = joinery::config::Config::load(&dir.path().join("joinery.toml"))?;
    joinery::telemetry::init(&config.log);
    let gateway = joinery_tests::RunningGateway::start(&dir.path().join("joinery.toml")).await?;
    let client = reqwest::Client::new();
    let id = format!("sha256:{}", gateway.hash("Country"));
    let via_gateway = |code: &str| json!({ "documentId": id, "variables": { "code": code } });

    // The request the gateway sends upstream, to send the same one directly.
    timed(&client, &gateway.url, &via_gateway("FR")).await;
    let upstream_body = countries
        .received()
        .pop()
        .expect("the gateway called the upstream");
    let direct = |code: &str| {
        let mut body = upstream_body.clone();
        body["variables"]["code"] = json!(code);
        body
    };

    for i in 0..200 {
        let code = CODES[i % CODES.len()];
        timed(&client, &countries.url(), &direct(code)).await;
        timed(&client, &gateway.url, &via_gateway(code)).await;
    }
    countries.reset();

    let (mut d, mut g) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let code = CODES[i % CODES.len()];
        d.push(timed(&client, &countries.url(), &direct(code)).await);
        g.push(timed(&client, &gateway.url, &via_gateway(code)).await);
        if i % 500 == 0 {
            countries.reset();
        }
    }
    d.sort();
    g.sort();

    // CPU: the whole process (client, upstream and gateway) in a direct-only phase and in a
    // gateway-only phase; the difference is the gateway's share.
    let cpu = ProcessTime::now();
    for i in 0..n {
        timed(&client, &countries.url(), &direct(CODES[i % CODES.len()])).await;
    }
    let cpu_direct = cpu.elapsed();
    countries.reset();
    let cpu = ProcessTime::now();
    for i in 0..n {
        timed(&client, &gateway.url, &via_gateway(CODES[i % CODES.len()])).await;
    }
    let cpu_gateway = cpu.elapsed();

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let (dm, gm, d99, g99) = (
        percentile(&d, 0.5),
        percentile(&g, 0.5),
        percentile(&d, 0.99),
        percentile(&g, 0.99),
    );
    println!("requests per side: {n}");
    println!(
        "direct upstream : median {:8.1} µs   p99 {:8.1} µs",
        us(dm),
        us(d99)
    );
    println!(
        "through gateway : median {:8.1} µs   p99 {:8.1} µs",
        us(gm),
        us(g99)
    );
    println!(
        "latency ratio gateway/direct: median {:.2}x   p99 {:.2}x",
        us(gm) / us(dm),
        us(g99) / us(d99)
    );
    println!(
        "process CPU per request: direct {:.1} µs, via gateway {:.1} µs → gateway's own CPU ≈ {:.1} µs per request ({:.2}x)",
        us(cpu_direct) / n as f64,
        us(cpu_gateway) / n as f64,
        (us(cpu_gateway) - us(cpu_direct)) / n as f64,
        us(cpu_gateway) / us(cpu_direct)
    );
    Ok(())
}
