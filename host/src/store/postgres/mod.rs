//! The shared backend: one PostgreSQL database that several `stephost
//! serve` nodes use at once. A pool of connections (deadpool), the schema
//! migrated at connect under an advisory lock, secret values sealed under
//! the master key every node shares, checked at connect.
//!
//! No TLS yet: a URL asking for it (`sslmode=require`) is refused at once.

mod audit;
mod cluster;
mod deploy;
mod listen;
mod queue;
mod schema;
mod secrets;
#[cfg(test)]
pub(crate) mod tests;

pub use audit::PgAudit;

use super::{Signal, StepRecord, StoreError};
use crate::base::clock::Clock;
use crate::store::crypto::MasterKey;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::NoTls;
use tokio_postgres::config::{Host, SslMode};

/// Connections one node keeps open at most.
const POOL_SIZE: usize = 16;

/// Connections one node keeps open at most for its workers' bookkeeping
/// ([`Postgres::bookkeeping`]).
const BOOKKEEPING_POOL_SIZE: usize = 8;

/// How long connecting to the server may take before it is an error.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a caller waits for a free connection of the pool.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// An open PostgreSQL store: what a node reads and writes everything
/// through, secret values sealed under `key`.
pub struct Postgres {
    pool: deadpool_postgres::Pool,
    /// Connections whose commits do not wait for the disk
    /// (`synchronous_commit = off`), for a worker's claims, heartbeats,
    /// progress and ends: a crash can only roll a run back to an earlier
    /// state (then it runs again: at least once, as on SQLite). Accepting
    /// an event, deploying and every other write go through `pool`, whose
    /// commits wait for the disk.
    bookkeeping: deadpool_postgres::Pool,
    /// Kept to seal and open secret values (accounts, env, inline secrets).
    key: MasterKey,
    /// What timestamps and leases go by.
    clock: Arc<dyn Clock>,
    /// The database as errors name it: its URL without the password.
    name: String,
    /// What the listener hears from other nodes; receivers subscribe here.
    signals: broadcast::Sender<Signal>,
    /// The listening task, ended when the store is dropped.
    _listener: listen::Listener,
}

impl std::fmt::Debug for Postgres {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Postgres({})", self.name)
    }
}

impl Postgres {
    /// Connects to the database at `url` (`postgres://user:password@host:port/db`),
    /// brings its schema up to date (nodes starting together take turns)
    /// and checks `key` against the one the database was set up with: a
    /// node with another master key is refused with one line
    /// ([`KeyError::WrongKey`](crate::store::crypto::KeyError::WrongKey)).
    /// Once it returns, it listens for the other nodes' signals (on a
    /// connection of its own, reconnecting when lost) until dropped.
    /// Errors name the database by its URL without the password.
    pub async fn connect(url: &str, key: MasterKey, clock: Arc<dyn Clock>) -> Result<Self, StoreError> {
        let (config, name) = parse_url(url)?;
        let listen_config = listen::config(&config);
        let mut unsynced = config.clone();
        let options = unsynced.get_options().map(|o| format!("{o} ")).unwrap_or_default();
        unsynced.options(format!("{options}-c synchronous_commit=off"));
        let pool = new_pool(config, POOL_SIZE, &name)?;
        let bookkeeping = new_pool(unsynced, BOOKKEEPING_POOL_SIZE, &name)?;
        {
            let mut client = pool_client(&pool, &name).await?;
            schema::migrate(&mut client, &name, clock.now_ms()).await?;
        }
        // Listening before anything is returned: no signal sent after this
        // can be missed.
        let (signals, _) = broadcast::channel(listen::CAPACITY);
        let first = listen::open(&listen_config, &name, &signals).await?;
        let listener = listen::spawn(first, listen_config, name.clone(), signals.clone());
        let store = Self { pool, bookkeeping, key, clock, name, signals, _listener: listener };
        schema::check_key(&store, &store.key).await?;
        Ok(store)
    }

    /// Whether the database at `url` was set up with a master key already
    /// (another node made its key check), asked without a key and writing
    /// nothing: a node with no key of its own must not make a new one for a
    /// keyed database. A new database (no schema yet) is not keyed.
    pub async fn is_keyed(url: &str) -> Result<bool, StoreError> {
        let (config, name) = parse_url(url)?;
        let failed = |e| db_error(&name, e);
        let (client, connection) = config.connect(NoTls).await.map_err(failed)?;
        let connection = tokio::spawn(connection);
        let has_meta: bool =
            client.query_one("SELECT to_regclass('meta') IS NOT NULL", &[]).await.map_err(failed)?.get(0);
        let keyed = has_meta
            && client
                .query_one("SELECT EXISTS (SELECT 1 FROM meta WHERE key = 'key_check')", &[])
                .await
                .map_err(failed)?
                .get::<_, bool>(0);
        drop(client);
        let _ = connection.await;
        Ok(keyed)
    }

    /// The database at `url` as messages name it: its URL without the
    /// password (or a placeholder for a URL that does not parse).
    pub fn name_of(url: &str) -> String {
        url.parse::<tokio_postgres::Config>().map_or_else(|_| "(unparsable URL)".into(), |c| redacted(&c))
    }

    /// The store going by `clock` for timestamps and leases, so a test can
    /// let a lease expire by moving a [`ManualClock`](crate::base::clock::ManualClock).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The database as messages name it: its URL without the password.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection from the pool (returned to it when dropped).
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        pool_client(&self.pool, &self.name).await
    }

    /// A connection for a worker's bookkeeping, whose commits do not wait
    /// for the disk ([`Postgres::bookkeeping`]).
    async fn bookkeeping_client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        pool_client(&self.bookkeeping, &self.name).await
    }

    /// `sql` prepared once per pooled connection and kept there: each later
    /// use is one round trip instead of two (prepare, then run), planned
    /// once. For the fixed statements of the trigger and run path only:
    /// every distinct text stays in each connection's cache.
    async fn prepared(
        &self,
        client: &deadpool_postgres::Object,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, StoreError> {
        client.prepare_cached(sql).await.map_err(self.db())
    }

    /// Maps a query's error to the store's, naming this database.
    fn db(&self) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
        |e| db_error(&self.name, e)
    }

    /// Stores `value` under `key` unless the key has a value already, and
    /// returns what is stored: of several nodes setting the same thing at
    /// once (the key check, the API token's hash), the first wins and all
    /// see its value.
    pub async fn init_meta(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        let client = self.client().await?;
        let db = self.db();
        client
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .await
            .map_err(&db)?;
        // A new statement: it sees the row of a node that inserted first.
        let row = client.query_one("SELECT value FROM meta WHERE key = $1", &[&key]).await.map_err(&db)?;
        Ok(row.get(0))
    }
}

/// A pool of at most `size` connections made with `config`.
fn new_pool(
    config: tokio_postgres::Config,
    size: usize,
    name: &str,
) -> Result<deadpool_postgres::Pool, StoreError> {
    let manager = deadpool_postgres::Manager::from_config(
        config,
        NoTls,
        deadpool_postgres::ManagerConfig { recycling_method: deadpool_postgres::RecyclingMethod::Fast },
    );
    deadpool_postgres::Pool::builder(manager)
        .max_size(size)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Database { path: name.into(), message: e.to_string() })
}

/// A connection from `pool`, errors naming the database as `name`.
async fn pool_client(
    pool: &deadpool_postgres::Pool,
    name: &str,
) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Backend(e) => db_error(name, e),
        other => StoreError::Database { path: name.into(), message: other.to_string() },
    })
}

/// A `steps` row (id, size, uploaded_ms, name) as a record, its users not
/// yet filled in.
pub(super) fn step_record(row: &tokio_postgres::Row) -> StepRecord {
    StepRecord {
        id: row.get(0),
        size: row.get::<_, i64>(1) as u64,
        uploaded_ms: row.get::<_, i64>(2) as u64,
        name: row.get(3),
        used_by: Vec::new(),
    }
}

#[async_trait::async_trait]
impl super::Settings for Postgres {
    async fn meta(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row =
            client.query_opt("SELECT value FROM meta WHERE key = $1", &[&key]).await.map_err(self.db())?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn init_meta(&self, key: &str, value: &[u8]) -> Result<Vec<u8>, StoreError> {
        Postgres::init_meta(self, key, value).await
    }

    async fn set_meta(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                &[&key, &value],
            )
            .await
            .map_err(self.db())?;
        Ok(())
    }
}

/// A database URL read as a connection's settings and the database's name
/// for messages (no password): a URL asking for TLS is refused (not
/// supported yet), and connecting gets a time limit unless it has one.
pub(super) fn parse_url(url: &str) -> Result<(tokio_postgres::Config, String), StoreError> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
        let why = std::error::Error::source(&e).map(|s| format!(" ({s})")).unwrap_or_default();
        StoreError::Database {
            path: "the database URL".into(),
            message: format!("not a PostgreSQL URL{why}"),
        }
    })?;
    let name = redacted(&config);
    if config.get_ssl_mode() == SslMode::Require {
        return Err(StoreError::Database {
            path: name.into(),
            message: "sslmode=require: TLS to PostgreSQL is not supported yet".into(),
        });
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok((config, name))
}

/// The database as messages name it: `postgres://user@host:port/db`, built
/// from the parsed parts, so the password can never be in it.
fn redacted(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config.get_ports().get(i).or(config.get_ports().first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                #[cfg(unix)]
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let user = config.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    format!("postgres://{user}{}/{}", hosts.join(","), config.get_dbname().unwrap_or(""))
}

/// One line for a PostgreSQL error, naming the database: the server's
/// message without its DETAIL (which can quote a row's values), or the
/// client's reason and its cause (e.g. "connection refused").
fn db_error(name: &str, error: tokio_postgres::Error) -> StoreError {
    StoreError::Database { path: name.into(), message: db_message(&error) }
}

/// The one line [`db_error`] gives for `error`, without the database.
fn db_message(error: &tokio_postgres::Error) -> String {
    let message = match error.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => match std::error::Error::source(error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        },
    };
    message.replace('\n', " ")
}
