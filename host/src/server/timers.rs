//! Timer triggers: queues a run of each scheduled workflow when its time
//! comes (by the server's [`Clock`](super::clock::Clock)), and moves its
//! schedule on. Runs missed while the server was down collapse into one.

use super::AppState;
use std::sync::Arc;

/// The longest the scheduler sleeps without looking at the schedules.
const MAX_SLEEP_MS: i64 = 60_000;

pub(super) async fn run_schedules(state: Arc<AppState>) {
    loop {
        let now = state.config.clock.now_ms();
        let next_due = fire_due(&state, now).await.unwrap_or_else(|e| {
            eprintln!("stephost: schedules: {e}");
            Some(now + 1_000)
        });
        let wake = next_due.unwrap_or(i64::MAX).min(now + MAX_SLEEP_MS);
        tokio::select! {
            _ = state.config.clock.sleep_until(wake) => {}
            _ = state.schedules_changed.notified() => {}
        }
    }
}

/// Queues every schedule due at `now`; returns when the next one is due.
async fn fire_due(state: &AppState, now: i64) -> Result<Option<i64>, String> {
    let schedules = state.store().schedules().await.map_err(|e| e.to_string())?;
    let mut soonest: Option<i64> = None;
    for (name, due) in schedules {
        if due > now {
            return Ok(Some(soonest.map_or(due, |s| s.min(due))));
        }
        let record = state.store().workflow(&name).await.map_err(|e| e.to_string())?;
        let schedule = record.as_ref().and_then(|record| match state.workflow(record) {
            Ok(workflow) => workflow.service.schedule.clone(),
            Err(e) => {
                eprintln!("stephost: workflow {name}: {}", e.1);
                None
            }
        });
        let (Some(record), Some(schedule)) = (record, schedule) else {
            state.store().set_schedule(&name, None).await.map_err(|e| e.to_string())?;
            continue;
        };
        let event = schedule.event(due);
        let next = schedule.next_after_firing(due, now);
        let fired =
            state.store().fire_schedule(&record, due, &event, next).await.map_err(|e| e.to_string())?;
        if fired.is_some() {
            state.work.notify_one();
        }
        soonest = match (soonest, next) {
            (Some(s), Some(n)) => Some(s.min(n)),
            (s, n) => s.or(n),
        };
    }
    Ok(soonest)
}
