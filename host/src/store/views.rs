//! The management API's answers other than a run, as types both ends use:
//! the server serializes them, the CLI reads them back.

use super::StepRecord;
use super::runs::RunSummary;
use serde::{Deserialize, Serialize};

/// Every non-2xx answer: `{"error": "…", "run": …}` (`run` set by a
/// `respond` trigger that gave up waiting).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// What went wrong, one line.
    pub error: String,
    /// The run a `respond` trigger waited on, when it answers without that
    /// run's response (the run ended without one, or the wait ended);
    /// `null` otherwise.
    #[serde(default)]
    pub run: Option<String>,
}

/// `GET /v1/steps`, `steps list --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepList {
    /// Every uploaded step, newest first.
    pub steps: Vec<StepRecord>,
}

/// `GET /v1/workflows`, `workflow list --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowList {
    /// The newest version of every deployed workflow, by name.
    pub workflows: Vec<WorkflowView>,
}

/// `GET /v1/nodes`, `nodes --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeList {
    /// The live nodes serving the store, oldest first (on the embedded
    /// store: just the server answering).
    pub nodes: Vec<crate::store::NodeView>,
}

/// `GET /v1/runs`, `runs list --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunList {
    /// Newest first, at most the request's `limit` (100 by default).
    pub runs: Vec<RunSummary>,
    /// The next page's `before`: the last run of this page; `null` on the
    /// last page.
    #[serde(default)]
    pub next: Option<String>,
}

/// `GET /v1/workflows/{name}/versions`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionList {
    /// Every version of the live workflow, newest first.
    pub versions: Vec<VersionView>,
}

/// One deployed version of a workflow, as the versions list shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionView {
    /// Its number, counting from 1.
    pub version: u64,
    /// When it was deployed, ms since the Unix epoch.
    pub created_ms: u64,
    /// The stored workflow file (TOML), inline secrets masked.
    pub definition: String,
}

/// `POST /v1/runs/{id}/replay`'s optional body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Run from this step on: the steps before it are not run, their
    /// stored results are reused from the replayed run. `None`: every step.
    #[serde(default)]
    pub from_step: Option<String>,
}

/// `POST /v1/workflows/{name}/replay-failed`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplayList {
    /// One queued replay per failed run, newest failed run first.
    pub replays: Vec<Queued>,
}

/// A run accepted for later: HTTP trigger (200), manual run and replay
/// (202), `trigger --json` without `--wait`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queued {
    /// The queued run's id, for `GET /v1/runs/{id}`.
    pub run: String,
    /// The workflow version it will run.
    pub version: u64,
    /// The run whose event this replays.
    #[serde(default)]
    pub replay_of: Option<String>,
}

/// A deployed workflow version: `PUT`/`GET /v1/workflows/{name}`,
/// `workflow deploy --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkflowView {
    /// The workflow's name.
    pub name: String,
    /// This version's number, counting from 1.
    pub version: u64,
    /// The HTTP trigger's path, `/e/{endpoint}`.
    pub endpoint: String,
    /// Whether the HTTP trigger waits for a step's `flow.respond` and answers with it.
    pub respond: bool,
    /// How many times a failed run is tried again.
    pub retries: u32,
    /// The schedule in words; `null` without one.
    pub schedule: Option<String>,
    /// When the schedule fires next, RFC 3339 UTC; `null` without one.
    pub next_run: Option<String>,
    /// The stored workflow file (TOML), steps by uploaded id.
    pub definition: String,
    /// Its newest runs (at most 5), newest first.
    #[serde(default)]
    pub last_runs: Vec<RunSummary>,
    /// Origins whose browsers may call its HTTP trigger (CORS); empty: off.
    #[serde(default)]
    pub cors: Vec<String>,
}
