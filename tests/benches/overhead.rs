//! Gateway overhead: the same persisted operation sent through the gateway and straight to the
//! upstream (the exact document the gateway sends), interleaved in one run so that the machine's
//! noise hits both alike. Prints latency ratios (median, p99) and the gateway's CPU per request.
//!
//! `cargo bench -p joinery-tests --bench overhead` (set `JOINERY_BENCH_REQUESTS` to change N).

use cpu_time::ProcessTime;
use joinery_tests::bench::{micros, percentile, timed};
use serde_json::json;

/// The served binary's allocator, so that allocation costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CODES: [&str; 8] = ["FR", "DE", "JP", "BR", "CA", "IN", "NG", "AU"];
const OPERATION: &str = "query Country($code: ID!) { countries_country(code: $code) { code name capital currency continent { name } } }";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n = joinery_tests::bench::requests(3000);
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
    timed(client.post(&gateway.url).json(&via_gateway("FR")), b"{").await;
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
        timed(client.post(countries.url()).json(&direct(code)), b"{").await;
        timed(client.post(&gateway.url).json(&via_gateway(code)), b"{").await;
    }
    countries.reset();

    let (mut d, mut g) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for i in 0..n {
        let code = CODES[i % CODES.len()];
        d.push(timed(client.post(countries.url()).json(&direct(code)), b"{").await);
        g.push(timed(client.post(&gateway.url).json(&via_gateway(code)), b"{").await);
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
        timed(
            client
                .post(countries.url())
                .json(&direct(CODES[i % CODES.len()])),
            b"{",
        )
        .await;
    }
    let cpu_direct = cpu.elapsed();
    countries.reset();
    let cpu = ProcessTime::now();
    for i in 0..n {
        timed(
            client
                .post(&gateway.url)
                .json(&via_gateway(CODES[i % CODES.len()])),
            b"{",
        )
        .await;
    }
    let cpu_gateway = cpu.elapsed();

    let (dm, gm, d99, g99) = (
        percentile(&d, 0.5),
        percentile(&g, 0.5),
        percentile(&d, 0.99),
        percentile(&g, 0.99),
    );
    println!("requests per side: {n}");
    println!(
        "direct upstream : median {:8.1} µs   p99 {:8.1} µs",
        micros(dm),
        micros(d99)
    );
    println!(
        "through gateway : median {:8.1} µs   p99 {:8.1} µs",
        micros(gm),
        micros(g99)
    );
    println!(
        "latency ratio gateway/direct: median {:.2}x   p99 {:.2}x",
        micros(gm) / micros(dm),
        micros(g99) / micros(d99)
    );
    println!(
        "process CPU per request: direct {:.1} µs, via gateway {:.1} µs → gateway's own CPU ≈ {:.1} µs per request ({:.2}x)",
        micros(cpu_direct) / n as f64,
        micros(cpu_gateway) / n as f64,
        (micros(cpu_gateway) - micros(cpu_direct)) / n as f64,
        micros(cpu_gateway) / micros(cpu_direct)
    );
    Ok(())
}
