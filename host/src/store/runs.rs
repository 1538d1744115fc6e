//! A run as the store keeps it, the API serves it and the CLI prints it:
//! one type, one JSON shape, per object.

use super::{StoreError, WorkflowRecord};
use crate::runtime::outcome::StepOutcome;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a run is in its life; stored and served as this lowercase word, so
/// SQL, JSON and `--status` agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a worker: newly accepted, a retry (perhaps not yet due),
    /// or given back by a worker.
    Queued,
    /// Claimed by a worker, under a lease.
    Running,
    /// Every step ran without error.
    Succeeded,
    /// A step failed, or the run could not start, and no retry follows.
    Failed,
    /// A step called `flow.exit`; the steps after it did not run.
    Exited,
}

impl RunStatus {
    /// Every status, in life order (for help texts and error messages).
    pub const ALL: [RunStatus; 5] =
        [RunStatus::Queued, RunStatus::Running, RunStatus::Succeeded, RunStatus::Failed, RunStatus::Exited];

    /// The stored and JSON spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Exited => "exited",
        }
    }

    /// Neither queued nor running: the run will not change any more.
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }
}

/// The word itself, as in "the workflow run failed without calling flow.respond".
impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the stored column and the API's `?status=` filter; an unknown
/// word is an error naming the valid ones (a typo must not list nothing).
impl std::str::FromStr for RunStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        RunStatus::ALL.into_iter().find(|v| v.as_str() == s).ok_or_else(|| {
            StoreError::Invalid(format!(
                "`{s}` is not a run status (queued, running, succeeded, failed, exited)"
            ))
        })
    }
}

/// How one attempt of a run ended, or that it is under way: the outcome's
/// `status` (with `step` and `error` or `reason`). Lives in the store, below
/// the workflow layer that produces it, so both share one type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum WorkflowStatus {
    /// Steps finished so far of an attempt still running (the worker's saved progress).
    Running,
    /// Every step ran without error.
    Succeeded,
    /// A step failed; later steps did not run. `step` is empty when the run
    /// failed before any step ran.
    Failed {
        /// The step that failed; empty, and left out of JSON, if none ran.
        #[serde(default, skip_serializing_if = "String::is_empty")]
        step: String,
        /// Why, one line as the step's error prints.
        error: String,
    },
    /// A step called `flow.exit`; later steps did not run.
    Exited {
        /// The step that called `flow.exit`.
        step: String,
        /// The reason it gave.
        reason: String,
    },
}

impl WorkflowStatus {
    /// The run's status when this attempt is its end.
    pub fn run_status(&self) -> RunStatus {
        match self {
            WorkflowStatus::Running => RunStatus::Running,
            WorkflowStatus::Succeeded => RunStatus::Succeeded,
            WorkflowStatus::Failed { .. } => RunStatus::Failed,
            WorkflowStatus::Exited { .. } => RunStatus::Exited,
        }
    }
}

/// Every step an attempt ran, in order, and how it ended: a run's `outcome`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutcome {
    /// How the attempt ended, or `running`; flattened, so `status` with
    /// `step` and `error` or `reason` sit at the outcome's top level.
    #[serde(flatten)]
    pub status: WorkflowStatus,
    /// Which attempt this is (1 = first); a retried run shows the attempt that produced it.
    #[serde(default)]
    pub attempt: u64,
    /// The attempt's wall time; `None` while running or when no step ran
    /// (`duration` is read from runs stored before issue 12).
    #[serde(default, alias = "duration")]
    pub duration_ms: Option<f64>,
    /// The steps that ran (so far), in order; a failed or exited run stopped
    /// at the last one.
    #[serde(default)]
    pub steps: Vec<StepOutcome>,
}

impl RunOutcome {
    /// Progress of a running attempt: the steps finished so far.
    pub fn running(attempt: u64, steps: &[StepOutcome]) -> Self {
        Self { status: WorkflowStatus::Running, attempt, duration_ms: None, steps: steps.to_vec() }
    }

    /// An attempt that failed before any step ran (its workflow version
    /// gone, an account missing, a token refresh failed).
    pub fn failed_to_start(attempt: u64, error: String) -> Self {
        Self {
            status: WorkflowStatus::Failed { step: String::new(), error },
            attempt,
            duration_ms: None,
            steps: Vec::new(),
        }
    }
}

/// One run: `GET /v1/runs/{id}`, `runs show --json`, `trigger|runs replay
/// --wait --json` and `workflow run --json` all print this shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Run {
    /// The run's id, as in `GET /v1/runs/{id}`; its steps see it as their run id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The deployed version it ran; `None` for a workflow file run by `workflow run`.
    pub version: Option<u64>,
    /// Where the run is in its life.
    pub status: RunStatus,
    /// Attempts started so far (0 while first queued).
    pub attempt: u64,
    /// When the event was accepted, ms since the Unix epoch.
    pub created_ms: u64,
    /// When the latest attempt started.
    pub started_ms: Option<u64>,
    /// When the run ended, ms since the Unix epoch; `None` until it has.
    pub finished_ms: Option<u64>,
    /// A queued retry does not start before this time (ms since the Unix
    /// epoch); it stays set while that retry runs and is `null` before any
    /// retry and once the run has ended (always present: one shape).
    pub retry_at_ms: Option<u64>,
    /// The trigger event, as the steps saw it (untyped by nature).
    pub event: Value,
    /// The latest attempt's outcome: progress while running, the failed
    /// one while a retry waits.
    pub outcome: Option<RunOutcome>,
    /// The run whose event this run replays; `null` for a triggered run.
    #[serde(default)]
    pub replay_of: Option<String>,
    /// A replay from a step: the earlier steps' stored outcomes it reuses
    /// instead of running them (each with `reused_from` set), kept for
    /// every attempt. Never served: the outcome shows them once the run
    /// starts.
    #[serde(skip)]
    pub seed: Option<Vec<StepOutcome>>,
}

/// A run in `GET /v1/runs` and `runs list --json`: the run without its
/// event and outcome, so a list stays small.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    /// As [`Run::id`].
    pub id: String,
    /// As [`Run::workflow`].
    pub workflow: String,
    /// As [`Run::version`].
    pub version: Option<u64>,
    /// As [`Run::status`].
    pub status: RunStatus,
    /// As [`Run::attempt`].
    pub attempt: u64,
    /// As [`Run::created_ms`].
    pub created_ms: u64,
    /// As [`Run::started_ms`].
    pub started_ms: Option<u64>,
    /// As [`Run::finished_ms`].
    pub finished_ms: Option<u64>,
    /// As [`Run::retry_at_ms`].
    pub retry_at_ms: Option<u64>,
    /// As [`Run::replay_of`].
    #[serde(default)]
    pub replay_of: Option<String>,
    /// The step a failed run failed at, from its outcome; `null` unless the
    /// run failed at a step.
    #[serde(default)]
    pub failed_step: Option<String>,
}

/// The head of a run, for lists.
impl From<&Run> for RunSummary {
    fn from(r: &Run) -> Self {
        Self {
            id: r.id.clone(),
            workflow: r.workflow.clone(),
            version: r.version,
            status: r.status,
            attempt: r.attempt,
            created_ms: r.created_ms,
            started_ms: r.started_ms,
            finished_ms: r.finished_ms,
            retry_at_ms: r.retry_at_ms,
            replay_of: r.replay_of.clone(),
            failed_step: match (r.status, r.outcome.as_ref().map(|o| &o.status)) {
                (RunStatus::Failed, Some(WorkflowStatus::Failed { step, .. })) if !step.is_empty() => {
                    Some(step.clone())
                }
                _ => None,
            },
        }
    }
}

/// An event to queue. The caller picks the id, so a trigger waiting for
/// the run's answer registers before any worker can take the run.
pub struct NewRun<'a> {
    /// The run's id, made by the caller ([`crate::base::ids::new_run_id`]).
    pub id: String,
    /// The workflow version the run will run.
    pub workflow: &'a WorkflowRecord,
    /// The trigger event, stored as its steps will see it.
    pub event: &'a Value,
    /// The run it replays, if it is a replay.
    pub replay_of: Option<&'a str>,
    /// A replay from a step: the earlier steps' outcomes it reuses.
    pub seed: Option<&'a [StepOutcome]>,
}

impl<'a> NewRun<'a> {
    /// A run of `workflow` for `event` (neither a replay nor seeded).
    pub fn new(id: String, workflow: &'a WorkflowRecord, event: &'a Value) -> Self {
        Self { id, workflow, event, replay_of: None, seed: None }
    }

    /// The seed as stored: JSON, `None` without one.
    pub fn seed_json(&self) -> Result<Option<String>, StoreError> {
        self.seed
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Invalid(format!("a replay's reused steps: {e}")))
    }
}

/// A stored seed read back; one no reader understands reads as none (the
/// run then runs every step).
pub(crate) fn parse_seed(text: Option<&str>) -> Option<Vec<StepOutcome>> {
    text.and_then(|t| serde_json::from_str(t).ok())
}

/// A worker's hold on a running run: only the current holder may save,
/// finish, retry or release it, so a run whose lease expired and was
/// claimed again is never written by two workers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The leased run's id.
    pub run: String,
    /// Who holds it (one id per process).
    pub owner: String,
    /// The attempt the lease was taken for (a claim after expiry is a new attempt).
    pub attempt: u64,
}

/// A run taken off the queue, with the lease its worker writes under.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// The run as claimed: status running, attempt counted.
    pub run: Run,
    /// What every later write to the run must present.
    pub lease: Lease,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::clock::ManualClock;
    use crate::store::Store;
    use serde_json::json;
    use std::sync::Arc;
    use std::time::Duration;

    const LEASE: Duration = Duration::from_secs(30);

    /// A store on a clock the test moves, with one queued run.
    fn store_with_a_run(clock: &Arc<ManualClock>) -> (tempfile::TempDir, Store, String) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap().with_clock(clock.clone());
        let workflow = store.put_workflow("w", "definition", &[]).unwrap();
        let id = store.enqueue_run(&workflow, &json!({ "n": 1 })).unwrap();
        (dir, store, id)
    }

    fn step_json(key: &str, exports: serde_json::Value) -> serde_json::Value {
        json!({ "run_id": "r", "step": "a", "result": { "return_value": { "ok": true } }, "exports": exports,
                "exit": null, "response": null, "logs": [{ "stream": "stderr", "at_ms": 0, "text": "oops" }],
                "logs_truncated": false, "egress": [], key: 1.5 })
    }

    #[test]
    fn a_stored_run_reads_back_as_the_run_that_was_stored() {
        let clock = Arc::new(ManualClock::new(1_000));
        let (_dir, store, id) = store_with_a_run(&clock);
        let claimed = store.claim_run("a", LEASE).unwrap().unwrap();
        let step: crate::runtime::outcome::StepOutcome =
            serde_json::from_value(step_json("duration_ms", json!({ "n": 1, "m": [2] }))).unwrap();
        let outcome = RunOutcome {
            status: WorkflowStatus::Failed { step: "a".into(), error: "boom".into() },
            attempt: 1,
            duration_ms: Some(2.5),
            steps: vec![step],
        };
        clock.set(1_500);
        assert!(store.finish_run(&claimed.lease, RunStatus::Failed, &outcome).unwrap());
        let run = store.run(&id).unwrap().unwrap();
        assert_eq!(
            (run.status, run.version, run.started_ms, run.finished_ms),
            (RunStatus::Failed, Some(1), Some(1_000), Some(1_500))
        );
        assert_eq!(
            serde_json::to_value(run.outcome.as_ref().unwrap()).unwrap(),
            serde_json::to_value(&outcome).unwrap()
        );
        let step = &run.outcome.unwrap().steps[0];
        assert_eq!(step.exports, [("n".to_string(), json!(1)), ("m".to_string(), json!([2]))]);
        assert_eq!(step.duration, Duration::from_micros(1_500));
        let served = serde_json::to_value(store.run(&id).unwrap().unwrap()).unwrap();
        assert_eq!(served["outcome"]["steps"][0]["exports"], json!({ "n": 1, "m": [2] }), "{served}");
        assert_eq!(served["outcome"]["steps"][0]["duration_ms"], json!(1.5));
        assert!(served["retry_at_ms"].is_null() && served["outcome"].get("duration").is_none());
    }

    #[test]
    fn a_run_stored_before_typed_runs_still_reads() {
        let clock = Arc::new(ManualClock::new(1_000));
        let (_dir, store, id) = store_with_a_run(&clock);
        let old = json!({ "workflow": "w", "run_id": id, "status": "exited", "step": "a", "reason": "done",
                          "duration": 3.0, "attempt": 1, "steps": [step_json("duration", json!([["n", 1]]))] });
        store
            .conn
            .execute(
                "UPDATE runs SET status = 'exited', outcome = ?1 WHERE id = ?2",
                rusqlite::params![old.to_string(), id],
            )
            .unwrap();
        let run = store.run(&id).unwrap().unwrap();
        let outcome = run.outcome.expect("the old outcome parses");
        assert_eq!(outcome.status, WorkflowStatus::Exited { step: "a".into(), reason: "done".into() });
        assert_eq!((outcome.attempt, outcome.duration_ms), (1, Some(3.0)));
        assert_eq!(outcome.steps[0].exports, [("n".to_string(), json!(1))]);
        assert_eq!(outcome.steps[0].duration, Duration::from_micros(1_500));
        let running = json!({ "status": "running", "steps": [] }).to_string();
        store
            .conn
            .execute("UPDATE runs SET outcome = ?1 WHERE id = ?2", rusqlite::params![running, id])
            .unwrap();
        assert_eq!(store.run(&id).unwrap().unwrap().outcome.unwrap().status, WorkflowStatus::Running);
    }

    #[test]
    fn a_claimed_run_is_not_claimed_again_until_its_lease_expires() {
        let clock = Arc::new(ManualClock::new(1_000));
        let (_dir, store, id) = store_with_a_run(&clock);
        let first = store.claim_run("a", LEASE).unwrap().unwrap();
        clock.set(1_000 + 29_999);
        assert!(store.claim_run("b", LEASE).unwrap().is_none(), "the lease is live");
        assert!(store.claim_run_by_id(&id, "b", LEASE).unwrap().is_none());
        assert!(store.heartbeat(&first.lease, LEASE).unwrap(), "renewed to 59 999 + 30 000");
        clock.set(1_000 + 59_999);
        assert!(store.claim_run("b", LEASE).unwrap().is_none(), "the heartbeat moved the lease on");

        clock.set(1_000 + 29_999 + 30_001);
        let second = store.claim_run("b", LEASE).unwrap().expect("an expired lease is claimed again");
        assert_eq!(
            (second.run.id.as_str(), second.lease.attempt, second.lease.owner.as_str()),
            (id.as_str(), 2, "b")
        );
        let done = RunOutcome::running(1, &[]);
        assert!(!store.heartbeat(&first.lease, LEASE).unwrap(), "the first holder lost it");
        assert!(!store.save_progress(&first.lease, &done).unwrap());
        assert!(!store.finish_run(&first.lease, RunStatus::Succeeded, &done).unwrap(), "nothing stored");
        assert!(!store.release_run(&first.lease).unwrap());
        assert_eq!(store.run(&id).unwrap().unwrap().status, RunStatus::Running);

        assert!(store.release_run(&second.lease).unwrap(), "the holder gives it back");
        let third = store.claim_run("c", LEASE).unwrap().expect("a released run is queued");
        assert!(store.finish_run(&third.lease, RunStatus::Succeeded, &done).unwrap());
        assert!(store.claim_run("d", LEASE).unwrap().is_none(), "a finished run is never claimed");
    }

    #[test]
    fn a_status_parses_from_its_word_and_names_the_valid_ones_otherwise() {
        for status in RunStatus::ALL {
            assert_eq!(status.as_str().parse::<RunStatus>().unwrap(), status);
            assert_eq!(serde_json::to_value(status).unwrap(), json!(status.as_str()));
        }
        let error = "done".parse::<RunStatus>().unwrap_err().to_string();
        assert!(error.contains("`done` is not a run status") && error.contains("exited"), "{error}");
    }
}
