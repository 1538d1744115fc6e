//! `stephost audit verify|list`: check the hash chain and list who used
//! which secret.

use super::args::AuditCommand;
use super::output;
use super::render::{self, AuditVerdict};
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;
use stephost::audit::{AuditEntry, AuditEvent};

pub fn run(data_dir: &Path, command: AuditCommand) -> Result<ExitCode> {
    let path = data_dir.join("audit.jsonl");
    match command {
        AuditCommand::Verify { format } => {
            // A broken chain is the answer asked for, so `--json` prints it
            // on stdout; as text it goes to stderr, as before, so it is seen
            // when stdout is piped. Either way the exit code is 1.
            let verdict = match stephost::audit::verify(&path) {
                Ok(count) => AuditVerdict {
                    path: path.display().to_string(),
                    intact: true,
                    records: Some(count),
                    problem: None,
                },
                Err(error) => AuditVerdict {
                    path: path.display().to_string(),
                    intact: false,
                    records: None,
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

/// Whether a record involves one of `app`'s secrets.
fn mentions_app(entry: &AuditEntry, app: &str) -> bool {
    let prefix = format!("{app}.");
    match &entry.event {
        AuditEvent::SecretRead { app: read, .. } | AuditEvent::TokenRefresh { app: read, .. } => read == app,
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
