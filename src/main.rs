//! The `wfp-deployer` binary: parse the command line, run it, report errors
//! with their whole cause chain on one line.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = wfp_deployer::cli::Cli::parse();
    match wfp_deployer::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wfp-deployer: error: {e:#}");
            std::process::ExitCode::from(wfp_deployer::cli::exit_code(&e))
        }
    }
}
