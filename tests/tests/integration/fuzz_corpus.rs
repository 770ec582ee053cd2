//! The fuzz corpus (`tests/fuzz/corpus/<target>`) replayed through the same entry points the
//! fuzz targets call, so that every input a fuzzer ever found (kept in the corpus) stays fixed.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use joinery::fuzzing::{self, Fixture};

type Target = fn(&Fixture, &[u8]) -> Option<(u16, Vec<u8>)>;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn fixture() -> Fixture {
    Fixture::load(&fuzz_dir().join("project/joinery.toml")).expect("the fuzz project builds")
}

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// Runs every input of `target`'s corpus; returns the inputs that broke a promise.
fn replay(fixture: &Fixture, target: &str, run: &dyn Fn(&Fixture, &[u8])) -> Vec<String> {
    let inputs = corpus(target);
    assert!(inputs.len() >= 4, "the {target} corpus lost its seeds");
    // Broken promises panic: report them all by input instead of stopping at the first.
    inputs
        .iter()
        .filter_map(|(name, bytes)| {
            let result = catch_unwind(AssertUnwindSafe(|| run(fixture, bytes)));
            let message = result.err()?;
            let text = message
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| message.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Some(format!("{target}/{name}: {text}"))
        })
        .collect()
}

#[test]
fn every_corpus_input_keeps_the_gateways_promises() {
    let fixture = fixture();
    let targets: [(&str, Target); 3] = [
        ("request", fuzzing::request),
        ("variables", fuzzing::variables),
        ("answers", fuzzing::answers),
    ];
    let mut failed = Vec::new();
    for (target, run) in targets {
        failed.extend(replay(&fixture, target, &|f, b| {
            run(f, b);
        }));
    }
    failed.extend(replay(&fixture, "config", &fuzzing::config));
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

/// The seeds are live runs of the example operations: replaying their recorded answers gives a
/// complete response again (so the corpus still reaches execution and completion, and does not
/// rot into inputs refused at the door when the operations change).
#[test]
fn recorded_answers_complete_every_operation_again() {
    let fixture = fixture();
    let seeds: Vec<_> = corpus("answers")
        .into_iter()
        .filter(|(name, _)| name.starts_with("seed-"))
        .collect();
    assert!(seeds.len() >= fixture.operations().len());
    for (name, bytes) in seeds {
        let (status, body) = fuzzing::answers(&fixture, &bytes).expect("seed variables are JSON");
        let response: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, 200, "{name}: {response}");
        assert!(response["data"].is_object(), "{name}: {response}");
    }
    for (name, bytes) in corpus("variables")
        .into_iter()
        .filter(|(name, _)| name.starts_with("seed-"))
    {
        let (status, _) = fuzzing::variables(&fixture, &bytes).expect("seed variables are JSON");
        assert_eq!(status, 200, "{name}: variables must be accepted");
    }
}

/// The fuzz project reads the countries and travel schemas from files: they must be the
/// example upstreams'.
#[test]
fn the_fuzz_projects_schemas_are_the_example_upstreams() {
    for (file, sdl) in [
        ("countries.graphql", joinery_tests::countries_sdl()),
        ("travel.graphql", joinery_tests::travel_sdl()),
    ] {
        let text = std::fs::read_to_string(fuzz_dir().join("project/schemas").join(file))
            .expect("the fuzz project has the schema");
        assert!(
            text == sdl,
            "tests/fuzz/project/schemas/{file} is out of date: run `cargo run -p joinery-tests --bin fuzz_seeds`"
        );
    }
}
