//! Retention: keeps each workflow's last N finished runs and those of the
//! last D days (the workflow's `[retention]`, else the server's defaults),
//! pruned in the background. Queued and running runs are never pruned.

use super::AppState;
use std::sync::Arc;

const DAY_MS: f64 = 86_400_000.0;

pub(super) async fn prune_forever(state: Arc<AppState>) {
    loop {
        if let Err(e) = prune_once(&state).await {
            eprintln!("stephost: pruning runs: {e}");
        }
        tokio::time::sleep(state.config.prune_every).await;
    }
}

/// One pass over every workflow with runs; how many runs went.
async fn prune_once(state: &AppState) -> Result<usize, String> {
    let now = state.config.clock.now_ms();
    let mut pruned = 0;
    let workflows = state.store().workflows_with_runs().await.map_err(|e| e.to_string())?;
    for name in workflows {
        let latest = state.store().workflow(&name).await.map_err(|e| e.to_string())?;
        let settings = latest.and_then(|record| state.workflow(&record).ok()).map(|w| w.service.clone());
        let keep_runs = settings.as_ref().and_then(|s| s.keep_runs).or(state.config.keep_runs);
        let keep_days = settings.as_ref().and_then(|s| s.keep_days).or(state.config.keep_days);
        let older_than = keep_days.map(|days| now - (days * DAY_MS) as i64);
        pruned += state.store().prune_runs(&name, keep_runs, older_than).await.map_err(|e| e.to_string())?;
    }
    Ok(pruned)
}
