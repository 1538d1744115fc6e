//! `stephost serve`: takes the data directory (one server per directory),
//! binds the port, then opens the server's state (which may make and print
//! the API token), then serves.

use super::args::ServeArgs;
use super::context;
use anyhow::{Context, Result};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use stephost::server::owner::ServeLock;
use stephost::server::{AppState, ServeConfig};

pub async fn run(data_dir: &Path, args: ServeArgs) -> Result<ExitCode> {
    // A second server on the directory is refused here, naming the first,
    // before anything is printed or a token made; the lock is held until
    // this process ends.
    let mut lock = ServeLock::acquire(data_dir)?;
    // A busy port fails here, before a token is made, stored and printed
    // next to an error (and never shown again).
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let listening = listener.local_addr()?;
    lock.record_listen(listening)
        .with_context(|| format!("writing {}", data_dir.join("serve.lock").display()))?;
    let runtime = Arc::new(context::runtime(data_dir, &args.egress)?);
    let mut config = ServeConfig::new(data_dir.to_path_buf());
    config.workers = args.workers;
    config.max_queued = args.max_queued;
    config.keep_runs = Some(args.keep_runs);
    config.keep_days = Some(args.keep_days);
    config.grace = args.grace;
    if let Some(compiles) = args.max_compiles {
        config.max_compiles = compiles as usize;
    }
    config.compile_timeout = args.compile_timeout;
    let (state, generated) = AppState::open(config, runtime, lock)?;
    if let Some(token) = generated {
        println!("API token (shown once; set STEPHOST_API_TOKEN to choose your own): {token}");
    }
    println!("stephost serving on http://{listening}");
    stephost::server::serve(state, listener).await.context("serving")?;
    Ok(ExitCode::SUCCESS)
}
