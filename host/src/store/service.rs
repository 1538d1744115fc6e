//! What `stephost serve` keeps: uploaded steps (by content hash),
//! workflow versions with their HTTP endpoint, and durable runs
//! (queued → running → succeeded | failed | exited).

use super::runs::{Claimed, Lease, NewRun, Run, RunOutcome, RunStatus};
use super::{Store, StoreError};
use rusqlite::{OptionalExtension, params};
use std::path::Path;
use std::time::Duration;

/// Schema for the service (migration 3).
pub(super) const MIGRATION: &str = "CREATE TABLE steps (
         id TEXT PRIMARY KEY,
         size INTEGER NOT NULL,
         uploaded_ms INTEGER NOT NULL
     );
     CREATE TABLE workflows (
         name TEXT NOT NULL,
         version INTEGER NOT NULL,
         definition TEXT NOT NULL,
         endpoint TEXT NOT NULL,
         created_ms INTEGER NOT NULL,
         deleted INTEGER NOT NULL DEFAULT 0,
         PRIMARY KEY (name, version)
     );
     CREATE INDEX workflows_endpoint ON workflows (endpoint);
     CREATE TABLE runs (
         id TEXT PRIMARY KEY,
         workflow TEXT NOT NULL,
         version INTEGER NOT NULL,
         status TEXT NOT NULL,
         event TEXT NOT NULL,
         attempt INTEGER NOT NULL DEFAULT 0,
         created_ms INTEGER NOT NULL,
         started_ms INTEGER,
         finished_ms INTEGER,
         outcome TEXT
     );
     CREATE INDEX runs_status ON runs (status, created_ms);
     CREATE INDEX runs_workflow ON runs (workflow, created_ms);";

/// Retries and schedules (migration 4).
pub(super) const MIGRATION_SCHEDULES: &str =
    "ALTER TABLE runs ADD COLUMN not_before_ms INTEGER NOT NULL DEFAULT 0;
     CREATE TABLE schedules (
         workflow TEXT PRIMARY KEY,
         next_ms INTEGER NOT NULL
     );";

/// Leases on running runs (migration 5): who holds a running run and
/// until when. Rows left running by an older build have an expired lease.
pub(super) const MIGRATION_LEASES: &str = "ALTER TABLE runs ADD COLUMN lease_owner TEXT;
     ALTER TABLE runs ADD COLUMN lease_until_ms INTEGER NOT NULL DEFAULT 0;";

/// Inline secrets of workflow versions (migration 6): each value of a
/// definition's `secret_env` and each secret `[steps.auths.APP]` field,
/// sealed and bound to its workflow, version, step and field. The
/// definition itself is stored with these values masked.
pub(super) const MIGRATION_WORKFLOW_SECRETS: &str = "CREATE TABLE workflow_secrets (
         name TEXT NOT NULL,
         version INTEGER NOT NULL,
         step TEXT NOT NULL,
         field TEXT NOT NULL,
         sealed BLOB NOT NULL,
         PRIMARY KEY (name, version, step, field)
     );";

/// The inspector (migration 7): a step's name (the uploaded file's stem);
/// a run's `replay_of` and the step outcomes a replay from a step reuses
/// (`seed`, JSON); and the index that serves unfiltered newest-first pages.
/// Pages go by `(created_ms, rowid)`: every index ends in the rowid, so
/// `runs_status` and `runs_workflow` serve the filtered ones as they are.
pub(super) const MIGRATION_INSPECTOR: &str = "ALTER TABLE steps ADD COLUMN name TEXT;
     ALTER TABLE runs ADD COLUMN replay_of TEXT;
     ALTER TABLE runs ADD COLUMN seed TEXT;
     CREATE INDEX runs_created ON runs (created_ms);";

/// One inline secret of a workflow definition, in clear (host only):
/// `field` is `auths.APP.FIELD` or `secret_env.NAME`.
#[derive(Clone, PartialEq, Eq)]
pub struct InlineSecret {
    /// The step it belongs to.
    pub step: String,
    /// Where in the step: `auths.slack.oauth_access_token`, `secret_env.API_KEY`.
    pub field: String,
    /// The value in clear: never print it.
    pub value: String,
}

/// Names the secret, never its value.
impl std::fmt::Debug for InlineSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}=…", self.step, self.field)
    }
}

/// What an inline secret's ciphertext is bound to: moved to another
/// workflow, version, step or field it does not decrypt.
pub(super) fn inline_context(name: &str, version: u64, step: &str, field: &str) -> String {
    format!("workflow {name}/{version} step {step} {field}")
}

/// One inline secret as stored: step, field and the sealed value.
pub type SealedInline = (String, String, Vec<u8>);

/// Opens one sealed inline secret of workflow `name`'s `version`.
pub(super) fn open_inline_secret(
    key: &super::MasterKey,
    name: &str,
    version: u64,
    (step, field, sealed): SealedInline,
) -> Result<InlineSecret, StoreError> {
    let what = format!("workflow {name} version {version} {step}.{field}");
    let value = super::open_text(key, &sealed, &inline_context(name, version, &step, &field), &what)?;
    Ok(InlineSecret { step, field, value })
}

/// An uploaded step: `POST /v1/steps` answers it, `GET /v1/steps` lists it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StepRecord {
    /// SHA-256 of the component, hex.
    pub id: String,
    /// The component's size in bytes.
    pub size: u64,
    /// When it was first uploaded, ms since the Unix epoch.
    pub uploaded_ms: u64,
    /// What people call it: the uploaded file's stem (`hello.wasm` is
    /// `hello`) or `?name=`; the latest upload that gave one wins. `None`
    /// if no upload named it.
    #[serde(default)]
    pub name: Option<String>,
    /// The live workflows whose newest version runs it, by name: what a
    /// delete would break.
    #[serde(default)]
    pub used_by: Vec<String>,
}

/// One version of a deployed workflow.
#[derive(Debug, Clone, serde::Serialize)]
pub struct WorkflowRecord {
    /// The workflow's name, as in `PUT /v1/workflows/{name}`.
    pub name: String,
    /// Counts from 1 per name, on across a delete; runs name the one they run.
    pub version: u64,
    /// The workflow file (TOML), steps by uploaded id.
    pub definition: String,
    /// The unguessable id of its HTTP trigger, `/e/{endpoint}`.
    pub endpoint: String,
    /// When this version was deployed, ms since the Unix epoch.
    pub created_ms: u64,
}

/// The status column is the status word, so SQL filters and JSON agree.
impl rusqlite::ToSql for RunStatus {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// Reads the status column; an unknown word is a damaged row, said so.
impl rusqlite::types::FromSql for RunStatus {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        v.as_str()?.parse().map_err(|e: StoreError| rusqlite::types::FromSqlError::Other(e.into()))
    }
}

/// Which run a worker claims: the oldest of the oldest due queued run and
/// the oldest running run whose lease expired, each found in `runs_status`
/// order (one index probe each). One `WHERE … OR …` over both sets had
/// SQLite gather every queued run and sort them, so a claim cost grew with
/// the queue (2.5 ms with 4,000 queued) just when the queue was long.
pub(super) const CLAIM_OLDEST_DUE: &str = "id = (SELECT id FROM (
        SELECT * FROM (SELECT id, created_ms FROM runs WHERE status = 'queued' AND not_before_ms <= ?1
                       ORDER BY created_ms LIMIT 1)
        UNION ALL
        SELECT * FROM (SELECT id, created_ms FROM runs WHERE status = 'running' AND lease_until_ms < ?1
                       ORDER BY created_ms LIMIT 1)
    ) ORDER BY created_ms LIMIT 1)";

/// Waits until every commit made so far to the database at `database` is
/// on disk: flushes its write-ahead log. A commit at `synchronous = NORMAL`
/// is in the log but may not be on disk yet; a checkpoint flushes the log
/// before copying it into the database (and the database before the log is
/// reused), so once this returns the commit survives a power cut, whatever
/// other connections did meanwhile. Needs no connection, so a commit can
/// let go of it before waiting for the disk.
pub fn flush_log_at(database: &Path) -> Result<(), StoreError> {
    let mut log = database.as_os_str().to_owned();
    log.push("-wal");
    let flushed = match std::fs::File::open(&log) {
        Ok(file) => file.sync_data(),
        // No log: every commit is in the database, flushed when the last
        // connection checkpointed and removed it.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    #[cfg(test)]
    LOG_FLUSHES.with(|n| n.set(n.get() + 1));
    flushed.map_err(|e| StoreError::Database {
        path: database.to_path_buf(),
        message: format!("flushing the write-ahead log: {e}"),
    })
}

/// How many times this thread flushed a log: a test's proof that an
/// accepted event waited for the disk.
#[cfg(test)]
pub(super) fn log_flushes() -> u64 {
    LOG_FLUSHES.with(|n| n.get())
}

#[cfg(test)]
thread_local! {
    static LOG_FLUSHES: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The claim of the run `condition` picks: running under a new lease,
/// returned whole.
fn claim_sql(condition: &str) -> String {
    format!(
        "UPDATE runs SET status = 'running', started_ms = ?1, attempt = attempt + 1,
                         lease_owner = ?2, lease_until_ms = ?3
         WHERE {condition} RETURNING {RUN_FIELDS}"
    )
}

impl Store {
    /// Records an uploaded step (again: keeps the first upload time);
    /// `name`, if given, names it (replacing an earlier name).
    pub fn put_step(&self, id: &str, size: u64, name: Option<&str>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO steps (id, size, uploaded_ms, name) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO UPDATE SET name = COALESCE(excluded.name, name)",
                params![id, size as i64, self.now(), name],
            )
            .map_err(self.db())?;
        Ok(())
    }

    /// Every uploaded step, newest first, each with the live workflows
    /// using it.
    pub fn list_steps(&self) -> Result<Vec<StepRecord>, StoreError> {
        self.steps_where(None)
    }

    /// One uploaded step.
    pub fn step(&self, id: &str) -> Result<Option<StepRecord>, StoreError> {
        Ok(self.steps_where(Some(id))?.pop())
    }

    /// Step `id`, or every step (`None`), newest first, with their users.
    fn steps_where(&self, id: Option<&str>) -> Result<Vec<StepRecord>, StoreError> {
        let db = self.db();
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT id, size, uploaded_ms, name FROM steps WHERE ?1 IS NULL OR id = ?1
                 ORDER BY uploaded_ms DESC, id",
            )
            .map_err(&db)?;
        let mut steps: Vec<StepRecord> = statement
            .query_map([id], |r| {
                Ok(StepRecord {
                    id: r.get(0)?,
                    size: r.get::<_, i64>(1)? as u64,
                    uploaded_ms: r.get::<_, i64>(2)? as u64,
                    name: r.get(3)?,
                    used_by: Vec::new(),
                })
            })
            .map_err(&db)?
            .collect::<Result<_, _>>()
            .map_err(&db)?;
        if !steps.is_empty() {
            fill_used_by(&mut steps, &self.live_definitions()?);
        }
        Ok(steps)
    }

    /// The newest version of every live workflow: name and definition.
    fn live_definitions(&self) -> Result<Vec<(String, String)>, StoreError> {
        let db = self.db();
        let mut statement = self.conn.prepare_cached(LIVE_DEFINITIONS).map_err(&db)?;
        statement
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
            .map_err(&db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&db)
    }

    /// Forgets an uploaded step; `false` if there was none.
    pub fn delete_step(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.conn.execute("DELETE FROM steps WHERE id = ?1", [id]).map_err(self.db())? > 0)
    }

    /// Stores a new version of a workflow, its inline `secrets` sealed
    /// beside it in the same transaction (`definition` should hold them
    /// masked); its endpoint stays the one of earlier versions (a new
    /// random one for a new or deleted workflow).
    pub fn put_workflow(
        &self,
        name: &str,
        definition: &str,
        secrets: &[InlineSecret],
    ) -> Result<WorkflowRecord, StoreError> {
        let db = self.db();
        let tx = self.conn.unchecked_transaction().map_err(&db)?;
        let latest = self.workflow(name)?;
        // Versions count on across a delete: runs keep pointing at theirs.
        let highest: Option<i64> = tx
            .query_row("SELECT MAX(version) FROM workflows WHERE name = ?1", [name], |r| r.get(0))
            .map_err(&db)?;
        let version = highest.map_or(1, |v| v as u64 + 1);
        let endpoint = latest.map_or_else(crate::base::ids::unguessable_hex, |w| w.endpoint);
        let created_ms = self.now();
        tx.execute(
            "INSERT INTO workflows (name, version, definition, endpoint, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![name, version as i64, definition, endpoint, created_ms],
        )
        .map_err(&db)?;
        for secret in secrets {
            let sealed = self
                .key
                .seal(secret.value.as_bytes(), &inline_context(name, version, &secret.step, &secret.field));
            tx.execute(
                "INSERT INTO workflow_secrets (name, version, step, field, sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![name, version as i64, secret.step, secret.field, sealed],
            )
            .map_err(&db)?;
        }
        tx.commit().map_err(&db)?;
        Ok(WorkflowRecord {
            name: name.into(),
            version,
            definition: definition.into(),
            endpoint,
            created_ms: created_ms as u64,
        })
    }

    /// Seals the inline secrets of versions deployed before they were
    /// sealed (migration 6): each definition is stored masked, its secrets
    /// beside it, in one transaction; freed pages are zeroed
    /// (`secure_delete`) and the WAL checkpointed, so the clear text does
    /// not linger in the file.
    pub(super) fn seal_legacy_definitions(&self) -> Result<(), StoreError> {
        let db = self.db();
        let catalog = crate::catalog::Catalog::builtin();
        self.conn.pragma_update(None, "secure_delete", "ON").map_err(&db)?;
        // A write transaction from the start (processes opening at once
        // take turns), and the rows read inside it.
        let tx = rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate)
            .map_err(&db)?;
        let rows = {
            let mut statement = tx.prepare("SELECT name, version, definition FROM workflows").map_err(&db)?;
            statement
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?)))
                .map_err(&db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&db)?
        };
        let mut sealed_any = false;
        for (name, version, definition) in rows {
            // A definition that does not parse never ran; it stays as it is.
            let Ok((masked, secrets)) = mask_definition(&definition, &catalog) else { continue };
            // Values already masked were sealed before: leave them be, so
            // this can run again after an open that stopped half-way.
            let secrets: Vec<_> = secrets.into_iter().filter(|secret| secret.value != MASK).collect();
            if secrets.is_empty() {
                continue;
            }
            sealed_any = true;
            tx.execute(
                "UPDATE workflows SET definition = ?1 WHERE name = ?2 AND version = ?3",
                params![masked, name, version],
            )
            .map_err(&db)?;
            for secret in secrets {
                let sealed = self.key.seal(
                    secret.value.as_bytes(),
                    &inline_context(&name, version as u64, &secret.step, &secret.field),
                );
                tx.execute(
                    "INSERT OR REPLACE INTO workflow_secrets (name, version, step, field, sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![name, version, secret.step, secret.field, sealed],
                )
                .map_err(&db)?;
            }
        }
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('definitions_sealed', x'01')", [])
            .map_err(&db)?;
        tx.commit().map_err(&db)?;
        if sealed_any {
            self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(&db)?;
        }
        Ok(())
    }

    /// The inline secrets of one workflow version, decrypted, for its runs.
    pub fn workflow_secrets(&self, name: &str, version: u64) -> Result<Vec<InlineSecret>, StoreError> {
        let sealed = self.sealed_workflow_secrets(name, version)?;
        self.open_workflow_secrets(name, version, &sealed)
    }

    /// Opens the sealed inline secrets of one workflow version (as
    /// [`Store::sealed_workflow_secrets`] read them).
    pub fn open_workflow_secrets(
        &self,
        name: &str,
        version: u64,
        sealed: &[SealedInline],
    ) -> Result<Vec<InlineSecret>, StoreError> {
        sealed.iter().map(|row| open_inline_secret(&self.key, name, version, row.clone())).collect()
    }

    /// The inline secrets of one workflow version as stored, sealed: what
    /// may be kept in memory (a version's secrets never change).
    pub fn sealed_workflow_secrets(&self, name: &str, version: u64) -> Result<Vec<SealedInline>, StoreError> {
        let db = self.db();
        let mut statement = self.conn.prepare_cached("SELECT step, field, sealed FROM workflow_secrets WHERE name = ?1 AND version = ?2 ORDER BY rowid")
            .map_err(&db)?;
        let rows = statement
            .query_map(params![name, version as i64], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?))
            })
            .map_err(&db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&db)?;
        Ok(rows)
    }

    /// The live workflows whose newest version names uploaded step `id`
    /// (`step = "<id>"`), by name.
    pub fn workflows_using_step(&self, id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .live_definitions()?
            .into_iter()
            .filter(|(_, definition)| step_ids(definition).iter().any(|s| s.eq_ignore_ascii_case(id)))
            .map(|(name, _)| name)
            .collect())
    }

    /// Every live version of a workflow, newest first (the versions of
    /// earlier lives, before a delete, are not this workflow's).
    pub fn workflow_versions(&self, name: &str) -> Result<Vec<WorkflowRecord>, StoreError> {
        let db = self.db();
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT name, version, definition, endpoint, created_ms FROM workflows
                 WHERE name = ?1 AND deleted = 0 ORDER BY version DESC",
            )
            .map_err(&db)?;
        statement.query_map([name], workflow_row).map_err(&db)?.collect::<Result<_, _>>().map_err(&db)
    }

    /// The newest version of a workflow, unless deleted.
    pub fn workflow(&self, name: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        self.workflow_where("name = ?1 AND deleted = 0", name)
    }

    /// The newest version of every live workflow, by name.
    pub fn workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        let db = self.db();
        let mut statement = self
            .conn
            .prepare_cached(
                "SELECT name, version, definition, endpoint, created_ms FROM workflows w
                 WHERE deleted = 0 AND version = (SELECT MAX(version) FROM workflows v WHERE v.name = w.name)
                 ORDER BY name",
            )
            .map_err(&db)?;
        let rows = statement.query_map([], workflow_row).map_err(&db)?;
        rows.collect::<Result<_, _>>().map_err(&db)
    }

    /// The newest version of the workflow behind an endpoint.
    pub fn workflow_by_endpoint(&self, endpoint: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        self.workflow_where("endpoint = ?1 AND deleted = 0", endpoint)
    }

    /// One version of a workflow (deleted ones too: runs refer to them).
    pub fn workflow_version(&self, name: &str, version: u64) -> Result<Option<WorkflowRecord>, StoreError> {
        let db = self.db();
        self.query_row(
                "SELECT name, version, definition, endpoint, created_ms FROM workflows WHERE name = ?1 AND version = ?2",
                params![name, version as i64],
                workflow_row,
            )
            .optional()
            .map_err(&db)
    }

    fn workflow_where(&self, condition: &str, value: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        let sql = format!(
            "SELECT name, version, definition, endpoint, created_ms FROM workflows WHERE {condition} ORDER BY version DESC LIMIT 1"
        );
        self.query_row(&sql, [value], workflow_row).optional().map_err(self.db())
    }

    /// Marks every version of a workflow deleted; `false` if there was none.
    pub fn delete_workflow(&self, name: &str) -> Result<bool, StoreError> {
        let deleted = self
            .conn
            .execute("UPDATE workflows SET deleted = 1 WHERE name = ?1 AND deleted = 0", [name])
            .map_err(self.db())?;
        self.set_schedule(name, None)?;
        Ok(deleted > 0)
    }

    /// Commits an event as a queued run; returns the run's id.
    pub fn enqueue_run(
        &self,
        workflow: &WorkflowRecord,
        event: &serde_json::Value,
    ) -> Result<String, StoreError> {
        let id = crate::base::ids::new_run_id();
        self.enqueue_runs(&[NewRun::new(id.clone(), workflow, event)])?;
        Ok(id)
    }

    /// Runs `f` with commits that do not wait for the disk: for a worker's
    /// bookkeeping, which a power cut can only roll back to an earlier
    /// state of the run (then run again: at least once). Accepting an event
    /// waits for the disk (the connection's default, FULL).
    /// Inside a transaction the level is the enclosing commit's, so nothing
    /// is set (SQLite refuses to change it there).
    fn unsynced<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        if !self.conn.is_autocommit() {
            return f();
        }
        let set = |level: &str| -> Result<(), StoreError> {
            let mut pragma =
                self.conn.prepare_cached(&format!("PRAGMA synchronous = {level}")).map_err(self.db())?;
            pragma.raw_execute().map_err(self.db())?;
            Ok(())
        };
        set("NORMAL")?;
        let result = f();
        set("FULL")?;
        result
    }

    /// Commits many events as queued runs, under the callers' ids, in one
    /// transaction (one disk flush).
    pub fn enqueue_runs(&self, runs: &[NewRun<'_>]) -> Result<(), StoreError> {
        self.enqueue_runs_unflushed(runs)?;
        self.flush_log()
    }

    /// [`Store::enqueue_runs`] without waiting for the disk: the runs are
    /// durable only once [`Store::flush_log`] (or [`flush_log_at`]) has
    /// returned, which the caller may do without holding the connection.
    pub fn enqueue_runs_unflushed(&self, runs: &[NewRun<'_>]) -> Result<(), StoreError> {
        self.unsynced(|| self.insert_runs(runs))
    }

    /// Waits until every commit made so far is on disk.
    pub fn flush_log(&self) -> Result<(), StoreError> {
        flush_log_at(&self.path)
    }

    fn insert_runs(&self, runs: &[NewRun<'_>]) -> Result<(), StoreError> {
        let db = self.db();
        let tx = self.conn.unchecked_transaction().map_err(&db)?;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO runs (id, workflow, version, status, event, created_ms, replay_of, seed)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )
                .map_err(&db)?;
            let created_ms = self.now();
            for run in runs {
                insert
                    .execute(params![
                        run.id,
                        run.workflow.name,
                        run.workflow.version as i64,
                        RunStatus::Queued,
                        run.event.to_string(),
                        created_ms,
                        run.replay_of,
                        run.seed_json()?,
                    ])
                    .map_err(&db)?;
            }
        }
        tx.commit().map_err(&db)
    }

    /// Takes the oldest due queued run, or a running one whose lease
    /// expired (its worker died), marks it running (attempt + 1) and leases
    /// it to `owner` for `lease`.
    pub fn claim_run(&self, owner: &str, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        self.claim_where(CLAIM_OLDEST_DUE, None, owner, lease)
    }

    /// Takes one run by id (the CLI running its own run), if it is queued
    /// or its lease expired.
    pub fn claim_run_by_id(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        self.claim_where(
            "id = ?4 AND (status = 'queued' OR (status = 'running' AND lease_until_ms < ?1))",
            Some(id),
            owner,
            lease,
        )
    }

    fn claim_where(
        &self,
        condition: &str,
        id: Option<&str>,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        self.unsynced(|| {
            let db = self.db();
            let now = self.now();
            let mut claim = self.conn.prepare_cached(&claim_sql(condition)).map_err(&db)?;
            let until = now.saturating_add(lease.as_millis() as i64);
            let run = match id {
                Some(id) => claim.query_row(params![now, owner, until, id], run_row),
                None => claim.query_row(params![now, owner, until], run_row),
            }
            .optional()
            .map_err(&db)?;
            Ok(run.map(|run| Claimed {
                lease: Lease { run: run.id.clone(), owner: owner.to_string(), attempt: run.attempt },
                run,
            }))
        })
    }

    /// Runs `sql` (its `?1`… then the lease as the last three parameters:
    /// run, owner, attempt) on the leased run if the lease is still held;
    /// whether it was.
    fn under_lease(
        &self,
        lease: &Lease,
        sql: &str,
        values: &[&dyn rusqlite::ToSql],
    ) -> Result<bool, StoreError> {
        let n = values.len();
        let sql = format!(
            "{sql} WHERE id = ?{} AND lease_owner = ?{} AND attempt = ?{} AND status = 'running'",
            n + 1,
            n + 2,
            n + 3
        );
        let attempt = lease.attempt as i64;
        let mut all: Vec<&dyn rusqlite::ToSql> = values.to_vec();
        all.extend([&lease.run as &dyn rusqlite::ToSql, &lease.owner, &attempt]);
        self.unsynced(|| {
            let changed = self
                .conn
                .prepare_cached(&sql)
                .and_then(|mut update| update.execute(all.as_slice()))
                .map_err(self.db())?;
            Ok(changed > 0)
        })
    }

    /// Extends a held lease to now + `extend`; `false` if it was lost.
    pub fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<bool, StoreError> {
        let until = self.now().saturating_add(extend.as_millis() as i64);
        self.under_lease(lease, "UPDATE runs SET lease_until_ms = ?1", &[&until])
    }

    /// Stores how a run ended and lets go of it; `false` (nothing stored)
    /// if the lease was lost.
    pub fn finish_run(
        &self,
        lease: &Lease,
        status: RunStatus,
        outcome: &RunOutcome,
    ) -> Result<bool, StoreError> {
        let outcome = to_json(outcome)?;
        self.under_lease(
            lease,
            "UPDATE runs SET status = ?1, finished_ms = ?2, outcome = ?3, not_before_ms = 0,
                             lease_owner = NULL, lease_until_ms = 0",
            &[&status, &self.now(), &outcome],
        )
    }

    /// [`Store::finish_run`] and then [`Store::claim_run`] in one
    /// transaction: one commit between a worker's runs instead of two.
    pub fn finish_and_claim(
        &self,
        ended: (&Lease, RunStatus, &RunOutcome),
        owner: &str,
        lease: Duration,
    ) -> Result<(bool, Option<Claimed>), StoreError> {
        let (ended_lease, status, outcome) = ended;
        self.unsynced(|| {
            let tx = self.conn.unchecked_transaction().map_err(self.db())?;
            let stored = self.finish_run(ended_lease, status, outcome)?;
            let next = self.claim_run(owner, lease)?;
            tx.commit().map_err(self.db())?;
            Ok((stored, next))
        })
    }

    /// Stores the steps finished so far of a running run.
    pub fn save_progress(&self, lease: &Lease, outcome: &RunOutcome) -> Result<bool, StoreError> {
        let outcome = to_json(outcome)?;
        self.under_lease(lease, "UPDATE runs SET outcome = ?1", &[&outcome])
    }

    /// Queues a failed run again, not to start before `not_before_ms`; the
    /// failed attempt's outcome stays visible until the next one ends.
    pub fn retry_run(
        &self,
        lease: &Lease,
        outcome: &RunOutcome,
        not_before_ms: i64,
    ) -> Result<bool, StoreError> {
        let outcome = to_json(outcome)?;
        self.under_lease(
            lease,
            "UPDATE runs SET status = 'queued', not_before_ms = ?1, outcome = ?2,
                             lease_owner = NULL, lease_until_ms = 0",
            &[&not_before_ms, &outcome],
        )
    }

    /// Gives a claimed run back to the queue now (a shutdown past its grace
    /// period), so the next start need not wait for the lease to expire.
    pub fn release_run(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.under_lease(
            lease,
            "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until_ms = 0",
            &[],
        )
    }

    /// The time claims and leases go by: the wall clock, or a test's.
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// When the next queued retry becomes due, if one waits.
    pub fn next_retry_ms(&self) -> Result<Option<i64>, StoreError> {
        self.query_row(
            "SELECT MIN(not_before_ms) FROM runs WHERE status = 'queued' AND not_before_ms > 0",
            [],
            |r| r.get(0),
        )
        .map_err(self.db())
    }

    /// Sets (or with `None` removes) when a workflow's schedule fires next.
    pub fn set_schedule(&self, workflow: &str, next_ms: Option<i64>) -> Result<(), StoreError> {
        let db = self.db();
        match next_ms {
            Some(next) => self.conn.execute(
                "INSERT INTO schedules (workflow, next_ms) VALUES (?1, ?2)
                 ON CONFLICT (workflow) DO UPDATE SET next_ms = ?2",
                params![workflow, next],
            ),
            None => self.conn.execute("DELETE FROM schedules WHERE workflow = ?1", [workflow]),
        }
        .map_err(db)?;
        Ok(())
    }

    /// When a workflow's schedule fires next.
    pub fn schedule(&self, workflow: &str) -> Result<Option<i64>, StoreError> {
        self.query_row("SELECT next_ms FROM schedules WHERE workflow = ?1", [workflow], |r| r.get(0))
            .optional()
            .map_err(self.db())
    }

    /// Every schedule, soonest first: workflow and when it fires next.
    pub fn schedules(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let db = self.db();
        let mut statement = self
            .conn
            .prepare_cached("SELECT workflow, next_ms FROM schedules ORDER BY next_ms")
            .map_err(&db)?;
        statement
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(&db)?
            .collect::<Result<_, _>>()
            .map_err(&db)
    }

    /// Fires the tick due at `due_ms`: queues a scheduled run and moves the
    /// schedule on to `next_ms`, in one transaction (a crash neither loses
    /// nor doubles the run), only if the schedule still says `due_ms`;
    /// `None` (nothing written) if it no longer does.
    pub fn fire_schedule(
        &self,
        workflow: &WorkflowRecord,
        due_ms: i64,
        event: &serde_json::Value,
        next_ms: Option<i64>,
    ) -> Result<Option<String>, StoreError> {
        let db = self.db();
        let tx = self.conn.unchecked_transaction().map_err(&db)?;
        let moved = match next_ms {
            Some(next) => tx.execute(
                "UPDATE schedules SET next_ms = ?1 WHERE workflow = ?2 AND next_ms = ?3",
                params![next, workflow.name, due_ms],
            ),
            None => tx.execute(
                "DELETE FROM schedules WHERE workflow = ?1 AND next_ms = ?2",
                params![workflow.name, due_ms],
            ),
        }
        .map_err(&db)?;
        if moved != 1 {
            return Ok(None);
        }
        let id = crate::base::ids::new_run_id();
        tx.execute(
            "INSERT INTO runs (id, workflow, version, status, event, created_ms) VALUES (?1, ?2, ?3, 'queued', ?4, ?5)",
            params![id, workflow.name, workflow.version as i64, event.to_string(), self.now()],
        )
        .map_err(&db)?;
        tx.commit().map_err(&db)?;
        Ok(Some(id))
    }

    /// Deletes a workflow's finished runs beyond the newest `keep_runs` and
    /// those created before `older_than_ms`; queued and running runs stay.
    /// Returns how many went.
    pub fn prune_runs(
        &self,
        workflow: &str,
        keep_runs: Option<u64>,
        older_than_ms: Option<i64>,
    ) -> Result<usize, StoreError> {
        let db = self.db();
        let mut pruned = 0;
        if let Some(keep) = keep_runs {
            pruned += self
                .conn
                .execute(
                    "DELETE FROM runs WHERE workflow = ?1 AND status NOT IN ('queued', 'running') AND id NOT IN
                     (SELECT id FROM runs WHERE workflow = ?1 AND status NOT IN ('queued', 'running')
                      ORDER BY created_ms DESC LIMIT ?2)",
                    params![workflow, keep.min(i64::MAX as u64) as i64],
                )
                .map_err(&db)?;
        }
        if let Some(before) = older_than_ms {
            pruned += self
                .conn
                .execute(
                    "DELETE FROM runs WHERE workflow = ?1 AND status NOT IN ('queued', 'running') AND created_ms < ?2",
                    params![workflow, before],
                )
                .map_err(&db)?;
        }
        Ok(pruned)
    }

    /// The workflows that have runs (deleted ones too).
    pub fn workflows_with_runs(&self) -> Result<Vec<String>, StoreError> {
        let db = self.db();
        let mut statement = self.conn.prepare_cached("SELECT DISTINCT workflow FROM runs").map_err(&db)?;
        statement.query_map([], |r| r.get(0)).map_err(&db)?.collect::<Result<_, _>>().map_err(&db)
    }

    /// After a crash: runs left running by lease owners whose id begins
    /// with `owner_prefix` (a dead server's, the caller knows) go back to the
    /// queue (at least once). Others keep their lease until it expires.
    pub fn requeue_running_of(&self, owner_prefix: &str) -> Result<usize, StoreError> {
        self.conn
            .execute(
                "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until_ms = 0
                 WHERE status = 'running' AND substr(lease_owner, 1, length(?1)) = ?1",
                [owner_prefix],
            )
            .map_err(self.db())
    }

    /// How many runs wait.
    pub fn queued_runs(&self) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached("SELECT COUNT(*) FROM runs WHERE status = 'queued'")
            .and_then(|mut count| count.query_row([], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(self.db())
    }

    /// One run.
    pub fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        self.query_row(&format!("SELECT {RUN_FIELDS} FROM runs WHERE id = ?1"), [id], run_row)
            .optional()
            .map_err(self.db())
    }

    /// Runs, newest first, optionally of one workflow and/or status.
    pub fn list_runs(
        &self,
        workflow: Option<&str>,
        status: Option<RunStatus>,
        limit: u64,
    ) -> Result<Vec<Run>, StoreError> {
        self.runs_page(workflow, status, None, limit)
    }

    /// A page of runs, newest first (by `created_ms`, then the order they
    /// were accepted in), optionally of one workflow and/or status, strictly
    /// older than run `before`; an unknown `before` is [`StoreError::NotFound`].
    pub fn runs_page(
        &self,
        workflow: Option<&str>,
        status: Option<RunStatus>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Run>, StoreError> {
        let db = self.db();
        let (before_ms, before_row) = match before {
            None => (None, None),
            Some(id) => {
                let (created, row): (i64, i64) = self
                    .query_row("SELECT created_ms, rowid FROM runs WHERE id = ?1", [id], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                    .map_err(&db)?
                    .ok_or_else(|| StoreError::NotFound(format!("no run {id}")))?;
                (Some(created), Some(row))
            }
        };
        // Only the filters given, so SQLite reads the matching index in
        // order and stops at the limit (an `?1 IS NULL OR …` filter would
        // leave it one plan for all).
        let mut filters = Vec::new();
        if workflow.is_some() {
            filters.push("workflow = ?1");
        }
        if status.is_some() {
            filters.push("status = ?2");
        }
        if before.is_some() {
            filters.push("(created_ms, rowid) < (?3, ?4)");
        }
        let filters = match filters.is_empty() {
            true => String::new(),
            false => format!("WHERE {}", filters.join(" AND ")),
        };
        // ?5 is the highest parameter: every statement takes all five.
        let sql =
            format!("SELECT {RUN_FIELDS} FROM runs {filters} ORDER BY created_ms DESC, rowid DESC LIMIT ?5");
        let mut statement = self.conn.prepare_cached(&sql).map_err(&db)?;
        let limit = limit.min(i64::MAX as u64) as i64;
        statement
            .query_map(params![workflow, status, before_ms, before_row, limit], run_row)
            .map_err(&db)?
            .collect::<Result<_, _>>()
            .map_err(&db)
    }
}

/// What a masked inline secret reads as in a stored or shown definition.
pub const MASK: &str = "••••••••";

/// Splits a workflow definition into the text to store and show, with its
/// inline secrets masked, and those secrets: every `secret_env` value, and
/// every field of a `[steps.auths.APP]` table that `catalog` does not know
/// as a plain field (secret, or unknown: masked rather than shown).
pub fn mask_definition(
    text: &str,
    catalog: &crate::catalog::Catalog,
) -> Result<(String, Vec<InlineSecret>), String> {
    let mut table: toml::Table = text.parse().map_err(|_| "the definition is not valid TOML".to_string())?;
    let mut secrets = Vec::new();
    let mut take = |step: &str, field: String, value: &mut toml::Value| {
        if let toml::Value::String(clear) = value {
            secrets.push(InlineSecret {
                step: step.to_string(),
                field,
                value: std::mem::replace(clear, MASK.to_string()),
            });
        }
    };
    for step in table.get_mut("steps").and_then(|s| s.as_array_mut()).into_iter().flatten() {
        let Some(step) = step.as_table_mut() else { continue };
        let name = step.get("name").and_then(|n| n.as_str()).unwrap_or_default().to_string();
        if let Some(vars) = step.get_mut("secret_env").and_then(|v| v.as_table_mut()) {
            for (var, value) in vars.iter_mut() {
                take(&name, format!("secret_env.{var}"), value);
            }
        }
        for (app, fields) in step.get_mut("auths").and_then(|a| a.as_table_mut()).into_iter().flatten() {
            let Some(fields) = fields.as_table_mut() else { continue };
            let known = catalog.get(app);
            for (key, value) in fields.iter_mut() {
                if known.and_then(|k| k.field(key)).is_none_or(|f| f.secret) {
                    take(&name, format!("auths.{app}.{key}"), value);
                }
            }
        }
    }
    let masked = toml::to_string(&table).map_err(|e| format!("cannot write the definition: {e}"))?;
    Ok((masked, secrets))
}

/// The newest version of every live workflow, name and definition, by
/// name: what `used_by` reads (the same SQL on both backends).
pub(super) const LIVE_DEFINITIONS: &str = "SELECT name, definition FROM workflows w WHERE NOT deleted
     AND version = (SELECT MAX(version) FROM workflows v WHERE v.name = w.name) ORDER BY name";

/// The uploaded steps a stored definition names (`step = "<id>"`),
/// lowercased; one that does not parse names none.
pub(super) fn step_ids(definition: &str) -> Vec<String> {
    let Ok(table) = definition.parse::<toml::Table>() else { return Vec::new() };
    table
        .get("steps")
        .and_then(|s| s.as_array())
        .into_iter()
        .flatten()
        .filter_map(|step| step.get("step").and_then(|s| s.as_str()))
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Sets each step's `used_by` from the live workflows' newest
/// definitions (each parsed once).
pub(super) fn fill_used_by(steps: &mut [StepRecord], live: &[(String, String)]) {
    for (workflow, definition) in live {
        let ids = step_ids(definition);
        for step in steps.iter_mut() {
            if ids.iter().any(|id| id.eq_ignore_ascii_case(&step.id)) && !step.used_by.contains(workflow) {
                step.used_by.push(workflow.clone());
            }
        }
    }
}

const RUN_FIELDS: &str = "id, workflow, version, status, event, attempt, created_ms, started_ms, finished_ms, outcome, not_before_ms, replay_of, seed";

fn workflow_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WorkflowRecord> {
    Ok(WorkflowRecord {
        name: r.get(0)?,
        version: r.get::<_, i64>(1)? as u64,
        definition: r.get(2)?,
        endpoint: r.get(3)?,
        created_ms: r.get::<_, i64>(4)? as u64,
    })
}

fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        workflow: r.get(1)?,
        version: Some(r.get::<_, i64>(2)? as u64),
        status: r.get(3)?,
        event: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or_default(),
        attempt: r.get::<_, i64>(5)? as u64,
        created_ms: r.get::<_, i64>(6)? as u64,
        started_ms: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
        finished_ms: r.get::<_, Option<i64>>(8)?.map(|v| v as u64),
        // An outcome no reader understands shows as none rather than
        // hiding the whole run.
        outcome: r.get::<_, Option<String>>(9)?.and_then(|t| serde_json::from_str(&t).ok()),
        retry_at_ms: Some(r.get::<_, i64>(10)? as u64).filter(|&ms| ms > 0),
        replay_of: r.get(11)?,
        seed: super::runs::parse_seed(r.get::<_, Option<String>>(12)?.as_deref()),
    })
}

fn to_json(outcome: &RunOutcome) -> Result<String, StoreError> {
    serde_json::to_string(outcome).map_err(|e| StoreError::Invalid(format!("a run's outcome: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::WorkflowStatus;
    use std::sync::Arc;

    const LEASE: Duration = Duration::from_secs(30);

    fn succeeded() -> RunOutcome {
        RunOutcome { status: WorkflowStatus::Succeeded, attempt: 1, duration_ms: None, steps: vec![] }
    }

    #[test]
    fn runs_are_queued_claimed_finished_and_requeued_after_a_crash() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let v1 = store.put_workflow("hook", "definition", &[]).unwrap();
        let v2 = store.put_workflow("hook", "definition 2", &[]).unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        assert_eq!(v1.endpoint, v2.endpoint, "the endpoint outlives versions");
        assert_eq!(store.workflow_by_endpoint(&v1.endpoint).unwrap().unwrap().version, 2);
        let gone = store.put_workflow("gone", "d", &[]).unwrap();
        assert!(store.delete_workflow("gone").unwrap());
        assert_eq!(
            store.put_workflow("gone", "d", &[]).unwrap().version,
            gone.version + 1,
            "redeploy after delete"
        );

        let first = store.enqueue_run(&v2, &serde_json::json!({ "n": 1 })).unwrap();
        let second = store.enqueue_run(&v2, &serde_json::json!({ "n": 2 })).unwrap();
        let claimed = store.claim_run("test", LEASE).unwrap().unwrap();
        assert_eq!(
            (claimed.run.id.as_str(), claimed.run.status, claimed.run.attempt),
            (first.as_str(), RunStatus::Running, 1)
        );
        assert!(store.finish_run(&claimed.lease, RunStatus::Succeeded, &succeeded()).unwrap());
        assert_eq!(store.claim_run("serve:1:dead", LEASE).unwrap().unwrap().run.id, second);
        let cli = store.enqueue_run(&v2, &serde_json::json!({ "n": 3 })).unwrap();
        assert!(store.claim_run_by_id(&cli, "cli:2:alive", LEASE).unwrap().is_some());
        assert_eq!(store.requeue_running_of("serve:").unwrap(), 1, "the dead server's run, not the CLI's");
        let again = store.claim_run("test", LEASE).unwrap().unwrap();
        assert_eq!((again.run.id, again.run.attempt), (second, 2));
        assert!(store.claim_run("test", LEASE).unwrap().is_none(), "the CLI's run keeps its lease");
        let listed = store.list_runs(Some("hook"), Some(RunStatus::Succeeded), 10).unwrap();
        assert!(matches!(listed[0].outcome.as_ref().unwrap().status, WorkflowStatus::Succeeded));
    }

    #[test]
    fn a_runs_end_and_the_claim_of_the_next_are_written_together() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let workflow = store.put_workflow("w", "definition", &[]).unwrap();
        let first = store.enqueue_run(&workflow, &serde_json::json!({ "n": 1 })).unwrap();
        let second = store.enqueue_run(&workflow, &serde_json::json!({ "n": 2 })).unwrap();
        let claimed = store.claim_run("a", LEASE).unwrap().unwrap();
        // In one transaction: the claim's and the end's own commit level is
        // not set inside it (SQLite refuses that).
        let ended = (&claimed.lease, RunStatus::Succeeded, &succeeded());
        let (stored, next) = store.finish_and_claim(ended, "a", LEASE).unwrap();
        assert!(stored);
        let next = next.expect("the second run is claimed");
        assert_eq!(
            (next.run.id.as_str(), next.run.status, next.lease.owner.as_str()),
            (second.as_str(), RunStatus::Running, "a")
        );
        assert_eq!(store.run(&first).unwrap().unwrap().status, RunStatus::Succeeded);
        // A lost lease stores nothing; the claim still looks (nothing left).
        let again = (&claimed.lease, RunStatus::Failed, &succeeded());
        assert_eq!(
            store.finish_and_claim(again, "a", LEASE).map(|(s, n)| (s, n.is_none())).unwrap(),
            (false, true)
        );
        assert_eq!(store.run(&first).unwrap().unwrap().status, RunStatus::Succeeded);
        let last = (&next.lease, RunStatus::Succeeded, &succeeded());
        assert!(store.finish_and_claim(last, "a", LEASE).unwrap().0);
        assert_eq!(store.run(&second).unwrap().unwrap().status, RunStatus::Succeeded);
    }

    #[test]
    fn a_claim_takes_the_oldest_due_run_looking_at_few_rows_however_long_the_queue() {
        let clock = Arc::new(crate::base::clock::ManualClock::new(1_000));
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap().with_clock(clock.clone());
        let workflow = store.put_workflow("w", "definition", &[]).unwrap();
        let abandoned = store.enqueue_run(&workflow, &serde_json::json!({ "n": 0 })).unwrap();
        assert_eq!(store.claim_run("dead", LEASE).unwrap().unwrap().run.id, abandoned);
        clock.set(2_000);
        let event = serde_json::json!({ "n": 1 });
        let ids: Vec<String> = (0..2_000).map(|_| crate::base::ids::new_run_id()).collect();
        let runs: Vec<NewRun<'_>> = ids.iter().map(|id| NewRun::new(id.clone(), &workflow, &event)).collect();
        store.enqueue_runs(&runs).unwrap();
        let later = store.claim_run("a", LEASE).unwrap().unwrap();
        assert_eq!(later.run.id, ids[0], "the dead worker's lease is live: the oldest queued run");
        store.retry_run(&later.lease, &succeeded(), 1_000_000).unwrap();

        clock.set(1_000 + LEASE.as_millis() as i64 + 1);
        let statement = store.conn.prepare_cached(&claim_sql(CLAIM_OLDEST_DUE)).unwrap();
        statement.reset_status(rusqlite::StatementStatus::VmStep);
        drop(statement);
        let claimed = store.claim_run("b", LEASE).unwrap().unwrap();
        assert_eq!(claimed.run.id, abandoned, "an expired lease older than every queued run");
        let statement = store.conn.prepare_cached(&claim_sql(CLAIM_OLDEST_DUE)).unwrap();
        let steps = statement.get_status(rusqlite::StatementStatus::VmStep);
        assert!(steps < 1_000, "the claim went through {steps} VM steps with 2,000 runs queued");
        drop(statement);
        assert_eq!(store.claim_run("b", LEASE).unwrap().unwrap().run.id, ids[1], "the retry is not due");
    }

    #[test]
    fn a_schedule_tick_fires_once_and_only_while_the_schedule_says_it_is_due() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let workflow = store.put_workflow("tick", "definition", &[]).unwrap();
        store.set_schedule("tick", Some(1_000)).unwrap();
        let event = serde_json::json!({ "timestamp": 1_000 });
        let fired = store.fire_schedule(&workflow, 1_000, &event, Some(2_000)).unwrap();
        assert!(fired.is_some());
        assert_eq!(store.schedule("tick").unwrap(), Some(2_000));
        // The same tick again (another server, a stale read): nothing written.
        assert_eq!(store.fire_schedule(&workflow, 1_000, &event, Some(2_000)).unwrap(), None);
        assert_eq!(store.fire_schedule(&workflow, 1_000, &event, None).unwrap(), None);
        assert_eq!(store.schedule("tick").unwrap(), Some(2_000));
        assert_eq!(store.queued_runs().unwrap(), 1, "one run for the tick");
        // The last tick removes the schedule.
        assert!(store.fire_schedule(&workflow, 2_000, &event, None).unwrap().is_some());
        assert_eq!(store.schedule("tick").unwrap(), None);
        assert_eq!(store.queued_runs().unwrap(), 2);
        // init_meta keeps the first value.
        assert_eq!(store.init_meta("k", b"first").unwrap(), b"first");
        assert_eq!(store.init_meta("k", b"second").unwrap(), b"first");
    }

    #[test]
    fn definitions_stored_in_clear_by_an_older_version_are_sealed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        // Long values: the masked row is shorter than the clear one, so
        // the clear one's tail would stay in the page's free space.
        let long = "x".repeat(300);
        let clear = format!(
            "[[steps]]\nname = \"post\"\nstep = \"ab\"\nsecret_env = {{ K = \"legacy-env-secret{long}\" }}\n\
             [steps.auths.slack]\noauth_access_token = \"{long}xoxb-legacy-secret\"\noauth_uid = \"U1\"\n"
        );
        {
            // The database as migration 5 left it, with a definition in clear.
            let store = Store::open(dir.path()).unwrap();
            store.put_workflow("old", &clear, &[]).unwrap();
            store
                .conn
                .execute_batch(
                    "DROP TABLE workflow_secrets; DELETE FROM meta WHERE key = 'definitions_sealed';
                     ALTER TABLE steps DROP COLUMN name; ALTER TABLE runs DROP COLUMN replay_of;
                     ALTER TABLE runs DROP COLUMN seed; DROP INDEX runs_created;
                     PRAGMA user_version = 5;",
                )
                .unwrap();
        }
        // An open that migrated and then stopped (a wrong key, a kill)
        // before sealing: the next open still seals.
        let mut migrated = rusqlite::Connection::open(dir.path().join(crate::store::DATABASE_FILE)).unwrap();
        crate::store::migrate(&mut migrated).unwrap();
        drop(migrated);
        let store = Store::open(dir.path()).unwrap();
        let record = store.workflow("old").unwrap().unwrap();
        assert!(
            !record.definition.contains("legacy") && record.definition.contains("U1"),
            "{}",
            record.definition
        );
        let secrets = store.workflow_secrets("old", 1).unwrap();
        let values: Vec<_> = secrets.iter().map(|s| (s.field.as_str(), s.value.as_str())).collect();
        assert_eq!(
            values,
            [
                ("secret_env.K", format!("legacy-env-secret{long}").as_str()),
                ("auths.slack.oauth_access_token", format!("{long}xoxb-legacy-secret").as_str())
            ]
        );
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            for secret in [&b"legacy-env-secret"[..], b"xoxb-legacy-secret"] {
                assert!(
                    !bytes.windows(secret.len()).any(|w| w == secret),
                    "a secret is still in clear on disk"
                );
            }
        }
    }

    #[test]
    fn pages_of_runs_follow_one_another_without_gaps_or_repeats_and_read_an_index_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let clock = std::sync::Arc::new(crate::base::clock::ManualClock::new(1_000));
        let store = Store::open(dir.path()).unwrap().with_clock(clock.clone());
        let (a, b) = (store.put_workflow("a", "d", &[]).unwrap(), store.put_workflow("b", "d", &[]).unwrap());
        let event = serde_json::json!({});
        // Batches in the same millisecond: ties that only the accept order breaks.
        let mut accepted = Vec::new();
        for ms in 0..7 {
            clock.set(1_000 + ms);
            let ids: Vec<String> = (0..5).map(|_| crate::base::ids::new_run_id()).collect();
            let batch: Vec<NewRun> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| NewRun::new(id.clone(), if i % 2 == 0 { &a } else { &b }, &event))
                .collect();
            store.enqueue_runs(&batch).unwrap();
            accepted.extend(ids.into_iter().enumerate());
        }
        let newest_first: Vec<&(usize, String)> = accepted.iter().rev().collect();
        for (workflow, wanted) in [
            (None, newest_first.clone()),
            (Some("a"), newest_first.iter().copied().filter(|(i, _)| i % 2 == 0).collect()),
        ] {
            let mut seen = Vec::new();
            let mut before: Option<String> = None;
            loop {
                let page = store.runs_page(workflow, None, before.as_deref(), 4).unwrap();
                seen.extend(page.iter().map(|r| r.id.clone()));
                match page.last() {
                    Some(last) if page.len() == 4 => before = Some(last.id.clone()),
                    _ => break,
                }
            }
            let wanted: Vec<String> = wanted.iter().map(|(_, id)| id.clone()).collect();
            assert_eq!(seen, wanted, "{workflow:?}");
        }
        assert!(matches!(store.runs_page(None, None, Some("nope"), 4), Err(StoreError::NotFound(_))));
        for filters in ["", "WHERE workflow = ?1", "WHERE status = ?2"] {
            let keyset = if filters.is_empty() { "WHERE" } else { "AND" };
            let sql = format!(
                "EXPLAIN QUERY PLAN SELECT {RUN_FIELDS} FROM runs {filters} {keyset} (created_ms, rowid) < (?3, ?4)
                 ORDER BY created_ms DESC, rowid DESC LIMIT ?5"
            );
            let plan: Vec<String> = store
                .conn
                .prepare(&sql)
                .unwrap()
                .query_map(params!["a", "queued", 2_000, 1, 10], |r| r.get(3))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let plan = plan.join("; ");
            assert!(plan.contains("USING INDEX") && !plan.contains("TEMP B-TREE"), "{filters}: {plan}");
        }
    }

    #[test]
    fn pruning_keeps_the_newest_finished_runs_and_never_touches_queued_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let workflow = store.put_workflow("w", "definition", &[]).unwrap();
        let events: Vec<serde_json::Value> = (0..5).map(|i| serde_json::json!({ "i": i })).collect();
        let ids: Vec<String> = (0..5).map(|_| crate::base::ids::new_run_id()).collect();
        let batch: Vec<NewRun> =
            ids.iter().zip(&events).map(|(id, event)| NewRun::new(id.clone(), &workflow, event)).collect();
        store.enqueue_runs(&batch).unwrap();
        for _ in 0..4 {
            let claimed = store.claim_run("test", LEASE).unwrap().unwrap();
            store.finish_run(&claimed.lease, RunStatus::Succeeded, &succeeded()).unwrap();
        }
        store.conn.execute("UPDATE runs SET created_ms = created_ms + rowid", []).unwrap();
        assert_eq!(store.prune_runs("w", Some(2), None).unwrap(), 2);
        let left: Vec<String> =
            store.list_runs(Some("w"), None, 10).unwrap().into_iter().map(|r| r.id).collect();
        assert_eq!(left, [ids[4].clone(), ids[3].clone(), ids[2].clone()], "queued + newest two finished");
        assert_eq!(store.prune_runs("w", None, Some(i64::MAX)).unwrap(), 2, "all finished ones are old");
        assert_eq!(store.run(&ids[4]).unwrap().unwrap().status, RunStatus::Queued, "queued runs stay");
    }
}
