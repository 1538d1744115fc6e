//! `stephost serve`: takes the data directory (one server per directory),
//! binds the port, opens the store (the directory's SQLite, or the database
//! other nodes share, checked against this node's master key), then the
//! server's state (which may make and print the API token), then serves.

use super::args::ServeArgs;
use super::context::{self, Storage};
use anyhow::{Context, Result, bail};
use std::process::ExitCode;
use std::sync::Arc;
use stephost::server::owner::ServeLock;
use stephost::server::{AppState, ServeConfig};

pub async fn run(storage: &Storage, args: ServeArgs) -> Result<ExitCode> {
    let data_dir = storage.data.as_path();
    if args.workers == 0 && storage.database.is_none() {
        bail!(
            "--workers 0 needs --database: a node without workers runs nothing unless other nodes share its runs"
        );
    }
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
    // On a shared database a wrong (or missing) master key fails here, in
    // one line, before the runtime is built or anything printed.
    let shared = match &storage.database {
        Some(_) => Some(context::backend(storage).await?),
        None => None,
    };
    let runtime = Arc::new(context::runtime(storage, &args.egress)?);
    let mut config = ServeConfig::new(data_dir.to_path_buf());
    config.workers = args.workers;
    config.max_queued = args.max_queued;
    config.keep_runs = Some(args.keep_runs);
    config.keep_days = Some(args.keep_days);
    config.grace = args.grace;
    config.lease = args.lease;
    if let Some(compiles) = args.max_compiles {
        config.max_compiles = compiles as usize;
    }
    config.compile_timeout = args.compile_timeout;
    let (state, generated) = match shared {
        Some(store) => AppState::open_shared(config, runtime, lock, store, listening).await?,
        None => AppState::open(config, runtime, lock)?,
    };
    if let Some(token) = generated {
        println!("API token (shown once; set STEPHOST_API_TOKEN to choose your own): {token}");
    }
    println!("stephost serving on http://{listening}");
    stephost::server::serve(state, listener).await.context("serving")?;
    Ok(ExitCode::SUCCESS)
}
