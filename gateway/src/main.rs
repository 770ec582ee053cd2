use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = joinery::cli::Cli::parse();
    match joinery::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
