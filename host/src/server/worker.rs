//! A worker: takes the oldest queued run, runs the workflow version it
//! was triggered for, and stores the outcome.

use super::AppState;
use crate::store::RunRecord;
use crate::workflow::WorkflowStatus;
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
            Ok(Some(run)) => {
                let (status, outcome) = execute(&state, &run).await;
                if let Err(e) = state.store().finish_run(&run.id, status, &outcome) {
                    eprintln!("stephost: run {}: {e}", run.id);
                }
            }
            Ok(None) => {
                let _ = tokio::time::timeout(IDLE_POLL, state.work.notified()).await;
            }
            Err(e) => {
                eprintln!("stephost: claiming a run: {e}");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

async fn execute(state: &AppState, run: &RunRecord) -> (&'static str, serde_json::Value) {
    let failed = |message: String| ("failed", json!({ "status": "failed", "error": message }));
    let record = match state.store().workflow_version(&run.workflow, run.version) {
        Ok(Some(record)) => record,
        Ok(None) => return failed(format!("workflow {} version {} is gone", run.workflow, run.version)),
        Err(e) => return failed(e.to_string()),
    };
    let mut workflow = match super::api::parse(state, &run.workflow, &record.definition) {
        Ok(workflow) => workflow,
        Err(e) => return failed(e.1),
    };
    if let Err(e) = workflow.attach_store(&state.store()) {
        return failed(e.to_string());
    }
    match workflow.run(&state.runtime, &run.event).await {
        Ok(outcome) => {
            let status = match outcome.status {
                WorkflowStatus::Succeeded => "succeeded",
                WorkflowStatus::Failed { .. } => "failed",
                WorkflowStatus::Exited { .. } => "exited",
            };
            (status, serde_json::to_value(&outcome).unwrap_or_default())
        }
        Err(e) => failed(e.to_string()),
    }
}
