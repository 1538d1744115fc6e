//! `stephost audit verify|list|prune`: check the keyed chain, list who used
//! which secret, drop old records.

use super::args::AuditCommand;
use super::context::{audit_key, audit_log, audit_path};
use super::output;
use super::render::{self, AuditVerdict};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use stephost::audit::{AuditEntry, AuditError, AuditEvent, Pruned};
use stephost::store::crypto::MasterKey;
use stephost::store::{PgAudit, Postgres};

/// `database`: the PostgreSQL URL the nodes share (`--database`), whose
/// chain is checked instead of `<data>/audit.jsonl`.
pub async fn run(data_dir: &Path, database: Option<&str>, command: AuditCommand) -> Result<ExitCode> {
    let chain = match database {
        None => Chain::File { data_dir: data_dir.to_path_buf(), path: audit_path(data_dir) },
        Some(url) => Chain::open_database(data_dir, url).await?,
    };
    match command {
        AuditCommand::Verify { format } => {
            // A broken chain is the answer asked for, so `--json` prints it
            // on stdout; as text it goes to stderr, so it is seen when
            // stdout is piped. Either way the exit code is 1.
            let verdict = match chain.verify()? {
                Ok(count) => AuditVerdict {
                    path: chain.name(),
                    intact: true,
                    records: Some(count),
                    found: None,
                    problem: None,
                },
                Err(error) if error.found.is_none() => return Err(error.into()),
                Err(error) => AuditVerdict {
                    path: chain.name(),
                    intact: false,
                    records: None,
                    found: error.found,
                    problem: Some(error.message),
                },
            };
            if verdict.intact || format.json {
                output::emit(format.json, &verdict, render::audit_verdict)?;
            } else {
                eprint!("{}", render::audit_verdict(&verdict));
            }
            Ok(if verdict.intact { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        AuditCommand::Prune { keep_days, format } => {
            let day_ms = 24 * 60 * 60 * 1000;
            let now = stephost::base::clock::now_ms() as u64;
            let pruned = chain.prune(now.saturating_sub(keep_days.saturating_mul(day_ms)))?;
            output::emit(format.json, &pruned, render::audit_pruned)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::List { run, step, app, refused, json } => {
            let entries = chain.entries()?;
            let selected = entries.iter().filter(|e| {
                run.as_ref().is_none_or(|r| &e.run == r)
                    && step.as_ref().is_none_or(|s| &e.step == s)
                    && app.as_ref().is_none_or(|a| mentions_app(e, a))
                    && (!refused || is_refusal(e))
            });
            for entry in selected {
                if json {
                    println!("{}", serde_json::to_string(entry)?);
                } else {
                    println!("{}", render::audit_entry(entry));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The chain a command reads: the data directory's file, or the one in
/// the shared database.
enum Chain {
    File { data_dir: PathBuf, path: PathBuf },
    Database { audit: PgAudit, name: String },
}

impl Chain {
    /// The database's chain, after [`Postgres::connect`] has brought its
    /// schema up to date and checked the master key (`STEPHOST_MASTER_KEY`
    /// or `<data>/master.key`) against the one the nodes share.
    async fn open_database(data_dir: &Path, url: &str) -> Result<Self> {
        let key = MasterKey::load(&data_dir.join(stephost::store::KEY_FILE))?;
        let audit_key = key.audit_key();
        let clock = Arc::new(stephost::base::clock::SystemClock);
        let store = Postgres::connect(url, key, clock).await?;
        let name = store.name().to_string();
        drop(store);
        let audit = PgAudit::open(url, audit_key).with_context(|| format!("audit chain in {name}"))?;
        Ok(Chain::Database { audit, name })
    }

    /// What the verdict names: the file, or the database's URL without
    /// its password.
    fn name(&self) -> String {
        match self {
            Chain::File { path, .. } => path.display().to_string(),
            Chain::Database { name, .. } => name.clone(),
        }
    }

    /// The check's finding inside: the outer error is for a key that cannot
    /// be loaded.
    fn verify(&self) -> Result<Result<usize, AuditError>> {
        Ok(match self {
            Chain::File { data_dir, path } => stephost::audit::verify(path, &audit_key(data_dir)?),
            Chain::Database { audit, .. } => audit.verify(),
        })
    }

    fn entries(&self) -> Result<Vec<AuditEntry>> {
        Ok(match self {
            Chain::File { path, .. } => stephost::audit::read_entries(path)?,
            Chain::Database { audit, .. } => audit.entries()?,
        })
    }

    fn prune(&self, before_ms: u64) -> Result<Pruned> {
        Ok(match self {
            Chain::File { data_dir, .. } => audit_log(data_dir)?.prune(before_ms)?,
            Chain::Database { audit, .. } => audit.prune(before_ms)?,
        })
    }
}

/// Whether a record involves one of `app`'s secrets (`env` for secret
/// environment variables).
fn mentions_app(entry: &AuditEntry, app: &str) -> bool {
    let prefix = format!("{app}.");
    match &entry.event {
        AuditEvent::SecretRead { app: read, .. } | AuditEvent::TokenRefresh { app: read, .. } => read == app,
        AuditEvent::SecretEnv { .. } => app == "env",
        AuditEvent::Checkpoint { .. } | AuditEvent::AnchorLost { .. } => false,
        AuditEvent::Request(r) => {
            r.secrets.iter().any(|s| s.starts_with(&prefix))
                || r.error.as_deref().is_some_and(|e| e.contains(&format!("secret {prefix}")))
        }
    }
}

/// Whether a record is a refused request.
fn is_refusal(entry: &AuditEntry) -> bool {
    matches!(&entry.event, AuditEvent::Request(r) if !r.allowed)
}
