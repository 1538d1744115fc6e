//! `stephost audit`: check the hash chain and list who used which secret.

use anyhow::Result;
use clap::Subcommand;
use std::path::Path;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain: finds any edited, removed or reordered line.
    Verify,
    /// List audit records, newest last.
    List {
        /// Only this run.
        #[arg(long)]
        run: Option<String>,
        /// Only this step.
        #[arg(long)]
        step: Option<String>,
        /// Only requests that swapped in, or reads of, this app's secrets.
        #[arg(long)]
        app: Option<String>,
        /// Only refused requests.
        #[arg(long)]
        refused: bool,
        /// Print JSON lines instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs an `audit` command on the data directory's log.
pub fn audit(data_dir: &Path, command: AuditCommand) -> Result<ExitCode> {
    let path = data_dir.join("audit.jsonl");
    match command {
        AuditCommand::Verify => match stephost::audit::verify(&path) {
            Ok(count) => {
                println!("{}: {count} records, hash chain intact", path.display());
                Ok(ExitCode::SUCCESS)
            }
            Err(error) => {
                eprintln!("error: {error}");
                Ok(ExitCode::from(1))
            }
        },
        AuditCommand::List { run, step, app, refused, json } => {
            let entries = stephost::audit::read_entries(&path)?;
            let selected = entries.iter().filter(|e| {
                run.as_ref().is_none_or(|r| &e.run == r)
                    && step.as_ref().is_none_or(|s| &e.step == s)
                    && app.as_ref().is_none_or(|a| super::audit_mentions_app(e, a))
                    && (!refused || super::audit_is_refusal(e))
            });
            for entry in selected {
                if json {
                    println!("{}", serde_json::to_string(entry)?);
                } else {
                    println!("{}", super::render_audit(entry));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
