//! A worker: takes the oldest due queued run under a lease, runs the
//! workflow version it was triggered for (storing each step as it finishes,
//! then handing a `flow.respond` response to the waiting trigger), keeps
//! the lease alive meanwhile, then stores the outcome or queues a retry.

use super::{AppState, Reply};
use crate::runtime::outcome::{HttpResponse, StepOutcome};
use crate::store::{Claimed, Run, RunOutcome, RunStatus, RunSummary};
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::watch;

/// How long an idle worker waits before looking at the queue again (a
/// wake-up can be missed between its look and its wait).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// [`IDLE_POLL`] on a shared store: wake-ups come as signals from the
/// store, so the queue is looked at rarely, sparing the database.
const SHARED_IDLE_POLL: Duration = Duration::from_secs(5);

pub(super) async fn work(state: Arc<AppState>) {
    let poll = if state.store.is_shared() { SHARED_IDLE_POLL } else { IDLE_POLL };
    // The run claimed when the last one's end was stored.
    let mut next: Option<Claimed> = None;
    loop {
        if state.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            if let Some(claimed) = next
                && let Err(e) = state.store().release_run(&claimed.lease).await
            {
                eprintln!("stephost: run {}: giving it back to the queue: {e}", claimed.run.id);
            }
            return;
        }
        let claimed = match next.take() {
            Some(claimed) => Ok(Some(claimed)),
            None => state.store().claim_run(&state.owner, state.config.lease).await,
        };
        match claimed {
            Ok(Some(claimed)) => next = run_then_claim(&state, &claimed, true).await,
            Ok(None) => {
                let idle = match state.store().next_retry_ms().await {
                    Ok(Some(due)) => {
                        Duration::from_millis((due - crate::base::clock::now_ms()).max(1) as u64).min(poll)
                    }
                    _ => poll,
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

/// Runs one claimed run, its lease kept alive meanwhile, and stores how it
/// ended.
pub(super) async fn run_one(state: &AppState, claimed: &Claimed) {
    run_then_claim(state, claimed, false).await;
}

/// [`run_one`]; with `take_next`, the next run is claimed in the same write
/// that stores this one's end (one commit between runs), and returned.
async fn run_then_claim(state: &AppState, claimed: &Claimed, take_next: bool) -> Option<Claimed> {
    state.leases.lock().unwrap_or_else(|p| p.into_inner()).insert(claimed.lease.clone());
    state.announce_with(|| RunSummary::from(&claimed.run));
    let (progress, mut steps) = watch::channel(Vec::new());
    let answer = Answer::default();
    let ended = tokio::select! {
        ended = execute(state, &claimed.run, &progress, &answer) => ended,
        never = keep(state, claimed, &mut steps, &answer) => match never {},
    };
    // A response set by the last step may not have been handed on yet.
    let response = steps.borrow().iter().find_map(|step| step.response.clone());
    if let Some(response) = response {
        answer.respond(state, &claimed.run.id, response).await;
    }
    let next = conclude(state, claimed, ended, &answer, take_next).await.unwrap_or_else(|e| {
        eprintln!("stephost: run {}: {e}", claimed.run.id);
        None
    });
    state.leases.lock().unwrap_or_else(|p| p.into_inner()).remove(&claimed.lease);
    next
}

/// While the run runs: renews its lease every third of the lease, and
/// stores each step as it finishes.
async fn keep(
    state: &AppState,
    claimed: &Claimed,
    steps: &mut watch::Receiver<Vec<StepOutcome>>,
    answer: &Answer,
) -> Infallible {
    let mut beat = tokio::time::interval(state.config.lease / 3);
    beat.tick().await;
    let mut lost = false;
    loop {
        tokio::select! {
            _ = beat.tick(), if !lost => {
                match state.store().heartbeat(&claimed.lease, state.config.lease).await {
                    Ok(true) => {}
                    Ok(false) => {
                        eprintln!("stephost: run {}: lease lost; its end will not be stored", claimed.run.id);
                        lost = true;
                    }
                    Err(e) => eprintln!("stephost: run {}: heartbeat: {e}", claimed.run.id),
                }
            }
            changed = steps.changed() => {
                if changed.is_err() {
                    std::future::pending::<()>().await;
                }
                let finished = steps.borrow_and_update().clone();
                publish(state, claimed, &finished, answer).await;
            }
        }
    }
}

/// Stores the steps finished so far, then hands a `flow.respond` response
/// to the waiting trigger (stored first: the run shows what answered).
async fn publish(state: &AppState, claimed: &Claimed, steps: &[StepOutcome], answer: &Answer) {
    let outcome = RunOutcome::running(claimed.run.attempt, steps);
    match state.store().save_progress(&claimed.lease, &outcome).await {
        Ok(true) => state.announce_with(|| RunSummary::from(&claimed.run)),
        Ok(false) => {}
        Err(e) => eprintln!("stephost: run {}: {e}", claimed.run.id),
    }
    if let Some(response) = steps.iter().find_map(|step| step.response.clone()) {
        answer.respond(state, &claimed.run.id, response).await;
    }
}

/// What a run owes the HTTP trigger that may wait for it: one reply, the
/// first `flow.respond` response or else how the run ended.
#[derive(Default)]
struct Answer {
    /// Whether the workflow answers its trigger; unset until it is known.
    respond: OnceLock<bool>,
    /// Whether a reply was handed on already (later ones would lose).
    handed: AtomicBool,
}

impl Answer {
    /// Whether a trigger may wait for the reply: the workflow responds, or
    /// the run failed before its workflow was known (then a waiting trigger
    /// must still hear that it ended).
    fn responds(&self) -> bool {
        self.respond.get().copied().unwrap_or(true)
    }

    async fn respond(&self, state: &AppState, run: &str, response: HttpResponse) {
        self.hand(state, run, Reply::Respond(response)).await;
    }

    async fn ended(&self, state: &AppState, run: &str, status: RunStatus) {
        self.hand(state, run, Reply::Ended(status)).await;
    }

    async fn hand(&self, state: &AppState, run: &str, reply: Reply) {
        if !self.handed.swap(true, Ordering::SeqCst) {
            state.hand_reply(run, reply, self.responds()).await;
        }
    }
}

/// How one attempt of a run ended.
struct Ended {
    status: RunStatus,
    outcome: RunOutcome,
    /// Wait this long and try again.
    retry_in: Option<Duration>,
}

/// Stores how the attempt ended: finished (and the waiting trigger told),
/// or queued again for a retry. Nothing is stored if the lease was lost.
/// With `take_next` (and the node not stopping), a finished run's end is
/// stored together with the claim of the next run, which is returned.
async fn conclude(
    state: &AppState,
    claimed: &Claimed,
    ended: Ended,
    answer: &Answer,
    take_next: bool,
) -> Result<Option<Claimed>, crate::store::StoreError> {
    let lease = &claimed.lease;
    let mut next = None;
    let stored = match ended.retry_in {
        Some(delay) => {
            let due = crate::base::clock::now_ms() + delay.as_millis() as i64;
            let stored = state.store().retry_run(lease, &ended.outcome, due).await?;
            state.work.notify_one();
            stored
        }
        None if take_next && !state.stopping.load(Ordering::SeqCst) => {
            let ending = (lease, ended.status, &ended.outcome);
            let stored = state.store().finish_and_claim(ending, &state.owner, state.config.lease).await;
            answer.ended(state, &claimed.run.id, ended.status).await;
            let (stored, claimed_next) = stored?;
            next = claimed_next;
            stored
        }
        None => {
            let stored = state.store().finish_run(lease, ended.status, &ended.outcome).await;
            answer.ended(state, &claimed.run.id, ended.status).await;
            stored?
        }
    };
    if !stored {
        eprintln!("stephost: run {}: lease lost; another worker has the run", claimed.run.id);
    } else if state.events.receiver_count() > 0 {
        // Read back: the summary shows the times and retry the store set.
        // A failed read must not lose the run claimed next.
        match state.store().run(&claimed.run.id).await {
            Ok(Some(run)) => state.announce(RunSummary::from(&run)),
            Ok(None) => {}
            Err(e) => eprintln!("stephost: run {}: reading it back: {e}", claimed.run.id),
        }
    }
    Ok(next)
}

/// Runs the run's workflow version; `answer` learns whether the workflow
/// answers its trigger once it is known.
async fn execute(
    state: &AppState,
    run: &Run,
    progress: &watch::Sender<Vec<StepOutcome>>,
    answer: &Answer,
) -> Ended {
    let failed = |message: String| Ended {
        status: RunStatus::Failed,
        outcome: RunOutcome::failed_to_start(run.attempt, message),
        retry_in: None,
    };
    let Some(version) = run.version else {
        return failed(format!("run {} names no version of workflow {}", run.id, run.workflow));
    };
    let record = match state.store().workflow_version(&run.workflow, version).await {
        Ok(Some(record)) => record,
        Ok(None) => return failed(format!("workflow {} version {version} is gone", run.workflow)),
        Err(e) => return failed(e.to_string()),
    };
    let mut workflow = match state.workflow(&record) {
        Ok(workflow) => (*workflow).clone(),
        Err(e) => return failed(e.1),
    };
    let _ = answer.respond.set(workflow.service.respond);
    if let Err(e) = state.ensure_step_files(&workflow).await {
        return failed(e.to_string());
    }
    match state.store().workflow_secrets(&record.name, record.version).await {
        Ok(secrets) => workflow.fill_secrets(&secrets),
        Err(e) => return failed(e.to_string()),
    }
    if let Err(e) = state.refresher.refresh_due(&workflow.accounts()).await {
        return failed(e.to_string());
    }
    if let Err(e) = workflow.attach_store(state.store(), Some(&state.refresher)).await {
        return failed(e.to_string());
    }
    let mut on_step = |steps: &[StepOutcome]| {
        progress.send_replace(steps.to_vec());
    };
    let seed = run.seed.as_deref().unwrap_or_default();
    match workflow.run_observed(&state.runtime, &run.event, run.id.clone(), seed, &mut on_step).await {
        Ok(outcome) => {
            let retry_in = (outcome.is_retryable_failure()
                && run.attempt <= u64::from(workflow.service.retries))
            .then(|| workflow.service.retry_delay(run.attempt));
            Ended {
                status: outcome.status.run_status(),
                outcome: outcome.to_run_outcome(run.attempt),
                retry_in,
            }
        }
        Err(e) => failed(e.to_string()),
    }
}
