//! The embedded default store: one SQLite database in the data directory
//! (WAL, migrations that run by themselves) holding connected accounts and
//! environment variables, every secret value encrypted under the master key.

mod backend;
mod cluster;
pub mod crypto;
mod postgres;
pub mod runs;
mod service;
mod sqlite;
pub mod views;

pub use backend::{Accounts, Backend, Deployments, EnvVars, RunLog, RunQueue, Schedules, Settings, Steps};
pub use cluster::{Cluster, NodeInfo, NodeView, RunReply, Signal};
pub use postgres::PgAudit;
pub use postgres::Postgres;
/// A fresh database on the test PostgreSQL server, for unit tests of the
/// layers above that need a shared store.
#[cfg(test)]
pub(crate) use postgres::tests::TestDatabase;
pub use runs::{Claimed, Lease, NewRun, Run, RunOutcome, RunStatus, RunSummary, WorkflowStatus};
pub use service::{InlineSecret, MASK, StepRecord, WorkflowRecord, mask_definition};
pub use sqlite::Sqlite;

use crate::catalog::Catalog;
use crypto::{KeyError, MasterKey};
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};

/// The database file's name in the data directory.
pub const DATABASE_FILE: &str = "stephost.db";

/// The master key file's name in the data directory.
pub const KEY_FILE: &str = "master.key";

/// Held while a process sets the database up on open.
const SETUP_LOCK_FILE: &str = "stephost.db.setup-lock";

/// Schema migrations, applied in order; `user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    // 1: accounts and their fields; environment variables; a key check.
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
     CREATE TABLE accounts (
         id INTEGER PRIMARY KEY,
         app TEXT NOT NULL,
         name TEXT NOT NULL,
         created_ms INTEGER NOT NULL,
         last_used_ms INTEGER,
         expires_ms INTEGER,
         status TEXT NOT NULL DEFAULT 'ok',
         UNIQUE (app, name)
     );
     CREATE TABLE account_fields (
         account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
         position INTEGER NOT NULL,
         key TEXT NOT NULL,
         secret INTEGER NOT NULL,
         plain TEXT,
         sealed BLOB,
         PRIMARY KEY (account_id, key)
     );
     CREATE TABLE env (
         workflow TEXT NOT NULL,
         name TEXT NOT NULL,
         secret INTEGER NOT NULL,
         plain TEXT,
         sealed BLOB,
         updated_ms INTEGER NOT NULL,
         PRIMARY KEY (workflow, name)
     );",
    // 2: what an OAuth account needs to refresh its token.
    "CREATE TABLE account_oauth (
         account_id INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
         token_url TEXT NOT NULL,
         client_id TEXT NOT NULL,
         client_secret BLOB,
         refresh_token BLOB
     );",
    // 3: uploaded steps, workflow versions, durable runs (stephost serve).
    service::MIGRATION,
    // 4: retries (a run's earliest start) and timer schedules.
    service::MIGRATION_SCHEDULES,
    // 5: leases on running runs.
    service::MIGRATION_LEASES,
    // 6: workflow definitions' inline secrets, sealed.
    service::MIGRATION_WORKFLOW_SECRETS,
    // 7: step names, replays and their reused steps, run pages.
    service::MIGRATION_INSPECTOR,
];

/// A known plaintext sealed under the master key when the database is
/// created: a wrong key is caught at open, before any account is touched.
const KEY_CHECK: &[u8] = b"stephost master key check";

/// Why the store could not do something; one line, naming the thing.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, created, migrated or queried.
    #[error("database {path}: {message}")]
    Database {
        /// The database file (or the data directory it could not create).
        path: PathBuf,
        /// SQLite's (or the file system's) reason.
        message: String,
    },
    /// The master key is missing, malformed or not the one the database was
    /// made with, or a stored secret will not decrypt under it.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The input was refused (a bad name, a value too large, a missing
    /// field) or a stored value is damaged; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// The named app, account or environment variable does not exist; the
    /// message names it.
    #[error("{0}")]
    NotFound(String),
}

/// One field of a stored account, secret values decrypted (host only).
#[derive(Clone)]
pub struct StoredField {
    /// The field's name, as the catalog declares it and steps see it.
    pub key: String,
    /// Whether it is stored sealed; `Debug` then prints `…` for the value.
    pub secret: bool,
    /// The value in clear, decrypted if secret: never print it.
    pub value: String,
}

impl std::fmt::Debug for StoredField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let value = if self.secret { "…" } else { self.value.as_str() };
        write!(f, "{}={value}", self.key)
    }
}

/// A connected account, as `accounts list` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountSummary {
    /// The catalog app, e.g. `slack`.
    pub app: String,
    /// The account's name within the app, as `auths = { slack = "work" }` names it.
    pub name: String,
    /// Field names to non-secret values, secret ones masked; JSON
    /// `{"field": "value", …}`.
    #[serde(serialize_with = "crate::base::wire::pairs_as_object::serialize")]
    pub fields: Vec<(String, String)>,
    /// When it was connected (reconnecting resets it), ms since the Unix epoch.
    pub created_ms: u64,
    /// When a run last read its fields, ms since the Unix epoch; `None` if never.
    pub last_used_ms: Option<u64>,
    /// When its OAuth access token expires, ms since the Unix epoch; `None`
    /// if it does not or no expiry is known.
    pub expires_ms: Option<u64>,
    /// `ok`, or why it needs attention (e.g. `refresh failed: …`).
    pub status: String,
}

/// One environment variable, as `env list` shows it (secret values masked).
#[derive(Debug, Clone, serde::Serialize)]
pub struct EnvSummary {
    /// The variable's name, as steps see it.
    pub name: String,
    /// `None` for a global variable.
    pub workflow: Option<String>,
    /// Whether the value is stored sealed (and masked in `shown`).
    pub secret: bool,
    /// What to print: the value of a plain variable, `••••••••` for a secret.
    pub shown: String,
}

/// What an OAuth account needs to refresh its access token (secrets
/// decrypted; host only, never printed).
#[derive(Clone)]
pub struct OAuthState {
    /// The app's token endpoint, where refresh requests go.
    pub token_url: String,
    /// The OAuth client the tokens were issued to.
    pub client_id: String,
    /// `None` for a public client (PKCE alone).
    pub client_secret: Option<String>,
    /// `None` if the provider issued none: the token cannot be refreshed.
    pub refresh_token: Option<String>,
    /// When the access token expires, ms since the Unix epoch; `None` if no
    /// expiry is known (it is then never refreshed ahead of time).
    pub expires_ms: Option<u64>,
}

/// Environment variables for a run: (plain, secret), each as name/value.
pub type StoredEnv = (Vec<(String, String)>, Vec<(String, String)>);

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    key: MasterKey,
    /// What runs' timestamps and leases go by.
    clock: std::sync::Arc<dyn crate::base::clock::Clock>,
}

/// Statements kept prepared on the connection: every one a run's path
/// takes (trigger, claim, step, finish), with room for the API's.
const PREPARED_STATEMENTS: usize = 64;

/// Largest environment variable value.
pub const MAX_ENV_VALUE: usize = 64 * 1024;

impl Store {
    /// One row of `sql`, kept prepared on the connection: a worker and the
    /// trigger path run the same few statements for every run, and parsing
    /// each anew was a tenth of a trigger's CPU.
    fn query_row<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.conn.prepare_cached(sql)?.query_row(params, row)
    }

    /// Opens (or creates) the store in `data_dir`, migrating it, and checks
    /// the master key against it.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        crate::base::files::create_private_dir(data_dir).map_err(|e| StoreError::Database {
            path: data_dir.to_path_buf(),
            message: format!("cannot create the data directory: {e}"),
        })?;
        let path = data_dir.join(DATABASE_FILE);
        let db = |e: rusqlite::Error| StoreError::Database { path: path.clone(), message: e.to_string() };
        // Opening sets the database up (WAL, migrations, the key check,
        // sealing old definitions): processes opening at once take turns,
        // as SQLite answers "locked" without waiting in parts of that.
        let setup = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(data_dir.join(SETUP_LOCK_FILE))
            .and_then(|file| file.lock().map(|()| file))
            .map_err(|e| StoreError::Database {
                path: path.clone(),
                message: format!("cannot take {}: {e}", SETUP_LOCK_FILE),
            })?;
        let mut conn = Connection::open(&path).map_err(db)?;
        // Secret values are encrypted, but nothing in here is for others.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(db)?;
        conn.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;
        migrate(&mut conn).map_err(db)?;
        let key = MasterKey::load(&data_dir.join(KEY_FILE))?;
        let check: Option<Vec<u8>> = conn
            .query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| r.get(0))
            .optional()
            .map_err(db)?;
        match check {
            Some(blob) => {
                key.open(&blob, "key check")
                    .map_err(|_| KeyError::WrongKey { what: format!("{}", path.display()) })?;
            }
            None => {
                // Another process may write its check first: then ours is
                // ignored and theirs must open under this key too.
                conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('key_check', ?1)",
                    [key.seal(KEY_CHECK, "key check")],
                )
                .map_err(db)?;
                let blob: Vec<u8> = conn
                    .query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| r.get(0))
                    .map_err(db)?;
                key.open(&blob, "key check")
                    .map_err(|_| KeyError::WrongKey { what: format!("{}", path.display()) })?;
            }
        }
        // Versions deployed before migration 6 kept inline secrets in clear;
        // sealed on the first open that gets this far (not only the one
        // that migrated, which may have stopped before it).
        let sealed: bool = conn
            .query_row("SELECT 1 FROM meta WHERE key = 'definitions_sealed'", [], |_| Ok(true))
            .optional()
            .map_err(db)?
            .unwrap_or(false);
        let store = Self { conn, path, key, clock: std::sync::Arc::new(crate::base::clock::SystemClock) };
        if !sealed {
            store.seal_legacy_definitions()?;
        }
        drop(setup);
        Ok(store)
    }

    /// The store going by `clock` for runs' timestamps and leases, so a
    /// test can let a lease expire by moving a [`ManualClock`](crate::base::clock::ManualClock).
    pub fn with_clock(mut self, clock: std::sync::Arc<dyn crate::base::clock::Clock>) -> Self {
        self.clock = clock;
        self
    }

    fn db(&self) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        |e| StoreError::Database { path: self.path.clone(), message: e.to_string() }
    }

    /// Stores an account (replacing one of the same app and name). Fields
    /// are checked against the catalog: no unknown field, every secret field
    /// given, and any field a host template uses valid; secret ones are
    /// encrypted.
    pub fn connect_account(
        &mut self,
        catalog: &Catalog,
        app: &str,
        name: &str,
        fields: &[(String, String)],
    ) -> Result<(), StoreError> {
        let known = check_account(catalog, app, name, fields)?;
        let path = self.path.clone();
        let db =
            move |e: rusqlite::Error| StoreError::Database { path: path.clone(), message: e.to_string() };
        let tx = self.conn.transaction().map_err(&db)?;
        tx.execute("DELETE FROM accounts WHERE app = ?1 AND name = ?2", params![app, name]).map_err(&db)?;
        tx.execute(
            "INSERT INTO accounts (app, name, created_ms) VALUES (?1, ?2, ?3)",
            params![app, name, now_ms()],
        )
        .map_err(&db)?;
        let id = tx.last_insert_rowid();
        for (position, (key, value)) in fields.iter().enumerate() {
            let secret = known.field(key).is_some_and(|f| f.secret);
            let (plain, sealed) = if secret {
                (None, Some(self.key.seal(value.as_bytes(), &field_context(app, name, key))))
            } else {
                (Some(value.as_str()), None)
            };
            tx.execute(
                "INSERT INTO account_fields (account_id, position, key, secret, plain, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![id, position as i64, key, secret, plain, sealed],
            )
            .map_err(&db)?;
        }
        tx.commit().map_err(&db)
    }

    /// An account's fields in order, secret values decrypted, for a run.
    /// Marks the account used.
    pub fn account_fields(&self, app: &str, name: &str) -> Result<Vec<StoredField>, StoreError> {
        let db = self.db();
        let id: i64 = self
            .query_row("SELECT id FROM accounts WHERE app = ?1 AND name = ?2", params![app, name], |r| {
                r.get(0)
            })
            .optional()
            .map_err(&db)?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "no `{app}` account named `{name}` (see `stephost accounts list`)"
                ))
            })?;
        let mut statement = self.conn.prepare_cached("SELECT key, secret, plain, sealed FROM account_fields WHERE account_id = ?1 ORDER BY position")
            .map_err(&db)?;
        let rows = statement
            .query_map([id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<Vec<u8>>>(3)?,
                ))
            })
            .map_err(&db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&db)?;
        let mut fields = Vec::with_capacity(rows.len());
        for (key, secret, plain, sealed) in rows {
            let value = match (secret, plain, sealed) {
                (true, _, Some(blob)) => open_text(
                    &self.key,
                    &blob,
                    &field_context(app, name, &key),
                    &format!("{app}/{name} {key}"),
                )?,
                (false, Some(plain), _) => plain,
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "{app}/{name} {key}: the stored field is damaged"
                    )));
                }
            };
            fields.push(StoredField { key, secret, value });
        }
        self.conn
            .execute("UPDATE accounts SET last_used_ms = ?1 WHERE id = ?2", params![now_ms(), id])
            .map_err(&db)?;
        Ok(fields)
    }

    /// Every account, secrets masked.
    pub fn list_accounts(&self) -> Result<Vec<AccountSummary>, StoreError> {
        let db = self.db();
        let mut statement = self.conn.prepare_cached("SELECT id, app, name, created_ms, last_used_ms, expires_ms, status FROM accounts ORDER BY app, name")
            .map_err(&db)?;
        let accounts = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    AccountSummary {
                        app: r.get(1)?,
                        name: r.get(2)?,
                        fields: Vec::new(),
                        created_ms: r.get::<_, i64>(3)? as u64,
                        last_used_ms: r.get::<_, Option<i64>>(4)?.map(|v| v as u64),
                        expires_ms: r.get::<_, Option<i64>>(5)?.map(|v| v as u64),
                        status: r.get(6)?,
                    },
                ))
            })
            .map_err(&db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&db)?;
        let mut out = Vec::with_capacity(accounts.len());
        for (id, mut account) in accounts {
            let mut fields = self
                .conn
                .prepare_cached(
                    "SELECT key, secret, plain FROM account_fields WHERE account_id = ?1 ORDER BY position",
                )
                .map_err(&db)?;
            account.fields = fields
                .query_map([id], |r| {
                    let secret: bool = r.get(1)?;
                    let shown = if secret {
                        "••••••••".to_string()
                    } else {
                        r.get::<_, Option<String>>(2)?.unwrap_or_default()
                    };
                    Ok((r.get::<_, String>(0)?, shown))
                })
                .map_err(&db)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(&db)?;
            out.push(account);
        }
        Ok(out)
    }

    /// Records how an account refreshes its token, and when its access
    /// token expires.
    pub fn set_oauth(&self, app: &str, name: &str, oauth: &OAuthState) -> Result<(), StoreError> {
        let id = self.account_id(app, name)?;
        let seal = |value: &Option<String>, what: &str| {
            value.as_ref().map(|v| self.key.seal(v.as_bytes(), &oauth_context(app, name, what)))
        };
        let db = self.db();
        self.conn
            .execute(
                "INSERT OR REPLACE INTO account_oauth (account_id, token_url, client_id, client_secret, refresh_token) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, oauth.token_url, oauth.client_id, seal(&oauth.client_secret, "client_secret"), seal(&oauth.refresh_token, "refresh_token")],
            )
            .map_err(&db)?;
        self.conn
            .execute(
                "UPDATE accounts SET expires_ms = ?1 WHERE id = ?2",
                params![oauth.expires_ms.map(|v| v as i64), id],
            )
            .map_err(&db)?;
        Ok(())
    }

    /// How an account refreshes its token, if it is an OAuth account.
    pub fn oauth(&self, app: &str, name: &str) -> Result<Option<OAuthState>, StoreError> {
        let id = self.account_id(app, name)?;
        let db = self.db();
        let row = self.query_row(
                "SELECT o.token_url, o.client_id, o.client_secret, o.refresh_token, a.expires_ms FROM account_oauth o JOIN accounts a ON a.id = o.account_id WHERE o.account_id = ?1",
                [id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<Vec<u8>>>(2)?, r.get::<_, Option<Vec<u8>>>(3)?, r.get::<_, Option<i64>>(4)?)),
            )
            .optional()
            .map_err(&db)?;
        let Some((token_url, client_id, secret, refresh, expires)) = row else { return Ok(None) };
        let open = |blob: Option<Vec<u8>>, what: &str| -> Result<Option<String>, StoreError> {
            blob.map(|b| {
                let bytes = self.key.open(&b, &oauth_context(app, name, what))?;
                String::from_utf8(bytes)
                    .map_err(|_| StoreError::Invalid(format!("{app}/{name}: {what} is not UTF-8")))
            })
            .transpose()
        };
        Ok(Some(OAuthState {
            token_url,
            client_id,
            client_secret: open(secret, "client_secret")?,
            refresh_token: open(refresh, "refresh_token")?,
            expires_ms: expires.map(|v| v as u64),
        }))
    }

    /// Stores a refreshed access token (and a rotated refresh token) with
    /// its expiry, all at once, and marks the account ok.
    pub fn update_tokens(
        &mut self,
        app: &str,
        name: &str,
        access_token: &str,
        refresh_token: Option<&str>,
        expires_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let id = self.account_id(app, name)?;
        let access = self.key.seal(access_token.as_bytes(), &field_context(app, name, "oauth_access_token"));
        let refresh =
            refresh_token.map(|t| self.key.seal(t.as_bytes(), &oauth_context(app, name, "refresh_token")));
        let path = self.path.clone();
        let db =
            move |e: rusqlite::Error| StoreError::Database { path: path.clone(), message: e.to_string() };
        let tx = self.conn.transaction().map_err(&db)?;
        tx.execute(
            "UPDATE account_fields SET sealed = ?1 WHERE account_id = ?2 AND key = 'oauth_access_token'",
            params![access, id],
        )
        .map_err(&db)?;
        if let Some(refresh) = refresh {
            tx.execute(
                "UPDATE account_oauth SET refresh_token = ?1 WHERE account_id = ?2",
                params![refresh, id],
            )
            .map_err(&db)?;
        }
        tx.execute(
            "UPDATE accounts SET expires_ms = ?1, status = 'ok' WHERE id = ?2",
            params![expires_ms.map(|v| v as i64), id],
        )
        .map_err(&db)?;
        tx.commit().map_err(&db)
    }

    /// Marks an account, e.g. `refresh failed: …` (shown by `accounts list`).
    pub fn set_status(&self, app: &str, name: &str, status: &str) -> Result<(), StoreError> {
        let id = self.account_id(app, name)?;
        self.conn
            .execute("UPDATE accounts SET status = ?1 WHERE id = ?2", params![status, id])
            .map_err(self.db())?;
        Ok(())
    }

    fn account_id(&self, app: &str, name: &str) -> Result<i64, StoreError> {
        self.query_row("SELECT id FROM accounts WHERE app = ?1 AND name = ?2", params![app, name], |r| {
            r.get(0)
        })
        .optional()
        .map_err(self.db())?
        .ok_or_else(|| {
            StoreError::NotFound(format!("no `{app}` account named `{name}` (see `stephost accounts list`)"))
        })
    }

    /// Removes an account; an error if there is none.
    pub fn remove_account(&self, app: &str, name: &str) -> Result<(), StoreError> {
        let removed = self
            .conn
            .execute("DELETE FROM accounts WHERE app = ?1 AND name = ?2", params![app, name])
            .map_err(self.db())?;
        if removed == 0 {
            return Err(StoreError::NotFound(format!("no `{app}` account named `{name}`")));
        }
        Ok(())
    }

    /// Sets an environment variable, global or for one workflow.
    pub fn set_env(
        &self,
        name: &str,
        value: &str,
        secret: bool,
        workflow: Option<&str>,
    ) -> Result<(), StoreError> {
        let (scope, plain, sealed) = stored_env(&self.key, name, value, secret, workflow)?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO env (workflow, name, secret, plain, sealed, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![scope, name, secret, plain, sealed, now_ms()],
            )
            .map_err(self.db())?;
        Ok(())
    }

    /// Removes an environment variable; an error if there is none.
    pub fn unset_env(&self, name: &str, workflow: Option<&str>) -> Result<(), StoreError> {
        let removed = self
            .conn
            .execute(
                "DELETE FROM env WHERE workflow = ?1 AND name = ?2",
                params![workflow.unwrap_or(""), name],
            )
            .map_err(self.db())?;
        if removed == 0 {
            return Err(StoreError::NotFound(format!("no environment variable {name}")));
        }
        Ok(())
    }

    /// Every environment variable, secret values masked.
    pub fn list_env(&self) -> Result<Vec<EnvSummary>, StoreError> {
        let db = self.db();
        let mut statement = self
            .conn
            .prepare_cached("SELECT workflow, name, secret, plain FROM env ORDER BY workflow, name")
            .map_err(&db)?;
        statement
            .query_map([], |r| {
                let workflow: String = r.get(0)?;
                let secret: bool = r.get(2)?;
                Ok(EnvSummary {
                    name: r.get(1)?,
                    workflow: (!workflow.is_empty()).then_some(workflow),
                    secret,
                    shown: if secret {
                        "••••••••".into()
                    } else {
                        r.get::<_, Option<String>>(3)?.unwrap_or_default()
                    },
                })
            })
            .map_err(&db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&db)
    }

    /// The environment of a step of `workflow` (`None`: a lone step):
    /// global variables, overridden by the workflow's.
    pub fn env_for(&self, workflow: Option<&str>) -> Result<StoredEnv, StoreError> {
        let rows = self.sealed_env_for(workflow)?;
        self.open_env(&rows)
    }

    /// Opens the rows [`Store::sealed_env_for`] read: the environment.
    pub fn open_env(&self, rows: &[EnvRead]) -> Result<StoredEnv, StoreError> {
        merge_env(&self.key, rows.iter().cloned())
    }

    /// The rows behind [`Store::env_for`] as stored, secret values sealed:
    /// what may be kept in memory.
    pub fn sealed_env_for(&self, workflow: Option<&str>) -> Result<Vec<EnvRead>, StoreError> {
        let db = self.db();
        let mut statement = self.conn.prepare_cached("SELECT workflow, name, secret, plain, sealed FROM env WHERE workflow = '' OR workflow = ?1 ORDER BY workflow = '' DESC, name")
            .map_err(&db)?;
        statement
            .query_map([workflow.unwrap_or("")], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, Option<Vec<u8>>>(4)?,
                ))
            })
            .map_err(&db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(&db)
    }

    /// Changes when another connection (another process: the CLI beside
    /// `serve`) commits; this connection's own commits leave it.
    pub fn data_version(&self) -> Result<i64, StoreError> {
        self.query_row("PRAGMA data_version", [], |r| r.get(0)).map_err(self.db())
    }

    /// A value of the store's own settings.
    pub fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.db())
    }

    /// Sets one of the store's own settings.
    pub fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.conn
            .execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])
            .map_err(self.db())?;
        Ok(())
    }

    /// Stores a setting unless it has a value already; what is stored.
    pub fn init_meta(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.conn
            .execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?1, ?2)", params![key, value])
            .map_err(self.db())?;
        self.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).map_err(self.db())
    }

    /// Another connection to the same database, going by the same clock.
    pub fn reopen(&self) -> Result<Store, StoreError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        Ok(Store::open(dir)?.with_clock(self.clock.clone()))
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Applies the migrations not yet applied, in one write transaction that
/// reads the version inside it: processes opening a fresh data directory at
/// once wait for each other instead of both applying migration 1.
fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let applied: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (i, migration) in MIGRATIONS.iter().enumerate().skip(applied as usize) {
        tx.execute_batch(migration)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()
}

/// Environment variable names: letters, digits, underscores, not starting
/// with a digit; the `STEPHOST_` prefix is the host's.
pub fn check_env_name(name: &str) -> Result<(), StoreError> {
    let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(StoreError::Invalid(format!(
            "`{name}` is not a valid environment variable name (letters, digits, underscores)"
        )));
    }
    if name.to_ascii_uppercase().starts_with("STEPHOST_") {
        return Err(StoreError::Invalid(format!("`{name}`: the STEPHOST_ prefix is reserved")));
    }
    Ok(())
}

/// Checks an account before it is stored: a known app, a valid name, no
/// unknown field, every secret field given and any field a host template
/// uses valid. The app's description.
pub(super) fn check_account<'c>(
    catalog: &'c Catalog,
    app: &str,
    name: &str,
    fields: &[(String, String)],
) -> Result<&'c crate::catalog::App, StoreError> {
    let known = catalog.require(app).map_err(|e| StoreError::NotFound(e.to_string()))?;
    if !crate::base::names::is_valid_name(name) {
        return Err(StoreError::Invalid(format!(
            "account name `{name}` must be letters, digits and underscores"
        )));
    }
    for (key, _) in fields {
        known.require_field(key).map_err(|e| StoreError::Invalid(e.to_string()))?;
    }
    known.hosts_for(fields).map_err(StoreError::Invalid)?;
    if let Some(missing) = known.fields.iter().find(|f| f.secret && !fields.iter().any(|(k, _)| *k == f.name))
    {
        return Err(StoreError::Invalid(format!("app `{app}` needs its secret field `{}`", missing.name)));
    }
    Ok(known)
}

/// What an account field's ciphertext is bound to.
pub(super) fn field_context(app: &str, name: &str, key: &str) -> String {
    format!("account {app}/{name} field {key}")
}

/// What an environment variable's ciphertext is bound to.
pub(super) fn env_context(workflow: &str, name: &str) -> String {
    format!("env {workflow}/{name}")
}

/// What an account's OAuth secret (client secret, refresh token) is bound to.
pub(super) fn oauth_context(app: &str, name: &str, what: &str) -> String {
    format!("account {app}/{name} oauth {what}")
}

/// One `env` row as both backends read it: scope (`''` global, else the
/// workflow), name, whether it is secret, its plain value, its sealed one.
pub(super) type EnvRead = (String, String, bool, Option<String>, Option<Vec<u8>>);

/// A step's environment from its `env` rows, globals first: secret values
/// opened under `key`, a workflow's variable replacing the global of the
/// same name; split into (plain, secret) name/value pairs.
pub(super) fn merge_env(
    key: &MasterKey,
    rows: impl IntoIterator<Item = EnvRead>,
) -> Result<StoredEnv, StoreError> {
    let mut merged: Vec<(String, bool, String)> = Vec::new();
    for (scope, name, secret, plain, sealed) in rows {
        let value = match (secret, plain, sealed) {
            (true, _, Some(blob)) => open_text(key, &blob, &env_context(&scope, &name), &name)?,
            (false, Some(plain), _) => plain,
            _ => return Err(StoreError::Invalid(format!("environment variable {name} is damaged"))),
        };
        merged.retain(|(n, _, _)| *n != name);
        merged.push((name, secret, value));
    }
    let (secret, plain): (Vec<_>, Vec<_>) = merged.into_iter().partition(|(_, secret, _)| *secret);
    Ok((
        plain.into_iter().map(|(n, _, v)| (n, v)).collect(),
        secret.into_iter().map(|(n, _, v)| (n, v)).collect(),
    ))
}

/// Opens a sealed value as text; `what` names it in the error.
pub(super) fn open_text(
    key: &MasterKey,
    blob: &[u8],
    context: &str,
    what: &str,
) -> Result<String, StoreError> {
    String::from_utf8(key.open(blob, context)?).map_err(|_| StoreError::Invalid(format!("{what}: not UTF-8")))
}

/// An environment variable's row as every backend stores it: its scope
/// (`""` for global), and its value in clear or sealed.
pub(super) type EnvRow<'v> = (&'v str, Option<&'v str>, Option<Vec<u8>>);

/// An environment variable as every backend stores it, checked, the value
/// sealed under `key` when it is secret.
pub(super) fn stored_env<'v>(
    key: &MasterKey,
    name: &str,
    value: &'v str,
    secret: bool,
    workflow: Option<&'v str>,
) -> Result<EnvRow<'v>, StoreError> {
    check_env_name(name)?;
    if value.len() > MAX_ENV_VALUE {
        return Err(StoreError::Invalid(format!(
            "the value of {name} is {} bytes; values are at most 64 KiB",
            value.len()
        )));
    }
    let scope = workflow.unwrap_or("");
    Ok(if secret {
        (scope, None, Some(key.seal(value.as_bytes(), &env_context(scope, name))))
    } else {
        (scope, Some(value), None)
    })
}

pub use crate::base::clock::now_ms;

#[cfg(test)]
mod tests {

    #[test]
    fn processes_opening_a_fresh_data_directory_at_once_all_get_the_store() {
        for _ in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
            let openers: Vec<_> = (0..8)
                .map(|_| {
                    let (dir, barrier) = (dir.path().to_path_buf(), barrier.clone());
                    std::thread::spawn(move || {
                        barrier.wait();
                        Store::open(&dir).map(|_| ()).map_err(|e| e.to_string())
                    })
                })
                .collect();
            for opener in openers {
                opener.join().unwrap().unwrap();
            }
            let store = Store::open(dir.path()).unwrap();
            let version: i64 = store.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            assert_eq!(version as usize, MIGRATIONS.len());
        }
    }

    use super::*;

    fn slack_fields(token: &str) -> Vec<(String, String)> {
        vec![("oauth_access_token".into(), token.into()), ("oauth_uid".into(), "U1".into())]
    }

    #[test]
    fn accounts_round_trip_with_secrets_encrypted_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::builtin();
        let mut store = Store::open(dir.path()).unwrap();
        store.connect_account(&catalog, "slack", "work", &slack_fields("xoxb-very-secret-value")).unwrap();
        let fields = store.account_fields("slack", "work").unwrap();
        assert_eq!(fields[0].value, "xoxb-very-secret-value");
        assert!(fields[0].secret && !fields[1].secret);
        assert!(!format!("{fields:?}").contains("very-secret"));
        let listed = store.list_accounts().unwrap();
        assert_eq!(
            listed[0].fields,
            [("oauth_access_token".into(), "••••••••".into()), ("oauth_uid".into(), "U1".into())]
        );
        assert!(listed[0].last_used_ms.is_some());
        store.set_env("API_KEY", "env-very-secret-value", true, None).unwrap();
        drop(store);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let bytes = std::fs::read(entry.unwrap().path()).unwrap();
            for secret in [&b"xoxb-very-secret-value"[..], b"env-very-secret-value"] {
                assert!(!bytes.windows(secret.len()).any(|w| w == secret), "a secret is in clear on disk");
            }
        }
    }

    #[test]
    fn a_wrong_master_key_is_refused_at_open() {
        let dir = tempfile::tempdir().unwrap();
        Store::open(dir.path()).unwrap();
        std::fs::write(dir.path().join(KEY_FILE), hex::encode([9u8; 32])).unwrap();
        let err = Store::open(dir.path()).err().unwrap().to_string();
        assert!(err.contains("wrong master key"), "{err}");
    }

    #[test]
    fn bad_accounts_and_env_names_are_refused_with_reasons() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = Catalog::builtin();
        let mut store = Store::open(dir.path()).unwrap();
        let cases = [
            store.connect_account(&catalog, "nope", "a", &[]).unwrap_err().to_string(),
            store.connect_account(&catalog, "slack", "a b", &slack_fields("t")).unwrap_err().to_string(),
            store
                .connect_account(&catalog, "slack", "a", &[("oauth_uid".into(), "U".into())])
                .unwrap_err()
                .to_string(),
            store
                .connect_account(&catalog, "slack", "a", &[("bogus".into(), "U".into())])
                .unwrap_err()
                .to_string(),
            store.set_env("STEPHOST_X", "v", true, None).unwrap_err().to_string(),
            store.set_env("1X", "v", true, None).unwrap_err().to_string(),
            store.set_env("BIG", &"x".repeat(MAX_ENV_VALUE + 1), true, None).unwrap_err().to_string(),
            store.remove_account("slack", "missing").unwrap_err().to_string(),
        ];
        let expected = [
            "not in the app catalog",
            "account name",
            "needs its secret field `oauth_access_token`",
            "no field `bogus`",
            "reserved",
            "not a valid",
            "64 KiB",
            "no `slack` account named `missing`",
        ];
        for (got, want) in cases.iter().zip(expected) {
            assert!(got.contains(want), "{got} should mention {want}");
        }
    }

    #[test]
    fn workflow_env_overrides_global_env() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set_env("CHANNEL", "#general", false, None).unwrap();
        store.set_env("CHANNEL", "#alerts", false, Some("alerts")).unwrap();
        store.set_env("TOKEN", "s3cret", true, None).unwrap();
        assert_eq!(store.env_for(None).unwrap().0, [("CHANNEL".into(), "#general".into())]);
        let (plain, secret) = store.env_for(Some("alerts")).unwrap();
        assert_eq!(plain, [("CHANNEL".into(), "#alerts".into())]);
        assert_eq!(secret, [("TOKEN".into(), "s3cret".into())]);
        assert_eq!(store.list_env().unwrap().iter().find(|e| e.secret).unwrap().shown, "••••••••");
    }
}
