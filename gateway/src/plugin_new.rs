//! `joinery plugin new`: a plugin project from a template (`plugins/templates/`), with this
//! gateway's WIT beside it, that builds with one command.

use std::path::{Path, PathBuf};

/// The language of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// Rust, built with `cargo` for `wasm32-wasip2`.
    Rust,
    /// JavaScript, built with componentize-js (policies only so far).
    Js,
    /// Python, built with componentize-py (resolvers only so far).
    Python,
}

/// The world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum World {
    /// Decides about requests (`policy-plugin`).
    Policy,
    /// Serves an upstream (`resolver-plugin`).
    Resolver,
}

/// The gateway's WIT package, written beside every template.
const WIT: [(&str, &str); 7] = [
    ("config.wit", include_str!("../../wit/config.wit")),
    ("log.wit", include_str!("../../wit/log.wit")),
    (
        "outbound-http.wit",
        include_str!("../../wit/outbound-http.wit"),
    ),
    ("policy.wit", include_str!("../../wit/policy.wit")),
    ("resolver.wit", include_str!("../../wit/resolver.wit")),
    ("types.wit", include_str!("../../wit/types.wit")),
    ("worlds.wit", include_str!("../../wit/worlds.wit")),
];

/// The files of a template; `my-plugin` / `my_plugin` in them become the plugin's name.
fn template(
    language: Language,
    world: World,
) -> anyhow::Result<&'static [(&'static str, &'static str)]> {
    Ok(match (language, world) {
        (Language::Rust, World::Policy) => &[
            (
                "Cargo.toml",
                include_str!("../../plugins/templates/rust-policy/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../plugins/templates/rust-policy/src/lib.rs"),
            ),
        ],
        (Language::Rust, World::Resolver) => &[
            (
                "Cargo.toml",
                include_str!("../../plugins/templates/rust-resolver/Cargo.toml"),
            ),
            (
                "src/lib.rs",
                include_str!("../../plugins/templates/rust-resolver/src/lib.rs"),
            ),
        ],
        (Language::Js, World::Policy) => &[
            (
                "package.json",
                include_str!("../../plugins/templates/js-policy/package.json"),
            ),
            (
                "package-lock.json",
                include_str!("../../plugins/templates/js-policy/package-lock.json"),
            ),
            (
                "build.mjs",
                include_str!("../../plugins/templates/js-policy/build.mjs"),
            ),
            (
                "src/policy.js",
                include_str!("../../plugins/templates/js-policy/src/policy.js"),
            ),
        ],
        (Language::Js, World::Resolver) => anyhow::bail!(
            "there is no JavaScript resolver template yet: try `--lang python` or `--lang rust`"
        ),
        (Language::Python, World::Resolver) => &[
            (
                "requirements.txt",
                include_str!("../../plugins/templates/py-resolver/requirements.txt"),
            ),
            (
                "build.py",
                include_str!("../../plugins/templates/py-resolver/build.py"),
            ),
            (
                "src/app.py",
                include_str!("../../plugins/templates/py-resolver/src/app.py"),
            ),
        ],
        (Language::Python, World::Policy) => anyhow::bail!(
            "there is no Python policy template yet: try `--lang js` or `--lang rust`"
        ),
    })
}

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
    let files = template(language, world)?
        .iter()
        .map(|(path, text)| {
            let text = text.replace("my-plugin", name).replace("my_plugin", &snake);
            (PathBuf::from(path), text)
        })
        .chain(
            WIT.iter()
                .map(|(file, text)| (Path::new("wit").join(file), text.to_string())),
        );
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder)?;
        }
        std::fs::write(&path, text)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    Ok(match language {
        Language::Rust => Made {
            dir,
            build: "cargo build --release --target wasm32-wasip2",
            component: format!("target/wasm32-wasip2/release/{snake}.wasm"),
        },
        Language::Js => Made {
            dir,
            build: "npm ci && node build.mjs",
            component: format!("{name}.wasm"),
        },
        Language::Python => Made {
            dir,
            build: "python3 -m venv .venv && .venv/bin/pip install -r requirements.txt && .venv/bin/python build.py",
            component: format!("{name}.wasm"),
        },
    })
}
