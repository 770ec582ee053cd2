//! The gateway's own work on a 50-item join, without sockets: the example project built in
//! memory (`tests/fuzz/project`), its upstreams answering in process with canned answers, so
//! that what is measured is request handling, planning, upstream request rendering, reading
//! the answers, the join and writing the response, on one thread, and nothing else (no
//! kernel, no HTTP, no other process competing for the two cores).
//!
//! Both batching modes, interleaved in blocks: the weather API's batch form (one
//! `getCitiesByNames` call) and alias batching (50 aliased `getCityByName` copies). Prints the
//! median thread CPU per request of each mode.
//! `cargo bench -p joinery-tests --bench executor` (`JOINERY_BENCH_REQUESTS` sets the requests
//! per mode).

use std::fmt::Write;
use std::path::{Path, PathBuf};

use cpu_time::ThreadTime;
use joinery::fuzzing::{answers_unchecked, Fixture};
use serde_json::Value;

/// The served binary's allocator, so that allocation costs what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const ITEMS: usize = 50;
const BLOCK: usize = 100;
const OPERATION: &str = "CountriesWithWeather";

fn capital(i: usize) -> String {
    format!("Capital City {i:02}")
}

fn countries_answer() -> String {
    let items: Vec<String> = (0..ITEMS)
        .map(|i| {
            format!(
                r#"{{"code":"C{i:02}","name":"Country number {i:02}","capital":"{}"}}"#,
                capital(i)
            )
        })
        .collect();
    format!(
        r#"{{"data":{{"countries_countries":[{}]}}}}"#,
        items.join(",")
    )
}

fn weather(i: usize) -> String {
    format!(
        r#"{{"summary":{{"title":"Clouds"}},"temperature":{{"actual":{}.{}}}}}"#,
        i % 30,
        i % 10
    )
}

/// The batch form's answer: one list, results carrying their key.
fn batch_answer() -> String {
    let items: Vec<String> = (0..ITEMS)
        .map(|i| {
            format!(
                r#"{{"_joinery_key":"{}","weather":{}}}"#,
                capital(i),
                weather(i)
            )
        })
        .collect();
    format!(
        r#"{{"data":{{"_0_0_0_weather_getCityByName":[{}]}}}}"#,
        items.join(",")
    )
}

/// Alias batching's answer: one aliased root field per distinct capital.
fn alias_answer() -> String {
    let mut data = String::new();
    for i in 0..ITEMS {
        if i > 0 {
            data.push(',');
        }
        write!(
            data,
            r#""_0_0_{i}_weather_getCityByName":{{"weather":{}}}"#,
            weather(i)
        )
        .unwrap();
    }
    format!(r#"{{"data":{{{data}}}}}"#)
}

/// The fuzz project's configuration without the weather API's batch form, in `dir`.
fn alias_config(dir: &Path) -> PathBuf {
    let project = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/project");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = format!(
        r#"[operations]
dir = "{ops}"
manifest = "{dir}/manifest.json"

[upstreams.countries]
url = "http://127.0.0.1:4001/graphql"
schema_file = "{project}/schemas/countries.graphql"

[upstreams.weather]
url = "http://127.0.0.1:4002/graphql"
schema_file = "{root}/schemas/weather.graphql"
"#,
        ops = root.join("operations").display(),
        dir = dir.display(),
        project = project.display(),
        root = root.display(),
    );
    let path = dir.join("joinery.toml");
    std::fs::write(&path, text).expect("temporary config written");
    path
}

struct Mode {
    name: &'static str,
    fixture: Fixture,
    input: Vec<u8>,
    per_request: Vec<f64>,
}

impl Mode {
    fn new(name: &'static str, config: &Path, weather_answer: String) -> Self {
        let fixture = Fixture::load(config).expect("the project builds");
        let pick = fixture
            .operations()
            .iter()
            .position(|(n, _)| n == OPERATION)
            .expect("the example project has the operation");
        let mut input = vec![pick as u8];
        input.extend_from_slice(br#"{"continent":"EU"}"#);
        input.push(0);
        input.extend_from_slice(countries_answer().as_bytes());
        input.push(0);
        input.extend_from_slice(weather_answer.as_bytes());
        let mode = Mode {
            name,
            fixture,
            input,
            per_request: Vec::new(),
        };
        mode.check();
        mode
    }

    /// The join is complete: every item has its weather, and there are no errors.
    fn check(&self) {
        let (status, body) = answers_unchecked(&self.fixture, &self.input).expect("runs");
        let response: Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(status, 200, "{response}");
        assert!(
            response.get("errors").is_none(),
            "{}: {response}",
            self.name
        );
        let items = response["data"]["countries_countries"]
            .as_array()
            .expect("a list");
        assert_eq!(items.len(), ITEMS);
        for item in items {
            assert!(
                item["weather"]["weather_getCityByName"]["weather"]["temperature"]["actual"]
                    .is_number(),
                "{}: {item}",
                self.name
            );
        }
    }

    fn block(&mut self) {
        let started = ThreadTime::now();
        for _ in 0..BLOCK {
            let (status, _) = answers_unchecked(&self.fixture, &self.input).expect("runs");
            assert_eq!(status, 200);
        }
        let spent = started.elapsed().as_secs_f64() * 1e6 / BLOCK as f64;
        self.per_request.push(spent);
    }

    fn median(&self) -> f64 {
        let mut v = self.per_request.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
}

fn main() {
    let requests = joinery_tests::bench::requests(5000);
    let dir = tempfile::tempdir().expect("temporary directory");
    let batch_config = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/project/joinery.toml");
    let mut modes = [
        Mode::new("batch form", &batch_config, batch_answer()),
        Mode::new("alias batching", &alias_config(dir.path()), alias_answer()),
    ];
    for mode in &mut modes {
        for _ in 0..5 {
            mode.block();
        }
        mode.per_request.clear();
    }
    for _ in 0..requests.div_ceil(BLOCK) {
        for mode in &mut modes {
            mode.block();
        }
    }
    println!("{ITEMS}-item join, in process, one thread, {requests} requests per mode:");
    for mode in &modes {
        println!(
            "  {:<15} {:>7.1} µs CPU per request (median of blocks of {BLOCK})",
            mode.name,
            mode.median()
        );
    }
}
