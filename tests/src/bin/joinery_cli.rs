//! The gateway's command line (the `joinery` binary's, without its allocator settings), for
//! tests that run a plugin project's build as its author would, `joinery` included: the
//! binary of another package of the workspace is not guaranteed to be built for them.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match joinery::cli::run(joinery::cli::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
