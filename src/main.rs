//! The `gongkai` binary: parse the command line, set up logging, run the command.

use clap::Parser;

use gongkai::cli::{Cli, Command};

/// mimalloc instead of glibc's malloc: under a burst of WeChat callbacks the daemon spent
/// about 15% of its CPU in glibc's malloc/free (consolidation and chunk unlinking) over
/// many small, short-lived strings (perf; see docs/next-steps.md, issue 4).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
