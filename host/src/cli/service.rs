//! The service commands (`steps`, `workflow deploy`, `trigger`, `runs`):
//! over HTTP to a server given `--server URL`, otherwise in this process
//! on the local data directory, through the same API routes either way.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use stephost::Runtime;
use stephost::server::{AppState, ServeConfig};
use stephost::store::views::RunList;
use stephost::store::{Run, RunStatus, RunSummary};
use stephost::{LogStream, WorkflowStatus};
use tower::ServiceExt;

/// Where the service commands go.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// A stephost server, e.g. http://127.0.0.1:8787 (default: work on the
    /// local data directory in this process).
    #[arg(long, env = "STEPHOST_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The server's API token (printed by `stephost serve` on first start).
    #[arg(long, env = "STEPHOST_API_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
}

#[derive(Subcommand)]
pub enum StepsCommand {
    /// Upload a step component (.wasm); prints its id (the SHA-256).
    Upload {
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List uploaded steps.
    List {
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// Only this workflow's runs.
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs in this state.
        #[arg(long, value_parser = ["queued", "running", "succeeded", "failed", "exited"])]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u64,
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show one run: its event, then each step with its return value,
    /// exports and logs.
    Show {
        id: String,
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Run a run's event again, against the newest version of its workflow.
    Replay {
        id: String,
        /// Wait for the run to finish and show it (always so without a server).
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        server: ServerArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// A stephost API: a server over HTTP, or the routes in this process.
pub enum Api {
    Remote { base: String, token: String, http: reqwest::Client },
    Local { state: Arc<AppState>, router: axum::Router },
}

impl Api {
    /// Connects to `--server`, or opens the local data directory.
    pub fn open(
        args: &ServerArgs,
        data_dir: &Path,
        runtime: impl FnOnce() -> Result<Runtime>,
    ) -> Result<Self> {
        match &args.server {
            Some(base) => {
                let base = base.trim_end_matches('/').to_string();
                if !(base.starts_with("http://") || base.starts_with("https://")) {
                    bail!("--server `{base}` must be an http:// or https:// URL");
                }
                let token = args.token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
                    anyhow!("--server needs the API token: pass --token or set STEPHOST_API_TOKEN")
                })?;
                Ok(Api::Remote { base, token, http: reqwest::Client::new() })
            }
            None => {
                let config = ServeConfig::new(data_dir.to_path_buf());
                let state = AppState::open_local(config, Arc::new(runtime()?))?;
                let router = stephost::server::local_router(state.clone());
                Ok(Api::Local { state, router })
            }
        }
    }

    /// One API call; a non-2xx answer is an error carrying the server's
    /// one-line reason.
    pub async fn call(
        &self,
        method: http::Method,
        path: &str,
        body: Vec<u8>,
        content_type: &str,
    ) -> Result<Value> {
        let (status, bytes) = match self {
            Api::Remote { base, token, http } => {
                let response = http
                    .request(method.clone(), format!("{base}{path}"))
                    .bearer_auth(token)
                    .header(http::header::CONTENT_TYPE, content_type)
                    .body(body)
                    .send()
                    .await
                    .map_err(|e| {
                        anyhow!(
                            "cannot reach the server at {base}: {:#}",
                            anyhow::Error::from(e.without_url())
                        )
                    })?;
                let status = response.status();
                (status, response.bytes().await.with_context(|| format!("reading the answer from {base}"))?)
            }
            Api::Local { router, .. } => {
                let request = http::Request::builder()
                    .method(method.clone())
                    .uri(path)
                    .header(http::header::CONTENT_TYPE, content_type)
                    .body(axum::body::Body::from(body))?;
                let response = router.clone().oneshot(request).await?;
                let status = response.status();
                (status, axum::body::to_bytes(response.into_body(), usize::MAX).await?)
            }
        };
        let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if !status.is_success() {
            // A non-JSON answer (a proxy's error page): its first line, shortened.
            let reason = value["error"].as_str().map_or_else(
                || {
                    String::from_utf8_lossy(&bytes)
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .chars()
                        .take(200)
                        .collect()
                },
                String::from,
            );
            bail!("{reason} ({method} {path}: {status})");
        }
        Ok(value)
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(http::Method::GET, path, Vec::new(), "application/json").await
    }

    /// A GET answer read as the API's own type.
    async fn get_as<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        serde_json::from_value(self.get(path).await?)
            .with_context(|| format!("the server's answer to GET {path}"))
    }

    /// Waits for a run to finish (running it here when local) and returns it.
    pub async fn finished(&self, run: &str) -> Result<Run> {
        if let Api::Local { state, .. } = self {
            stephost::server::run_until_finished(state.clone(), run).await?;
        }
        loop {
            let record: Run = self.get_as(&format!("/v1/runs/{run}")).await?;
            if record.status.is_finished() {
                return Ok(record);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    fn is_local(&self) -> bool {
        matches!(self, Api::Local { .. })
    }
}

pub async fn steps(api: &Api, command: StepsCommand) -> Result<()> {
    match command {
        StepsCommand::Upload { file, json, .. } => {
            let uploaded = upload(api, &file).await?;
            match json {
                true => println!("{uploaded:#}"),
                false => println!(
                    "uploaded {} as step {}",
                    file.display(),
                    uploaded["id"].as_str().unwrap_or_default()
                ),
            }
        }
        StepsCommand::List { json, .. } => {
            let listed = api.get("/v1/steps").await?;
            if json {
                println!("{listed:#}");
                return Ok(());
            }
            for step in listed["steps"].as_array().into_iter().flatten() {
                println!(
                    "{}  {:>9} bytes  uploaded {}",
                    step["id"].as_str().unwrap_or_default(),
                    step["size"],
                    time(&step["uploaded_ms"])
                );
            }
        }
    }
    Ok(())
}

async fn upload(api: &Api, file: &Path) -> Result<Value> {
    let bytes = std::fs::read(file).with_context(|| format!("step file {}", file.display()))?;
    api.call(http::Method::POST, "/v1/steps", bytes, "application/wasm")
        .await
        .with_context(|| format!("uploading {}", file.display()))
}

/// `workflow deploy`: uploads every `component = "file.wasm"` step of the
/// workflow file, names it by id instead, and deploys the result.
pub async fn deploy(api: &Api, file: &Path, name: Option<String>, json: bool) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("workflow file {}", file.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", file.display()))?;
    let base = file.parent().unwrap_or(Path::new("."));
    for step in table.get_mut("steps").and_then(|s| s.as_array_mut()).into_iter().flatten() {
        let Some(step) = step.as_table_mut() else { continue };
        if let Some(component) = step.remove("component") {
            let path = base.join(
                component
                    .as_str()
                    .ok_or_else(|| anyhow!("{}: `component` must be a file name", file.display()))?,
            );
            let uploaded = upload(api, &path).await?;
            step.insert(
                "step".into(),
                toml::Value::String(uploaded["id"].as_str().unwrap_or_default().into()),
            );
        }
    }
    let name = name
        .or_else(|| table.get("name").and_then(|n| n.as_str()).map(String::from))
        .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .ok_or_else(|| anyhow!("give the workflow a name with --name"))?;
    let deployed = api
        .call(
            http::Method::PUT,
            &format!("/v1/workflows/{name}"),
            toml::to_string(&table)?.into_bytes(),
            "application/toml",
        )
        .await?;
    if json {
        println!("{deployed:#}");
        return Ok(());
    }
    println!("deployed workflow `{name}` version {}", deployed["version"]);
    let endpoint = deployed["endpoint"].as_str().unwrap_or_default();
    match api {
        Api::Remote { base, .. } => println!("  HTTP trigger: {base}{endpoint}"),
        Api::Local { .. } => println!("  HTTP trigger: {endpoint} on `stephost serve`"),
    }
    if let Some(schedule) = deployed["schedule"].as_str() {
        println!("  schedule: {schedule}, next run {}", deployed["next_run"].as_str().unwrap_or("never"));
    }
    Ok(())
}

/// `trigger`: queues a manual run; waits for it (and shows it) with
/// `wait` or without a server.
pub async fn trigger(api: &Api, workflow: &str, event: &Value, wait: bool, json: bool) -> Result<bool> {
    let queued = api
        .call(
            http::Method::POST,
            &format!("/v1/workflows/{workflow}/runs"),
            event.to_string().into_bytes(),
            "application/json",
        )
        .await?;
    show_queued(api, &queued, wait, json).await
}

/// `runs list|show|replay`; `false` when the shown run failed.
pub async fn runs(api: &Api, command: RunsCommand) -> Result<bool> {
    match command {
        RunsCommand::List { workflow, status, limit, json, .. } => {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &limit.to_string());
            if let Some(workflow) = &workflow {
                query.append_pair("workflow", workflow);
            }
            if let Some(status) = &status {
                query.append_pair("status", status);
            }
            let listed: RunList = api.get_as(&format!("/v1/runs?{}", query.finish())).await?;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&listed)?),
                false => print!("{}", render_run_list(&listed)),
            }
            Ok(true)
        }
        RunsCommand::Show { id, json, .. } => {
            let run: Run = api.get_as(&format!("/v1/runs/{id}")).await?;
            match json {
                true => println!("{}", serde_json::to_string_pretty(&run)?),
                false => print!("{}", render_run(&run)),
            }
            Ok(succeeded(&run))
        }
        RunsCommand::Replay { id, wait, json, .. } => {
            let queued = api
                .call(http::Method::POST, &format!("/v1/runs/{id}/replay"), Vec::new(), "application/json")
                .await?;
            show_queued(api, &queued, wait, json).await
        }
    }
}

async fn show_queued(api: &Api, queued: &Value, wait: bool, json: bool) -> Result<bool> {
    let id =
        queued["run"].as_str().ok_or_else(|| anyhow!("the server answered without a run id: {queued}"))?;
    if !(wait || api.is_local()) {
        match json {
            true => println!("{queued:#}"),
            false => println!("queued run {id}"),
        }
        return Ok(true);
    }
    let run = api.finished(id).await?;
    match json {
        true => println!("{}", serde_json::to_string_pretty(&run)?),
        false => print!("{}", render_run(&run)),
    }
    Ok(succeeded(&run))
}

fn succeeded(run: &Run) -> bool {
    run.status != RunStatus::Failed
}

fn time(ms: &Value) -> String {
    ms.as_i64().map_or_else(|| "-".into(), stephost::workflow::schedule::rfc3339)
}

fn time_ms(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".into(), |ms| stephost::workflow::schedule::rfc3339(ms as i64))
}

/// What both the run list and a shown run say of a run's version.
fn version(run: &RunSummary) -> String {
    run.version.map_or_else(|| "file".into(), |v| v.to_string())
}

fn render_run_list(listed: &RunList) -> String {
    let mut out = String::new();
    for run in &listed.runs {
        let duration = match run.finished_ms {
            Some(end) => format!("{} ms", end.saturating_sub(run.created_ms)),
            None => "-".into(),
        };
        let _ = writeln!(
            out,
            "{}  {:<20} v{:<3} {:<9} attempt {}  {}  {duration}",
            run.id,
            run.workflow,
            version(run),
            run.status,
            run.attempt,
            time_ms(Some(run.created_ms))
        );
    }
    if out.is_empty() {
        out.push_str("no runs\n");
    }
    out
}

/// A run for people: the header, the event, then each step's result,
/// exports and logs (stderr lines marked).
fn render_run(run: &Run) -> String {
    let mut out = String::new();
    let h = RunSummary::from(run);
    let _ = writeln!(
        out,
        "run {} of `{}` v{}: {} (attempt {}, created {})",
        h.id,
        h.workflow,
        version(&h),
        h.status,
        h.attempt,
        time_ms(Some(h.created_ms))
    );
    let _ = writeln!(out, "event: {}", run.event);
    let Some(outcome) = &run.outcome else { return out };
    for step in &outcome.steps {
        let _ = writeln!(out, "step {} ({:.1} ms):", step.step, step.duration.as_secs_f64() * 1000.0);
        match &step.result {
            Err(error) => _ = writeln!(out, "  error: {error}"),
            Ok(value) => _ = writeln!(out, "  return value: {value}"),
        }
        for (name, value) in &step.exports {
            let _ = writeln!(out, "  export {name}: {value}");
        }
        for line in &step.logs {
            let mark = if line.stream == LogStream::Stderr { "[stderr] " } else { "" };
            let _ = writeln!(out, "  | {mark}{}", line.text);
        }
    }
    match &outcome.status {
        WorkflowStatus::Failed { error, .. } => _ = writeln!(out, "failed: {error}"),
        WorkflowStatus::Exited { reason, .. } => _ = writeln!(out, "exited: {reason}"),
        _ => {}
    }
    if let Some(retry) = run.retry_at_ms {
        let _ = writeln!(out, "retrying at {}", time_ms(Some(retry)));
    }
    out
}

/// The event for `trigger` given as `--event-json JSON`.
pub fn event_json(text: Option<&str>) -> Result<Option<Value>> {
    text.map(|text| serde_json::from_str(text).context("--event-json is not valid JSON")).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_run_renders_its_steps_logs_and_failure() {
        let run: Run = serde_json::from_value(json!({
            "id": "r1", "workflow": "w", "version": 2, "status": "failed", "attempt": 1, "created_ms": 0,
            "started_ms": null, "finished_ms": null, "retry_at_ms": null, "event": { "a": 1 },
            "outcome": { "status": "failed", "error": "step `b` failed: boom", "attempt": 1, "duration_ms": null, "steps": [
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
        let text = render_run(&run);
        assert!(
            text.starts_with("run r1 of `w` v2: failed (attempt 1, created 1970-01-01T00:00:00Z)\n"),
            "{text}"
        );
        for expected in [
            "return value: {\"ok\":true}",
            "export n: 1",
            "  | hi",
            "  | [stderr] oops",
            "  error: step `b` failed: boom",
            "failed: step `b` failed: boom",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
    }
}
