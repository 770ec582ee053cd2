//! `joinery plugin new`: every template (each language, both worlds) makes a project that builds
//! with the command it prints, loads in the gateway and answers; the guide's code blocks are
//! the templates' files.

use std::path::{Path, PathBuf};
use std::process::Command;

use joinery::plugin_call::{call, Hook};
use joinery::plugin_new::{create, Language, Made, World};
use serde_json::json;

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

/// Makes, builds and loads the templates of `language` (both worlds, or the policy only), then
/// calls every hook: the policy wants an `authorization` header and adds one upstream header;
/// the resolver greets.
async fn check_templates(language: Language, tag: &str, resolver_too: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = String::from("[upstreams.countries]\nurl = \"http://127.0.0.1:9/graphql\"\n");
    let policy = format!("{tag}-policy");
    let resolver = format!("{tag}-resolver");
    let worlds = [(&policy, World::Policy), (&resolver, World::Resolver)];
    for (name, world) in &worlds[..if resolver_too { 2 } else { 1 }] {
        let (name, world) = (*name, *world);
        let made = create(dir.path(), name, language, world).unwrap();
        let component = build(language, &made);
        config.push_str(&format!(
            "[plugins.{name}]\npath = \"{}\"\n",
            component.display()
        ));
    }
    let file = dir.path().join("joinery.toml");
    std::fs::write(&file, config).unwrap();
    let config = joinery::config::Config::load(&file).unwrap();
    let plugins = joinery::project::load_plugins(&config).unwrap();

    let denied = call(&plugins, &policy, Hook::Request, "{}").await.unwrap();
    assert_eq!(
        denied.answer,
        json!({ "deny": { "status": 401, "code": "UNAUTHENTICATED",
                          "message": "this API needs an authorization header" } })
    );
    let allowed = call(
        &plugins,
        &policy,
        Hook::Request,
        r#"{"headers": {"authorization": "Bearer x"}}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        allowed.answer,
        json!({ "allow": { "variables": {}, "upstream_headers": { "x-checked-by": policy } } })
    );
    let upstream = call(&plugins, &policy, Hook::UpstreamRequest, "{}")
        .await
        .unwrap();
    assert_eq!(
        upstream.answer,
        json!({ "proceed": { "set_headers": {}, "remove_headers": [] } })
    );
    let response = call(&plugins, &policy, Hook::UpstreamResponse, "{}")
        .await
        .unwrap();
    assert_eq!(response.answer, json!("keep"));
    if !resolver_too {
        return;
    }

    // Arguments with defaults, aliases, and a name that must stay intact through JSON.
    let hello = call(
        &plugins,
        &resolver,
        Hook::Resolve,
        r#"{"query": "{ hello(name: \"Ada \\\"Ç\\\"\") again: hello }"}"#,
    )
    .await
    .unwrap();
    assert_eq!(
        hello.answer,
        json!({ "data": { "hello": "Hello, Ada \"Ç\"!", "again": "Hello, world!" } })
    );
}

#[tokio::test]
async fn rust_templates_build_load_and_answer() {
    check_templates(Language::Rust, "rust", true).await;
}

#[tokio::test]
async fn javascript_templates_build_load_and_answer() {
    check_templates(Language::Js, "js", true).await;
}

#[tokio::test]
async fn python_templates_build_load_and_answer() {
    check_templates(Language::Python, "py", true).await;
}

#[tokio::test]
async fn c_templates_build_load_and_answer() {
    check_templates(Language::C, "c", true).await;
}

#[tokio::test]
async fn zig_policy_template_builds_loads_and_answers() {
    check_templates(Language::Zig, "zig", false).await;
    let dir = tempfile::tempdir().unwrap();
    let resolver = create(dir.path(), "zig-resolver", Language::Zig, World::Resolver).unwrap_err();
    assert_eq!(
        resolver.to_string(),
        "there is no Zig resolver template yet: `--lang c --world resolver` makes one on the same bindings"
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

/// The guide's Rust example is the policy template.
#[test]
fn the_guide_shows_the_templates() {
    let root = repo_root();
    let guide = std::fs::read_to_string(root.join("plugins/README.md")).unwrap();
    let template =
        std::fs::read_to_string(Path::new(&root).join("plugins/templates/rust-policy/src/lib.rs"))
            .unwrap();
    assert!(
        guide.contains(&format!("```rust\n{template}```")),
        "plugins/README.md shows another policy example than the template"
    );
}
