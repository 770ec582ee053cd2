//! The gateway's command line, built as the `joinery` binary is (same allocator and settings),
//! for tests that run a plugin project's build as its author would, `joinery` included, and for
//! benchmarks of a gateway in its own process: the binary of another package of the workspace
//! is not guaranteed to be built for them.

use clap::Parser;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    joinery::allocator::return_free_memory();
    match joinery::cli::run(joinery::cli::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
