//! A worker: takes the oldest due queued run, runs the workflow version it
//! was triggered for (storing each step as it finishes, and handing a
//! `flow.respond` response to the waiting trigger at once), then stores
//! the outcome or queues a retry.

use super::{AppState, Reply};
use crate::runtime::outcome::StepOutcome;
use crate::store::RunRecord;
use crate::workflow::{WorkflowOutcome, WorkflowStatus};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// How long an idle worker waits before looking at the queue again (a
/// wake-up can be missed between its look and its wait).
const IDLE_POLL: Duration = Duration::from_millis(500);

pub(super) async fn work(state: Arc<AppState>) {
    loop {
        if state.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let claimed = state.store().claim_run();
        match claimed {
            Ok(Some(run)) => run_one(&state, &run).await,
            Ok(None) => {
                let idle = match state.store().next_retry_ms() {
                    Ok(Some(due)) => {
                        Duration::from_millis((due - crate::base::clock::now_ms()).max(1) as u64)
                            .min(IDLE_POLL)
                    }
                    _ => IDLE_POLL,
                };
                let _ = tokio::time::timeout(idle, state.work.notified()).await;
            }
            Err(e) => {
                eprintln!("stephost: claiming a run: {e}");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// Runs one claimed run and stores how it ended.
pub(super) async fn run_one(state: &AppState, run: &RunRecord) {
    let ended = execute(state, run).await;
    if let Err(e) = conclude(state, run, ended) {
        eprintln!("stephost: run {}: {e}", run.id);
    }
}

/// How one attempt of a run ended.
struct Ended {
    status: &'static str,
    outcome: serde_json::Value,
    /// Wait this long and try again.
    retry_in: Option<Duration>,
}

/// Stores how the attempt ended: finished (and the waiting trigger told),
/// or queued again for a retry.
fn conclude(state: &AppState, run: &RunRecord, ended: Ended) -> Result<(), crate::store::StoreError> {
    match ended.retry_in {
        Some(delay) => {
            let due = crate::base::clock::now_ms() + delay.as_millis() as i64;
            state.store().retry_run(&run.id, &ended.outcome, due)?;
            state.work.notify_one();
        }
        None => {
            let stored = state.store().finish_run(&run.id, ended.status, &ended.outcome);
            state.reply(&run.id, Reply::Ended(ended.status));
            stored?;
        }
    }
    Ok(())
}

async fn execute(state: &AppState, run: &RunRecord) -> Ended {
    let failed = |message: String| Ended {
        status: "failed",
        outcome: json!({ "status": "failed", "error": message }),
        retry_in: None,
    };
    let record = match state.store().workflow_version(&run.workflow, run.version) {
        Ok(Some(record)) => record,
        Ok(None) => return failed(format!("workflow {} version {} is gone", run.workflow, run.version)),
        Err(e) => return failed(e.to_string()),
    };
    let mut workflow = match state.workflow(&record) {
        Ok(workflow) => (*workflow).clone(),
        Err(e) => return failed(e.1),
    };
    if let Err(e) = state.refresher.refresh_due(&workflow.accounts()).await {
        return failed(e.to_string());
    }
    if let Err(e) = workflow.attach_store(&state.store(), Some(&state.refresher)) {
        return failed(e.to_string());
    }
    let mut on_step = |steps: &[StepOutcome]| {
        if let Err(e) = state.store().save_progress(&run.id, &json!({ "status": "running", "steps": steps }))
        {
            eprintln!("stephost: run {}: {e}", run.id);
        }
        if let Some(response) = steps.last().and_then(|step| step.response.clone()) {
            state.reply(&run.id, Reply::Respond(response));
        }
    };
    match workflow.run_observed(&state.runtime, &run.event, run.id.clone(), &mut on_step).await {
        Ok(outcome) => {
            let retry_in = (outcome.is_retryable_failure()
                && run.attempt <= u64::from(workflow.service.retries))
            .then(|| workflow.service.retry_delay(run.attempt));
            Ended { status: status_name(&outcome), outcome: outcome_json(&outcome, run), retry_in }
        }
        Err(e) => failed(e.to_string()),
    }
}

fn status_name(outcome: &WorkflowOutcome) -> &'static str {
    match outcome.status {
        WorkflowStatus::Succeeded => "succeeded",
        WorkflowStatus::Failed { .. } => "failed",
        WorkflowStatus::Exited { .. } => "exited",
    }
}

fn outcome_json(outcome: &WorkflowOutcome, run: &RunRecord) -> serde_json::Value {
    let mut value = serde_json::to_value(outcome).unwrap_or_default();
    value["attempt"] = json!(run.attempt);
    value
}
