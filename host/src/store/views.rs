//! The management API's answers other than a run, as types both ends use:
//! the server serializes them, the CLI reads them back.

use super::StepRecord;
use super::runs::RunSummary;
use serde::{Deserialize, Serialize};

/// Every non-2xx answer: `{"error": "…", "run": …}` (`run` set by a
/// `respond` trigger that gave up waiting).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiErrorBody {
    pub error: String,
    #[serde(default)]
    pub run: Option<String>,
}

/// `GET /v1/steps`, `steps list --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepList {
    pub steps: Vec<StepRecord>,
}

/// `GET /v1/runs`, `runs list --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunList {
    pub runs: Vec<RunSummary>,
}

/// A run accepted for later: HTTP trigger (200), manual run and replay
/// (202), `trigger --json` without `--wait`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Queued {
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
    pub name: String,
    pub version: u64,
    /// The HTTP trigger's path, `/e/{endpoint}`.
    pub endpoint: String,
    pub respond: bool,
    pub retries: u32,
    /// The schedule in words; `null` without one.
    pub schedule: Option<String>,
    /// When the schedule fires next, RFC 3339 UTC; `null` without one.
    pub next_run: Option<String>,
    /// The stored workflow file (TOML), steps by uploaded id.
    pub definition: String,
}
