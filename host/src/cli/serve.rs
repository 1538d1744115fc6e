//! `stephost serve`: the flags, and starting the server.

use anyhow::{Context, Result};
use clap::Args;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use stephost::Runtime;
use stephost::server::{AppState, ServeConfig};

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Runs executing at once.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// Queued runs beyond which triggers answer 429 (with Retry-After).
    #[arg(long, default_value_t = 10_000)]
    pub max_queued: u64,
    /// Finished runs kept per workflow (a workflow's [retention] wins).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_runs: u64,
    /// Days finished runs are kept (a workflow's [retention] wins).
    #[arg(long, default_value_t = 30.0, value_parser = positive_days)]
    pub keep_days: f64,
    /// On SIGTERM, how long running runs may take to finish (queued ones
    /// wait for the next start), e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,
    #[command(flatten)]
    pub egress: crate::EgressArgs,
}

fn positive_days(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(days) if days.is_finite() && days > 0.0 => Ok(days),
        _ => Err(format!("`{text}` is not a number of days above 0")),
    }
}

pub async fn serve(data_dir: &Path, args: ServeArgs, runtime: Arc<Runtime>) -> Result<ExitCode> {
    let mut config = ServeConfig::new(data_dir.to_path_buf());
    config.workers = args.workers;
    config.max_queued = args.max_queued;
    config.keep_runs = Some(args.keep_runs);
    config.keep_days = Some(args.keep_days);
    config.grace = args.grace;
    let (state, generated) = AppState::open(config, runtime)?;
    if let Some(token) = generated {
        println!("API token (shown once; set STEPHOST_API_TOKEN to choose your own): {token}");
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    println!("stephost serving on http://{}", listener.local_addr()?);
    stephost::server::serve(state, listener).await.context("serving")?;
    Ok(ExitCode::SUCCESS)
}
