//! Wake-ups from the other nodes on a shared store, turned into what this
//! node's in-process wake-ups would have done: a queued run wakes a worker,
//! a changed schedule the scheduler, a stored reply the waiting trigger, a
//! deleted step drops the local copy.

use super::AppState;
use crate::store::Signal;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Forwards the store's signals to this node until the store stops sending
/// them (or the task is aborted at shutdown).
pub(super) async fn forward(state: Arc<AppState>) {
    let Some(mut signals) = state.store.signals() else { return };
    loop {
        let signal = match signals.recv().await {
            Ok(signal) => signal,
            // Some were dropped: act as if all of them came.
            Err(RecvError::Lagged(_)) => Signal::Resync,
            Err(RecvError::Closed) => return,
        };
        handle(&state, signal).await;
    }
}

/// Does on this node what `signal` says happened on another.
pub(super) async fn handle(state: &AppState, signal: Signal) {
    match signal {
        Signal::Work(n) => state.wake_workers(n as usize),
        Signal::Schedules => state.schedules_changed.notify_one(),
        Signal::Reply(run) => {
            if state.is_waiting(&run) {
                take_reply(state, &run).await;
            }
        }
        Signal::StepDeleted(id) => forget_step(state, &id),
        Signal::Resync => {
            state.wake_workers(usize::MAX);
            state.schedules_changed.notify_one();
            for run in state.waiting_runs() {
                take_reply(state, &run).await;
            }
        }
    }
}

/// Hands `run`'s stored reply, if there is one, to the trigger waiting here.
async fn take_reply(state: &AppState, run: &str) {
    match state.store.take_reply(run).await {
        Ok(Some(reply)) => {
            let _ = state.reply(run, reply);
        }
        Ok(None) => {}
        Err(e) => eprintln!("stephost: run {run}: taking its reply: {e}"),
    }
}

/// Drops a step another node deleted: its file here and its compiled code.
fn forget_step(state: &AppState, id: &str) {
    // The id names a file: only a step id may.
    if !super::api::is_step_id(id) {
        return;
    }
    let id = id.to_ascii_lowercase();
    let file = state.steps_dir().join(format!("{id}.wasm"));
    match std::fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => eprintln!("stephost: step {id} was deleted, but its file stays: {e}"),
    }
    state.runtime.forget_step(&file, &id);
}
