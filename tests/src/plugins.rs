//! Builds the plugins in `plugins/` (real WebAssembly components) once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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
