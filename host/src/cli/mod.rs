//! What the `stephost` command prints: text for people, `--json` for
//! scripts.

pub mod audit;
pub mod manage;
pub mod oauth;
pub mod serve;
pub mod service;

use anyhow::Result;
use std::fmt::Write as _;
use std::time::Duration;
use stephost::audit::{AuditEntry, AuditEvent};
use stephost::{ComponentReport, LogStream, StepOutcome, WorkflowOutcome, WorkflowStatus};

/// Prints one step's outcome: return value (or error), exports, logs below
/// them with stderr lines marked, egress, then the duration.
pub fn print_step(outcome: &StepOutcome, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
        return Ok(());
    }
    print!("{}", render_step(outcome, ""));
    Ok(())
}

fn render_step(outcome: &StepOutcome, indent: &str) -> String {
    let mut out = String::new();
    match &outcome.result {
        Ok(value) => {
            let _ = writeln!(out, "{indent}return value:");
            for line in pretty(value).lines() {
                let _ = writeln!(out, "{indent}  {line}");
            }
        }
        Err(error) => {
            let _ = writeln!(out, "{indent}error: {error}");
            if let Some(detail) = error.detail() {
                for line in detail.lines() {
                    let _ = writeln!(out, "{indent}  {line}");
                }
            }
        }
    }
    if !outcome.exports.is_empty() {
        let _ = writeln!(out, "{indent}exports:");
        for (name, value) in &outcome.exports {
            let _ = writeln!(out, "{indent}  {name} = {value}");
        }
    }
    if let Some(reason) = &outcome.exit {
        let _ = writeln!(out, "{indent}exit: {reason}");
    }
    if let Some(response) = &outcome.response {
        let _ = writeln!(out, "{indent}http response: {} ({} bytes)", response.status, response.body.len());
    }
    if !outcome.logs.is_empty() {
        let _ = writeln!(out, "{indent}logs:");
        for line in &outcome.logs {
            let mark = match line.stream {
                LogStream::Stdout => "   ",
                LogStream::Stderr => "err",
                LogStream::Host => "!!!",
            };
            let _ = writeln!(out, "{indent}  {mark} {}", line.text);
        }
    }
    if !outcome.egress.is_empty() {
        let _ = writeln!(out, "{indent}http requests:");
        for r in &outcome.egress {
            let verdict = match (&r.status, &r.error, r.allowed) {
                (Some(status), _, _) => status.to_string(),
                (None, Some(error), false) => format!("refused: {error}"),
                (None, Some(error), true) => format!("failed: {error}"),
                (None, None, _) => "no response".into(),
            };
            let secrets = if r.secrets.is_empty() {
                String::new()
            } else {
                format!(", secrets: {}", r.secrets.join(", "))
            };
            let _ = writeln!(
                out,
                "{indent}  {} {}://{}:{}{} -> {verdict} ({} ms, {} B out, {} B in{secrets})",
                r.method, r.scheme, r.host, r.port, r.path, r.duration_ms, r.bytes_out, r.bytes_in
            );
        }
    }
    let _ = writeln!(out, "{indent}duration: {}", ms(outcome.duration));
    out
}

/// One audit record as a line of text.
pub fn render_audit(entry: &AuditEntry) -> String {
    let head = format!("#{} run {} step {}", entry.seq, entry.run, entry.step);
    match &entry.event {
        AuditEvent::SecretRead { app, key } => format!("{head}: read secret {app}.{key}"),
        AuditEvent::TokenRefresh { app, account, ok, error } => match (ok, error) {
            (true, _) => format!("{head}: refreshed the {app} token of `{account}`"),
            (false, error) => format!(
                "{head}: FAILED to refresh the {app} token of `{account}`: {}",
                error.as_deref().unwrap_or("?")
            ),
        },
        AuditEvent::Request(r) => {
            let verdict = match (r.allowed, r.status, &r.error) {
                (false, _, Some(why)) => format!("REFUSED: {why}"),
                (_, Some(status), _) => status.to_string(),
                (_, None, Some(why)) => format!("failed: {why}"),
                _ => "no response".into(),
            };
            let secrets =
                if r.secrets.is_empty() { String::new() } else { format!(" [{}]", r.secrets.join(", ")) };
            format!(
                "{head}: {} {}://{}:{}{}{secrets} -> {verdict}",
                r.method, r.scheme, r.host, r.port, r.path
            )
        }
    }
}

/// Whether a record involves one of `app`'s secrets.
pub fn audit_mentions_app(entry: &AuditEntry, app: &str) -> bool {
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
pub fn audit_is_refusal(entry: &AuditEntry) -> bool {
    matches!(&entry.event, AuditEvent::Request(r) if !r.allowed)
}

/// Prints a workflow run: each step in order, then how it ended.
pub fn print_workflow(outcome: &WorkflowOutcome, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(outcome)?);
        return Ok(());
    }
    for step in &outcome.steps {
        println!("step {}:", step.step);
        print!("{}", render_step(step, "  "));
    }
    match &outcome.status {
        WorkflowStatus::Succeeded => {
            println!("workflow `{}` succeeded in {}", outcome.workflow, ms(outcome.duration))
        }
        WorkflowStatus::Exited { step, reason } => println!(
            "workflow `{}` exited after step `{step}`: {reason} ({})",
            outcome.workflow,
            ms(outcome.duration)
        ),
        WorkflowStatus::Failed { step, error } => {
            eprintln!("error: workflow `{}` failed at step `{step}`: {error}", outcome.workflow)
        }
    }
    Ok(())
}

/// Prints what `stephost inspect` found.
pub fn print_report(report: &ComponentReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    println!("{} ({} bytes, sha256 {})", report.path.display(), report.size_bytes, report.hash);
    println!("imports:");
    for (name, kind) in &report.imports {
        println!("  {name} ({kind})");
    }
    println!("exports:");
    for (name, kind) in &report.exports {
        println!("  {name} ({kind})");
    }
    match &report.misfit {
        None => println!("fits the stephost:step@0.1.0 world"),
        Some(reason) => println!("does not fit the stephost:step@0.1.0 world: {reason}"),
    }
    Ok(())
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
