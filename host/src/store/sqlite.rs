//! The SQLite store behind the backend traits: a writer connection whose
//! calls are short and serialized by a mutex, never held across an await,
//! and a reader connection for the reads every trigger and run makes
//! (SQLite's WAL lets them run beside a commit instead of waiting for it).
//! Accepted events wait for the disk after the writer is let go, and what a
//! deployed version never changes is read once.
//! Moving calls to `spawn_blocking` later stays in this file.

use super::EnvRead;
use super::runs::{Claimed, Lease, NewRun, Run, RunOutcome, RunStatus};
use super::service::SealedInline;
use super::*;
use async_trait::async_trait;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// [`Store`] behind a mutex, implementing every backend trait by calling
/// its own method of the same name; the hot read-only ones on a second
/// connection to the same database.
pub struct Sqlite {
    writer: Mutex<Store>,
    /// A trigger's endpoint lookup, a worker's workflow version, inline
    /// secrets and environment, the intake's queue count: each sees every
    /// commit made before it starts.
    reader: Mutex<Store>,
    /// What never changes once a version is deployed, read once: every run
    /// reads its version, and a read after a commit rereads its pages.
    versions: VersionCache,
    /// The newest live version behind each trigger endpoint, as every
    /// trigger looks it up. Workflows are written only by `serve` (one per
    /// data directory, the CLI deploys through it), through this store:
    /// each deploy and delete empties it.
    endpoints: Mutex<Kept<String, WorkflowRecord>>,
    /// Each environment's rows (secret values sealed) by workflow, as
    /// every run reads them. The CLI sets variables beside `serve`, so what
    /// is kept goes with the writer's `PRAGMA data_version` as last read
    /// (at every claim: a run claimed after another process's commit sees
    /// it), and this store's own `set_env` and `unset_env` empty it.
    env: Mutex<EnvCache>,
    /// The writer connection's data version at its last claim.
    others_version: std::sync::atomic::AtomicI64,
}

/// [`Sqlite::env`]: the rows, and the data version they were read under.
#[derive(Default)]
struct EnvCache {
    version: i64,
    rows: Kept<Option<String>, Arc<Vec<EnvRead>>>,
}

/// What one of [`Sqlite`]'s caches found, and how many times it was emptied:
/// a read that began before an emptying keeps nothing (it may have read
/// what the change replaced).
struct Kept<K, V> {
    emptied: u64,
    entries: HashMap<K, V>,
}

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Self { emptied: 0, entries: HashMap::new() }
    }
}

/// Entries a cache keeps at most before it starts over (each a few KiB).
const KEPT_AT_MOST: usize = 4096;

impl<K: std::hash::Hash + Eq, V: Clone> Kept<K, V> {
    fn get<Q: std::hash::Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
    {
        self.entries.get(key).cloned()
    }

    /// Keeps what a read begun when [`Kept::emptied`] said `since` found,
    /// unless the cache was emptied meanwhile.
    fn keep(&mut self, since: u64, key: K, value: V) {
        if self.emptied != since {
            return;
        }
        if self.entries.len() >= KEPT_AT_MOST {
            self.entries.clear();
        }
        self.entries.insert(key, value);
    }

    fn empty(&mut self) {
        self.emptied += 1;
        self.entries.clear();
    }
}

/// A deployed version's record and its inline secrets (sealed: opened for
/// each run, never kept in clear) by workflow name and version. Versions
/// are never rewritten or removed (a deleted workflow's stay, marked), so
/// an entry is never stale (never emptied); only what was found is kept.
#[derive(Default)]
struct VersionCache {
    records: Mutex<Kept<VersionKey, WorkflowRecord>>,
    secrets: Mutex<Kept<VersionKey, Arc<Vec<SealedInline>>>>,
}

/// A workflow's name and version.
type VersionKey = (String, u64);

impl VersionCache {
    fn record(&self, name: &str, version: u64) -> Option<WorkflowRecord> {
        lock(&self.records).get(&(name.to_string(), version))
    }

    fn keep_record(&self, record: &WorkflowRecord) {
        lock(&self.records).keep(0, (record.name.clone(), record.version), record.clone());
    }

    fn secrets(&self, name: &str, version: u64) -> Option<Arc<Vec<SealedInline>>> {
        lock(&self.secrets).get(&(name.to_string(), version))
    }

    /// Keeps a version's sealed secrets if the version is known to exist:
    /// none found for a version not deployed yet is not final.
    fn keep_secrets(&self, name: &str, version: u64, sealed: Arc<Vec<SealedInline>>) {
        let key = (name.to_string(), version);
        if lock(&self.records).get(&key).is_some() {
            lock(&self.secrets).keep(0, key, sealed);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl Sqlite {
    /// An open store behind the traits, with a second connection to its
    /// database for reads.
    pub fn new(store: Store) -> Result<Self, StoreError> {
        let reader = store.reopen()?;
        let version = store.data_version()?;
        Ok(Self {
            writer: Mutex::new(store),
            reader: Mutex::new(reader),
            versions: VersionCache::default(),
            endpoints: Mutex::default(),
            env: Mutex::default(),
            others_version: std::sync::atomic::AtomicI64::new(version),
        })
    }

    /// Opens (or creates) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        Self::new(Store::open(data_dir)?)
    }

    /// The writer connection, for one short call (never across an await).
    pub fn lock(&self) -> MutexGuard<'_, Store> {
        lock(&self.writer)
    }

    /// The reader connection, for one short read (never across an await).
    fn read(&self) -> MutexGuard<'_, Store> {
        lock(&self.reader)
    }

    /// Takes note of other processes' commits the writer has seen (after
    /// a claim, with the writer still held).
    fn note_others(&self, writer: &Store) {
        if let Ok(version) = writer.data_version() {
            self.others_version.store(version, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Forgets every environment: this store changed one.
    fn env_changed(&self) {
        lock(&self.env).rows.empty();
    }

    /// Forgets every endpoint's workflow: one was deployed or deleted
    /// (called once the change is committed).
    fn workflows_changed(&self) {
        lock(&self.endpoints).empty();
    }
}

// Inherent methods win method resolution on `MutexGuard<Store>`, so each
// line below calls the SQLite method, not itself.

#[async_trait]
impl Steps for Sqlite {
    async fn put_step(&self, id: &str, bytes: &[u8], name: Option<&str>) -> Result<(), StoreError> {
        // The file in the data directory is the copy: only the size is kept.
        self.lock().put_step(id, bytes.len() as u64, name)
    }
    async fn step_bytes(&self, _id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(None)
    }
    async fn list_steps(&self) -> Result<Vec<StepRecord>, StoreError> {
        self.lock().list_steps()
    }
    async fn step(&self, id: &str) -> Result<Option<StepRecord>, StoreError> {
        self.lock().step(id)
    }
    async fn delete_step(&self, id: &str) -> Result<bool, StoreError> {
        self.lock().delete_step(id)
    }
}

#[async_trait]
impl Deployments for Sqlite {
    async fn put_workflow(
        &self,
        name: &str,
        definition: &str,
        secrets: &[InlineSecret],
    ) -> Result<WorkflowRecord, StoreError> {
        let deployed = self.lock().put_workflow(name, definition, secrets);
        self.workflows_changed();
        deployed
    }
    async fn workflow_secrets(&self, name: &str, version: u64) -> Result<Vec<InlineSecret>, StoreError> {
        let sealed = match self.versions.secrets(name, version) {
            Some(sealed) => sealed,
            None => {
                let sealed = Arc::new(self.read().sealed_workflow_secrets(name, version)?);
                self.versions.keep_secrets(name, version, sealed.clone());
                sealed
            }
        };
        self.read().open_workflow_secrets(name, version, &sealed)
    }
    async fn workflows_using_step(&self, id: &str) -> Result<Vec<String>, StoreError> {
        self.lock().workflows_using_step(id)
    }
    async fn workflow_versions(&self, name: &str) -> Result<Vec<WorkflowRecord>, StoreError> {
        self.lock().workflow_versions(name)
    }
    async fn workflow(&self, name: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        self.lock().workflow(name)
    }
    async fn workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        self.lock().workflows()
    }
    async fn workflow_by_endpoint(&self, endpoint: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        let since = {
            let endpoints = lock(&self.endpoints);
            if let Some(record) = endpoints.get(endpoint) {
                return Ok(Some(record));
            }
            endpoints.emptied
        };
        let record = self.read().workflow_by_endpoint(endpoint)?;
        // None found is not kept: unknown endpoints are anyone's to try.
        if let Some(record) = &record {
            lock(&self.endpoints).keep(since, endpoint.to_string(), record.clone());
        }
        Ok(record)
    }
    async fn workflow_version(&self, name: &str, version: u64) -> Result<Option<WorkflowRecord>, StoreError> {
        if let Some(record) = self.versions.record(name, version) {
            return Ok(Some(record));
        }
        let record = self.read().workflow_version(name, version)?;
        if let Some(record) = &record {
            self.versions.keep_record(record);
        }
        Ok(record)
    }
    async fn delete_workflow(&self, name: &str) -> Result<bool, StoreError> {
        let deleted = self.lock().delete_workflow(name);
        self.workflows_changed();
        deleted
    }
}

#[async_trait]
impl Schedules for Sqlite {
    async fn set_schedule(&self, workflow: &str, next_ms: Option<i64>) -> Result<(), StoreError> {
        self.lock().set_schedule(workflow, next_ms)
    }
    async fn schedule(&self, workflow: &str) -> Result<Option<i64>, StoreError> {
        self.lock().schedule(workflow)
    }
    async fn schedules(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.lock().schedules()
    }
    async fn fire_schedule(
        &self,
        workflow: &WorkflowRecord,
        due_ms: i64,
        event: &Value,
        next_ms: Option<i64>,
    ) -> Result<Option<String>, StoreError> {
        self.lock().fire_schedule(workflow, due_ms, event, next_ms)
    }
}

#[async_trait]
impl RunQueue for Sqlite {
    async fn enqueue_runs(&self, runs: &[NewRun<'_>]) -> Result<(), StoreError> {
        // The disk is waited for without the connection: workers end and
        // claim runs meanwhile, and events arriving meanwhile make the next
        // batch. A worker may start one of these runs before the flush
        // returns; its trigger still hears 2xx only after it. If the flush
        // fails the trigger hears an error although the run may go on: its
        // retry can run it twice, as runs are at least once anyway.
        let database = {
            let writer = self.lock();
            writer.enqueue_runs_unflushed(runs)?;
            writer.path().to_path_buf()
        };
        super::service::flush_log_at(&database)
    }
    async fn queued_runs(&self) -> Result<u64, StoreError> {
        self.read().queued_runs()
    }
    async fn next_retry_ms(&self) -> Result<Option<i64>, StoreError> {
        self.lock().next_retry_ms()
    }
    async fn claim_run(&self, owner: &str, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        let writer = self.lock();
        let claimed = writer.claim_run(owner, lease);
        self.note_others(&writer);
        claimed
    }
    async fn claim_run_by_id(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        self.lock().claim_run_by_id(id, owner, lease)
    }
    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<bool, StoreError> {
        self.lock().heartbeat(lease, extend)
    }
    async fn save_progress(&self, lease: &Lease, outcome: &RunOutcome) -> Result<bool, StoreError> {
        self.lock().save_progress(lease, outcome)
    }
    async fn finish_run(
        &self,
        lease: &Lease,
        status: RunStatus,
        outcome: &RunOutcome,
    ) -> Result<bool, StoreError> {
        self.lock().finish_run(lease, status, outcome)
    }
    async fn finish_and_claim(
        &self,
        ended: (&Lease, RunStatus, &RunOutcome),
        owner: &str,
        lease: Duration,
    ) -> Result<(bool, Option<Claimed>), StoreError> {
        let writer = self.lock();
        let ended = writer.finish_and_claim(ended, owner, lease);
        self.note_others(&writer);
        ended
    }
    async fn retry_run(
        &self,
        lease: &Lease,
        outcome: &RunOutcome,
        not_before_ms: i64,
    ) -> Result<bool, StoreError> {
        self.lock().retry_run(lease, outcome, not_before_ms)
    }
    async fn release_run(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.lock().release_run(lease)
    }
}

#[async_trait]
impl RunLog for Sqlite {
    async fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        self.lock().run(id)
    }
    async fn runs_page(
        &self,
        workflow: Option<&str>,
        status: Option<RunStatus>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Run>, StoreError> {
        self.lock().runs_page(workflow, status, before, limit)
    }
    async fn workflows_with_runs(&self) -> Result<Vec<String>, StoreError> {
        self.lock().workflows_with_runs()
    }
    async fn prune_runs(
        &self,
        workflow: &str,
        keep_runs: Option<u64>,
        older_than_ms: Option<i64>,
    ) -> Result<usize, StoreError> {
        self.lock().prune_runs(workflow, keep_runs, older_than_ms)
    }
}

#[async_trait]
impl Accounts for Sqlite {
    async fn connect_account(
        &self,
        catalog: &Catalog,
        app: &str,
        name: &str,
        fields: &[(String, String)],
    ) -> Result<(), StoreError> {
        self.lock().connect_account(catalog, app, name, fields)
    }
    async fn account_fields(&self, app: &str, name: &str) -> Result<Vec<StoredField>, StoreError> {
        self.lock().account_fields(app, name)
    }
    async fn list_accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        self.lock().list_accounts()
    }
    async fn remove_account(&self, app: &str, name: &str) -> Result<(), StoreError> {
        self.lock().remove_account(app, name)
    }
    async fn set_oauth(&self, app: &str, name: &str, oauth: &OAuthState) -> Result<(), StoreError> {
        self.lock().set_oauth(app, name, oauth)
    }
    async fn oauth(&self, app: &str, name: &str) -> Result<Option<OAuthState>, StoreError> {
        self.lock().oauth(app, name)
    }
    async fn update_tokens(
        &self,
        app: &str,
        name: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        expires_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        self.lock().update_tokens(app, name, access_token, refresh_token, expires_ms)
    }
    async fn set_status(&self, app: &str, name: &str, status: &str) -> Result<(), StoreError> {
        self.lock().set_status(app, name, status)
    }
}

#[async_trait]
impl EnvVars for Sqlite {
    async fn set_env(
        &self,
        name: &str,
        value: &str,
        secret: bool,
        workflow: Option<&str>,
    ) -> Result<(), StoreError> {
        let set = self.lock().set_env(name, value, secret, workflow);
        self.env_changed();
        set
    }
    async fn unset_env(&self, name: &str, workflow: Option<&str>) -> Result<(), StoreError> {
        let unset = self.lock().unset_env(name, workflow);
        self.env_changed();
        unset
    }
    async fn list_env(&self) -> Result<Vec<EnvSummary>, StoreError> {
        self.lock().list_env()
    }
    async fn env_for(&self, workflow: Option<&str>) -> Result<StoredEnv, StoreError> {
        let key = workflow.map(str::to_string);
        let version = self.others_version.load(std::sync::atomic::Ordering::SeqCst);
        let kept = {
            let mut env = lock(&self.env);
            // Another process committed since these rows were read.
            if env.version != version {
                env.version = version;
                env.rows.empty();
            }
            env.rows.get(&key).ok_or(env.rows.emptied)
        };
        let rows = match kept {
            Ok(rows) => rows,
            Err(since) => {
                let rows = Arc::new(self.read().sealed_env_for(workflow)?);
                lock(&self.env).rows.keep(since, key, rows.clone());
                rows
            }
        };
        self.read().open_env(&rows)
    }
}

#[async_trait]
impl Settings for Sqlite {
    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.lock().meta(key)
    }
    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.lock().set_meta(key, value)
    }
    async fn init_meta(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.lock().init_meta(key, value)
    }
}

/// Only this process serves a SQLite store: the defaults.
impl Cluster for Sqlite {}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(value: &str) -> InlineSecret {
        InlineSecret { step: "s".into(), field: "secret_env.KEY".into(), value: value.into() }
    }

    #[tokio::test]
    async fn a_versions_record_and_sealed_secrets_are_read_once_and_none_found_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        // Asked for before it is deployed: what is not there is not kept.
        assert!(store.workflow_version("w", 1).await.unwrap().is_none());
        assert!(store.workflow_secrets("w", 1).await.unwrap().is_empty());
        store.put_workflow("w", "definition", &[secret("one")]).await.unwrap();
        assert_eq!(store.workflow_version("w", 1).await.unwrap().unwrap().definition, "definition");
        assert_eq!(store.workflow_secrets("w", 1).await.unwrap(), vec![secret("one")]);
        // Read once: rows changed behind the store's back (a version never
        // changes) are not read again.
        store
            .lock()
            .conn
            .execute_batch("UPDATE workflows SET definition = 'changed'; DELETE FROM workflow_secrets;")
            .unwrap();
        assert_eq!(store.workflow_version("w", 1).await.unwrap().unwrap().definition, "definition");
        assert_eq!(store.workflow_secrets("w", 1).await.unwrap(), vec![secret("one")]);
        // Kept sealed: what is kept does not hold the value in clear.
        let kept = store.versions.secrets("w", 1).unwrap();
        assert!(kept.iter().all(|(_, _, sealed)| !sealed.windows(3).any(|w| w == b"one")));
    }

    #[tokio::test]
    async fn an_endpoints_workflow_is_read_once_until_a_deploy_or_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        let first = store.put_workflow("w", "first", &[]).await.unwrap();
        let endpoint = first.endpoint.as_str();
        assert_eq!(store.workflow_by_endpoint(endpoint).await.unwrap().unwrap().definition, "first");
        store.lock().conn.execute("UPDATE workflows SET definition = 'changed'", []).unwrap();
        assert_eq!(
            store.workflow_by_endpoint(endpoint).await.unwrap().unwrap().definition,
            "first",
            "kept, not read again"
        );
        store.put_workflow("w", "second", &[]).await.unwrap();
        let found = store.workflow_by_endpoint(endpoint).await.unwrap().unwrap();
        assert_eq!((found.version, found.definition.as_str()), (2, "second"), "a deploy is seen at once");
        assert!(store.delete_workflow("w").await.unwrap());
        assert!(store.workflow_by_endpoint(endpoint).await.unwrap().is_none(), "a delete is seen at once");
    }

    #[tokio::test]
    async fn an_environment_is_read_once_until_this_store_or_another_process_changes_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        store.set_env("GREETING", "hello", false, Some("w")).await.unwrap();
        let greeting =
            |env: StoredEnv| env.0.into_iter().find(|(name, _)| name == "GREETING").map(|(_, v)| v);
        assert_eq!(greeting(store.env_for(Some("w")).await.unwrap()).as_deref(), Some("hello"));
        // Kept: a change through this store's own connection that did not
        // go through it is not read (versions of other processes only).
        store.lock().conn.execute("UPDATE env SET plain = 'changed'", []).unwrap();
        assert_eq!(greeting(store.env_for(Some("w")).await.unwrap()).as_deref(), Some("hello"));
        // This store's own write is seen at once.
        store.set_env("GREETING", "hi", false, Some("w")).await.unwrap();
        assert_eq!(greeting(store.env_for(Some("w")).await.unwrap()).as_deref(), Some("hi"));
        // Another process (the CLI) sets it: the next claim takes note, so
        // a run claimed after the change sees it.
        let cli = Store::open(dir.path()).unwrap();
        cli.set_env("GREETING", "from the cli", false, Some("w")).unwrap();
        assert!(store.claim_run("serve", Duration::from_secs(30)).await.unwrap().is_none());
        assert_eq!(greeting(store.env_for(Some("w")).await.unwrap()).as_deref(), Some("from the cli"));
        // Secret values are kept sealed.
        store.set_env("TOKEN", "s3cr3t-value", true, Some("w")).await.unwrap();
        store.env_for(Some("w")).await.unwrap();
        let kept = lock(&store.env).rows.get(&Some("w".to_string())).unwrap();
        let clear = |bytes: &[u8]| bytes.windows(6).any(|w| w == b"s3cr3t");
        assert!(kept.iter().all(|(_, _, _, plain, sealed)| {
            !plain.as_deref().is_some_and(|p| clear(p.as_bytes())) && !sealed.as_deref().is_some_and(clear)
        }));
    }

    #[tokio::test]
    async fn accepted_events_are_flushed_to_disk_before_the_intake_answers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(dir.path()).unwrap();
        let workflow = store.put_workflow("w", "definition", &[]).await.unwrap();
        let event = serde_json::json!({ "n": 1 });
        let flushed = super::super::service::log_flushes();
        store.enqueue_runs(&[NewRun::new("r1".into(), &workflow, &event)]).await.unwrap();
        assert_eq!(
            super::super::service::log_flushes(),
            flushed + 1,
            "the log flushed once, after the commit"
        );
        assert_eq!(store.queued_runs().await.unwrap(), 1);
    }
}
