//! The `gongkai` binary: parse the command line, set up logging, run the command.

use clap::Parser;

use gongkai::cli::{Cli, Command};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let filter = match cli.command {
        Command::Serve | Command::Sandbox { .. } => "info,sqlx=warn,tower_http=warn",
        _ => "warn",
    };
    gongkai::telemetry::init(filter);
    match gongkai::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("错误：{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
