//! A bounded soak run, by hand: mixed load (pass-through and a 50-item join) against a gateway
//! on 127.0.0.1 while the upstreams misbehave in turn (slow, failing, endless, oversized,
//! mistyped answers) and idle sockets come and go. Every 10 s it prints the requests done, the
//! error codes seen and the process's RSS; it fails if the gateway ever answered 5xx.
//!
//! `cargo run --release -p joinery-tests --bin soak -- [seconds=300] [connections=16]`

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use joinery_tests::{start_countries, start_weather, Fault, RunningGateway};

// The allocator the `joinery` binary uses, so that memory over time is the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use serde_json::{json, Value};

const OPERATIONS: [(&str, &str); 2] = [
    (
        "country.graphql",
        "query Country($code: ID!) { countries_country(code: $code) { code name capital } }",
    ),
    (
        "join.graphql",
        r#"query Join($codes: [String!], $capital: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    code capital @export(as: "capital")
    _join { weather_getCityByName(name: $capital) { name weather { temperature { actual } } } }
  }
}"#,
    ),
];

fn faults() -> Vec<(&'static str, Fault)> {
    vec![
        ("none", Fault::None),
        ("slow", Fault::Delay(Duration::from_millis(300))),
        ("status 500", Fault::Status(500)),
        ("GraphQL 503", Fault::ErrorStatus(503)),
        ("invalid JSON", Fault::InvalidJson),
        ("closed", Fault::CloseConnection),
        ("oversized", Fault::Oversized(4 << 20)),
        ("endless", Fault::Endless),
        (
            "mistyped",
            Fault::Rewrite(|r| {
                if let Some(Value::Object(data)) = r.get_mut("data") {
                    for v in data.values_mut() {
                        *v = json!({ "name": 12345, "code": ["x"] });
                    }
                }
            }),
        ),
    ]
}

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let connections: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(16);
    let countries = Arc::new(start_countries("127.0.0.1:0").await?);
    let weather = Arc::new(start_weather("127.0.0.1:0").await?);
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("operations"))?;
    for (name, text) in OPERATIONS {
        std::fs::write(dir.path().join("operations").join(name), text)?;
    }
    let config = format!(
        "[server]\nidle_timeout = \"5s\"\nbody_timeout = \"2s\"\n[log]\nlevel = \"error\"\n\
         [upstreams.countries]\nurl = \"{}\"\ntimeout = \"1s\"\nmax_response_bytes = \"1MiB\"\n\
         [upstreams.weather]\nurl = \"{}\"\ntimeout = \"1s\"\nmax_response_bytes = \"1MiB\"\n\
         [upstreams.weather.batch.getCityByName]\nfield = \"getCitiesByNames\"\nargument = \"names\"\nkey = \"name\"\n",
        countries.url(),
        weather.url()
    );
    std::fs::write(dir.path().join("joinery.toml"), config)?;
    let gateway = RunningGateway::start(&dir.path().join("joinery.toml")).await?;
    let country = format!("sha256:{}", gateway.hash("Country"));
    let join = format!("sha256:{}", gateway.hash("Join"));
    let codes: Vec<String> = reqwest::Client::new()
        .post(countries.url())
        .json(&json!({ "query": "{ countries { code } }" }))
        .send()
        .await?
        .json::<Value>()
        .await?["data"]["countries"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["code"].as_str().map(String::from))
        .take(50)
        .collect();

    let seen: Arc<Mutex<BTreeMap<String, u64>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for worker in 0..connections {
        let (seen, stop, url) = (seen.clone(), stop.clone(), gateway.url.clone());
        let (country, join, codes) = (country.clone(), join.clone(), codes.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = worker;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let body = if i % 3 == 0 {
                    json!({ "documentId": join, "variables": { "codes": codes } })
                } else {
                    json!({ "documentId": country, "variables": { "code": codes[i % codes.len()] } })
                };
                // Each answer counts once as "ok" or once per distinct error code in it.
                let keys: Vec<String> = match client.post(&url).json(&body).send().await {
                    Ok(r) if r.status().is_server_error() => vec![format!("HTTP {}", r.status())],
                    Ok(r) => match r.json::<Value>().await {
                        Ok(v) => {
                            let mut codes: Vec<String> = v["errors"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .map(|e| {
                                    let code = e["extensions"]["code"].as_str();
                                    code.unwrap_or("(an upstream's error, without a code)")
                                })
                                .map(String::from)
                                .collect();
                            codes.sort();
                            codes.dedup();
                            if codes.is_empty() {
                                vec!["ok".to_string()]
                            } else {
                                codes
                            }
                        }
                        Err(e) => vec![format!("unreadable answer: {e}")],
                    },
                    Err(e) => vec![format!("transport error: {e}")],
                };
                let mut seen = seen.lock().unwrap();
                for key in keys {
                    *seen.entry(key).or_default() += 1;
                }
            }
        }));
    }
    // Idle sockets that never send a byte come and go.
    let idle = {
        let (stop, addr) = (stop.clone(), gateway.url.clone());
        tokio::spawn(async move {
            let addr = addr
                .trim_start_matches("http://")
                .trim_end_matches("/graphql")
                .to_string();
            while !stop.load(Ordering::Relaxed) {
                let mut held = Vec::new();
                for _ in 0..50 {
                    if let Ok(s) = tokio::net::TcpStream::connect(&addr).await {
                        held.push(s);
                    }
                }
                tokio::time::sleep(Duration::from_secs(8)).await;
            }
        })
    };

    // The test upstreams record every request they get; forget them, or they grow.
    let forget = {
        let (stop, countries, weather) = (stop.clone(), countries.clone(), weather.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                countries.forget();
                weather.forget();
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let faults = faults();
    let baseline = rss_mb();
    println!("soak: {seconds} s, {connections} connections; RSS at start {baseline:.1} MB");
    let mut five_xx = 0;
    let mut tick = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        let (name, fault) = &faults[tick % faults.len()];
        // Faults alternate between the two upstreams.
        if tick % 2 == 0 {
            weather.set_fault(Fault::None);
            countries.set_fault(fault.clone());
        } else {
            countries.set_fault(Fault::None);
            weather.set_fault(fault.clone());
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
        tick += 1;
        let snapshot = std::mem::take(&mut *seen.lock().unwrap());
        five_xx += snapshot
            .iter()
            .filter(|(k, _)| k.starts_with("HTTP 5"))
            .map(|(_, n)| n)
            .sum::<u64>();
        let upstream = if tick % 2 == 1 {
            "countries"
        } else {
            "weather"
        };
        println!(
            "{:>4} s  RSS {:>6.1} MB  {upstream:>9}: {name:<13} {snapshot:?}",
            started.elapsed().as_secs(),
            rss_mb()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    idle.abort();
    forget.abort();
    countries.set_fault(Fault::None);
    weather.set_fault(Fault::None);
    println!(
        "soak done: RSS {:.1} MB at the end ({baseline:.1} MB at start); {five_xx} 5xx answer(s)",
        rss_mb()
    );
    anyhow::ensure!(five_xx == 0, "the gateway answered 5xx");
    Ok(())
}
