//! Writes the seed corpus of the fuzz targets (`tests/fuzz/corpus/<target>/seed-*`) and the
//! fuzz project's countries and travel schemas: every example operation run against the example upstreams
//! on loopback, with their answers recorded. Run it after changing the example operations or
//! upstreams:
//!   cargo run -p joinery-tests --bin fuzz_seeds

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::future::BoxFuture;
use joinery::fuzzing::Fixture;
use joinery::upstream::Answerer;
use serde_json::{json, Value};

/// Forwards each request to the example upstream of its namespace and records the answers.
#[derive(Debug)]
struct Recorder {
    urls: Vec<(String, String)>,
    http: reqwest::Client,
    answers: Arc<Mutex<Vec<Bytes>>>,
}

impl Answerer for Recorder {
    fn answer(&self, namespace: &str, body: Vec<u8>) -> BoxFuture<'static, Bytes> {
        let url = self
            .urls
            .iter()
            .find(|(ns, _)| ns == namespace)
            .map(|(_, url)| url.clone())
            .expect("the fuzz project has only the example upstreams");
        let (http, answers) = (self.http.clone(), self.answers.clone());
        Box::pin(async move {
            let answer = http
                .post(url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("the example upstream answers")
                .bytes()
                .await
                .expect("the example upstream answers");
            answers.lock().unwrap().push(answer.clone());
            answer
        })
    }
}

/// Variables for each example operation, some runs each.
fn runs() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("CapitalChain", "fr", json!({ "code": "FR" })),
        ("CapitalChain", "unknown", json!({ "code": "XX" })),
        ("CityWeather", "paris", json!({ "city": "Paris" })),
        (
            "CityWeather",
            "imperial",
            json!({ "city": "Tokyo", "units": "IMPERIAL" }),
        ),
        ("ContinentCapitals", "eu", json!({ "code": "EU" })),
        ("ContinentCapitals", "an", json!({ "code": "AN" })),
        ("CountriesWithWeather", "eu", json!({ "continent": "EU" })),
        ("CountriesWithWeather", "oc", json!({ "continent": "OC" })),
        ("CountriesTravel", "eu", json!({ "continent": "EU" })),
        ("CountriesTravel", "oc", json!({ "continent": "OC" })),
        ("Countries", "all", json!({})),
        ("Countries", "af", json!({ "continent": "AF" })),
        (
            "CountryAndWeather",
            "de",
            json!({ "code": "DE", "city": "Berlin" }),
        ),
        (
            "CountryAndWeather",
            "no-weather",
            json!({ "code": "DE", "city": "Berlin", "withWeather": false }),
        ),
        ("Country", "jp", json!({ "code": "JP" })),
        ("Country", "unknown", json!({ "code": "ZZ" })),
        (
            "RenameCountry",
            "fr",
            json!({ "code": "FR", "name": "République" }),
        ),
        ("Search", "an", json!({ "term": "an" })),
    ]
}

fn main() -> anyhow::Result<()> {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let upstreams = tokio::runtime::Runtime::new()?;
    let (countries, weather, travel) = upstreams.block_on(async {
        anyhow::Ok((
            joinery_tests::start_countries("127.0.0.1:0").await?,
            joinery_tests::start_weather("127.0.0.1:0").await?,
            joinery_tests::start_travel("127.0.0.1:0").await?,
        ))
    })?;
    std::fs::write(
        fuzz.join("project/schemas/countries.graphql"),
        joinery_tests::countries_sdl(),
    )?;
    std::fs::write(
        fuzz.join("project/schemas/travel.graphql"),
        joinery_tests::travel_sdl(),
    )?;
    let answers = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        urls: vec![
            ("countries".into(), countries.url()),
            ("weather".into(), weather.url()),
            ("travel".into(), travel.url()),
        ],
        http: reqwest::Client::new(),
        answers: answers.clone(),
    };
    let fixture =
        Fixture::load_answered_by(&fuzz.join("project/joinery.toml"), Arc::new(recorder))?;
    let corpus = fuzz.join("corpus");
    for target in ["request", "variables", "answers", "config"] {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let seed = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if seed.starts_with("seed-") {
                std::fs::remove_file(&path)?;
            }
        }
    }
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::write(corpus.join(target).join(format!("seed-{name}")), bytes)
    };

    for (name, label, variables) in runs() {
        let index = fixture
            .operations()
            .iter()
            .position(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("the example has no operation {name}"));
        let hash = fixture.operations()[index].1.clone();
        let index = u8::try_from(index).expect("fewer than 256 operations");
        answers.lock().unwrap().clear();
        let request = fixture
            .request_for(name, Some(serde_json::from_value(variables.clone())?))
            .expect("found above");
        let (status, body) = fixture.run(hyper::Method::POST, request);
        let response: Value = serde_json::from_slice(&body)?;
        anyhow::ensure!(
            status == 200 && response.get("data").is_some_and(|d| !d.is_null()),
            "{name} ({label}) failed: {response}"
        );
        let file = format!("{name}-{label}");
        let vars = serde_json::to_vec(&variables)?;

        let mut input = vec![index];
        input.extend_from_slice(&vars);
        write("variables", &file, &input)?;

        for answer in answers.lock().unwrap().iter() {
            input.push(0);
            input.extend_from_slice(answer);
        }
        write("answers", &file, &input)?;

        let by_id = json!({ "documentId": format!("sha256:{hash}"), "variables": variables });
        write(
            "request",
            &format!("{file}-post"),
            &serde_json::to_vec(&by_id)?,
        )?;
        let apq = json!({
            "operationName": name,
            "variables": variables,
            "extensions": { "persistedQuery": { "version": 1, "sha256Hash": hash } },
        });
        write(
            "request",
            &format!("{file}-apq"),
            &serde_json::to_vec(&apq)?,
        )?;
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("documentId", &format!("sha256:{hash}"))
            .append_pair("variables", &variables.to_string())
            .finish();
        let mut get = vec![1u8];
        get.extend_from_slice(query.as_bytes());
        write("request", &format!("{file}-get"), &get)?;
    }
    for (name, path) in configs() {
        write("config", name, &std::fs::read(path)?)?;
    }
    drop((countries, weather));
    eprintln!("seeds written under {}", corpus.display());
    Ok(())
}

/// The configuration files of the repository.
fn configs() -> Vec<(&'static str, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    vec![
        ("example", root.join("joinery.toml")),
        ("fuzz-project", root.join("tests/fuzz/project/joinery.toml")),
        ("peers", root.join("tests/benches/peers/joinery.toml")),
    ]
}
