//! Accepting events: triggers hand their event to one committer thread,
//! which writes every event waiting at that moment in one transaction (one
//! disk flush for many triggers) and answers each trigger once its run is
//! durable. A full queue refuses the excess with 429.

use super::{ApiError, AppState, Reply};
use crate::runtime::outcome::StepOutcome;
use crate::store::{NewRun, RunStatus, RunSummary, WorkflowRecord};
use axum::http::StatusCode;
use serde_json::Value;
use std::sync::{Arc, Weak};
use tokio::sync::{mpsc, oneshot};

/// Events written in one transaction at most.
const MAX_BATCH: usize = 512;

/// One event to commit, and where its answer goes.
pub(super) struct Intake {
    workflow: WorkflowRecord,
    event: Value,
    replay: Option<Replay>,
    waiter: Option<oneshot::Sender<Reply>>,
    answer: oneshot::Sender<Result<String, ApiError>>,
}

/// What a replay stores beside its event.
pub(super) struct Replay {
    /// The run it replays.
    pub of: String,
    /// From a step: the earlier steps' outcomes it reuses (empty: none).
    pub seed: Vec<StepOutcome>,
}

/// Starts the committer for `state`; it ends when the state is dropped.
/// It waits on the store's calls through `rt`.
pub(super) fn start(
    state: Weak<AppState>,
    mut intake: mpsc::UnboundedReceiver<Intake>,
    rt: tokio::runtime::Handle,
) {
    std::thread::Builder::new()
        .name("stephost-intake".into())
        .spawn(move || {
            while let Some(first) = intake.blocking_recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH
                    && let Ok(more) = intake.try_recv()
                {
                    batch.push(more);
                }
                let Some(state) = state.upgrade() else { return };
                commit(&state, &rt, batch);
            }
        })
        .expect("starting the intake thread");
}

fn commit(state: &AppState, rt: &tokio::runtime::Handle, mut batch: Vec<Intake>) {
    let room = match rt.block_on(state.store().queued_runs()) {
        Ok(queued) => state.config.max_queued.saturating_sub(queued) as usize,
        Err(e) => return refuse_all(batch, ApiError::from(e)),
    };
    let refused = batch.split_off(room.min(batch.len()));
    let ids: Vec<String> = batch.iter().map(|_| crate::base::ids::new_run_id()).collect();
    // Waiters first: once committed, a worker may finish the run before
    // its trigger would otherwise be waiting for it.
    {
        let mut waiting = state.waiting.lock().unwrap_or_else(|p| p.into_inner());
        for (intake, id) in batch.iter_mut().zip(&ids) {
            if let Some(waiter) = intake.waiter.take() {
                waiting.insert(id.clone(), waiter);
            }
        }
    }
    let runs: Vec<NewRun> = batch
        .iter()
        .zip(&ids)
        .map(|(intake, id)| NewRun {
            id: id.clone(),
            workflow: &intake.workflow,
            event: &intake.event,
            replay_of: intake.replay.as_ref().map(|r| r.of.as_str()),
            seed: intake.replay.as_ref().map(|r| r.seed.as_slice()).filter(|seed| !seed.is_empty()),
        })
        .collect();
    if let Err(e) = rt.block_on(state.store().enqueue_runs(&runs)) {
        let mut waiting = state.waiting.lock().unwrap_or_else(|p| p.into_inner());
        for id in &ids {
            waiting.remove(id);
        }
        drop(waiting);
        batch.extend(refused);
        return refuse_all(batch, ApiError::from(e));
    }
    // Announced before a worker is woken: a stream then always hears
    // `queued` before the worker's `running`, however the threads run.
    if state.events.receiver_count() > 0 {
        let created_ms = state.config.clock.now_ms().max(0) as u64;
        for (intake, id) in batch.iter().zip(&ids) {
            state.announce(RunSummary {
                id: id.clone(),
                workflow: intake.workflow.name.clone(),
                version: Some(intake.workflow.version),
                status: RunStatus::Queued,
                attempt: 0,
                created_ms,
                started_ms: None,
                finished_ms: None,
                retry_at_ms: None,
                replay_of: intake.replay.as_ref().map(|r| r.of.clone()),
                failed_step: None,
            });
        }
    }
    for _ in 0..ids.len().min(state.config.workers.max(1)) {
        state.work.notify_one();
    }
    for (intake, id) in batch.into_iter().zip(ids) {
        let _ = intake.answer.send(Ok(id));
    }
    refuse_all(refused, ApiError(StatusCode::TOO_MANY_REQUESTS, "the run queue is full; retry later".into()));
}

fn refuse_all(batch: Vec<Intake>, error: ApiError) {
    for intake in batch {
        let _ = intake.answer.send(Err(ApiError(error.0, error.1.clone())));
    }
}

/// Queues a run of `workflow` for `event`, unless the queue is full;
/// returns once the run is on disk. `waiter` gets the run's reply
/// (registered before any worker can take the run).
pub(super) async fn enqueue(
    state: &Arc<AppState>,
    workflow: &WorkflowRecord,
    event: Value,
    waiter: Option<oneshot::Sender<Reply>>,
) -> Result<String, ApiError> {
    let (answer, answered) = oneshot::channel();
    submit(state, Intake { workflow: workflow.clone(), event, replay: None, waiter, answer }, answered).await
}

/// Queues a replay of run `replay.of`'s `event` against `workflow`, storing
/// what it replays (and reuses); as [`enqueue`] otherwise.
pub(super) async fn enqueue_replay(
    state: &Arc<AppState>,
    workflow: &WorkflowRecord,
    event: Value,
    replay: Replay,
) -> Result<String, ApiError> {
    let (answer, answered) = oneshot::channel();
    let intake = Intake { workflow: workflow.clone(), event, replay: Some(replay), waiter: None, answer };
    submit(state, intake, answered).await
}

/// Hands `intake` to the committer and waits for its answer.
async fn submit(
    state: &Arc<AppState>,
    intake: Intake,
    answered: oneshot::Receiver<Result<String, ApiError>>,
) -> Result<String, ApiError> {
    let stopped = || ApiError(StatusCode::SERVICE_UNAVAILABLE, "the server is stopping".into());
    state.intake.send(intake).map_err(|_| stopped())?;
    answered.await.map_err(|_| stopped())?
}
