//! What every command needs from its surroundings: the data directory and
//! the store (SQLite in it, or a shared PostgreSQL database), a runtime with
//! the egress flags applied, the app catalog, the event, the service API,
//! and OAuth tokens refreshed before a run.

use super::api::Api;
use super::args::{EgressArgs, EventArgs, ServerArgs};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stephost::audit::{AuditKey, AuditLog, AuditSink};
use stephost::store::crypto::{MASTER_KEY_ENV, MasterKey};
use stephost::store::{Backend, Postgres, Sqlite};
use stephost::workflow::oauth::AccountRefresher;
use stephost::{Catalog, Runtime, RuntimeConfig};

/// Where a command's data lives: the node-local data directory (caches,
/// master key, serve lock) and, with `--database`, the shared database that
/// then holds everything stored instead of the directory's SQLite file.
pub struct Storage {
    /// `--data` (or the platform's default).
    pub data: PathBuf,
    /// `--database`, a `postgres://` or `postgresql://` URL; `None` for SQLite.
    pub database: Option<String>,
}

impl Storage {
    /// From the global flags: an empty `--database` is not set, and a URL of
    /// another scheme is refused in one line that never echoes the URL
    /// (it may hold a password).
    pub fn new(data: PathBuf, database: Option<String>) -> Result<Self> {
        let database = database.filter(|url| !url.is_empty());
        if let Some(url) = &database {
            match url.split_once("://").map(|(scheme, _)| scheme) {
                Some("postgres" | "postgresql") => {}
                Some(scheme)
                    if scheme.len() <= 16
                        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') =>
                {
                    bail!("--database: a {scheme}:// URL is not supported: give postgres://USER@HOST:PORT/DB")
                }
                _ => bail!("--database: expected a postgres:// or postgresql:// URL"),
            }
        }
        Ok(Self { data, database })
    }

    /// Just the data directory, SQLite in it (commands that have no
    /// `--database` meaning).
    pub fn local(data: &Path) -> Self {
        Self { data: data.to_path_buf(), database: None }
    }
}

/// The store every command reads and writes through: the data directory's
/// SQLite, or the shared PostgreSQL database checked against this node's
/// master key (a wrong key fails here, before anything is bound or
/// printed). A node without any key does not make a new one for a database
/// that already has one: it is told to use the other nodes' key.
pub async fn backend(storage: &Storage) -> Result<Arc<dyn Backend>> {
    let Some(url) = &storage.database else {
        return Ok(Arc::new(Sqlite::open(&storage.data)?));
    };
    let key_file = storage.data.join(stephost::store::KEY_FILE);
    let key = match MasterKey::load_existing(&key_file)? {
        Some(key) => key,
        None if Postgres::is_keyed(url).await? => bail!(
            "database {} was set up with a master key: set {MASTER_KEY_ENV} (or copy master.key) as on the other nodes",
            Postgres::name_of(url)
        ),
        None => MasterKey::load(&key_file)?,
    };
    let store = Postgres::connect(url, key, Arc::new(stephost::base::clock::SystemClock)).await?;
    Ok(Arc::new(store))
}

/// Where the runtime's audit records go: the data directory's keyed JSONL
/// log, or with `--database` the one chain all nodes share in the database.
pub fn audit_sink(storage: &Storage) -> Result<Arc<dyn AuditSink>> {
    match &storage.database {
        None => Ok(Arc::new(audit_log(&storage.data)?)),
        // One chain for every node, in the database (its schema and the
        // key check are done: `backend` ran first).
        Some(url) => Ok(Arc::new(stephost::store::PgAudit::open(url, audit_key(&storage.data)?)?)),
    }
}

/// `--data`, else the platform's data directory.
pub fn data_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    match flag {
        // An empty STEPHOST_DATA= means "not set".
        Some(dir) if !dir.as_os_str().is_empty() => Ok(dir),
        _ => dirs::data_local_dir()
            .map(|d| d.join("stephost"))
            .ok_or_else(|| anyhow!("no home directory: pass --data DIR or set STEPHOST_DATA")),
    }
}

/// The app catalog as the CLI sees it: built-in apps plus `<data>/apps`.
pub fn catalog(data_dir: &Path) -> Result<Catalog> {
    Ok(Catalog::with_dir(&data_dir.join("apps"))?)
}

/// A runtime caching components in the data directory and auditing into
/// [`audit_sink`].
pub fn runtime(storage: &Storage, egress: &EgressArgs) -> Result<Runtime> {
    runtime_with(&storage.data, egress, audit_sink(storage)?)
}

/// A runtime caching components in the data directory, auditing into `audit`.
pub fn runtime_with(data_dir: &Path, egress: &EgressArgs, audit: Arc<dyn AuditSink>) -> Result<Runtime> {
    let mut config = RuntimeConfig {
        cache_dir: Some(data_dir.join("components")),
        catalog: Arc::new(catalog(data_dir)?),
        audit: Some(audit),
        ..RuntimeConfig::default()
    };
    for spec in &egress.resolve {
        config.egress.resolve.push(parse_resolve(spec)?);
    }
    for path in &egress.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("--ca-cert {}", path.display()))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            bail!("--ca-cert {}: not a PEM certificate (no BEGIN CERTIFICATE block)", path.display());
        }
        config.egress.extra_root_certs_pem.push(pem);
    }
    Ok(Runtime::new(config)?)
}

/// The audit log's file in the data directory.
pub fn audit_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit.jsonl")
}

/// The key the audit chain is made with, derived from the master key
/// (`STEPHOST_MASTER_KEY` or `<data>/master.key`, created on first use).
pub fn audit_key(data_dir: &Path) -> Result<AuditKey> {
    let key = MasterKey::load(&data_dir.join(stephost::store::KEY_FILE))?;
    Ok(key.audit_key())
}

/// The data directory's audit log, keyed, shared by every process that
/// writes to it.
pub fn audit_log(data_dir: &Path) -> Result<AuditLog> {
    Ok(AuditLog::open(&audit_path(data_dir), audit_key(data_dir)?)?)
}

/// `HOST:PORT:ADDR`, ADDR an IP (`[v6]` too) optionally with its own port
/// (`slack.com:443:127.0.0.1:8443` reaches a stand-in on another port).
fn parse_resolve(spec: &str) -> Result<(String, u16, SocketAddr)> {
    let bad = || anyhow!("--resolve {spec}: expected HOST:PORT:ADDR, e.g. slack.com:443:127.0.0.1");
    let (host, rest) = spec.split_once(':').ok_or_else(bad)?;
    let (port, addr) = rest.split_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let socket = match addr.parse::<SocketAddr>() {
        Ok(socket) => socket,
        Err(_) => {
            let ip = addr.trim_start_matches('[').trim_end_matches(']');
            (ip, port).to_socket_addrs().map_err(|_| bad())?.next().ok_or_else(bad)?
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_ascii_lowercase(), port, socket))
}

/// The `--event` file (or stdin), `{}` without one.
pub fn read_event(args: &EventArgs) -> Result<Value> {
    let Some(path) = &args.event else { return Ok(Value::Object(Default::default())) };
    let (text, name) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading the event from stdin")?;
        (text, "stdin".to_string())
    } else {
        let text = std::fs::read_to_string(path).with_context(|| format!("event file {}", path.display()))?;
        (text, path.display().to_string())
    };
    serde_json::from_str(&text).with_context(|| format!("the event in {name} is not valid JSON"))
}

/// The API the service commands talk to: `--server`, or the local store
/// (the data directory, or `--database`) in this process.
pub async fn service_api(storage: &Storage, server: &ServerArgs) -> Result<Api> {
    Api::open(server, storage).await
}

/// The step's name in messages: the file stem, made a valid name.
pub fn step_name(component: &Path) -> String {
    let stem = component.file_stem().map_or("step".into(), |s| s.to_string_lossy().into_owned());
    stem.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Refreshes each named OAuth account whose token is about to expire, and
/// returns the refresher the run's egress calls after a 401.
pub async fn refresh_accounts(
    store: &Arc<dyn Backend>,
    runtime: &Runtime,
    accounts: &[(String, String)],
) -> Result<Arc<AccountRefresher>> {
    let refresher = AccountRefresher::new(store.clone(), runtime);
    refresher.refresh_due(accounts).await?;
    Ok(refresher)
}
