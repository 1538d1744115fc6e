//! What the server and the workflow layer need from a store, so a second
//! backend (PostgreSQL) can stand where SQLite stands. Method names and
//! arguments mirror the SQLite [`Store`](super::Store)'s own. Async because
//! a networked database is; SQLite answers at once.

use super::cluster::Cluster;
use super::runs::{Claimed, Lease, NewRun, Run, RunOutcome, RunStatus};
use super::{
    AccountSummary, EnvSummary, InlineSecret, OAuthState, StepRecord, StoreError, StoredEnv, StoredField,
    WorkflowRecord,
};
use crate::catalog::Catalog;
use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

/// Uploaded step components, by content hash (the `.wasm` files stay in the
/// data directory; a shared store also keeps their bytes, for other nodes).
#[async_trait]
pub trait Steps: Send + Sync {
    /// Records an uploaded component under `id`, its SHA-256 in hex, its
    /// size being `bytes.len()`, named `name` if given; recording a known id
    /// again keeps the first upload time and only sets the name, if one is
    /// given. A store only one process serves keeps just the size (the
    /// file in the data directory is the copy).
    async fn put_step(&self, id: &str, bytes: &[u8], name: Option<&str>) -> Result<(), StoreError>;
    /// An uploaded component's bytes, for a node without a copy; `None` if
    /// the store does not keep them or `id` is unknown.
    async fn step_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every uploaded step, newest upload first, each with the live
    /// workflows whose newest version uses it.
    async fn list_steps(&self) -> Result<Vec<StepRecord>, StoreError>;
    /// One uploaded step; `None` if `id` was never uploaded or was deleted.
    async fn step(&self, id: &str) -> Result<Option<StepRecord>, StoreError>;
    /// Forgets an uploaded step's record; `false` if there was none.
    async fn delete_step(&self, id: &str) -> Result<bool, StoreError>;
}

/// Deployed workflow versions and their HTTP endpoints.
#[async_trait]
pub trait Deployments: Send + Sync {
    /// Stores `definition` (inline secrets masked) as the workflow's next
    /// version, with its inline `secrets` encrypted, and returns it.
    /// Versions count on across a delete, so runs keep pointing at theirs;
    /// the endpoint stays that of the live versions, a new unguessable one
    /// for a new (or deleted) workflow.
    async fn put_workflow(
        &self,
        name: &str,
        definition: &str,
        secrets: &[InlineSecret],
    ) -> Result<WorkflowRecord, StoreError>;
    /// One version's inline secrets in clear, for its runs (never shown).
    async fn workflow_secrets(&self, name: &str, version: u64) -> Result<Vec<InlineSecret>, StoreError>;
    /// The live workflows whose newest version uses uploaded step `id`.
    async fn workflows_using_step(&self, id: &str) -> Result<Vec<String>, StoreError>;
    /// Every version of the live workflow, newest first; empty if never
    /// deployed or deleted (versions from before a delete are not listed).
    async fn workflow_versions(&self, name: &str) -> Result<Vec<WorkflowRecord>, StoreError>;
    /// The newest version; `None` if never deployed or deleted.
    async fn workflow(&self, name: &str) -> Result<Option<WorkflowRecord>, StoreError>;
    /// The newest version of every live (not deleted) workflow, by name.
    async fn workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError>;
    /// The newest version of the workflow whose HTTP trigger is
    /// `/e/{endpoint}`; `None` if no live workflow has it.
    async fn workflow_by_endpoint(&self, endpoint: &str) -> Result<Option<WorkflowRecord>, StoreError>;
    /// One exact version, deleted ones too (a queued run still runs the
    /// version it was queued for); `None` if it never existed.
    async fn workflow_version(&self, name: &str, version: u64) -> Result<Option<WorkflowRecord>, StoreError>;
    /// Also removes the workflow's schedule.
    async fn delete_workflow(&self, name: &str) -> Result<bool, StoreError>;
}

/// Timer schedules: when each scheduled workflow fires next.
#[async_trait]
pub trait Schedules: Send + Sync {
    /// Sets when `workflow`'s schedule fires next, in milliseconds since the
    /// Unix epoch; `None` removes the schedule.
    async fn set_schedule(&self, workflow: &str, next_ms: Option<i64>) -> Result<(), StoreError>;
    /// When `workflow`'s schedule fires next (ms since the Unix epoch);
    /// `None` if it has no schedule.
    async fn schedule(&self, workflow: &str) -> Result<Option<i64>, StoreError>;
    /// Every schedule, soonest first: the workflow's name and when it fires
    /// next (ms since the Unix epoch).
    async fn schedules(&self) -> Result<Vec<(String, i64)>, StoreError>;
    /// Fires the tick due at `due_ms`: queues the run and moves the
    /// schedule on to `next_ms` (`None` removes it) atomically, only if the
    /// schedule still says `due_ms`; the new run's id, or `None` when it no
    /// longer does (another node fired this tick, or it was rescheduled),
    /// and then nothing was written.
    async fn fire_schedule(
        &self,
        workflow: &WorkflowRecord,
        due_ms: i64,
        event: &Value,
        next_ms: Option<i64>,
    ) -> Result<Option<String>, StoreError>;
}

/// The durable queue: accepting events, and workers claiming runs under a
/// lease. Every write after the claim is guarded by the lease: `false`
/// means the lease was lost (it expired and the run was claimed again) and
/// nothing was written.
#[async_trait]
pub trait RunQueue: Send + Sync {
    /// Commits the events as queued runs in one transaction, under the callers' ids.
    async fn enqueue_runs(&self, runs: &[NewRun<'_>]) -> Result<(), StoreError>;
    /// How many runs are queued, retries not yet due included: what the
    /// triggers' `max_queued` limit counts.
    async fn queued_runs(&self) -> Result<u64, StoreError>;
    /// When the next queued retry becomes due, if one waits.
    async fn next_retry_ms(&self) -> Result<Option<i64>, StoreError>;
    /// Takes the oldest due queued run, or a running one whose lease
    /// expired, marks it running (attempt + 1) and leases it to `owner`.
    async fn claim_run(&self, owner: &str, lease: Duration) -> Result<Option<Claimed>, StoreError>;
    /// The same for one run (the CLI running its own run), if it is queued
    /// (even a retry not yet due) or its lease expired; `None` otherwise.
    async fn claim_run_by_id(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError>;
    /// Extends the lease to now + `extend`.
    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<bool, StoreError>;
    /// Stores the steps finished so far as the running run's outcome. Like
    /// every write under a lease, it succeeds past the lease's expiry as long
    /// as no one claimed the run since; `false` (nothing stored) otherwise.
    async fn save_progress(&self, lease: &Lease, outcome: &RunOutcome) -> Result<bool, StoreError>;
    /// Ends the run with `status` and `outcome`, stamps its finish time and
    /// lets go of the lease; `false` (nothing stored) if the lease was lost.
    async fn finish_run(
        &self,
        lease: &Lease,
        status: RunStatus,
        outcome: &RunOutcome,
    ) -> Result<bool, StoreError>;
    /// [`RunQueue::finish_run`], then [`RunQueue::claim_run`] for `owner`:
    /// a worker's two writes between one run and the next, which a store
    /// may make one commit.
    async fn finish_and_claim(
        &self,
        ended: (&Lease, RunStatus, &RunOutcome),
        owner: &str,
        lease: Duration,
    ) -> Result<(bool, Option<Claimed>), StoreError> {
        let stored = self.finish_run(ended.0, ended.1, ended.2).await?;
        Ok((stored, self.claim_run(owner, lease).await?))
    }
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
    /// One run by id; `None` if there is none (never queued, or pruned).
    async fn run(&self, id: &str) -> Result<Option<Run>, StoreError>;
    /// Newest first, optionally of one workflow and/or status.
    async fn list_runs(
        &self,
        workflow: Option<&str>,
        status: Option<RunStatus>,
        limit: u64,
    ) -> Result<Vec<Run>, StoreError> {
        self.runs_page(workflow, status, None, limit).await
    }
    /// One page of [`RunLog::list_runs`]: newest first by `created_ms`,
    /// then by the order the store accepted them in (one total order, the
    /// queue's own), only runs strictly older in that order than run
    /// `before` if given ([`StoreError::NotFound`] if there is no such run).
    /// Indexes serve each filter in this order, so a page costs the same
    /// with 10 runs stored or 100,000.
    async fn runs_page(
        &self,
        workflow: Option<&str>,
        status: Option<RunStatus>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Run>, StoreError>;
    /// Every workflow that has stored runs, deleted workflows too (what
    /// retention walks).
    async fn workflows_with_runs(&self) -> Result<Vec<String>, StoreError>;
    /// Deletes a workflow's finished runs beyond the newest `keep_runs`, and
    /// those created before `older_than_ms` (either rule alone removes a
    /// run); queued and running runs stay. How many went.
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
    /// Stores an account, replacing one of the same app and name (its OAuth
    /// state too), in one transaction; secret values are sealed. An app not
    /// in `catalog` is [`StoreError::NotFound`]; a bad name, an unknown
    /// field or a missing secret field is [`StoreError::Invalid`].
    async fn connect_account(
        &self,
        catalog: &Catalog,
        app: &str,
        name: &str,
        fields: &[(String, String)],
    ) -> Result<(), StoreError>;
    /// An account's fields in the order given, secret values decrypted, for
    /// a run; marks the account used. [`StoreError::NotFound`] if there is
    /// no such account.
    async fn account_fields(&self, app: &str, name: &str) -> Result<Vec<StoredField>, StoreError>;
    /// Every account by app then name, secret values masked: safe to print.
    async fn list_accounts(&self) -> Result<Vec<AccountSummary>, StoreError>;
    /// Removes an account with its fields and OAuth state;
    /// [`StoreError::NotFound`] if there is none.
    async fn remove_account(&self, app: &str, name: &str) -> Result<(), StoreError>;
    /// Records how the account refreshes its token (secrets sealed) and when
    /// its access token expires, replacing earlier OAuth state;
    /// [`StoreError::NotFound`] if there is no such account.
    async fn set_oauth(&self, app: &str, name: &str, oauth: &OAuthState) -> Result<(), StoreError>;
    /// How the account refreshes its token, secrets decrypted; `None` for an
    /// account without OAuth, [`StoreError::NotFound`] if there is no account.
    async fn oauth(&self, app: &str, name: &str) -> Result<Option<OAuthState>, StoreError>;
    /// Stores a refreshed access token, a rotated refresh token (`None`
    /// keeps the old one) and the new expiry (ms since the Unix epoch; `None`:
    /// none known) in one transaction, and marks the account `ok`.
    async fn update_tokens(
        &self,
        app: &str,
        name: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        expires_ms: Option<u64>,
    ) -> Result<(), StoreError>;
    /// Sets the status `accounts list` shows: `ok`, or why the account needs
    /// attention (`refresh failed: …`). [`StoreError::NotFound`] if there is
    /// no such account.
    async fn set_status(&self, app: &str, name: &str, status: &str) -> Result<(), StoreError>;
}

/// Environment variables, global or per workflow, secret values encrypted at rest.
#[async_trait]
pub trait EnvVars: Send + Sync {
    /// Sets a variable, replacing one of the same name and scope: global for
    /// `workflow` `None`, else that workflow's only. A secret value is sealed.
    /// A bad or reserved (`STEPHOST_…`) name or a value over 64 KiB is
    /// [`StoreError::Invalid`].
    async fn set_env(
        &self,
        name: &str,
        value: &str,
        secret: bool,
        workflow: Option<&str>,
    ) -> Result<(), StoreError>;
    /// Removes a variable from that scope only (`None`: global);
    /// [`StoreError::NotFound`] if the scope has none of that name.
    async fn unset_env(&self, name: &str, workflow: Option<&str>) -> Result<(), StoreError>;
    /// Every variable, global ones first, then by workflow and name; secret
    /// values masked.
    async fn list_env(&self) -> Result<Vec<EnvSummary>, StoreError>;
    /// What a step of `workflow` sees (`None`: a lone step, globals only):
    /// global variables overridden by the workflow's, secret values
    /// decrypted, as (plain, secret).
    async fn env_for(&self, workflow: Option<&str>) -> Result<StoredEnv, StoreError>;
}

/// The store's own settings (the API token's hash).
#[async_trait]
pub trait Settings: Send + Sync {
    /// One of the store's own settings (e.g. `api_token_sha256`); `None` if
    /// never set.
    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Sets one of the store's own settings, replacing its value.
    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Stores `value` under `key` unless the key has one already, and
    /// returns what is stored: of several nodes setting the same thing at
    /// once (the API token's hash, the key check), the first wins and all
    /// see its value.
    async fn init_meta(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError>;
}

/// Everything `stephost serve` needs from one backend.
pub trait Backend:
    Steps + Deployments + Schedules + RunQueue + RunLog + Accounts + EnvVars + Settings + Cluster
{
}

/// Any type with every part is a backend.
impl<T: Steps + Deployments + Schedules + RunQueue + RunLog + Accounts + EnvVars + Settings + Cluster> Backend
    for T
{
}
