//! Builds the plugins in `plugins/` (real WebAssembly components) once per test process: the
//! Rust ones with cargo, the JavaScript and Python ones with componentize-js and
//! componentize-py, cached under `plugins/target/` across runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// The `plugins/` folder of the repository.
pub fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins")
}

/// Builds every Rust plugin for `wasm32-wasip2` (once) and returns the component of `crate_name`.
pub fn rust_plugin(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let release = BUILT
        .get_or_init(|| {
            let dir = plugins_dir();
            // A toolchain installed before rust-toolchain.toml named the target lacks it;
            // rustup adds it (a no-op when present). Without rustup, cargo's error says why.
            let _ = Command::new("rustup")
                .args(["target", "add", "wasm32-wasip2"])
                .current_dir(&dir)
                .output();
            let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "build",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "--manifest-path",
                ])
                .arg(dir.join("Cargo.toml"))
                .env("CARGO_TARGET_DIR", dir.join("target"))
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .output()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if !output.status.success() {
                return Err(format!(
                    "building plugins/ failed:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(dir.join("target/wasm32-wasip2/release"))
        })
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"));
    let path = release.join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// The gateway's plugin contract, `wit/`.
fn wit_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit")
}

/// Builds the JavaScript plugin in `plugins/<dir_name>/` with componentize-js (once per test
/// process, and only when its inputs changed since the last build) and returns its component,
/// `plugins/target/js/<dir_name>/<dir_name>.wasm`.
///
/// The folder holds `package.json` and `package-lock.json` (componentize-js pinned), a
/// `build.mjs` that writes the component to the path it is given as its first argument, and
/// the sources under `src/`. Needs `node` and `npm` on `PATH`; `npm ci` installs the tools
/// into the folder's `node_modules` when the lock file changed.
pub fn js_plugin(dir_name: &str) -> PathBuf {
    guest_plugin(Language::JavaScript, dir_name)
}

/// Builds the Python plugin in `plugins/<dir_name>/` with componentize-py (once per test
/// process, and only when its inputs changed since the last build) and returns its component,
/// `plugins/target/python/<dir_name>/<dir_name>.wasm`.
///
/// The folder holds `requirements.txt` (componentize-py pinned), a `build.py` that writes the
/// component to the path it is given as its first argument, and the sources under `src/`.
/// Needs `python3` (or `python`) with `venv` and `pip`; the tools are installed into a virtual
/// environment, `plugins/target/python/<dir_name>/venv`, when `requirements.txt` changed.
pub fn python_plugin(dir_name: &str) -> PathBuf {
    guest_plugin(Language::Python, dir_name)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Language {
    JavaScript,
    Python,
}

/// Changes whenever the way components are built here changes, so that old builds are redone.
const BUILD_RECIPE: &str = "joinery guest plugin build, v1";

impl Language {
    fn folder(self) -> &'static str {
        match self {
            Language::JavaScript => "js",
            Language::Python => "python",
        }
    }

    /// The files besides `src/` that decide what is built, the tools' pinned versions included.
    fn inputs(self) -> &'static [&'static str] {
        match self {
            Language::JavaScript => &["package.json", "package-lock.json", "build.mjs"],
            Language::Python => &["requirements.txt", "build.py"],
        }
    }

    /// The file that pins the build tools: the tools are installed again when it changes.
    fn lock_file(self) -> &'static str {
        match self {
            Language::JavaScript => "package-lock.json",
            Language::Python => "requirements.txt",
        }
    }

    /// The build tool and its version, as pinned by the lock file.
    fn tool(self, lock: &str) -> String {
        match self {
            Language::JavaScript => {
                let version = serde_json::from_str::<serde_json::Value>(lock)
                    .ok()
                    .and_then(|v| {
                        v["packages"]["node_modules/@bytecodealliance/componentize-js"]["version"]
                            .as_str()
                            .map(str::to_string)
                    })
                    .unwrap_or_else(|| "unknown".into());
                format!("componentize-js {version}")
            }
            Language::Python => {
                let version = lock
                    .lines()
                    .find_map(|l| l.trim().strip_prefix("componentize-py=="))
                    .unwrap_or("unknown");
                format!("componentize-py {version}")
            }
        }
    }
}

/// One build per plugin per process, shared by the tests that run in parallel.
fn guest_plugin(language: Language, dir_name: &str) -> PathBuf {
    type Builds = Mutex<HashMap<(Language, String), Arc<OnceLock<Result<PathBuf, String>>>>>;
    static BUILDS: OnceLock<Builds> = OnceLock::new();
    let once = BUILDS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((language, dir_name.to_string()))
        .or_default()
        .clone();
    once.get_or_init(|| build_guest(language, dir_name))
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The sha256 over everything a component is built from: the build recipe, the tool's
/// version, the plugin's inputs and sources, and `wit/*.wit`.
fn source_key(language: Language, src: &Path) -> Result<String, String> {
    let mut files = Vec::new();
    for name in language.inputs() {
        files.push((PathBuf::from(name), src.join(name)));
    }
    list_files(&src.join("src"), Path::new("src"), &mut files)?;
    let wit = wit_dir();
    let mut wit_files: Vec<_> = read_dir(&wit)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "wit"))
        .collect();
    wit_files.sort();
    for path in wit_files {
        files.push((Path::new("wit").join(path.file_name().unwrap()), path));
    }
    let lock = read(&src.join(language.lock_file()))?;
    let mut key = Sha256::new();
    key.update(BUILD_RECIPE);
    key.update([0]);
    key.update(language.tool(&String::from_utf8_lossy(&lock)));
    key.update([0]);
    for (name, path) in files {
        let bytes = read(&path)?;
        key.update(name.to_string_lossy().as_bytes());
        key.update([0]);
        key.update((bytes.len() as u64).to_le_bytes());
        key.update(&bytes);
    }
    Ok(hex::encode(key.finalize()))
}

/// The files under `dir`, recursively, in a stable order, named relative to `prefix`.
fn list_files(dir: &Path, prefix: &Path, out: &mut Vec<(PathBuf, PathBuf)>) -> Result<(), String> {
    let mut entries = read_dir(dir)?;
    entries.sort();
    for path in entries {
        let name = prefix.join(path.file_name().unwrap());
        let file_name = path.file_name().unwrap().to_string_lossy();
        if file_name == "__pycache__" || file_name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            list_files(&path, &name, out)?;
        } else {
            out.push((name, path));
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>, String> {
    std::fs::read_dir(dir)
        .and_then(|d| d.map(|e| e.map(|e| e.path())).collect())
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file and a rename, so that a reader (another
/// test process) never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Runs `command`, failing with its output when it does not succeed.
fn run(mut command: Command, what: &str) -> Result<(), String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command.output().map_err(|e| {
        format!("{what}: cannot run `{program}` ({e}); is it installed and on PATH?")
    })?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what} failed ({}):\n--- stderr ---\n{}\n--- stdout ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim_end(),
        String::from_utf8_lossy(&output.stdout).trim_end(),
    ))
}

/// A Python virtual environment at `venv` with `pip install <install>` done (again when
/// `key` changed since the last time); returns its `python`.
fn venv_with(venv: &Path, install: &[&std::ffi::OsStr], key: &str) -> Result<PathBuf, String> {
    let python = venv.join("bin/python");
    let marker = venv.join(".joinery-tools");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == key) {
        return Ok(python);
    }
    if !python.exists() {
        let mut created = Err(String::new());
        for system_python in ["python3", "python"] {
            let mut command = Command::new(system_python);
            command.args(["-m", "venv"]).arg(venv);
            created = run(
                command,
                &format!("creating the virtual environment {}", venv.display()),
            );
            if created.is_ok() {
                break;
            }
        }
        created?;
    }
    let mut pip = Command::new(&python);
    pip.args([
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--quiet",
    ])
    .args(install)
    .env_remove("PIP_USER");
    run(pip, &format!("`pip install` into {}", venv.display()))?;
    write_atomically(&marker, key.as_bytes())?;
    Ok(python)
}

/// A tool from PyPI, pinned by `requirement` (e.g. `ziglang==0.17.1`), installed once into
/// `plugins/target/tools/<name>/venv`; returns that environment's `python`.
pub fn python_tool(name: &str, requirement: &str) -> PathBuf {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let venv = plugins_dir().join("target/tools").join(name).join("venv");
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    venv_with(&venv, &[requirement.as_ref()], requirement).unwrap_or_else(|e| panic!("{e}"))
}

fn build_guest(language: Language, dir_name: &str) -> Result<PathBuf, String> {
    let src = plugins_dir().join(dir_name);
    if !src.is_dir() {
        return Err(format!("no plugin folder {}", src.display()));
    }
    let out_dir = plugins_dir()
        .join("target")
        .join(language.folder())
        .join(dir_name);
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    let wasm = out_dir.join(format!("{dir_name}.wasm"));
    let stamp = out_dir.join(format!("{dir_name}.wasm.key"));

    // Another test process building the same plugin waits here, then finds it built.
    let lock_path = out_dir.join("build.lock");
    let lock = std::fs::File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;

    let key = source_key(language, &src)?;
    if wasm.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s.trim() == key) {
        return Ok(wasm);
    }
    let lock_bytes = read(&src.join(language.lock_file()))?;
    let tools_key = hex::encode(Sha256::digest(&lock_bytes));
    let tmp = out_dir.join(format!("{dir_name}.wasm.{}.tmp", std::process::id()));
    let started = std::time::Instant::now();
    match language {
        Language::JavaScript => {
            let marker = src.join("node_modules/.joinery-tools");
            if !std::fs::read_to_string(&marker).is_ok_and(|s| s.trim() == tools_key) {
                let mut npm = Command::new("npm");
                npm.args(["ci", "--no-audit", "--no-fund"])
                    .current_dir(&src);
                run(npm, &format!("`npm ci` in {}", src.display()))?;
                write_atomically(&marker, tools_key.as_bytes())?;
            }
            let mut node = Command::new("node");
            node.arg("build.mjs").arg(&tmp).current_dir(&src);
            run(
                node,
                &format!("building the JavaScript plugin {}", src.display()),
            )?;
        }
        Language::Python => {
            let venv = out_dir.join("venv");
            let requirements = src.join("requirements.txt");
            let python = venv_with(
                &venv,
                &["-r".as_ref(), requirements.as_os_str()],
                &tools_key,
            )?;
            let mut build = Command::new(&python);
            build
                .arg("build.py")
                .arg(&tmp)
                .env("VIRTUAL_ENV", &venv)
                .env_remove("PYTHONPATH")
                .env_remove("PYTHONHOME")
                .current_dir(&src);
            run(
                build,
                &format!("building the Python plugin {}", src.display()),
            )?;
        }
    }
    if !tmp.exists() {
        return Err(format!(
            "building {} wrote no component at {}",
            src.display(),
            tmp.display()
        ));
    }
    std::fs::rename(&tmp, &wasm).map_err(|e| format!("cannot write {}: {e}", wasm.display()))?;
    write_atomically(&stamp, key.as_bytes())?;
    eprintln!(
        "built {} in {:.1}s",
        wasm.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(wasm)
}
