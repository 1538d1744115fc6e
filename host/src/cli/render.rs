//! What the CLI prints: for each object, the one JSON shape `--json` prints
//! and the one text rendering for people, made from the same value.

use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;
use stephost::audit::{AuditEntry, AuditEvent, Pruned, Tamper};
use stephost::store::views::{NodeList, ReplayList, RunList, StepList, WorkflowList};
use stephost::store::{AccountSummary, EnvSummary, Run, RunSummary};
use stephost::{AccountTest, App, ComponentReport, EgressRecord, LogStream, StepOutcome, WorkflowStatus};

// ---- a step, and a run (of a workflow file here, or stored) ---------------

/// One step's outcome: return value (or error), exports, logs below them
/// with stderr lines marked, egress, then the duration. The same for a
/// step run here and for each step of a run, wherever it ran.
pub fn step(outcome: &StepOutcome, indent: &str) -> String {
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
            let _ = writeln!(
                out,
                "{indent}  {} ({} ms, {} B out, {} B in)",
                request(r),
                r.duration_ms,
                r.bytes_out,
                r.bytes_in
            );
        }
    }
    let _ = writeln!(out, "{indent}duration: {}", ms(outcome.duration));
    out
}

/// One outbound request: `GET https://host:443/path [secrets] -> verdict`,
/// the same in a step's output and in the audit log.
pub fn request(r: &EgressRecord) -> String {
    let verdict = match (r.allowed, r.status, &r.error) {
        (false, _, Some(why)) => format!("REFUSED: {why}"),
        (_, Some(status), _) => status.to_string(),
        (_, None, Some(why)) => format!("failed: {why}"),
        _ => "no response".into(),
    };
    let secrets = if r.secrets.is_empty() { String::new() } else { format!(" [{}]", r.secrets.join(", ")) };
    format!("{} {}://{}:{}{}{secrets} -> {verdict}", r.method, r.scheme, r.host, r.port, r.path)
}

/// What `stephost inspect` found.
pub fn report(report: &ComponentReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({} bytes, sha256 {})", report.path.display(), report.size_bytes, report.hash);
    let _ = writeln!(out, "imports:");
    for (name, kind) in &report.imports {
        let _ = writeln!(out, "  {name} ({kind})");
    }
    let _ = writeln!(out, "exports:");
    for (name, kind) in &report.exports {
        let _ = writeln!(out, "  {name} ({kind})");
    }
    match &report.misfit {
        None => _ = writeln!(out, "fits the stephost:step@0.1.0 world"),
        Some(reason) => _ = writeln!(out, "does not fit the stephost:step@0.1.0 world: {reason}"),
    }
    out
}

// ---- the audit log -------------------------------------------------------

/// One audit record as a line of text.
pub fn audit_entry(entry: &AuditEntry) -> String {
    let head = format!("#{} run {} step {}", entry.seq, entry.run, entry.step);
    match &entry.event {
        AuditEvent::SecretRead { app, key, count: 1 } => format!("{head}: read secret {app}.{key}"),
        AuditEvent::SecretRead { app, key, count } => {
            format!("{head}: read secret {app}.{key} {count} times")
        }
        AuditEvent::SecretEnv { name } => format!("{head}: was given secret env {name}"),
        AuditEvent::AnchorLost { why } => format!("{head}: ANCHOR LOST ({why}): the end may have been cut"),
        AuditEvent::Checkpoint { pruned_before_ms, .. } => {
            format!("{head}: checkpoint: records before {pruned_before_ms} ms were pruned")
        }
        AuditEvent::TokenRefresh { app, account, ok, error } => match (ok, error) {
            (true, _) => format!("{head}: refreshed the {app} token of `{account}`"),
            (false, error) => format!(
                "{head}: FAILED to refresh the {app} token of `{account}`: {}",
                error.as_deref().unwrap_or("?")
            ),
        },
        AuditEvent::Request(r) => format!("{head}: {}", request(r)),
    }
}

/// `audit verify`: the chain is intact, or where it breaks.
#[derive(Serialize)]
pub struct AuditVerdict {
    pub path: String,
    pub intact: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub records: Option<usize>,
    /// Which kind of tampering: edit, removal, reorder, truncation,
    /// unkeyed or missing_anchor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<Tamper>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

pub fn audit_verdict(v: &AuditVerdict) -> String {
    match (&v.problem, v.found, v.records) {
        (Some(problem), Some(found), _) => format!("error: audit log {}: {found}: {problem}\n", v.path),
        (Some(problem), None, _) => format!("error: audit log {}: {problem}\n", v.path),
        (None, _, records) => format!("{}: {} records, keyed chain intact\n", v.path, records.unwrap_or(0)),
    }
}

/// `audit prune`: how many records went and stayed.
pub fn audit_pruned(p: &Pruned) -> String {
    format!("pruned {} audit records, kept {}; the log still verifies\n", p.removed, p.kept)
}

// ---- apps ----------------------------------------------------------------

/// An app of the catalog, as `apps list` and `apps show` print it.
#[derive(Serialize)]
pub struct AppView {
    pub name: String,
    pub title: String,
    pub auth: String,
    /// Where its secrets may go, templated hosts too.
    pub hosts: Vec<String>,
    pub fields: BTreeMap<String, FieldView>,
    pub test_request: Option<stephost::catalog::TestRequest>,
    pub oauth: Option<stephost::catalog::OAuthEndpoints>,
}

/// One field of an app.
#[derive(Serialize)]
pub struct FieldView {
    pub secret: bool,
    /// Where a secret field's value may appear, e.g. `header:authorization`.
    pub placements: Vec<String>,
    pub description: String,
    /// The order the app declares its fields in.
    #[serde(skip)]
    order: usize,
}

impl AppView {
    pub fn of(app: &App) -> Self {
        let hosts = app
            .hosts
            .patterns()
            .iter()
            .map(|p| p.to_string())
            .chain(app.host_templates.iter().cloned())
            .collect();
        let fields = app
            .fields
            .iter()
            .enumerate()
            .map(|(order, f)| {
                let placements = f.placements.iter().map(|p| p.to_string()).collect();
                (
                    f.name.clone(),
                    FieldView { secret: f.secret, placements, description: f.description.clone(), order },
                )
            })
            .collect();
        Self {
            name: app.name.clone(),
            title: app.title.clone(),
            auth: app.auth.clone(),
            hosts,
            fields,
            test_request: app.test_request.clone(),
            oauth: app.oauth.clone(),
        }
    }
}

/// `apps list`: one app a line.
pub fn app_list(apps: &[AppView]) -> String {
    apps.iter().map(|a| format!("{:<15} {:<14} {}\n", a.name, a.auth, a.hosts.join(" "))).collect()
}

/// `apps show`: everything about one app.
pub fn app(app: &AppView) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} ({}), auth: {}", app.name, app.title, app.auth);
    let _ = writeln!(out, "hosts: {}", app.hosts.join(", "));
    let _ = writeln!(out, "fields:");
    let mut fields: Vec<_> = app.fields.iter().collect();
    fields.sort_by_key(|(_, f)| f.order);
    for (name, f) in fields {
        let kind = if f.secret { format!("secret, in {}", f.placements.join(", ")) } else { "plain".into() };
        let _ = writeln!(out, "  {name:<20} {kind}  {}", f.description);
    }
    if let Some(test) = &app.test_request {
        let _ = writeln!(out, "test request: {} {}", test.method, test.url);
        for (name, value) in &test.headers {
            let _ = writeln!(out, "  {name}: {value}");
        }
    }
    out
}

// ---- accounts and environment variables -----------------------------------

/// A connected account, as `accounts list` prints it.
#[derive(Serialize)]
pub struct AccountView {
    /// `APP/NAME`, the way every command names it.
    pub account: String,
    pub app: String,
    pub name: String,
    /// Each field's value, secret ones masked.
    pub fields: serde_json::Map<String, Value>,
    pub created_ms: u64,
    pub last_used_ms: Option<u64>,
    pub expires_ms: Option<u64>,
    pub status: String,
}

impl AccountView {
    pub fn of(a: AccountSummary) -> Self {
        Self {
            account: format!("{}/{}", a.app, a.name),
            fields: a.fields.into_iter().map(|(k, v)| (k, Value::String(v))).collect(),
            app: a.app,
            name: a.name,
            created_ms: a.created_ms,
            last_used_ms: a.last_used_ms,
            expires_ms: a.expires_ms,
            status: a.status,
        }
    }
}

pub fn account_list(accounts: &[AccountView]) -> String {
    if accounts.is_empty() {
        return "no accounts: connect one with `stephost accounts connect APP`\n".into();
    }
    let mut out = String::new();
    for a in accounts {
        let fields: Vec<String> =
            a.fields.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default())).collect();
        let used = a.last_used_ms.map_or("never used".to_string(), |ms| format!("last used {}", time(ms)));
        let _ = writeln!(
            out,
            "{}  {}  created {}, {used}, {}",
            a.account,
            fields.join(" "),
            time(a.created_ms),
            a.status
        );
    }
    out
}

/// `accounts test`: the test request and what came back.
#[derive(Serialize)]
pub struct AccountTestView {
    pub account: String,
    pub method: String,
    pub url: String,
    pub status: Option<u16>,
    /// A 2xx answer.
    pub ok: bool,
    pub detail: String,
    pub request: Option<EgressRecord>,
}

impl AccountTestView {
    pub fn of(account: String, test: AccountTest) -> Self {
        Self {
            account,
            ok: test.status.is_some_and(|s| (200..300).contains(&s)),
            method: test.method,
            url: test.url,
            status: test.status,
            detail: test.detail,
            request: test.record,
        }
    }
}

pub fn account_test(t: &AccountTestView) -> String {
    let verdict = t.status.map_or_else(|| "no response".to_string(), |s| s.to_string());
    format!("{}: {} {} -> {verdict}\n  {}\n", t.account, t.method, t.url, t.detail.replace('\n', " "))
}

pub fn env_list(vars: &[EnvSummary]) -> String {
    let mut out = String::new();
    for v in vars {
        let scope = v.workflow.as_deref().map_or("global".to_string(), |w| format!("workflow {w}"));
        let _ =
            writeln!(out, "{}={}  ({}, {scope})", v.name, v.shown, if v.secret { "secret" } else { "plain" });
    }
    out
}

// ---- the service: steps and deployed workflows ----------------------------

/// `workflow deploy`: the version, where its HTTP trigger is, its schedule.
pub fn deployed(name: &str, deployed: &Value, trigger: &str) -> String {
    let mut out = format!("deployed workflow `{name}` version {}\n{trigger}\n", deployed["version"]);
    if let Some(schedule) = deployed["schedule"].as_str() {
        let _ = writeln!(
            out,
            "  schedule: {schedule}, next run {}",
            deployed["next_run"].as_str().unwrap_or("never")
        );
    }
    out
}

/// `steps list`: a table of the uploaded steps, newest first: name (`-`
/// if none), id, size and the workflows using it.
pub fn step_list(listed: &StepList) -> String {
    if listed.steps.is_empty() {
        return "no steps uploaded\n".into();
    }
    let rows: Vec<[String; 4]> = listed
        .steps
        .iter()
        .map(|step| {
            let used_by = match step.used_by.is_empty() {
                true => "-".to_string(),
                false => step.used_by.join(", "),
            };
            [
                step.name.clone().unwrap_or_else(|| "-".into()),
                step.id.clone(),
                stephost::base::units::human_bytes(step.size as usize),
                used_by,
            ]
        })
        .collect();
    let head = ["NAME", "ID", "SIZE", "USED BY"].map(String::from);
    let mut widths = head.clone().map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in std::iter::once(&head).chain(&rows) {
        let [name, id, size, used_by] = row;
        let _ = writeln!(
            out,
            "{name:<w0$}  {id:<w1$}  {size:>w2$}  {used_by}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    out
}

/// `workflow list`: one line a workflow, by name: version, endpoint, and
/// its schedule if it has one.
pub fn workflow_list(listed: &WorkflowList) -> String {
    let mut out = String::new();
    for workflow in &listed.workflows {
        let schedule = workflow.schedule.as_deref().map(|s| format!("  {s}")).unwrap_or_default();
        let _ = writeln!(out, "{}  v{}  {}{schedule}", workflow.name, workflow.version, workflow.endpoint);
    }
    if listed.workflows.is_empty() {
        out.push_str("no workflows deployed\n");
    }
    out
}

/// `workflow replay-failed`: one queued replay a line, and what it replays.
pub fn replay_list(listed: &ReplayList) -> String {
    let mut out = String::new();
    for replay in &listed.replays {
        let of = replay.replay_of.as_deref().unwrap_or("?");
        let _ = writeln!(out, "queued run {} (v{}) replaying {of}", replay.run, replay.version);
    }
    if listed.replays.is_empty() {
        out.push_str("no failed runs to replay\n");
    }
    out
}

// ---- nodes -----------------------------------------------------------------

/// `nodes`: one line a node, oldest first as the API lists them; `now_ms`
/// is what "ago" counts from.
pub fn nodes(listed: &NodeList, now_ms: i64) -> String {
    let mut out = String::new();
    for node in &listed.nodes {
        let ago = now_ms.saturating_sub(node.heartbeat_ms).max(0) / 1000;
        let _ = writeln!(
            out,
            "{}  {}  {}  {} running  heartbeat {ago} s ago",
            node.info.id,
            node.info.host,
            node.info.listen,
            node.running.len()
        );
    }
    if listed.nodes.is_empty() {
        out.push_str("no live nodes\n");
    }
    out
}

// ---- runs ------------------------------------------------------------------

/// A run's version as people read it: `v3`, or `file` for `workflow run`.
fn version(run: &RunSummary) -> String {
    run.version.map_or_else(|| "file".into(), |v| format!("v{v}"))
}

/// `runs list`: one line a run, newest first as the API lists them.
pub fn run_list(listed: &RunList) -> String {
    let mut out = String::new();
    for run in &listed.runs {
        let duration = match run.finished_ms {
            Some(end) => format!("{} ms", end.saturating_sub(run.created_ms)),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{}  {:<20} {:<4} {:<9} attempt {}  {}  {duration}",
            run.id,
            run.workflow,
            version(run),
            run.status,
            run.attempt,
            time(run.created_ms)
        );
    }
    if out.is_empty() {
        out.push_str("no runs\n");
    }
    out
}

/// A run for people: the header, the event, each step as [`step`] renders
/// it, then how it ended. `workflow run`, `runs show` and `trigger --wait`
/// all print this. A failure is also said on stderr, as an error.
pub fn run(run: &Run) -> String {
    let mut out = String::new();
    let head = RunSummary::from(run);
    let _ = writeln!(
        out,
        "run {} of `{}` {}: {} (attempt {}, created {})",
        head.id,
        head.workflow,
        version(&head),
        head.status,
        head.attempt,
        time(head.created_ms)
    );
    let _ = writeln!(out, "event: {}", run.event);
    let Some(outcome) = &run.outcome else { return out };
    for s in &outcome.steps {
        let _ = writeln!(out, "step {}:", s.step);
        out.push_str(&step(s, "  "));
    }
    let took = outcome.duration_ms.map_or_else(String::new, |ms| format!(" in {ms:.1} ms"));
    let name = &run.workflow;
    match &outcome.status {
        WorkflowStatus::Succeeded => _ = writeln!(out, "workflow `{name}` succeeded{took}"),
        WorkflowStatus::Exited { step, reason } => {
            _ = writeln!(out, "workflow `{name}` exited after step `{step}`: {reason}{took}")
        }
        WorkflowStatus::Failed { step, error } => {
            _ = writeln!(out, "failed: {error}");
            eprintln!("error: workflow `{name}` failed at step `{step}`: {error}")
        }
        WorkflowStatus::Running => _ = writeln!(out, "running…"),
    }
    if let Some(retry) = run.retry_at_ms {
        let _ = writeln!(out, "retrying at {}", time(retry));
    }
    out
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Milliseconds since the epoch as an RFC 3339 UTC time.
pub fn time(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(at).to_string()
}

#[cfg(test)]
mod tests {
    use stephost::store::views::NodeList;
    use stephost::store::{NodeInfo, NodeView};

    #[test]
    fn a_node_shows_its_address_running_count_and_heartbeat_age() {
        let info = NodeInfo {
            id: "serve:42:ab12".into(),
            host: "box1".into(),
            pid: 42,
            listen: "10.0.0.1:8787".into(),
            version: "0.1.0".into(),
            lease_ms: 30_000,
        };
        let node = NodeView {
            info,
            started_ms: 1_000,
            heartbeat_ms: 7_000,
            running: vec!["r1".into(), "r2".into()],
        };
        let text = super::nodes(&NodeList { nodes: vec![node] }, 10_400);
        assert_eq!(text, "serve:42:ab12  box1  10.0.0.1:8787  2 running  heartbeat 3 s ago\n");
        assert_eq!(super::nodes(&NodeList { nodes: vec![] }, 0), "no live nodes\n");
    }

    use serde_json::json;

    #[test]
    fn a_run_renders_its_steps_logs_and_failure() {
        let run: stephost::store::Run = serde_json::from_value(json!({
            "id": "r1", "workflow": "w", "version": 2, "status": "failed", "attempt": 1, "created_ms": 0,
            "started_ms": null, "finished_ms": null, "retry_at_ms": null, "event": { "a": 1 },
            "outcome": { "status": "failed", "step": "b", "error": "step `b` failed: boom", "attempt": 1,
                "duration_ms": null, "steps": [
                { "run_id": "r1", "step": "a", "duration_ms": 1.5, "result": { "return_value": { "ok": true } },
                  "exports": { "n": 1 }, "exit": null, "response": null, "logs_truncated": false, "egress": [],
                  "logs": [{ "stream": "stdout", "at_ms": 0, "text": "hi" }, { "stream": "stderr", "at_ms": 0, "text": "oops" }] },
                { "run_id": "r1", "step": "b", "duration_ms": 0.5, "exports": {}, "exit": null, "response": null,
                  "logs": [], "logs_truncated": false, "egress": [],
                  "result": { "error": { "message": "step `b` failed: boom",
                                         "detail": { "kind": "failed", "step": "b", "message": "boom" } } } }
            ]}
        }))
        .unwrap();
        let text = super::run(&run);
        assert!(
            text.starts_with("run r1 of `w` v2: failed (attempt 1, created 1970-01-01T00:00:00Z)\n"),
            "{text}"
        );
        for expected in [
            "step a:\n  return value:\n    {\n      \"ok\": true\n    }",
            "  exports:\n    n = 1",
            "      hi\n",
            "err oops",
            "  error: step `b` failed: boom",
            "failed: step `b` failed: boom",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
    }
}
