//! What the server and the workflow layer need from a store, so a second
//! backend (PostgreSQL) can stand where SQLite stands. Method names and
//! arguments mirror the SQLite [`Store`](super::Store)'s own. Async because
//! a networked database is; SQLite answers at once.

use super::runs::{Claimed, Lease, NewRun, Run, RunOutcome, RunStatus};
use super::{
    AccountSummary, EnvSummary, OAuthState, StepRecord, StoreError, StoredEnv, StoredField, WorkflowRecord,
};
use crate::catalog::Catalog;
use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

/// Uploaded step components, by content hash (the `.wasm` files stay in the
/// data directory).
#[async_trait]
pub trait Steps: Send + Sync {
    async fn put_step(&self, id: &str, size: u64) -> Result<(), StoreError>;
    async fn list_steps(&self) -> Result<Vec<StepRecord>, StoreError>;
    async fn step(&self, id: &str) -> Result<Option<StepRecord>, StoreError>;
    async fn delete_step(&self, id: &str) -> Result<bool, StoreError>;
}

/// Deployed workflow versions and their HTTP endpoints.
#[async_trait]
pub trait Deployments: Send + Sync {
    async fn put_workflow(&self, name: &str, definition: &str) -> Result<WorkflowRecord, StoreError>;
    async fn workflow(&self, name: &str) -> Result<Option<WorkflowRecord>, StoreError>;
    async fn workflow_by_endpoint(&self, endpoint: &str) -> Result<Option<WorkflowRecord>, StoreError>;
    async fn workflow_version(&self, name: &str, version: u64) -> Result<Option<WorkflowRecord>, StoreError>;
    /// Also removes the workflow's schedule.
    async fn delete_workflow(&self, name: &str) -> Result<bool, StoreError>;
}

/// Timer schedules: when each scheduled workflow fires next.
#[async_trait]
pub trait Schedules: Send + Sync {
    async fn set_schedule(&self, workflow: &str, next_ms: Option<i64>) -> Result<(), StoreError>;
    async fn schedule(&self, workflow: &str) -> Result<Option<i64>, StoreError>;
    async fn schedules(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Queues the run and moves the schedule on atomically; the new run's id.
    async fn fire_schedule(
        &self,
        workflow: &WorkflowRecord,
        event: &Value,
        next_ms: Option<i64>,
    ) -> Result<String, StoreError>;
}

/// The durable queue: accepting events, and workers claiming runs under a
/// lease. Every write after the claim is guarded by the lease: `false`
/// means the lease was lost (it expired and the run was claimed again) and
/// nothing was written.
#[async_trait]
pub trait RunQueue: Send + Sync {
    /// Commits the events as queued runs in one transaction, under the callers' ids.
    async fn enqueue_runs(&self, runs: &[NewRun<'_>]) -> Result<(), StoreError>;
    async fn queued_runs(&self) -> Result<u64, StoreError>;
    /// When the next queued retry becomes due, if one waits.
    async fn next_retry_ms(&self) -> Result<Option<i64>, StoreError>;
    /// Takes the oldest due queued run, or a running one whose lease
    /// expired, marks it running (attempt + 1) and leases it to `owner`.
    async fn claim_run(&self, owner: &str, lease: Duration) -> Result<Option<Claimed>, StoreError>;
    /// The same for one run (the CLI running its own run).
    async fn claim_run_by_id(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError>;
    /// Extends the lease to now + `extend`.
    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<bool, StoreError>;
    async fn save_progress(&self, lease: &Lease, outcome: &RunOutcome) -> Result<bool, StoreError>;
    async fn finish_run(
        &self,
        lease: &Lease,
        status: RunStatus,
        outcome: &RunOutcome,
    ) -> Result<bool, StoreError>;
    /// Queues the run again, not before `not_before_ms`; the outcome stays visible meanwhile.
    async fn retry_run(
        &self,
        lease: &Lease,
        outcome: &RunOutcome,
        not_before_ms: i64,
    ) -> Result<bool, StoreError>;
    /// Gives a claimed run back to the queue now (shutdown past the grace period).
    async fn release_run(&self, lease: &Lease) -> Result<bool, StoreError>;
}

/// Reading and pruning runs.
#[async_trait]
pub trait RunLog: Send + Sync {
    async fn run(&self, id: &str) -> Result<Option<Run>, StoreError>;
    /// Newest first, optionally of one workflow and/or status.
    async fn list_runs(
        &self,
        workflow: Option<&str>,
        status: Option<RunStatus>,
        limit: u64,
    ) -> Result<Vec<Run>, StoreError>;
    async fn workflows_with_runs(&self) -> Result<Vec<String>, StoreError>;
    /// Deletes finished runs beyond the newest `keep_runs` and older than `older_than_ms`.
    async fn prune_runs(
        &self,
        workflow: &str,
        keep_runs: Option<u64>,
        older_than_ms: Option<i64>,
    ) -> Result<usize, StoreError>;
}

/// Connected accounts, secret fields encrypted at rest, and their OAuth
/// refresh state.
#[async_trait]
pub trait Accounts: Send + Sync {
    async fn connect_account(
        &self,
        catalog: &Catalog,
        app: &str,
        name: &str,
        fields: &[(String, String)],
    ) -> Result<(), StoreError>;
    async fn account_fields(&self, app: &str, name: &str) -> Result<Vec<StoredField>, StoreError>;
    async fn list_accounts(&self) -> Result<Vec<AccountSummary>, StoreError>;
    async fn remove_account(&self, app: &str, name: &str) -> Result<(), StoreError>;
    async fn set_oauth(&self, app: &str, name: &str, oauth: &OAuthState) -> Result<(), StoreError>;
    async fn oauth(&self, app: &str, name: &str) -> Result<Option<OAuthState>, StoreError>;
    async fn update_tokens(
        &self,
        app: &str,
        name: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        expires_ms: Option<u64>,
    ) -> Result<(), StoreError>;
    async fn set_status(&self, app: &str, name: &str, status: &str) -> Result<(), StoreError>;
}

/// Environment variables, global or per workflow, secret values encrypted at rest.
#[async_trait]
pub trait EnvVars: Send + Sync {
    async fn set_env(
        &self,
        name: &str,
        value: &str,
        secret: bool,
        workflow: Option<&str>,
    ) -> Result<(), StoreError>;
    async fn unset_env(&self, name: &str, workflow: Option<&str>) -> Result<(), StoreError>;
    async fn list_env(&self) -> Result<Vec<EnvSummary>, StoreError>;
    async fn env_for(&self, workflow: Option<&str>) -> Result<StoredEnv, StoreError>;
}

/// The store's own settings (the API token's hash).
#[async_trait]
pub trait Settings: Send + Sync {
    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
}

/// Everything `stephost serve` needs from one backend.
pub trait Backend:
    Steps + Deployments + Schedules + RunQueue + RunLog + Accounts + EnvVars + Settings
{
}

/// Any type with every part is a backend.
impl<T: Steps + Deployments + Schedules + RunQueue + RunLog + Accounts + EnvVars + Settings> Backend for T {}
