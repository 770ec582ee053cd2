//! Policy plugin cost: the request hook called directly (warm instances, Rust guests, the
//! headers a browser sends), the same call after the CPU caches were overwritten (what a call
//! costs between other work), and the
//! same persisted operation through several gateways in one interleaved run: no policy, an
//! empty policy (allows without reading anything: the cost of a plugin call itself), a minimal
//! policy (the probe's allow path: two headers read, one upstream header granted), and the JWT
//! policy verifying a token; the last two again with `visible_headers` granting only the
//! headers they read. Requests carry
//! the headers a browser sends (cookies included). The in-process figures are the CPU of the
//! whole process (client, gateway and upstream share its caches and threads); the same
//! gateways then run as `joinery serve` processes under 8 concurrent clients, where the
//! gateway's own CPU is measured.
//!
//! `cargo bench -p joinery-tests --bench plugins` (set `JOINERY_BENCH_REQUESTS` to change N,
//! `JOINERY_BENCH_COLD_CALLS` for the number of calls after overwritten caches, e.g. to
//! profile them, `JOINERY_BENCH_SERVED_REQUESTS` for the requests per served gateway, and
//! `JOINERY_BENCH_BASELINE` to serve another `joinery` binary's gateways in the same run).
//! With `JOINERY_BENCH_INSTRUCTIONS` set it counts instead the instructions each served gateway
//! executes per request, under callgrind (`JOINERY_BENCH_INSTRUCTION_REQUESTS` per gateway,
//! default 2000): figures that the machine's load does not move.

use std::time::{Duration, Instant};

use futures::StreamExt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cpu_time::ProcessTime;
use hmac::{Hmac, Mac};
use joinery_tests::bench::{context_switches, micros, percentile, timed};
use joinery_tests::plugins::rust_plugin;
use serde_json::json;

/// The served binary's allocator, so that allocation costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const OPERATION: &str =
    "query Country($code: ID!) { countries_country(code: $code) { code name capital } }";
const SECRET: &str = "test-secret-do-not-use-in-production";
/// The headers a browser sends along with its token (cookies included), as a policy sees them
/// by default.
const BROWSER_HEADERS: [(&str, &str); 9] = [
    ("content-type", "application/json"),
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    ("accept-language", "en-GB,en;q=0.9,fr;q=0.8"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("origin", "https://app.example.com"),
    ("referer", "https://app.example.com/countries/fr"),
    ("cookie", "session=7f3c9a1e5b2d4c6f8a0b1c2d3e4f5a6b; theme=dark; consent=analytics:0,ads:0; _ga=GA1.2.1234567890.1733300000"),
    ("sec-fetch-mode", "cors"),
    ("sec-fetch-site", "same-origin"),
];

fn token() -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(json!({ "sub": "FR" }).to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{header}.{payload}").as_bytes());
    format!(
        "{header}.{payload}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// Minor page faults of this process so far (`/proc/self/stat`, field 10).
fn minor_faults() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The command name may hold spaces: count fields after its closing parenthesis.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(7)?.parse().ok())
        .unwrap_or(0)
}

/// Sends `count` requests made by `make`, 8 at a time, each checked like [`timed`] does.
async fn concurrently(count: usize, make: impl Fn() -> reqwest::RequestBuilder) {
    futures::stream::iter(0..count)
        .map(|_| timed(make(), br#"{"data""#))
        .buffer_unordered(8)
        .for_each(|_| async {})
        .await;
}

/// The served gateways again, each under callgrind, which counts the instructions the process
/// executes whatever else the machine does: what a policy adds per request, within about 0.4%
/// from run to run (the epoch clock interrupts calls by wall time), where CPU time needs long
/// interleaved runs. Needs valgrind (Debian's
/// `valgrind`); the engine then holds 4 plugin instances (valgrind limits the address space),
/// which policy calls, never waiting, do not use up.
async fn instructions(
    upstream: &str,
    policies: &[Option<(&str, &str)>],
    labels: &[&str],
    token: &str,
) -> anyhow::Result<()> {
    let valgrind = std::process::Command::new("valgrind")
        .arg("--version")
        .output();
    anyhow::ensure!(
        valgrind.is_ok_and(|v| v.status.success()),
        "JOINERY_BENCH_INSTRUCTIONS needs valgrind (Debian: apt-get install valgrind)"
    );
    let requests: usize = std::env::var("JOINERY_BENCH_INSTRUCTION_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let binaries = binaries();
    let client = reqwest::Client::new();
    let hash = joinery::operations::hash(OPERATION);
    let request = |url: &str| browser_request(&client, url, &hash, token);
    println!("instructions per request, each gateway under callgrind ({requests} requests each):");
    for (name, binary) in &binaries {
        let mut counts = Vec::new();
        for policy in policies {
            let dir = served_project(binary, upstream, *policy)?;
            let out = dir.path().join("callgrind.out");
            let out_file = format!("--callgrind-out-file={}", out.display());
            let wrapper = ["valgrind", "--tool=callgrind", out_file.as_str()];
            let g = joinery_tests::ServedGateway::start_under(&wrapper, binary, dir.path())?;
            concurrently(200, || request(&g.url)).await;
            let pid = g.process.id().to_string();
            callgrind_control(&["-z", &pid])?;
            concurrently(requests, || request(&g.url)).await;
            callgrind_control(&["-d", &pid])?;
            counts
                .push(dumped(&dir.path().join("callgrind.out.1")).await? as f64 / requests as f64);
        }
        for (label, count) in labels.iter().zip(&counts) {
            let added = count - counts[0];
            println!(
                "{name}{label:22}: {count:8.0} instructions/request (+{added:.0}, +{:.1}% of no policy)",
                100.0 * added / counts[0]
            );
        }
    }
    Ok(())
}

/// The `joinery` binaries whose gateways are served: this build's, and the one
/// `JOINERY_BENCH_BASELINE` names, if any; each with the prefix of its figures.
fn binaries() -> Vec<(&'static str, std::path::PathBuf)> {
    let mut binaries = vec![("", env!("CARGO_BIN_EXE_joinery_cli").into())];
    if let Ok(baseline) = std::env::var("JOINERY_BENCH_BASELINE") {
        binaries.push(("baseline ", baseline.into()));
    }
    binaries
}

/// A request for OPERATION (persisted as `hash`) to `url`, with the headers a browser sends
/// and `token`.
fn browser_request(
    client: &reqwest::Client,
    url: &str,
    hash: &str,
    token: &str,
) -> reqwest::RequestBuilder {
    BROWSER_HEADERS
        .iter()
        .fold(client.post(url), |r, (name, value)| r.header(*name, *value))
        .header("authorization", format!("Bearer {token}"))
        .json(&json!({ "documentId": format!("sha256:{hash}"), "variables": { "code": "FR" } }))
}

/// Runs `callgrind_control` with `args`.
fn callgrind_control(args: &[&str]) -> anyhow::Result<()> {
    let done = std::process::Command::new("callgrind_control")
        .args(args)
        .output()?;
    anyhow::ensure!(done.status.success(), "callgrind_control {args:?} failed");
    Ok(())
}

/// The instructions a callgrind dump at `path` counted, once it is written.
async fn dumped(path: &std::path::Path) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let total = text.lines().find_map(|l| l.strip_prefix("summary: "));
        if let Some(n) = total.and_then(|t| t.trim().parse().ok()) {
            return Ok(n);
        }
        anyhow::ensure!(Instant::now() < deadline, "no callgrind dump at {path:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// [`BROWSER_HEADERS`] and the token, as a client's request brings them.
fn browser_headers(token: &str) -> reqwest::header::HeaderMap {
    let mut headers: reqwest::header::HeaderMap = BROWSER_HEADERS
        .iter()
        .map(|(n, v)| (n.parse().unwrap(), v.parse().unwrap()))
        .collect();
    let authorization = format!("Bearer {token}").parse().unwrap();
    headers.insert("authorization", authorization);
    headers
}

/// A project serving OPERATION from `upstream`, with `policy` (a plugin table) if any.
fn project(upstream: &str, policy: Option<(&str, &str)>) -> anyhow::Result<tempfile::TempDir> {
    project_with(upstream, policy, "[log]\nlevel = \"warn\"\n")
}

/// The same project for `joinery serve` in its own process: any free port, and a JSON log
/// that says which.
fn served_project(
    binary: &std::path::Path,
    upstream: &str,
    policy: Option<(&str, &str)>,
) -> anyhow::Result<tempfile::TempDir> {
    let served = "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nlevel = \"info\"\nformat = \"json\"\n";
    let dir = project_with(upstream, policy, served)?;
    joinery_tests::JoineryProcess::build(binary, dir.path())?;
    Ok(dir)
}

fn project_with(
    upstream: &str,
    policy: Option<(&str, &str)>,
    head: &str,
) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("operations"))?;
    std::fs::write(dir.path().join("operations/country.graphql"), OPERATION)?;
    let mut config = format!("{head}[upstreams.countries]\nurl = \"{upstream}\"\n");
    if let Some((crate_name, extra)) = policy {
        config.push_str(&format!(
            "[policy]\nplugins = [\"p\"]\n[plugins.p]\npath = \"{}\"\n{extra}\n",
            rust_plugin(crate_name).display()
        ));
    }
    std::fs::write(dir.path().join("joinery.toml"), config)?;
    Ok(dir)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let n = joinery_tests::bench::requests(3000);
    let countries = joinery_tests::start_countries("127.0.0.1:0").await?;
    let jwt_extra = "secrets = [\"JOINERY_TEST_JWT_SECRET\"]\n[plugins.p.config]\nsecret = \"JOINERY_TEST_JWT_SECRET\"\noptional = false\nvariable = \"unused\"";
    let jwt_visible = format!("visible_headers = [\"authorization\"]\n{jwt_extra}");
    // The gateways: no policy, each policy, the probe and JWT shown only what they read.
    let policies = [
        None,
        Some(("allow-policy", "")),
        Some(("probe", "")),
        Some(("jwt-policy", jwt_extra)),
        Some(("probe", "visible_headers = [\"x-probe\", \"x-probe-arg\"]")),
        Some(("jwt-policy", jwt_visible.as_str())),
    ];
    let dirs = policies
        .iter()
        .map(|policy| project(&countries.url(), *policy))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let config = joinery::config::Config::load(&dirs[0].path().join("joinery.toml"))?;
    joinery::telemetry::init(&config.log);

    let token = token();
    let labels = [
        "no policy",
        "empty policy",
        "probe policy",
        "jwt policy",
        "probe, visible_headers",
        "jwt, visible_headers",
    ];
    if std::env::var_os("JOINERY_BENCH_INSTRUCTIONS").is_some() {
        return instructions(&countries.url(), &policies, &labels, &token).await;
    }

    // 1. The hook alone, called directly on warm instances.
    let headers = std::sync::Arc::new(browser_headers(&token));
    for (label, dir) in [
        ("empty policy (allow-policy)", &dirs[1]),
        ("probe (allow)", &dirs[2]),
        ("jwt-policy (HS256 verify)", &dirs[3]),
    ] {
        let config = joinery::config::Config::load(&dir.path().join("joinery.toml"))?;
        let plugins = joinery::project::load_plugins(&config)?;
        let plugin = plugins.policy("p").expect("loaded");
        for _ in 0..1000 {
            plugin
                .on_request("Country", "h", headers.clone(), "{\"code\":\"FR\"}")
                .await?;
        }
        let calls = 20 * n;
        let started = Instant::now();
        for _ in 0..calls {
            plugin
                .on_request("Country", "h", headers.clone(), "{\"code\":\"FR\"}")
                .await?;
        }
        println!(
            "request hook, {label}: {:.2} µs per call (mean of {calls} warm calls)",
            micros(started.elapsed()) / calls as f64
        );
        // The same call after the caches were filled with other data, as happens between
        // requests in a gateway.
        let mut other = vec![0u8; 32 << 20];
        let mut cold = Duration::ZERO;
        let cold_calls = std::env::var("JOINERY_BENCH_COLD_CALLS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(n.min(2000));
        for i in 0..cold_calls {
            for b in other.iter_mut().step_by(64) {
                *b = b.wrapping_add(i as u8);
            }
            let started = Instant::now();
            plugin
                .on_request("Country", "h", headers.clone(), "{\"code\":\"FR\"}")
                .await?;
            cold += started.elapsed();
        }
        std::hint::black_box(&other);
        println!(
            "request hook, {label}: {:.2} µs per call after caches were overwritten (mean of {cold_calls})",
            micros(cold) / cold_calls as f64
        );
    }

    // 2. Through the gateway, interleaved.
    let mut gateways = Vec::new();
    for dir in &dirs {
        gateways
            .push(joinery_tests::RunningGateway::start(&dir.path().join("joinery.toml")).await?);
    }
    let client = reqwest::Client::new();
    let request = |url: &str, hash: &str| browser_request(&client, url, hash, &token);
    let hash = gateways[0].hash("Country");
    for _ in 0..200 {
        for g in &gateways {
            timed(request(&g.url, &hash), br#"{"data""#).await;
        }
    }
    let mut samples = vec![Vec::with_capacity(n); gateways.len()];
    for i in 0..n {
        for (k, g) in gateways.iter().enumerate() {
            samples[k].push(timed(request(&g.url, &hash), br#"{"data""#).await);
        }
        if i % 500 == 0 {
            countries.reset();
        }
    }
    // CPU in interleaved blocks, so that drift (other load, frequency) falls on every gateway
    // alike; the process holds client, gateways and upstream, so differences are the policy's.
    let mut cpu = vec![Duration::ZERO; gateways.len()];
    let mut switches = vec![0u64; gateways.len()];
    let mut faults = vec![0u64; gateways.len()];
    const BLOCK: usize = 50;
    for round in 0..n.div_ceil(BLOCK) {
        for (k, g) in gateways.iter().enumerate() {
            let (started, switched, faulted) =
                (ProcessTime::now(), context_switches(), minor_faults());
            for _ in 0..BLOCK {
                timed(request(&g.url, &hash), br#"{"data""#).await;
            }
            cpu[k] += started.elapsed();
            switches[k] += context_switches() - switched;
            faults[k] += minor_faults() - faulted;
        }
        if round % 10 == 0 {
            countries.reset();
        }
    }
    let n_cpu = n.div_ceil(BLOCK) * BLOCK;
    println!("requests per gateway: {n}");
    for s in samples.iter_mut() {
        s.sort();
    }
    let base = micros(percentile(&samples[0], 0.5));
    for (k, s) in samples.iter().enumerate() {
        println!(
            "{:22}: median {:7.1} µs  p99 {:7.1} µs  median ratio to no policy {:.3}x  | process CPU {:.1} µs/request (+{:.1} µs), {:.2} context switches and {:.2} page faults/request",
            labels[k],
            micros(percentile(s, 0.5)),
            micros(percentile(s, 0.99)),
            micros(percentile(s, 0.5)) / base,
            micros(cpu[k]) / n_cpu as f64,
            (micros(cpu[k]) - micros(cpu[0])) / n_cpu as f64,
            switches[k] as f64 / n_cpu as f64,
            faults[k] as f64 / n_cpu as f64,
        );
    }

    // 3. Each gateway in its own process, driven by 8 concurrent clients: the CPU the gateway
    // process alone spends per request (the client and the upstream run in this process).
    // With `JOINERY_BENCH_BASELINE` naming another `joinery` binary, its gateways take
    // turns with these in the same run: a change compared within one run, not across runs
    // minutes apart on a machine whose speed drifts.
    drop(gateways);
    let binaries = binaries();
    let mut served = Vec::new();
    let mut served_dirs = Vec::new();
    for (_, binary) in &binaries {
        for policy in &policies {
            let dir = served_project(binary, &countries.url(), *policy)?;
            served.push(joinery_tests::ServedGateway::start(
                binary,
                dir.path(),
                &[],
            )?);
            served_dirs.push(dir);
        }
    }
    let hash = joinery::operations::hash(OPERATION);
    for g in &served {
        concurrently(500, || request(&g.url, &hash)).await;
    }
    const SERVED_BLOCK: usize = 250;
    // Differences of a few µs need many blocks: the machine's speed drifts between them.
    let served_n = std::env::var("JOINERY_BENCH_SERVED_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    let rounds = served_n.div_ceil(SERVED_BLOCK);
    let mut gateway_cpu = vec![Duration::ZERO; served.len()];
    for round in 0..rounds {
        for (k, g) in served.iter().enumerate() {
            let before = g.process.cpu();
            concurrently(SERVED_BLOCK, || request(&g.url, &hash)).await;
            gateway_cpu[k] += g.process.cpu() - before;
        }
        if round % 4 == 0 {
            countries.reset();
        }
    }
    let per_request = |k: usize| micros(gateway_cpu[k]) / (rounds * SERVED_BLOCK) as f64;
    println!(
        "gateway in its own process, 8 concurrent clients, {} requests per gateway:",
        rounds * SERVED_BLOCK
    );
    for (b, (name, _)) in binaries.iter().enumerate() {
        let none = b * labels.len();
        // Also as a share of the request without policy, which the machine's load moves less
        // than it moves the µs.
        for (k, label) in labels.iter().enumerate() {
            let added = per_request(none + k) - per_request(none);
            println!(
                "{name}{label:22}: gateway CPU {:6.1} µs/request (+{added:.1} µs, +{:.1}% of no policy)",
                per_request(none + k),
                100.0 * added / per_request(none)
            );
        }
    }
    Ok(())
}
