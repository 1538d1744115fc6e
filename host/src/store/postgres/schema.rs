//! The PostgreSQL schema: migrations applied in order, in one transaction
//! under an advisory lock, so nodes starting together on a fresh database
//! take turns and all see one schema; and the master key check.

use super::{Postgres, db_error};
use crate::store::StoreError;
use crate::store::crypto::{KeyError, MasterKey};
use tokio_postgres::Client;

/// The transaction-scoped advisory lock every node takes before it looks at
/// or changes the schema: "stephost" in ASCII.
const MIGRATE_LOCK: i64 = 0x7374_6570_686f_7374;

/// Schema migrations, applied in order; `schema_migrations` records each
/// one applied (version = its place in this list, from 1). Never edit one
/// that has shipped: add another.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: everything SQLite's migrations 1–6 hold, and what several nodes
    // need: component bytes, replies across nodes, the nodes themselves and
    // one audit chain.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);
     CREATE TABLE accounts (
         id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         app TEXT NOT NULL,
         name TEXT NOT NULL,
         created_ms BIGINT NOT NULL,
         last_used_ms BIGINT,
         expires_ms BIGINT,
         status TEXT NOT NULL DEFAULT 'ok',
         UNIQUE (app, name)
     );
     CREATE TABLE account_fields (
         account_id BIGINT NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
         position INT NOT NULL,
         key TEXT NOT NULL,
         secret BOOLEAN NOT NULL,
         plain TEXT,
         sealed BYTEA,
         PRIMARY KEY (account_id, key)
     );
     CREATE TABLE account_oauth (
         account_id BIGINT PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
         token_url TEXT NOT NULL,
         client_id TEXT NOT NULL,
         client_secret BYTEA,
         refresh_token BYTEA
     );
     CREATE TABLE env (
         workflow TEXT NOT NULL,
         name TEXT NOT NULL,
         secret BOOLEAN NOT NULL,
         plain TEXT,
         sealed BYTEA,
         updated_ms BIGINT NOT NULL,
         PRIMARY KEY (workflow, name)
     );
     CREATE TABLE steps (
         id TEXT PRIMARY KEY,
         size BIGINT NOT NULL,
         uploaded_ms BIGINT NOT NULL,
         bytes BYTEA NOT NULL
     );
     CREATE TABLE workflows (
         name TEXT NOT NULL,
         version BIGINT NOT NULL,
         definition TEXT NOT NULL,
         endpoint TEXT NOT NULL,
         created_ms BIGINT NOT NULL,
         deleted BOOLEAN NOT NULL DEFAULT FALSE,
         PRIMARY KEY (name, version)
     );
     CREATE INDEX workflows_endpoint ON workflows (endpoint);
     CREATE TABLE workflow_secrets (
         name TEXT NOT NULL,
         version BIGINT NOT NULL,
         step TEXT NOT NULL,
         field TEXT NOT NULL,
         position INT NOT NULL,
         sealed BYTEA NOT NULL,
         PRIMARY KEY (name, version, step, field)
     );
     CREATE TABLE runs (
         seq BIGINT GENERATED ALWAYS AS IDENTITY,
         id TEXT PRIMARY KEY,
         workflow TEXT NOT NULL,
         version BIGINT NOT NULL,
         status TEXT NOT NULL,
         event TEXT NOT NULL,
         attempt BIGINT NOT NULL DEFAULT 0,
         created_ms BIGINT NOT NULL,
         started_ms BIGINT,
         finished_ms BIGINT,
         outcome TEXT,
         not_before_ms BIGINT NOT NULL DEFAULT 0,
         lease_owner TEXT,
         lease_until_ms BIGINT NOT NULL DEFAULT 0
     );
     CREATE INDEX runs_queue ON runs (created_ms, seq) WHERE status = 'queued';
     CREATE INDEX runs_leases ON runs (lease_until_ms) WHERE status = 'running';
     CREATE INDEX runs_status ON runs (status, created_ms);
     CREATE INDEX runs_workflow ON runs (workflow, created_ms);
     CREATE TABLE schedules (workflow TEXT PRIMARY KEY, next_ms BIGINT NOT NULL);
     CREATE TABLE run_replies (
         run TEXT PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
         status INT,
         headers JSONB,
         body BYTEA,
         ended TEXT,
         created_ms BIGINT NOT NULL
     );
     CREATE TABLE nodes (
         id TEXT PRIMARY KEY,
         host TEXT NOT NULL,
         pid INT NOT NULL,
         listen TEXT NOT NULL,
         version TEXT NOT NULL,
         started_ms BIGINT NOT NULL,
         heartbeat_ms BIGINT NOT NULL
     );
     CREATE TABLE audit (seq BIGINT PRIMARY KEY, at_ms BIGINT NOT NULL, line TEXT NOT NULL);
     CREATE TABLE audit_head (
         id SMALLINT PRIMARY KEY CHECK (id = 1),
         seq BIGINT NOT NULL,
         hash TEXT NOT NULL,
         mac TEXT NOT NULL
     );
     INSERT INTO audit_head VALUES (1, -1, '<GENESIS>', '');",
    // 2: each node's lease, which says how long its heartbeat counts (a
    // node is listed while its last one is younger than twice its lease,
    // and the reaper forgets it after ten), and the runs a node holds,
    // found by their owner for the node list.
    "ALTER TABLE nodes ADD COLUMN lease_ms BIGINT NOT NULL DEFAULT 30000;
     CREATE INDEX runs_owner ON runs (lease_owner) WHERE status = 'running';",
    // 3: the inspector: a step's name, a run's `replay_of` and the step
    // outcomes a replay from a step reuses (`seed`, JSON), and run indexes
    // that serve newest-first pages by (created_ms, seq), filtered by
    // workflow or status or neither (SQLite's go by rowid, as seq here).
    "ALTER TABLE steps ADD COLUMN name TEXT;
     ALTER TABLE runs ADD COLUMN replay_of TEXT;
     ALTER TABLE runs ADD COLUMN seed TEXT;
     DROP INDEX runs_status;
     DROP INDEX runs_workflow;
     CREATE INDEX runs_status ON runs (status, created_ms, seq);
     CREATE INDEX runs_workflow ON runs (workflow, created_ms, seq);
     CREATE INDEX runs_created ON runs (created_ms, seq);",
];

/// A known plaintext sealed under the master key when the database is set
/// up: a node with another key is refused at connect, before it touches a
/// secret (the same check as SQLite's).
const KEY_CHECK: &[u8] = b"stephost master key check";

/// The associated data the key check is sealed with.
const KEY_CHECK_CONTEXT: &str = "key check";

/// Brings the schema up to [`MIGRATIONS`], in one transaction under
/// [`MIGRATE_LOCK`]: a node that waited finds the work done. A database
/// migrated by a newer stephost is refused, not changed. `now_ms` is
/// recorded as each migration's time.
pub(super) async fn migrate(client: &mut Client, name: &str, now_ms: i64) -> Result<(), StoreError> {
    let db = |e| db_error(name, e);
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK]).await.map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INT PRIMARY KEY, applied_ms BIGINT NOT NULL)",
    )
    .await
    .map_err(db)?;
    let applied: i32 = tx
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])
        .await
        .map_err(db)?
        .get(0);
    let known = MIGRATIONS.len();
    if applied as usize > known {
        return Err(StoreError::Database {
            path: name.into(),
            message: format!(
                "schema version {applied} is newer than this stephost knows ({known}): upgrade stephost"
            ),
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        tx.batch_execute(sql).await.map_err(db)?;
        let version = index as i32 + 1;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_ms) VALUES ($1, $2)",
            &[&version, &now_ms],
        )
        .await
        .map_err(db)?;
    }
    tx.commit().await.map_err(db)
}

/// Stores the key check sealed under `key` if the database has none yet
/// (the first node to get here wins), then opens what is stored: a key
/// other than the first node's is [`KeyError::WrongKey`] naming the
/// database (its URL without the password).
pub(super) async fn check_key(store: &Postgres, key: &MasterKey) -> Result<(), StoreError> {
    let sealed = key.seal(KEY_CHECK, KEY_CHECK_CONTEXT);
    let stored = store.init_meta("key_check", &sealed).await?;
    match key.open(&stored, KEY_CHECK_CONTEXT) {
        Ok(clear) if clear == KEY_CHECK => Ok(()),
        _ => Err(KeyError::WrongKey { what: format!("database {}", store.name) }.into()),
    }
}
