//! Tools from Debian's packages that some tests need (a Redis server, clang for WebAssembly),
//! installed by the test set-up when missing, never assumed present.

use std::process::{Command, Stdio};

/// Installs those of `packages` that are not installed (`apt-get install`, as root; `apt-get
/// update` first when the install fails) and panics with what to do when some are still
/// missing. `why` says which tests need them.
pub fn ensure(packages: &[&str], why: &str) {
    let missing = || -> Vec<&str> {
        packages
            .iter()
            .copied()
            .filter(|package| {
                !Command::new("dpkg-query")
                    .args(["-W", "-f=${Status}", package])
                    .output()
                    .is_ok_and(|o| o.stdout.ends_with(b"install ok installed"))
            })
            .collect()
    };
    let wanted = missing();
    if wanted.is_empty() {
        return;
    }
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let install = [&["install", "-y", "--no-install-recommends"], &wanted[..]].concat();
    if !apt(&install) {
        apt(&["update"]);
        apt(&install);
    }
    let still = missing();
    assert!(
        still.is_empty(),
        "{why} need {}: `apt-get install {}` (as root) failed",
        still.join(", "),
        still.join(" ")
    );
}
