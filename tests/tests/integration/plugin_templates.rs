//! `joinery plugin new`: every template (each language, both worlds) makes a project that builds
//! with the command it prints, loads in the gateway and answers; the guide's code blocks are
//! the templates' files.

use std::path::{Path, PathBuf};
use std::process::Command;

use joinery::plugin_new::{create, Language, Made, World, CASES};

use crate::harness::repo_root;

/// The Zig the Zig template is written for, from PyPI.
const ZIG: &str = "ziglang==0.17.1";

/// Runs `command`, failing the test with its output when it fails.
fn run(what: &str, command: &mut Command) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Builds a made project as its printed command does and returns its component. Where that
/// command would download tools, the ones the suite installed from the same pins are used:
/// the last step of the command runs as printed.
fn build(language: Language, made: &Made) -> PathBuf {
    let plugins_dir = joinery_tests::plugins::plugins_dir();
    let what = format!("building {}", made.dir.display());
    match language {
        Language::Rust => {
            let mut words = made.build.split_whitespace();
            assert_eq!(words.next(), Some("cargo"));
            // A shared target folder keeps the dependencies built between runs.
            let target = plugins_dir.join("target/templates");
            run(
                &what,
                Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
                    .args(words)
                    .current_dir(&made.dir)
                    .env("CARGO_TARGET_DIR", &target)
                    .env_remove("RUSTFLAGS")
                    .env_remove("CARGO_ENCODED_RUSTFLAGS"),
            );
            target.join(made.component.strip_prefix("target/").unwrap())
        }
        Language::Js => {
            // `npm ci` would install what plugins/js-policy has installed (the same lock).
            assert_eq!(made.build, "npm ci && node build.mjs");
            joinery_tests::plugins::js_plugin("js-policy");
            std::os::unix::fs::symlink(
                plugins_dir.join("js-policy/node_modules"),
                made.dir.join("node_modules"),
            )
            .unwrap();
            run(
                &what,
                Command::new("node").arg("build.mjs").current_dir(&made.dir),
            );
            made.dir.join(&made.component)
        }
        Language::Python => {
            // The virtual environment of plugins/py-resolver has the same requirements.txt.
            let step = "&& .venv/bin/python build.py";
            assert!(made.build.ends_with(step), "{}", made.build);
            let python = joinery_tests::plugins::python_plugin("py-resolver")
                .parent()
                .unwrap()
                .join("venv/bin/python");
            run(
                &what,
                Command::new(python).arg("build.py").current_dir(&made.dir),
            );
            made.dir.join(&made.component)
        }
        Language::C | Language::Zig => {
            let mut make = Command::new("make");
            make.current_dir(&made.dir)
                .env("JOINERY", env!("CARGO_BIN_EXE_joinery_cli"));
            if language == Language::C {
                joinery_tests::apt::ensure(
                    &["clang", "lld", "wasi-libc", "libclang-rt-14-dev-wasm32"],
                    "the C plugin templates",
                );
            } else {
                // Zig from PyPI, as the Makefile says.
                let python = joinery_tests::plugins::python_tool("zig", ZIG);
                make.env("ZIG", format!("{} -m ziglang", python.display()));
            }
            assert_eq!(made.build, "make");
            run(&what, &mut make);
            made.dir.join(&made.component)
        }
    }
}

/// Makes and builds both templates of `language`, then runs
/// each project's own cases (`tests/cases.json`) with its own `joinery.toml`, as the printed
/// `joinery plugin test` does: the policy wants an `authorization` header and adds one upstream
/// header; the resolver greets.
async fn check_templates(language: Language, tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let worlds = [(World::Policy, 4), (World::Resolver, 2)];
    for (world, cases) in worlds {
        let name = format!("{tag}-{world:?}").to_lowercase();
        let made = create(dir.path(), &name, language, world).unwrap();
        let built = build(language, &made);
        let component = made.dir.join(&made.component);
        if built != component {
            std::fs::create_dir_all(component.parent().unwrap()).unwrap();
            std::fs::copy(&built, &component).unwrap();
        }
        let config =
            joinery::config::Config::load_for_plugins(&made.dir.join("joinery.toml")).unwrap();
        let plugins = joinery::project::load_plugins(&config).unwrap();
        let outcomes = joinery::plugin_test::run(&plugins, &name, &made.dir.join(CASES))
            .await
            .unwrap();
        assert_eq!(outcomes.len(), cases, "{name}");
        for outcome in outcomes {
            assert!(
                outcome.failure.is_none(),
                "{name}: {}: {}",
                outcome.name,
                outcome.failure.unwrap()
            );
        }
    }
}

#[tokio::test]
async fn rust_templates_build_load_and_answer() {
    check_templates(Language::Rust, "rust").await;
}

#[tokio::test]
async fn javascript_templates_build_load_and_answer() {
    check_templates(Language::Js, "js").await;
}

#[tokio::test]
async fn python_templates_build_load_and_answer() {
    check_templates(Language::Python, "py").await;
}

#[tokio::test]
async fn c_templates_build_load_and_answer() {
    check_templates(Language::C, "c").await;
}

#[tokio::test]
async fn zig_templates_build_load_and_answer() {
    check_templates(Language::Zig, "zig").await;
    // And they are formatted as `zig fmt` writes them.
    let python = joinery_tests::plugins::python_tool("zig", ZIG);
    let templates = repo_root().join("plugins/templates");
    run(
        "zig fmt --check",
        Command::new(python)
            .args(["-m", "ziglang", "fmt", "--check"])
            .args([
                templates.join("zig-policy/src/plugin.zig"),
                templates.join("zig-resolver/src/plugin.zig"),
            ]),
    );
}

/// A project is made only where nothing is, and only under a plugin name.
#[test]
fn templates_are_made_only_where_nothing_is() {
    let dir = tempfile::tempdir().unwrap();
    create(dir.path(), "taken", Language::Rust, World::Policy).unwrap();
    let again = create(dir.path(), "taken", Language::C, World::Policy).unwrap_err();
    assert!(
        again.to_string().ends_with("taken exists and is not empty"),
        "{again}"
    );
    let bad = create(dir.path(), "Tmpl", Language::Rust, World::Policy).unwrap_err();
    assert!(
        bad.to_string().starts_with("`Tmpl` cannot name a plugin"),
        "{bad}"
    );
}

/// Every code block of the plugin guide is checked, by the marker on the line before it:
/// `<!-- from: PATH -->` — copied from that file of the repository (a template or a plugin
/// the suite builds, the WIT, a test's operation), verbatim; `<!-- config -->` — parses as a `joinery.toml`;
/// `<!-- shell -->` — commands and what they print, not code. A block without a marker fails.
#[test]
fn every_block_of_the_plugin_guide_is_checked() {
    let root = repo_root();
    let guide = std::fs::read_to_string(root.join("plugins/README.md")).unwrap();
    let mut lines = guide.lines().enumerate();
    let mut marker: Option<&str> = None;
    let mut checked = 0;
    while let Some((index, line)) = lines.next() {
        if let Some(found) = line
            .strip_prefix("<!-- ")
            .and_then(|l| l.strip_suffix(" -->"))
        {
            marker = Some(found);
            continue;
        }
        let Some(language) = line.strip_prefix("```") else {
            marker = None;
            continue;
        };
        let mut block = String::new();
        for (_, line) in lines.by_ref() {
            if line == "```" {
                break;
            }
            block.push_str(line);
            block.push('\n');
        }
        let at = format!("plugins/README.md:{}: a ```{language} block", index + 1);
        match marker.take() {
            Some(source) if source.starts_with("from: ") => {
                let path = root.join(&source["from: ".len()..]);
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{at} names {}: {e}", path.display()));
                assert!(
                    text.contains(block.trim_end_matches('\n')),
                    "{at} is not a copy of lines of {}",
                    path.display()
                );
            }
            Some("config") => {
                joinery::config::Config::parse(Path::new("joinery.toml"), &block, &|_| None)
                    .unwrap_or_else(|e| panic!("{at} is not a valid joinery.toml: {e}"));
            }
            Some("shell") => {}
            other => panic!(
                "{at} has no marker (`<!-- from: PATH -->`, `<!-- config -->` or `<!-- shell -->`) on the line before it, but {other:?}"
            ),
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} blocks were found");
}

/// `joinery plugin test`, as the printed command runs it in a made project (a C one: the
/// quickest to build): the template's cases pass, a wrong expectation is shown with the
/// answer, a malformed case file is refused at its line and column, the exit status says
/// which, and a plugin that keeps its `headers` handle is told to drop it.
#[test]
fn plugin_test_reports_each_case() {
    let dir = tempfile::tempdir().unwrap();
    let made = create(dir.path(), "kit", Language::C, World::Policy).unwrap();
    build(Language::C, &made);
    let joinery = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_joinery_cli"))
            .args(args)
            .current_dir(&made.dir)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (ok, stdout, stderr) = joinery(&["plugin", "test", "kit", CASES]);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.starts_with("ok    a request without an authorization header is refused ("),
        "{stdout}"
    );
    assert!(stdout.ends_with("4 passed, 0 failed\n"), "{stdout}");

    std::fs::write(
        made.dir.join("tests/wrong.json"),
        r#"[{"name": "wrongly expected", "hook": "upstream-response", "expect": {"replace": "{}"}}]"#,
    )
    .unwrap();
    let (ok, stdout, stderr) = joinery(&["plugin", "test", "kit", CASES, "tests/wrong.json"]);
    assert!(!ok);
    assert!(
        stdout.contains(
            "FAIL  wrongly expected\n      expected {\"replace\":\"{}\"}\n     got \"keep\"\n"
        ),
        "{stdout}"
    );
    assert!(stdout.ends_with("4 passed, 1 failed\n"), "{stdout}");
    assert!(stderr.ends_with("error: 1 of 5 cases failed\n"), "{stderr}");

    std::fs::write(
        made.dir.join("tests/broken.json"),
        "[\n  {\"name\": \"x\", \"hook\": \"on-request\", \"expect\": 1}\n]",
    )
    .unwrap();
    let (ok, _, stderr) = joinery(&["plugin", "test", "kit", "tests/broken.json"]);
    assert!(!ok);
    assert!(stderr.contains("tests/broken.json:2:"), "{stderr}");
    assert!(stderr.contains("unknown variant `on-request`"), "{stderr}");

    // C bindings leave dropping the borrowed `headers` handle to the plugin: one that forgets
    // fails its call with what to add.
    let source = made.dir.join("src/plugin.c");
    let text = std::fs::read_to_string(&source).unwrap();
    let forgetful = text.replacen(
        "  joinery_plugin_types_header_map_drop_borrow(request->headers);\n",
        "",
        1,
    );
    assert_ne!(forgetful, text, "the template drops the handle");
    std::fs::write(&source, forgetful).unwrap();
    build(Language::C, &made);
    let (ok, stdout, _) = joinery(&["plugin", "test", "kit", CASES]);
    assert!(!ok);
    assert!(
        stdout.contains("it returned without dropping the `headers` handle lent for the call (in C and Zig: `joinery_plugin_types_header_map_drop_borrow(request->headers)` before returning)"),
        "{stdout}"
    );
}
