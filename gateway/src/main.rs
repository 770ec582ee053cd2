use clap::Parser;

// The request path allocates many small, short-lived objects from several threads; glibc's
// allocator spent a third of the gateway's CPU on them (and on its arena locks) under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    joinery::allocator::return_free_memory();
    let cli = joinery::cli::Cli::parse();
    match joinery::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
