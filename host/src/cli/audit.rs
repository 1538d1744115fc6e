//! `stephost audit verify|list|prune`: check the keyed chain, list who used
//! which secret, drop old records.

use super::args::AuditCommand;
use super::context::{audit_key, audit_log, audit_path};
use super::output;
use super::render::{self, AuditVerdict};
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;
use stephost::audit::{AuditEntry, AuditEvent};

pub fn run(data_dir: &Path, command: AuditCommand) -> Result<ExitCode> {
    let path = audit_path(data_dir);
    match command {
        AuditCommand::Verify { format } => {
            // A broken chain is the answer asked for, so `--json` prints it
            // on stdout; as text it goes to stderr, so it is seen when
            // stdout is piped. Either way the exit code is 1.
            let verdict = match stephost::audit::verify(&path, &audit_key(data_dir)?) {
                Ok(count) => AuditVerdict {
                    path: path.display().to_string(),
                    intact: true,
                    records: Some(count),
                    found: None,
                    problem: None,
                },
                Err(error) if error.found.is_none() => return Err(error.into()),
                Err(error) => AuditVerdict {
                    path: path.display().to_string(),
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
            let pruned = audit_log(data_dir)?.prune(now.saturating_sub(keep_days.saturating_mul(day_ms)))?;
            output::emit(format.json, &pruned, render::audit_pruned)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::List { run, step, app, refused, json } => {
            let entries = stephost::audit::read_entries(&path)?;
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
