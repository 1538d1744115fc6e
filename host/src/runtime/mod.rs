//! The runtime: one engine, one linker, the component cache and the shared
//! HTTP client; and `run`, which gives each run a fresh store under its
//! limits and turns whatever happened into a [`StepOutcome`].

pub(crate) mod bindings;
pub mod cache;
pub mod component;
pub mod engine;
pub mod error;
pub mod function_cache;
mod interfaces;
pub mod limits;
pub mod outcome;
mod random;
pub mod return_value;
mod state;

use self::cache::{CacheSource, ComponentCache};
use self::component::{ComponentReport, StepComponent};
use self::engine::{EpochTicker, build_engine};
use self::error::{LoadError, StepError};
use self::interfaces::{AuthsContext, EventContext, FlowContext, Produced, ShownAccount, StepsContext};
use self::limits::{Limits, MemoryLimiter};
use self::outcome::{AccountFields, StepInput, StepOutcome};
use self::state::StepState;
use crate::audit::{AuditEvent, AuditSink};
use crate::base::files::FileStamp;
use crate::base::ids::new_run_id;
use crate::catalog::Catalog;
use crate::egress::{EgressClient, EgressConfig, EgressContext, EgressHook, HostPolicy};
use crate::logs::{LogSink, LogStream};
use crate::secrets::{Binding, Placement, Vault};
use interfaces::ExitRequested;
use return_value::ReturnValue;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi_http::WasiHttpCtx;

/// How a runtime is set up; one per process.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where compiled components are cached; `None` compiles every load.
    pub cache_dir: Option<PathBuf>,
    /// How the shared HTTP client connects: pins, roots, timeouts, size caps.
    pub egress: EgressConfig,
    /// Instances that may exist at once (sizes the pooling allocator).
    pub max_concurrent_runs: u32,
    /// The apps whose accounts steps may use.
    pub catalog: Arc<Catalog>,
    /// Where audit records go (the keyed log, opened by the caller with a
    /// key derived from the master key); `None` keeps records in outcomes
    /// only.
    pub audit: Option<Arc<dyn AuditSink>>,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            cache_dir: None,
            egress: EgressConfig::default(),
            max_concurrent_runs: 1000,
            catalog: Arc::new(Catalog::builtin()),
            audit: None,
        }
    }
}

/// How one step may run: its limits and where it may connect.
#[derive(Debug, Clone, Default)]
pub struct StepConfig {
    /// Time, memory, output and log limits for each run.
    pub limits: Limits,
    /// Hosts the step itself may reach (the default allows none); the hosts
    /// of the apps whose accounts it is given are added per run.
    pub policy: Arc<HostPolicy>,
    /// Refreshes an OAuth account's token when its app answers 401.
    pub refresher: Option<crate::egress::Refresher>,
}

/// Why the runtime could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the runtime: {0}")]
pub struct RuntimeError(String);

/// An uploaded component that fits the step world, compiled but not yet
/// stored (see [`Runtime::check_upload`]).
pub struct CheckedUpload {
    /// SHA-256 of the component, hex: the uploaded step's id.
    pub hash: String,
    /// Compiled now or read from the disk cache; `None`: already loaded.
    fresh: Option<(StepComponent, wasmtime::component::Component)>,
}

/// Runs step components. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<StepState>,
    cache: ComponentCache,
    client: EgressClient,
    catalog: Arc<Catalog>,
    audit: Option<Arc<dyn AuditSink>>,
    loaded: Mutex<HashMap<String, Arc<StepComponent>>>,
    /// The component last loaded from each path, with the file's stamp
    /// then: an unchanged file is not read and hashed again.
    by_path: Mutex<HashMap<PathBuf, (FileStamp, Arc<StepComponent>)>>,
    _ticker: EpochTicker,
}

impl Runtime {
    /// Builds the engine, links WASI p2 (granting nothing), wasi:http
    /// through the egress hook, and the step interfaces.
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let fail = |e: wasmtime::Error| RuntimeError(format!("{e:#}"));
        let functions = config.cache_dir.as_ref().map(|dir| dir.join("functions"));
        let engine = build_engine(config.max_concurrent_runs, functions).map_err(fail)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(fail)?;
        random::add_to_linker(&mut linker).map_err(fail)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(fail)?;
        interfaces::add_to_linker(&mut linker).map_err(fail)?;
        let cache = ComponentCache::new(&engine, config.cache_dir);
        let client = EgressClient::new(&config.egress).map_err(RuntimeError)?;
        let ticker = EpochTicker::start(&engine);
        Ok(Self {
            engine,
            linker,
            cache,
            client,
            catalog: config.catalog,
            audit: config.audit,
            loaded: Mutex::default(),
            by_path: Mutex::default(),
            _ticker: ticker,
        })
    }

    /// The app catalog steps' accounts are checked against.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The app catalog, to share.
    pub fn catalog_handle(&self) -> Arc<Catalog> {
        self.catalog.clone()
    }

    /// The egress client for the host's own requests that carry secrets
    /// (OAuth token endpoints): it follows no redirects, resolves every name
    /// through the SSRF guard, and honours the pins and extra CA roots.
    pub fn token_client(&self) -> reqwest::Client {
        self.client.reqwest().clone()
    }

    /// The audit log runs write to, if any.
    pub fn audit_log(&self) -> Option<Arc<dyn AuditSink>> {
        self.audit.clone()
    }

    /// Seals the run's secrets: each secret account field and secret
    /// environment variable becomes a placeholder bound to where it may go.
    /// A field the catalog does not know is sealed with no binding at all:
    /// the step can hold it but it can never leave.
    fn seal(&self, input: &StepInput, config: &StepConfig, run_id: &str) -> Sealing {
        let mut vault = Vault::default();
        let mut accounts = Vec::new();
        let mut app_hosts = Vec::new();
        let nowhere = || Binding { hosts: Arc::default(), placements: Vec::new() };
        for (app_name, fields) in &input.auths {
            let app = self.catalog.get(app_name);
            // An account whose hosts cannot be worked out gets none: its
            // secrets can be held but never leave.
            let hosts = app.map(|a| a.hosts_for(fields).unwrap_or_default()).unwrap_or_default();
            app_hosts.push(hosts.clone());
            let shown = fields
                .iter()
                .map(|(key, value)| {
                    let label = format!("{app_name}.{key}");
                    match app.and_then(|a| a.field(key).map(|f| (a, f))) {
                        Some((_, field)) if !field.secret => (key.clone(), value.clone(), false),
                        Some((app, field)) => {
                            (key.clone(), vault.seal(&label, value, app.binding(field, hosts.clone())), true)
                        }
                        None => (key.clone(), vault.seal(&label, value, nowhere()), true),
                    }
                })
                .collect();
            accounts.push(ShownAccount { app: app_name.clone(), fields: shown });
        }
        let mut env = input.env.clone();
        for (name, value) in &input.secret_env {
            let binding = Binding { hosts: config.policy.clone(), placements: vec![Placement::Anywhere] };
            env.push((name.clone(), vault.seal(&format!("env.{name}"), value, binding)));
            // Recorded as handed over: the host cannot see whether the step
            // reads its environment. Once per run, only for this step.
            self.audit_event(run_id, &input.step_name, AuditEvent::SecretEnv { name: name.clone() });
        }
        // Most runs connect no app: their policy is the step's, shared.
        let policy = match app_hosts.is_empty() {
            true => config.policy.clone(),
            false => Arc::new(config.policy.union(app_hosts.iter().map(|h| h.as_ref()))),
        };
        Sealing { vault: Arc::new(vault), accounts, env, policy }
    }

    /// Sends an app's test request with an account's fields through the
    /// egress path, exactly as a step would: secret fields go in as
    /// placeholders and are swapped in by the hook, only for the app's hosts.
    pub async fn test_account(
        &self,
        app: &crate::catalog::App,
        fields: AccountFields,
    ) -> Result<AccountTest, String> {
        use http_body_util::BodyExt;
        let template =
            app.test_request.clone().ok_or_else(|| format!("app `{}` has no test request", app.name))?;
        let run_id = new_run_id();
        let input = StepInput {
            run_id: run_id.clone(),
            step_name: "accounts_test".into(),
            auths: vec![(app.name.clone(), fields)],
            ..StepInput::default()
        };
        let sealing = self.seal(&input, &StepConfig::default(), &run_id);
        let shown = &sealing.accounts[0].fields;
        let fill = |text: &str| {
            shown
                .iter()
                .fold(text.to_string(), |out, (key, value, _)| out.replace(&format!("{{{key}}}"), value))
        };
        let url = fill(&template.url);
        let mut request = http::Request::builder().method(template.method.as_str()).uri(&url);
        for (name, value) in &template.headers {
            request = request.header(name.as_str(), fill(value));
        }
        if let Some(basic) = &template.basic_auth {
            use base64::Engine;
            let credentials = fill(&format!("{{{}}}:{{{}}}", basic.user, basic.password));
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            request = request.header(http::header::AUTHORIZATION, format!("Basic {encoded}"));
        }
        let body = http_body_util::Full::new(bytes::Bytes::from(
            template.body.as_deref().map(fill).unwrap_or_default(),
        ))
        .map_err(|never| match never {})
        .boxed_unsync();
        let request =
            request.body(body).map_err(|e| format!("the test request of `{}` is invalid: {e}", app.name))?;
        let context = self.egress_context(run_id, "accounts_test", &sealing, LogSink::new(64 << 10), None);
        let method = template.method.clone();
        let (status, detail) = match crate::egress::send(context.clone(), request, None).await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                let text: String = String::from_utf8_lossy(&body).chars().take(300).collect();
                (Some(status), text)
            }
            Err(code) => (None, format!("{code:?}")),
        };
        let record = context.records.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let detail = match (&status, &record) {
            (None, Some(r)) => r.error.clone().unwrap_or(detail),
            _ => detail,
        };
        Ok(AccountTest { method, url: sealing.vault.redact(&url), status, detail, record })
    }

    /// The egress state of one run: the one place it is built.
    fn egress_context(
        &self,
        run_id: String,
        step: &str,
        sealing: &Sealing,
        logs: LogSink,
        refresher: Option<crate::egress::Refresher>,
    ) -> Arc<EgressContext> {
        let context = EgressContext::new(
            run_id,
            step.to_string(),
            sealing.policy.clone(),
            sealing.vault.clone(),
            self.client.clone(),
            self.audit.clone(),
            logs,
        );
        Arc::new(context.with_refresher(refresher))
    }

    fn audit_event(&self, run_id: &str, step: &str, event: AuditEvent) {
        if let Some(audit) = &self.audit
            && let Err(e) = audit.append(run_id, step, event)
        {
            eprintln!("stephost: {e}");
        }
    }

    /// Loads a step component: from this process's memory if the same bytes
    /// were loaded before, else from the disk cache (without even reading
    /// the file when it is unchanged since it was last hashed), else
    /// compiled.
    pub fn load(&self, path: &Path) -> Result<Arc<StepComponent>, LoadError> {
        let stamp = FileStamp::of(path);
        if let Some(stamp) = &stamp
            && let Some((seen, step)) = self.by_path.lock().unwrap_or_else(|p| p.into_inner()).get(path)
            && seen == stamp
        {
            return Ok(step.clone());
        }
        let known = stamp.as_ref().and_then(|stamp| self.cache.known_hash(path, stamp));
        let step = match known.and_then(|hash| self.loaded_or_cached(path, &hash)) {
            Some(step) => step,
            None => self.read_and_load(path, stamp.as_ref())?,
        };
        if let Some(stamp) = stamp {
            self.by_path
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(path.to_path_buf(), (stamp, step.clone()));
        }
        Ok(step)
    }

    /// The long way: read and hash the file, then the component of that
    /// hash from memory, the disk cache or the compiler; the hash is noted
    /// with the file's stamp from before the read.
    fn read_and_load(&self, path: &Path, stamp: Option<&FileStamp>) -> Result<Arc<StepComponent>, LoadError> {
        let (bytes, hash) = component::read_component(path)?;
        let step = match self.loaded_by_hash(&hash) {
            Some(step) => step,
            None => self.keep_loaded(component::load(
                &self.engine,
                &self.linker,
                &self.cache,
                path,
                &bytes,
                hash.clone(),
            )?),
        };
        if let Some(stamp) = stamp {
            self.cache.remember_hash(path, stamp, &hash);
        }
        Ok(step)
    }

    /// The component of content `hash` (which `path` holds, unchanged since
    /// it was hashed): from memory, else from the disk cache without reading
    /// `path`. `None` sends the caller the long way.
    fn loaded_or_cached(&self, path: &Path, hash: &str) -> Option<Arc<StepComponent>> {
        self.loaded_by_hash(hash).or_else(|| {
            let step = component::load_cached(&self.engine, &self.linker, &self.cache, path, hash)?;
            Some(self.keep_loaded(step))
        })
    }

    fn loaded_by_hash(&self, hash: &str) -> Option<Arc<StepComponent>> {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).get(hash).cloned()
    }

    fn keep_loaded(&self, step: StepComponent) -> Arc<StepComponent> {
        let step = Arc::new(step);
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).insert(step.hash.clone(), step.clone());
        step
    }

    /// Compiles and links an uploaded component (named `name` in errors)
    /// without storing anything: a component that does not fit the step
    /// world leaves no compiled code behind. [`Runtime::keep_upload`]
    /// stores what the caller accepts.
    pub fn check_upload(&self, name: &Path, bytes: &[u8]) -> Result<CheckedUpload, LoadError> {
        let hash = component::check_component(name, bytes)?;
        if self.loaded_by_hash(&hash).is_some() {
            return Ok(CheckedUpload { hash, fresh: None });
        }
        let fresh =
            component::compile_unstored(&self.engine, &self.linker, &self.cache, name, bytes, hash.clone())?;
        Ok(CheckedUpload { hash, fresh: Some(fresh) })
    }

    /// Keeps a checked upload: its compiled code in the disk cache and in
    /// this process.
    pub fn keep_upload(&self, upload: CheckedUpload) -> Result<(), LoadError> {
        if let Some((step, compiled)) = upload.fresh {
            if step.source == CacheSource::Compiled {
                self.cache.store_compiled(&step.hash, &compiled)?;
            }
            self.keep_loaded(step);
        }
        Ok(())
    }

    /// Forgets a deleted step: the component `path` held, its compiled
    /// code in this process and in the disk cache.
    pub fn forget_step(&self, path: &Path, hash: &str) {
        self.forget_path(path);
        self.forget_compiled(hash);
    }

    /// Forgets the compiled code of content `hash` (a component rebuilt
    /// into something else), in this process and on disk: tens of MB for a
    /// JS or Python step. Loading it again compiles it again.
    pub fn forget_compiled(&self, hash: &str) {
        self.loaded.lock().unwrap_or_else(|p| p.into_inner()).remove(hash);
        self.cache.forget_compiled(hash);
    }

    /// Forgets which component a path held (a temporary file about to go).
    pub fn forget_path(&self, path: &Path) {
        self.by_path.lock().unwrap_or_else(|p| p.into_inner()).remove(path);
        self.cache.forget_hash(path);
    }

    /// Describes a component's imports and exports and whether it fits.
    pub fn inspect(&self, path: &Path) -> Result<ComponentReport, LoadError> {
        component::inspect(&self.engine, &self.linker, &self.cache, path)
    }

    /// Runs a step once in a fresh store. Never panics or fails as a whole:
    /// every way the step can end is in the outcome's `result`.
    pub async fn run(&self, step: &StepComponent, input: StepInput, config: &StepConfig) -> StepOutcome {
        let started = Instant::now();
        let limits = config.limits;
        let step_name = input.step_name.clone();
        let run_id = if input.run_id.is_empty() { new_run_id() } else { input.run_id.clone() };
        let logs = LogSink::new(limits.log_bytes);
        let sealing = self.seal(&input, config, &run_id);
        let vault = sealing.vault.clone();
        let egress =
            self.egress_context(run_id.clone(), &step_name, &sealing, logs.clone(), config.refresher.clone());

        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(logs.pipe(LogStream::Stdout))
            .stderr(logs.pipe(LogStream::Stderr))
            .envs(&sealing.env)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let input = Arc::new(input);
        let state = StepState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            egress: EgressHook::new(egress.clone()),
            memory: MemoryLimiter::new(limits.memory_bytes),
            event: EventContext { input: input.clone() },
            steps: StepsContext { input },
            auths: AuthsContext::new(sealing.accounts),
            flow: FlowContext { produced: Produced::default(), output_limit: limits.output_bytes },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.memory);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);

        let ended = {
            let call = async {
                let instance = step.pre.instantiate_async(&mut store).await.map_err(Ended::Instantiate)?;
                instance.call_run(&mut store).await.map_err(Ended::Trap)
            };
            match tokio::time::timeout(limits.timeout, call).await {
                Ok(Ok(Ok(json))) => Ended::Returned(json),
                Ok(Ok(Err(message))) => Ended::Failed(message),
                Ok(Err(ended)) => ended,
                Err(_) => Ended::TimedOut,
            }
        };

        let state = store.data_mut();
        let produced = std::mem::take(&mut state.flow.produced);
        let memory_exceeded = state.memory.exceeded;
        let reads = std::mem::take(&mut state.auths.reads);
        // Dropping the store drops any response bodies the step left open,
        // which completes their egress records.
        drop(store);
        // One record per secret field read, with how many times, however
        // the run ended.
        for ((app, key), count) in reads {
            self.audit_event(&run_id, &step_name, AuditEvent::SecretRead { app, key, count });
        }
        let (log_lines, logs_truncated) = logs.finish();
        let result = classify(ended, &step_name, &limits, &produced, memory_exceeded, &log_lines);
        let egress = std::mem::take(&mut *egress.records.lock().unwrap_or_else(|p| p.into_inner()));
        redact(
            StepOutcome {
                run_id,
                step: step_name,
                result,
                exports: produced.exports,
                exit: produced.exit,
                response: produced.response,
                logs: log_lines,
                logs_truncated,
                egress,
                duration: started.elapsed(),
                reused_from: None,
            },
            &vault,
        )
    }
}

/// What an account's test request got back.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountTest {
    /// The HTTP method of the app's test request.
    pub method: String,
    /// The URL requested, with secret values replaced by placeholders.
    pub url: String,
    /// The response status, if the request went out and was answered.
    pub status: Option<u16>,
    /// The start of the response body (secrets redacted), or why it failed.
    pub detail: String,
    /// The egress record of the attempt; `None` if none was written.
    pub record: Option<crate::egress::EgressRecord>,
}

/// A run's sealed secrets and what the step is shown.
struct Sealing {
    vault: Arc<Vault>,
    accounts: Vec<ShownAccount>,
    env: Vec<(String, String)>,
    policy: Arc<HostPolicy>,
}

/// Replaces every real secret value in what the step produced (logs,
/// exports, return value, error text, exit reason, response) by its
/// placeholder, before anything is stored or printed.
fn redact(mut outcome: StepOutcome, vault: &Vault) -> StepOutcome {
    if vault.is_empty() {
        return outcome;
    }
    let vault = vault.redaction();
    for line in &mut outcome.logs {
        line.text = vault.redact(&line.text);
    }
    for (_, value) in &mut outcome.exports {
        vault.redact_json(value);
    }
    outcome.result = match outcome.result {
        Ok(mut value) => {
            value.redact(&vault);
            Ok(value)
        }
        Err(error) => Err(error.map_text(|text| vault.redact(text))),
    };
    outcome.exit = outcome.exit.map(|reason| vault.redact(&reason));
    if let Some(response) = &mut outcome.response {
        response.body = vault.redact_bytes(&response.body);
        for (_, value) in &mut response.headers {
            *value = vault.redact(value);
        }
    }
    outcome
}

/// How a run ended, before it is judged against the limits.
enum Ended {
    Returned(String),
    Failed(String),
    Instantiate(wasmtime::Error),
    Trap(wasmtime::Error),
    TimedOut,
}

fn classify(
    ended: Ended,
    step: &str,
    limits: &Limits,
    produced: &Produced,
    memory_exceeded: bool,
    logs: &[crate::LogLine],
) -> Result<ReturnValue, StepError> {
    let step = step.to_string();
    match ended {
        Ended::TimedOut => Err(StepError::TimedOut { step, limit: limits.timeout }),
        Ended::Failed(message) => Err(StepError::Failed { step, message }),
        Ended::Returned(json) => {
            if json.len() > limits.output_bytes {
                return Err(StepError::OutputTooLarge {
                    step,
                    what: "a return value".into(),
                    size: json.len(),
                    limit: limits.output_bytes,
                });
            }
            ReturnValue::from_text(json).map_err(|e| StepError::InvalidJson { step, detail: e.to_string() })
        }
        Ended::Trap(error) | Ended::Instantiate(error) if error.downcast_ref::<ExitRequested>().is_some() => {
            Ok(ReturnValue::null())
        }
        Ended::Trap(_) | Ended::Instantiate(_) if memory_exceeded => {
            Err(StepError::MemoryLimit { step, limit: limits.memory_bytes })
        }
        Ended::Trap(_) if produced.exports_over_limit.is_some() => Err(StepError::OutputTooLarge {
            step,
            what: "exports".into(),
            size: produced.exports_over_limit.unwrap_or_default(),
            limit: limits.output_bytes,
        }),
        Ended::Trap(error) => {
            let backtrace = error.downcast_ref::<wasmtime::WasmBacktrace>().map(|bt| bt.to_string());
            let trap = match error.downcast_ref::<wasmtime::Trap>() {
                Some(trap) => trap.to_string(),
                None => error.root_cause().to_string(),
            };
            let message = match panic_message(logs) {
                Some(panic) => format!("panicked: {panic} ({trap})"),
                None => trap,
            };
            Err(StepError::Trapped { step, message, backtrace })
        }
        Ended::Instantiate(error) => {
            Err(StepError::Instantiate { step, message: error.root_cause().to_string() })
        }
    }
}

/// A Rust guest's panic message, which its panic hook printed to stderr just
/// before trapping: the line after `thread '…' panicked at …:`.
fn panic_message(logs: &[crate::LogLine]) -> Option<String> {
    let stderr: Vec<&str> =
        logs.iter().filter(|l| l.stream == LogStream::Stderr).map(|l| l.text.as_str()).collect();
    let at = stderr.iter().rposition(|line| line.contains("panicked at"))?;
    stderr.get(at + 1).map(|line| line.to_string())
}
