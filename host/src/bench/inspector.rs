//! The inspector with many runs stored: the reads its web page makes
//! (the page, workflows with their last runs, a page of runs near the top
//! and near the bottom, a filtered page, one run), each timed through the
//! real server on loopback with the API token.

use super::{deploy_bench, wait_until_idle};
use crate::Runtime;
use crate::store::NewRun;
use anyhow::{Result, bail};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What [`inspector`] measured: one row per kind of read.
pub struct InspectorReport {
    /// Runs stored when the reads were timed.
    pub runs: usize,
    /// Reads timed per row, one after another.
    pub requests: usize,
    /// `(what was read, median, 99th percentile)`.
    pub rows: Vec<(String, Duration, Duration)>,
}

impl std::fmt::Display for InspectorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "inspector reads with {} runs stored ({} each):", self.runs, self.requests)?;
        for (what, p50, p99) in &self.rows {
            writeln!(f, "  {what}: p50 {:.2} ms, p99 {:.2} ms", ms(*p50), ms(*p99))?;
        }
        Ok(())
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Stores `runs` finished runs of a one-step workflow of `component` on a
/// server of a throw-away data directory (queued in batches, run by its
/// workers), then times `requests` reads of each kind the page makes.
pub async fn inspector(
    runtime: Arc<Runtime>,
    component: &std::path::Path,
    runs: usize,
    requests: usize,
) -> Result<InspectorReport> {
    use crate::server::{AppState, ServeConfig};
    let data = tempfile::tempdir()?;
    let mut config = ServeConfig::new(data.path().to_path_buf());
    config.workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let lock = crate::server::owner::ServeLock::acquire(data.path())?;
    let (state, token) = AppState::open(config, runtime.clone(), lock)?;
    let token = token.ok_or_else(|| anyhow::anyhow!("a new data directory has no token"))?;
    let step = runtime.load(component)?;
    let workflow = deploy_bench(&state, &step.hash, &std::fs::read(component)?).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let server = tokio::spawn(crate::server::serve(state.clone(), listener));

    let mut ids = Vec::with_capacity(runs);
    for batch in (0..runs).collect::<Vec<_>>().chunks(500) {
        let events: Vec<serde_json::Value> = batch.iter().map(|i| serde_json::json!({ "i": i })).collect();
        let new: Vec<NewRun> = events
            .iter()
            .map(|event| NewRun::new(crate::base::ids::new_run_id(), &workflow, event))
            .collect();
        ids.extend(new.iter().map(|run| run.id.clone()));
        state.store().enqueue_runs(&new).await?;
        state.work.notify_waiters();
    }
    wait_until_idle(&state).await?;

    let http = reqwest::Client::new();
    let get = |path: String| {
        let request = http.get(format!("{base}{path}")).bearer_auth(&token);
        async move {
            let started = Instant::now();
            let response = request.send().await?;
            let status = response.status();
            response.bytes().await?;
            if !status.is_success() {
                bail!("GET {path}: {status}");
            }
            Ok(started.elapsed())
        }
    };
    // Runs were queued oldest first: the 101st oldest is near the bottom
    // of the newest-first list, so its page is the last but one.
    let deep = &ids[100.min(ids.len() - 1)];
    let reads = [
        ("the page (GET /)", "/".to_string()),
        ("workflows with their last 5 runs", "/v1/workflows".to_string()),
        ("newest 50 runs", "/v1/runs?limit=50".to_string()),
        ("50 runs deep in the list (before=…)", format!("/v1/runs?limit=50&before={deep}")),
        (
            "50 succeeded runs of the workflow",
            "/v1/runs?workflow=bench&status=succeeded&limit=50".to_string(),
        ),
        ("none failed (an empty filter)", "/v1/runs?status=failed&limit=50".to_string()),
        ("one run with its steps and logs", format!("/v1/runs/{}", ids[ids.len() / 2])),
    ];
    let mut rows = Vec::new();
    for (what, path) in reads {
        get(path.clone()).await?;
        let mut took = Vec::with_capacity(requests);
        for _ in 0..requests {
            took.push(get(path.clone()).await?);
        }
        took.sort();
        let at = |q: f64| took[((took.len() - 1) as f64 * q) as usize];
        rows.push((what.to_string(), at(0.5), at(0.99)));
    }
    server.abort();
    Ok(InspectorReport { runs, requests, rows })
}
