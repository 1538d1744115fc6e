//! Workflow files: ordered steps, each with its component, connected apps,
//! environment, allowed hosts and limits; and running them in order, each
//! later step seeing the earlier ones under `steps`.
//!
//! ```toml
//! name = "demo"
//!
//! [[steps]]
//! name = "post"                       # letters, digits, underscores
//! component = "slack_post.wasm"       # relative to this file
//! allowed_hosts = ["https://slack.com"]
//! timeout_secs = 10                   # default 30
//! memory_mib = 64                     # default 256
//! env = { CHANNEL = "#general" }
//! [steps.auths.slack]
//! oauth_access_token = "xoxb-…"
//! ```
//!
//! Settings that only `stephost serve` reads:
//!
//! ```toml
//! respond = true                      # the HTTP trigger answers with flow.respond
//! retries = 3                         # failed runs retried, backoff doubling
//! retry_backoff_secs = 2              # the first retry's delay (default 2)
//! [schedule]
//! cron = "0 9 * * 1-5"                # or every_minutes = 15
//! timezone = "Europe/Berlin"          # default UTC
//! [retention]
//! keep_runs = 1000                    # finished runs kept (default: the server's)
//! keep_days = 30
//! ```

mod error;
pub mod oauth;
pub mod schedule;

pub use error::WorkflowError;

use crate::egress::HostPolicy;
use crate::runtime::component::StepComponent;
use crate::runtime::error::LoadError;
use crate::runtime::limits::Limits;
use crate::runtime::outcome::{AccountFields, StepInput, StepOutcome};
use crate::runtime::{Runtime, StepConfig};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::base::names::{TRIGGER_STEP, is_valid_name};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkflowFile {
    name: Option<String>,
    #[serde(default)]
    respond: bool,
    retries: Option<u32>,
    retry_backoff_secs: Option<f64>,
    schedule: Option<crate::workflow::schedule::ScheduleFile>,
    retention: Option<RetentionFile>,
    #[serde(default)]
    cors: Vec<String>,
    #[serde(default)]
    steps: Vec<StepFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    keep_runs: Option<u64>,
    keep_days: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepFile {
    name: String,
    /// A component file, relative to the workflow file.
    component: Option<PathBuf>,
    /// Or an uploaded step's id (`stephost serve`).
    step: Option<String>,
    #[serde(default)]
    auths: toml::Table,
    #[serde(default)]
    env: toml::Table,
    #[serde(default)]
    secret_env: toml::Table,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    timeout_secs: Option<f64>,
    memory_mib: Option<u64>,
    log_kib: Option<u64>,
    output_kib: Option<u64>,
}

/// A parsed, validated workflow.
#[derive(Debug, Clone)]
pub struct Workflow {
    /// The file's `name`, else the file's stem; stored environment
    /// variables are looked up by it.
    pub name: String,
    /// The file it was read from (on a server: the workflow's name); errors
    /// name it.
    pub path: PathBuf,
    /// The steps, in the order they run; never empty.
    pub steps: Vec<WorkflowStep>,
    /// What only `stephost serve` reads.
    pub service: ServiceSettings,
}

/// How `stephost serve` triggers this workflow and keeps its runs; the
/// CLI's `workflow run` ignores them.
#[derive(Debug, Clone, Default)]
pub struct ServiceSettings {
    /// The HTTP trigger waits for a step's `flow.respond` and answers with it.
    pub respond: bool,
    /// How many times a failed run is tried again (timeouts and memory
    /// limits are not retried).
    pub retries: u32,
    /// The delay before the first retry; each next one doubles it.
    pub retry_backoff: Duration,
    /// When the server runs it by itself; `None`: only when triggered.
    pub schedule: Option<crate::workflow::schedule::Schedule>,
    /// Finished runs kept, newest first (`None`: the server's default).
    pub keep_runs: Option<u64>,
    /// Finished runs older than this are pruned (`None`: the server's default).
    pub keep_days: Option<f64>,
    /// Web origins whose pages may call the HTTP endpoint from a browser
    /// (`https://app.example`, or `*` for any); empty: none, the default,
    /// so a page elsewhere cannot read what the endpoint answers.
    pub cors: Vec<String>,
}

impl ServiceSettings {
    /// The delay before retry number `attempt` (1 for the first retry):
    /// the backoff doubled each time, at most an hour.
    pub fn retry_delay(&self, attempt: u64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(20) as u32;
        self.retry_backoff.saturating_mul(1 << doublings).min(Duration::from_secs(3600))
    }
}

/// One step of a workflow, with its component path resolved.
#[derive(Debug, Clone)]
pub struct WorkflowStep {
    /// Unique in the workflow; later steps read its result under `steps.<name>`.
    pub name: String,
    /// The `.wasm` file: `component` resolved against the workflow file's
    /// directory, or an uploaded step's file in the server's steps directory.
    pub component: PathBuf,
    /// Connected apps with their fields, in clear: given inline in the file,
    /// or taken from the store by [`Workflow::attach_store`].
    pub auths: Vec<(String, AccountFields)>,
    /// Connected accounts by name (`auths = { slack = "work" }`), turned
    /// into `auths` by [`Workflow::attach_store`].
    pub accounts: Vec<(String, String)>,
    /// Environment variables in clear: the step's own, then stored ones it
    /// does not set.
    pub env: Vec<(String, String)>,
    /// Secret environment variables: sealed, and sent only to this step's
    /// own allowed hosts.
    pub secret_env: Vec<(String, String)>,
    /// Its limits, allowed hosts and token refresher.
    pub config: StepConfig,
}

/// How a workflow run ended: the store's type, so a run reads the same
/// from `workflow run`, the store and the API.
pub use crate::store::WorkflowStatus;

/// Every step that ran, in order, and how the run ended. Printed and
/// stored as a [`Run`](crate::store::Run) (see [`WorkflowOutcome::into_run`]).
#[derive(Debug, Clone)]
pub struct WorkflowOutcome {
    /// The workflow's name.
    pub workflow: String,
    /// The run's id, shared by all its steps.
    pub run_id: String,
    /// How the run ended.
    pub status: WorkflowStatus,
    /// The steps that ran, in order; a failed or exited run stopped at the last.
    pub steps: Vec<StepOutcome>,
    /// Wall time from the first step's start to the last one's end.
    pub duration: Duration,
}

impl WorkflowOutcome {
    /// This attempt as a run's `outcome`.
    pub fn to_run_outcome(&self, attempt: u64) -> crate::store::RunOutcome {
        crate::store::RunOutcome {
            status: self.status.clone(),
            attempt,
            duration_ms: Some(self.duration.as_secs_f64() * 1000.0),
            steps: self.steps.clone(),
        }
    }

    /// A workflow file's run (`workflow run`) in the one shape every run is
    /// shown in; it started at `started_ms`.
    pub fn into_run(self, event: Value, started_ms: u64) -> crate::store::Run {
        let outcome = self.to_run_outcome(1);
        crate::store::Run {
            id: self.run_id,
            workflow: self.workflow,
            version: None,
            status: self.status.run_status(),
            attempt: 1,
            created_ms: started_ms,
            started_ms: Some(started_ms),
            finished_ms: Some(started_ms + self.duration.as_millis() as u64),
            retry_at_ms: None,
            event,
            outcome: Some(outcome),
            replay_of: None,
            seed: None,
        }
    }

    /// Whether a failed run may be tried again: not when a step ran out of
    /// time or memory (as in Pipedream), nor when it succeeded or exited.
    pub fn is_retryable_failure(&self) -> bool {
        use crate::runtime::error::StepError;
        matches!(self.status, WorkflowStatus::Failed { .. })
            && !self.steps.last().is_some_and(|step| {
                matches!(step.result, Err(StepError::TimedOut { .. } | StepError::MemoryLimit { .. }))
            })
    }
}

impl Workflow {
    /// Reads and validates a workflow file; component paths are relative
    /// to the file.
    pub fn from_file(path: &Path) -> Result<Self, WorkflowError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| WorkflowError::Read { path: path.to_path_buf(), source })?;
        Self::parse(&text, path)
    }

    /// Parses and validates workflow text as if read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, WorkflowError> {
        Self::parse_with_steps(text, path, None)
    }

    /// Like [`Workflow::parse`], with `step = "<id>"` naming an uploaded
    /// step in `steps_dir` (`<id>.wasm`).
    pub fn parse_with_steps(
        text: &str,
        path: &Path,
        steps_dir: Option<&Path>,
    ) -> Result<Self, WorkflowError> {
        let invalid = |message: String| WorkflowError::Invalid { path: path.to_path_buf(), message };
        let file: WorkflowFile = toml::from_str(text).map_err(|e| invalid(toml_error(text, &e)))?;
        if file.steps.is_empty() {
            return Err(invalid("the workflow has no steps (add a [[steps]] table)".into()));
        }
        let base = path.parent().unwrap_or(Path::new("."));
        let mut steps: Vec<WorkflowStep> = Vec::with_capacity(file.steps.len());
        for step in &file.steps {
            let name = step.name.clone();
            let in_step = |message: String| invalid(format!("step `{name}`: {message}"));
            if !is_valid_name(&name) {
                return Err(in_step(
                    "step names are letters, digits and underscores, not starting with a digit".into(),
                ));
            }
            if name == TRIGGER_STEP {
                return Err(in_step("`trigger` is reserved for the trigger's data".into()));
            }
            if steps.iter().any(|s| s.name == name) {
                return Err(in_step("two steps have this name".into()));
            }
            let component = match (&step.component, &step.step, steps_dir) {
                // A server never opens a path a definition names: the
                // answer is the same whether or not the path exists.
                (Some(_), None, Some(_)) => {
                    return Err(in_step(
                        "`component` names a file, which a server does not read: upload it (POST /v1/steps, or `stephost workflow deploy FILE`) and name it with `step = \"<id>\"`".into(),
                    ));
                }
                (Some(file), None, None) => base.join(file),
                (None, Some(id), Some(dir))
                    if id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) =>
                {
                    dir.join(format!("{}.wasm", id.to_ascii_lowercase()))
                }
                (None, Some(id), Some(_)) => {
                    return Err(in_step(format!("`{id}` is not an uploaded step's id (64 hex digits)")));
                }
                (None, Some(_), None) => {
                    return Err(in_step("`step` names an uploaded step, which needs a server; use `component = \"file.wasm\"`".into()));
                }
                (Some(_), Some(_), _) => return Err(in_step("give `component` or `step`, not both".into())),
                (None, None, _) => {
                    return Err(in_step("needs `component = \"file.wasm\"` (or `step` on a server)".into()));
                }
            };
            let limits = limits_of(step).map_err(&in_step)?;
            let policy = HostPolicy::parse(&step.allowed_hosts).map_err(|e| in_step(e.to_string()))?;
            let mut auths = Vec::new();
            let mut accounts = Vec::new();
            for (app, value) in &step.auths {
                match value {
                    toml::Value::String(account) => accounts.push((app.clone(), account.clone())),
                    toml::Value::Table(fields) => auths.push((
                        app.clone(),
                        string_pairs(fields, &format!("auths.{app}")).map_err(&in_step)?,
                    )),
                    _ => {
                        return Err(in_step(format!(
                            "auths.{app} must name a connected account (\"work\") or be a table of fields"
                        )));
                    }
                }
            }
            let env = string_pairs(&step.env, "env").map_err(&in_step)?;
            let secret_env = string_pairs(&step.secret_env, "secret_env").map_err(&in_step)?;
            steps.push(WorkflowStep {
                name,
                component,
                auths,
                accounts,
                env,
                secret_env,
                config: StepConfig { limits, policy: Arc::new(policy), refresher: None },
            });
        }
        let service = service_settings(&file).map_err(invalid)?;
        let name = file.name.unwrap_or_else(|| {
            path.file_stem().map_or("workflow".into(), |s| s.to_string_lossy().into_owned())
        });
        Ok(Self { name, path: path.to_path_buf(), steps, service })
    }

    /// Puts a deployed version's inline secrets (from the store) back in
    /// place of the masks its stored definition holds.
    pub fn fill_secrets(&mut self, secrets: &[crate::store::InlineSecret]) {
        for secret in secrets {
            let Some(step) = self.steps.iter_mut().find(|s| s.name == secret.step) else { continue };
            let slot = match secret.field.split_once('.') {
                Some(("secret_env", name)) => step.secret_env.iter_mut().find(|(n, _)| n == name),
                Some(("auths", rest)) => rest.split_once('.').and_then(|(app, key)| {
                    step.auths
                        .iter_mut()
                        .find(|(a, _)| a == app)
                        .and_then(|(_, fields)| fields.iter_mut().find(|(k, _)| k == key))
                }),
                _ => None,
            };
            if let Some((_, value)) = slot {
                value.clone_from(&secret.value);
            }
        }
    }

    /// The longest a run of this workflow may take: its steps' timeouts
    /// added up.
    pub fn timeout(&self) -> Duration {
        self.steps.iter().map(|s| s.config.limits.timeout).sum()
    }

    /// Every (app, account name) the steps use from the store.
    pub fn accounts(&self) -> Vec<(String, String)> {
        let mut all: Vec<(String, String)> = Vec::new();
        for account in self.steps.iter().flat_map(|s| &s.accounts) {
            if !all.contains(account) {
                all.push(account.clone());
            }
        }
        all
    }

    /// Takes the named accounts' fields and the stored environment
    /// variables (global, then this workflow's; a step's own `env` and
    /// `secret_env` win) from the store; a step with accounts gets the
    /// refresher its egress calls after a 401. Refresh due tokens first
    /// ([`crate::workflow::oauth::AccountRefresher::refresh_due`] on [`Workflow::accounts`]).
    pub async fn attach_store<S: crate::store::Accounts + crate::store::EnvVars + ?Sized>(
        &mut self,
        store: &S,
        refresher: Option<&Arc<crate::workflow::oauth::AccountRefresher>>,
    ) -> Result<(), WorkflowError> {
        let (plain, secret) =
            store.env_for(Some(&self.name)).await.map_err(|e| self.invalid(e.to_string()))?;
        for step in &mut self.steps {
            step.config.refresher = refresher.and_then(|r| r.for_run(step.accounts.clone()));
            for (app, account) in std::mem::take(&mut step.accounts) {
                let fields =
                    store.account_fields(&app, &account).await.map_err(|e| WorkflowError::Invalid {
                        path: self.path.clone(),
                        message: format!("step `{}`: {e}", step.name),
                    })?;
                step.auths.push((app, fields.into_iter().map(|f| (f.key, f.value)).collect()));
            }
            merge_under(&mut step.env, &plain);
            merge_under(&mut step.secret_env, &secret);
        }
        Ok(())
    }

    fn invalid(&self, message: String) -> WorkflowError {
        WorkflowError::Invalid { path: self.path.clone(), message }
    }

    /// Loads every step's component (so a bad one fails before anything
    /// runs), then runs the steps in order until one fails or exits.
    pub async fn run(&self, runtime: &Runtime, event: &Value) -> Result<WorkflowOutcome, WorkflowError> {
        self.run_observed(runtime, event, crate::base::ids::new_run_id(), &[], &mut |_| {}).await
    }

    /// [`Workflow::run`] as run `run_id`, calling `on_step` with the
    /// steps finished so far each time one finishes (the server stores
    /// them and sends a `flow.respond` response at once).
    ///
    /// A replay from a step passes the earlier steps' stored outcomes as
    /// `seed`: those steps are not run (nor loaded), their outcomes start
    /// the run's and later steps see their results under `steps`, as if
    /// they had just run. The seed must be this workflow's first steps, by
    /// name and in order, each successful.
    pub async fn run_observed(
        &self,
        runtime: &Runtime,
        event: &Value,
        run_id: String,
        seed: &[StepOutcome],
        on_step: &mut (dyn FnMut(&[StepOutcome]) + Send),
    ) -> Result<WorkflowOutcome, WorkflowError> {
        if seed.len() >= self.steps.len()
            || seed.iter().zip(&self.steps).any(|(reused, step)| reused.step != step.name)
        {
            let names: Vec<&str> = seed.iter().map(|s| s.step.as_str()).collect();
            return Err(self.invalid(format!(
                "the reused steps ({}) are not this workflow's first steps, followed by one to run",
                names.join(", ")
            )));
        }
        if let Some(failed) = seed.iter().find(|s| s.result.is_err() || s.exit.is_some()) {
            return Err(self.invalid(format!("step `{}` did not succeed: it cannot be reused", failed.step)));
        }
        let to_run = &self.steps[seed.len()..];
        for step in to_run {
            if let Some((app, account)) = step.accounts.first() {
                return Err(self.invalid(format!(
                    "step `{}`: account `{account}` of {app} needs the store (attach_store)",
                    step.name
                )));
            }
            for (app, fields) in &step.auths {
                let invalid = |e: &dyn std::fmt::Display| WorkflowError::Invalid {
                    path: self.path.clone(),
                    message: format!("step `{}`: {e}", step.name),
                };
                let known = runtime.catalog().require(app).map_err(|e| invalid(&e))?;
                for (key, _) in fields {
                    known.require_field(key).map_err(|e| invalid(&e))?;
                }
            }
        }
        let components = to_run
            .iter()
            .map(|step| {
                runtime.load(&step.component).map_err(|source: LoadError| WorkflowError::Load {
                    path: self.path.clone(),
                    step: step.name.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<Arc<StepComponent>>, _>>()?;
        Ok(self.run_loaded(runtime, seed, &components, event, run_id, on_step).await)
    }

    /// Runs the steps after the `seed` ones with their loaded `components`.
    async fn run_loaded(
        &self,
        runtime: &Runtime,
        seed: &[StepOutcome],
        components: &[Arc<StepComponent>],
        event: &Value,
        run_id: String,
        on_step: &mut (dyn FnMut(&[StepOutcome]) + Send),
    ) -> WorkflowOutcome {
        let started = Instant::now();
        // Written into a byte buffer, not through `Display`'s formatter
        // (a `fmt::Write` call per token: ~2% of a five-step run).
        let event_json: Arc<str> = serde_json::to_string(event).expect("a `Value` always serializes").into();
        // `{"event": …}` around the text already written: no copy of the
        // event's `Value`, no second serialization.
        let mut results: Vec<(String, Arc<str>)> =
            vec![(TRIGGER_STEP.to_string(), format!("{{\"event\":{event_json}}}").into())];
        results.extend(seed.iter().map(|reused| (reused.step.clone(), reused.step_result_json().into())));
        let mut outcomes = Vec::with_capacity(self.steps.len());
        outcomes.extend_from_slice(seed);
        if !seed.is_empty() {
            on_step(&outcomes);
        }
        let mut status = WorkflowStatus::Succeeded;
        for (step, component) in self.steps[seed.len()..].iter().zip(components) {
            let input = StepInput {
                run_id: run_id.clone(),
                step_name: step.name.clone(),
                event: event_json.clone(),
                steps: results.clone(),
                auths: step.auths.clone(),
                env: step.env.clone(),
                secret_env: step.secret_env.clone(),
            };
            let outcome = runtime.run(component, input, &step.config).await;
            results.push((step.name.clone(), outcome.step_result_json().into()));
            let ended = match (&outcome.result, &outcome.exit) {
                (Err(error), _) => {
                    Some(WorkflowStatus::Failed { step: step.name.clone(), error: error.to_string() })
                }
                (Ok(_), Some(reason)) => {
                    Some(WorkflowStatus::Exited { step: step.name.clone(), reason: reason.clone() })
                }
                (Ok(_), None) => None,
            };
            outcomes.push(outcome);
            on_step(&outcomes);
            if let Some(ended) = ended {
                status = ended;
                break;
            }
        }
        WorkflowOutcome {
            workflow: self.name.clone(),
            run_id,
            status,
            steps: outcomes,
            duration: started.elapsed(),
        }
    }
}

fn service_settings(file: &WorkflowFile) -> Result<ServiceSettings, String> {
    let retry_backoff = match file.retry_backoff_secs {
        None => Duration::from_secs(2),
        Some(secs) if secs > 0.0 && secs <= 3600.0 => Duration::from_secs_f64(secs),
        Some(secs) => return Err(format!("retry_backoff_secs = {secs} must be above 0 and at most 3600")),
    };
    let retries = file.retries.unwrap_or(0);
    if retries > 20 {
        return Err(format!("retries = {retries} is more than 20"));
    }
    let schedule = file.schedule.as_ref().map(crate::workflow::schedule::Schedule::parse).transpose()?;
    let (keep_runs, keep_days) = match &file.retention {
        None => (None, None),
        Some(retention) => {
            if retention.keep_runs == Some(0) {
                return Err("retention.keep_runs must be at least 1".into());
            }
            if let Some(days) = retention.keep_days.filter(|d| d.is_nan() || *d <= 0.0) {
                return Err(format!("retention.keep_days = {days} must be above 0"));
            }
            (retention.keep_runs, retention.keep_days)
        }
    };
    let cors = cors_origins(&file.cors)?;
    Ok(ServiceSettings {
        respond: file.respond,
        retries,
        retry_backoff,
        schedule,
        keep_runs,
        keep_days,
        cors,
    })
}

/// `cors = [...]`: `*` alone, or origins as a browser sends them
/// (`scheme://host[:port]`, no path), kept in that serialized form.
fn cors_origins(list: &[String]) -> Result<Vec<String>, String> {
    if list.iter().any(|origin| origin == "*") {
        return match list.len() {
            1 => Ok(list.to_vec()),
            _ => Err("cors: `*` allows every origin; list it alone".into()),
        };
    }
    list.iter()
        .map(|origin| {
            let refused =
                |why: &str| format!("cors: `{origin}` is not an origin ({why}), e.g. `https://app.example`");
            let url = url::Url::parse(origin).map_err(|e| refused(&e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(refused("the scheme must be http or https"));
            }
            if url.path() != "/" || origin.ends_with('/') || url.query().is_some() || url.fragment().is_some()
            {
                return Err(refused("an origin has no path"));
            }
            if !url.username().is_empty() || url.password().is_some() {
                return Err(refused("an origin has no user"));
            }
            Ok(url.origin().ascii_serialization())
        })
        .collect()
}

pub use crate::store::MASK;

/// Splits a workflow definition into the text to store and show, with its
/// inline secrets masked, and those secrets: every `secret_env` value, and
/// every field of a `[steps.auths.APP]` table that the catalog does not
/// know as a plain field (secret, or unknown: masked rather than shown).
pub fn mask_secrets(
    text: &str,
    catalog: &crate::catalog::Catalog,
) -> Result<(String, Vec<crate::store::InlineSecret>), String> {
    text.parse::<toml::Table>().map_err(|e| toml_error(text, &e))?;
    let (masked, secrets) = crate::store::mask_definition(text, catalog)?;
    // A definition copied back from an answer holds the mask, not a value:
    // stored, the run would send the mask as the secret.
    if let Some(copied) = secrets.iter().find(|secret| secret.value == MASK) {
        return Err(format!(
            "step `{}`: {} is the mask {MASK} that answers show, not a value: give the real one",
            copied.step, copied.field
        ));
    }
    Ok((masked, secrets))
}

/// Adds `defaults` to `vars` where `vars` has no variable of that name.
pub fn merge_under(vars: &mut Vec<(String, String)>, defaults: &[(String, String)]) {
    for (name, value) in defaults {
        if !vars.iter().any(|(n, _)| n == name) {
            vars.push((name.clone(), value.clone()));
        }
    }
}

fn limits_of(step: &StepFile) -> Result<Limits, String> {
    let mut limits = Limits::default();
    if let Some(secs) = step.timeout_secs {
        if !(secs > 0.0 && secs <= 86_400.0) {
            return Err(format!("timeout_secs = {secs} must be above 0 and at most 86400"));
        }
        limits.timeout = Duration::from_secs_f64(secs);
    }
    if let Some(mib) = step.memory_mib {
        limits.memory_bytes = memory_limit(mib)?;
    }
    if let Some(kib) = step.log_kib {
        limits.log_bytes = kib_limit("log_kib", kib)?;
    }
    if let Some(kib) = step.output_kib {
        limits.output_bytes = kib_limit("output_kib", kib)?;
    }
    Ok(limits)
}

/// Checks a log or output limit in KiB (at least 1) and returns it in bytes.
fn kib_limit(key: &str, kib: u64) -> Result<usize, String> {
    if kib == 0 {
        return Err(format!("{key} = 0 must be at least 1 (KiB)"));
    }
    Ok(usize::try_from(kib.saturating_mul(1024)).unwrap_or(usize::MAX))
}

/// Checks a memory limit in MiB and returns it in bytes.
pub fn memory_limit(mib: u64) -> Result<usize, String> {
    let max_mib = (Limits::MAX_MEMORY_BYTES >> 20) as u64;
    if mib == 0 || mib > max_mib {
        return Err(format!("memory limit {mib} MiB must be between 1 and {max_mib} MiB"));
    }
    Ok((mib << 20) as usize)
}

fn string_pairs(table: &toml::Table, what: &str) -> Result<Vec<(String, String)>, String> {
    table
        .iter()
        .map(|(key, value)| match value {
            toml::Value::String(s) => Ok((key.clone(), s.clone())),
            other => Err(format!("{what}.{key} must be a string, not {}", other.type_str())),
        })
        .collect()
}

/// A TOML error in one line: `line N: message`. Quoted values in the
/// message are left out: the value may be a secret in the wrong place.
fn toml_error(text: &str, error: &toml::de::Error) -> String {
    let message = without_quoted(&error.message().trim().replace('\n', " "));
    match error.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: {message}")
        }
        None => message,
    }
}

/// `message` with every `"…"` quotation replaced by `"…"`. Quotations
/// are read as the messages write them (Rust's escaped form), so a value
/// holding `\"` cannot end one early; an unterminated one is cut to the end.
fn without_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut chars = message.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '"' {
            continue;
        }
        out.push('…');
        let mut escaped = false;
        for inner in chars.by_ref() {
            match (escaped, inner) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    out.push('"');
                    break;
                }
                _ => escaped = false,
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Workflow, String> {
        Workflow::parse(text, Path::new("/flows/w.toml")).map_err(|e| e.to_string())
    }

    #[test]
    fn steps_are_parsed_with_paths_relative_to_the_file() {
        let w = parse(
            r#"
            name = "demo"
            [[steps]]
            name = "post"
            component = "steps/post.wasm"
            allowed_hosts = ["https://slack.com"]
            timeout_secs = 2.5
            memory_mib = 64
            env = { B = "2", A = "1" }
            [steps.auths.slack]
            oauth_access_token = "t"
            oauth_uid = "u"
            "#,
        )
        .unwrap();
        let step = &w.steps[0];
        assert_eq!(step.component, Path::new("/flows/steps/post.wasm"));
        assert_eq!(step.config.limits.timeout, Duration::from_millis(2500));
        assert_eq!(step.config.limits.memory_bytes, 64 << 20);
        assert_eq!(step.env, [("B".into(), "2".into()), ("A".into(), "1".into())]);
        assert_eq!(step.auths[0].1[1], ("oauth_uid".into(), "u".into()));
        assert!(step.config.policy.allows("https", "slack.com", 443));
    }

    #[test]
    fn bad_workflows_get_one_line_errors_naming_the_problem() {
        let cases = [
            ("", "no steps"),
            ("[[steps]]\nname = \"a-b\"\ncomponent = \"x.wasm\"", "step `a-b`: step names are letters"),
            ("[[steps]]\nname = \"trigger\"\ncomponent = \"x.wasm\"", "reserved"),
            (
                "[[steps]]\nname = \"a\"\ncomponent = \"x\"\n[[steps]]\nname = \"a\"\ncomponent = \"y\"",
                "two steps",
            ),
            ("[[steps]]\nname = \"a\"\ncomponent = \"x\"\nmemory_mib = 0", "between 1 and"),
            ("[[steps]]\nname = \"a\"\ncomponent = \"x\"\nlog_kib = 0", "log_kib = 0 must be at least 1"),
            (
                "[[steps]]\nname = \"a\"\ncomponent = \"x\"\noutput_kib = 0",
                "output_kib = 0 must be at least 1",
            ),
            ("[[steps]]\nname = \"a\"\ncomponent = \"x\"\nallowed_hosts = [\"nope\"]", "allowed host `nope`"),
            ("[[steps]]\nname = \"a\"\ncomponent = \"x\"\ntimeout = 3", "line 4: unknown field `timeout`"),
            ("[[steps]]\nname = \"a\"\ncomponent = \"x\"\nenv = { N = 1 }", "env.N must be a string"),
            ("retries = 99\n[[steps]]\nname = \"a\"\ncomponent = \"x\"", "retries = 99 is more than 20"),
            ("[schedule]\ncron = \"* *\"\n[[steps]]\nname = \"a\"\ncomponent = \"x\"", "has 2 fields"),
            ("[retention]\nkeep_runs = 0\n[[steps]]\nname = \"a\"\ncomponent = \"x\"", "keep_runs must be"),
            (
                "cors = [\"app.example\"]\n[[steps]]\nname = \"a\"\ncomponent = \"x\"",
                "`app.example` is not an origin",
            ),
            ("cors = [\"https://a.example/x\"]\n[[steps]]\nname = \"a\"\ncomponent = \"x\"", "has no path"),
            ("cors = [\"ftp://a.example\"]\n[[steps]]\nname = \"a\"\ncomponent = \"x\"", "http or https"),
            (
                "cors = [\"*\", \"https://a.example\"]\n[[steps]]\nname = \"a\"\ncomponent = \"x\"",
                "list it alone",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(expected), "{text:?}: {err}");
            assert!(!err.contains('\n'), "not one line: {err}");
        }
    }

    #[test]
    fn cors_is_off_by_default_and_origins_are_kept_as_browsers_send_them() {
        let off = parse("[[steps]]\nname = \"a\"\ncomponent = \"x\"").unwrap();
        assert!(off.service.cors.is_empty());
        let on = parse("cors = [\"HTTPS://App.Example:443\", \"http://localhost:3000\"]\n[[steps]]\nname = \"a\"\ncomponent = \"x\"")
            .unwrap();
        assert_eq!(on.service.cors, ["https://app.example", "http://localhost:3000"]);
    }

    #[test]
    fn a_definition_holding_the_mask_as_a_secret_is_refused() {
        let text = "[[steps]]\nname = \"a\"\nstep = \"ab\"\nsecret_env = { K = \"••••••••\" }\n";
        let err = mask_secrets(text, &crate::catalog::Catalog::builtin()).unwrap_err();
        assert!(err.contains("secret_env.K is the mask"), "{err}");
    }

    #[test]
    fn inline_secrets_are_masked_and_filled_back_in() {
        let text = r#"
            [[steps]]
            name = "post"
            step = "0000000000000000000000000000000000000000000000000000000000000000"
            secret_env = { API_KEY = "env-inline-secret" }
            env = { PLAIN = "shown" }
            [steps.auths.slack]
            oauth_access_token = "xoxb-inline-secret"
            oauth_uid = "U1"
        "#;
        let (masked, secrets) = mask_secrets(text, &crate::catalog::Catalog::builtin()).unwrap();
        assert!(!masked.contains("inline-secret"), "{masked}");
        assert!(masked.contains("U1") && masked.contains("shown"), "plain values stay: {masked}");
        let fields: Vec<_> = secrets.iter().map(|s| (s.step.as_str(), s.field.as_str())).collect();
        assert_eq!(fields, [("post", "secret_env.API_KEY"), ("post", "auths.slack.oauth_access_token")]);
        assert!(!format!("{secrets:?}").contains("inline-secret"));
        let dir = Path::new("/data/steps");
        let mut workflow = Workflow::parse_with_steps(&masked, Path::new("w"), Some(dir)).unwrap();
        assert_eq!(workflow.steps[0].secret_env[0].1, MASK);
        workflow.fill_secrets(&secrets);
        let step = &workflow.steps[0];
        assert_eq!(step.secret_env, [("API_KEY".into(), "env-inline-secret".into())]);
        assert_eq!(step.auths[0].1[0], ("oauth_access_token".into(), "xoxb-inline-secret".into()));
    }

    #[test]
    fn a_server_refuses_a_component_path_the_same_whether_it_exists_or_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("real.wasm"), b"\0asm").unwrap();
        let answer = |component: &Path| {
            let text =
                format!("[[steps]]\nname = \"a\"\ncomponent = {:?}\n", component.display().to_string());
            Workflow::parse_with_steps(&text, Path::new("w"), Some(Path::new("/data/steps")))
                .unwrap_err()
                .to_string()
                .replace(&component.display().to_string(), "PATH")
        };
        let existing = answer(&dir.path().join("real.wasm"));
        assert!(existing.contains("a server does not read"), "{existing}");
        assert_eq!(existing, answer(&dir.path().join("missing.wasm")));
        assert!(!existing.contains("PATH"), "the path is not echoed: {existing}");
    }

    #[test]
    fn a_toml_error_does_not_quote_the_value() {
        let err =
            parse("[[steps]]\nname = \"a\"\ncomponent = \"x\"\nsecret_env = \"xoxb-misplaced\"").unwrap_err();
        assert!(!err.contains("xoxb-misplaced"), "{err}");
        assert!(err.contains("line 4"), "{err}");
        let values = [r#"'ab"xoxb-hidden'"#, r#""ab\"xoxb-hidden""#, "'''ab\"\" \"xoxb-hidden'''"];
        for value in values {
            let text = format!("[[steps]]\nname = \"a\"\ncomponent = \"x\"\nsecret_env = {value}");
            let err = parse(&text).unwrap_err();
            assert!(!err.contains("xoxb-hidden"), "{value}: {err}");
        }
    }

    #[test]
    fn names_follow_pipedreams_rule() {
        assert!(is_valid_name("fetch_user") && is_valid_name("_x1"));
        assert!(!is_valid_name("1x") && !is_valid_name("a-b") && !is_valid_name(""));
    }
}
