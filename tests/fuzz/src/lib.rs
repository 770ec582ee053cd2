//! The fixture every fuzz target shares: the example project built in memory (see
//! `project/joinery.toml`), once per process.

use std::path::Path;
use std::sync::OnceLock;

use joinery::fuzzing::Fixture;

/// The fuzz project, built on first use.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("project/joinery.toml");
        Fixture::load(&config).expect("the fuzz project builds")
    })
}
