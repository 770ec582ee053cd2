//! `joinery plugin new`: a plugin project from a template (`plugins/templates/`), with this
//! gateway's WIT beside it, that builds with one command.

use std::path::{Path, PathBuf};

/// The language of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust, built with `cargo` for `wasm32-wasip2`.
    Rust,
    /// JavaScript, built with componentize-js.
    Js,
    /// Python, built with componentize-py.
    Python,
    /// C, built with clang and wasi-libc, made a component by `joinery plugin componentize`.
    C,
    /// Zig, on the C bindings, made a component by `joinery plugin componentize`.
    Zig,
}

pub use crate::plugin::contract::World;
use crate::plugin::contract::WIT;

/// A template file: where it goes in the project, and its text.
type File = (&'static str, &'static str);

/// Includes files of `plugins/templates/<folder>/` under their paths there.
macro_rules! files {
    ($folder:literal: $($path:literal),+) => {
        &[$(($path, include_str!(concat!("../../plugins/templates/", $folder, "/", $path)))),+]
    };
}

/// The files of a template. A language's build files serve both worlds (they are kept in
/// one world's folder and name its world; `create` names the other one where it is made);
/// `my-plugin` / `my_plugin` in them become the plugin's name.
fn template(language: Language, world: World) -> (&'static [File], &'static [File]) {
    match (language, world) {
        (Language::Rust, World::Policy) => (files!("rust-policy": "Cargo.toml", "src/lib.rs"), &[]),
        (Language::Rust, World::Resolver) => {
            (files!("rust-resolver": "Cargo.toml", "src/lib.rs"), &[])
        }
        (Language::Js, world) => (
            files!("js-policy": "package.json", "package-lock.json", "build.mjs"),
            match world {
                World::Policy => files!("js-policy": "src/plugin.js"),
                World::Resolver => files!("js-resolver": "src/plugin.js"),
            },
        ),
        (Language::Python, world) => (
            files!("py-resolver": "requirements.txt", "build.py"),
            match world {
                World::Policy => files!("py-policy": "src/app.py"),
                World::Resolver => files!("py-resolver": "src/app.py"),
            },
        ),
        (Language::C, world) => (
            files!("c-policy": "Makefile"),
            match world {
                World::Policy => files!("c-policy": "src/plugin.c"),
                World::Resolver => files!("c-resolver": "src/plugin.c"),
            },
        ),
        (Language::Zig, world) => (
            files!("zig-policy": "Makefile"),
            match world {
                World::Policy => files!("zig-policy": "src/plugin.zig"),
                World::Resolver => files!("zig-resolver": "src/plugin.zig"),
            },
        ),
    }
}

/// `text` made for `world`: the other world's name, as build files name it, replaced.
fn for_world(text: &str, world: World) -> String {
    let other = match world {
        World::Policy => World::Resolver,
        World::Resolver => World::Policy,
    };
    let (name, other) = (world.wit_name(), other.wit_name());
    text.replace(other, name)
        .replace(&other.replace('-', "_"), &name.replace('-', "_"))
}

/// Where a project keeps the cases `joinery plugin test` runs.
pub const CASES: &str = "tests/cases.json";

/// What was made: the project's folder, how to build it and where the component lands.
#[derive(Debug)]
pub struct Made {
    /// The project's folder.
    pub dir: PathBuf,
    /// The command that builds it, run in `dir`.
    pub build: &'static str,
    /// The component it builds, relative to `dir`.
    pub component: String,
}

/// Writes a `language` project of `world` named `name` into `parent/name` (which must not
/// exist, or be empty).
pub fn create(parent: &Path, name: &str, language: Language, world: World) -> anyhow::Result<Made> {
    if !crate::config::valid_plugin_name(name) {
        anyhow::bail!(
            "`{name}` cannot name a plugin: use lower-case letters, digits and `-`, starting with a letter"
        );
    }
    let dir = parent.join(name);
    if dir
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        anyhow::bail!("{} exists and is not empty", dir.display());
    }
    let snake = name.replace('-', "_");
    let (build_files, sources) = template(language, world);
    let mut files: Vec<(PathBuf, Vec<u8>)> = build_files
        .iter()
        .chain(sources)
        .map(|(path, text)| {
            let text = for_world(text, world)
                .replace("my-plugin", name)
                .replace("my_plugin", &snake);
            (PathBuf::from(path), text.into_bytes())
        })
        .chain(std::iter::once((
            PathBuf::from(CASES),
            match world {
                World::Policy => include_str!("../../plugins/templates/cases/policy.json"),
                World::Resolver => include_str!("../../plugins/templates/cases/resolver.json"),
            }
            .replace("my-plugin", name)
            .into_bytes(),
        )))
        .chain(
            WIT.iter()
                .map(|(file, text)| (Path::new("wit").join(file), text.as_bytes().to_vec())),
        )
        .collect();
    if matches!(language, Language::C | Language::Zig) {
        for (file, bytes) in crate::plugin_component::c_bindings(world)? {
            files.push((Path::new("bindings").join(file), bytes));
        }
    }
    let (build, component) = match language {
        Language::Rust => (
            "cargo build --release --target wasm32-wasip2",
            format!("target/wasm32-wasip2/release/{snake}.wasm"),
        ),
        Language::Js => ("npm ci && node build.mjs", format!("{name}.wasm")),
        Language::Python => (
            "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/python build.py",
            format!("{name}.wasm"),
        ),
        Language::C | Language::Zig => ("make", format!("{name}.wasm")),
    };
    files.push((
        PathBuf::from("joinery.toml"),
        format!(
            "# The plugin as `joinery plugin call` and `joinery plugin test` run it here (run them in\n\
             # this folder); a gateway's joinery.toml takes the same table, with its grants.\n\
             [plugins.{name}]\npath = \"{component}\"\n"
        )
        .into_bytes(),
    ));
    for (path, bytes) in files {
        let path = dir.join(path);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(&path, bytes)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(Made {
        dir,
        build,
        component,
    })
}
