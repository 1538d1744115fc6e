//! `stephost serve`: upload steps, deploy workflows, trigger them over HTTP,
//! and inspect every run. Events are committed to the store before the
//! trigger answers; a bounded pool of workers runs them.

mod api;
mod auth;
mod cors;
mod events;
mod intake;
mod nodes;
pub mod owner;
mod retention;
mod signals;
#[cfg(test)]
mod tests;
mod timers;
mod trigger;
mod web;
mod worker;

use crate::runtime::Runtime;
use crate::store::{
    Backend, Lease, NodeInfo, RunStatus, RunSummary, Sqlite, Store, StoreError, WorkflowRecord,
};
use crate::workflow::Workflow;
use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Where the database, the master key and uploaded steps (`steps/`) live.
    pub data_dir: PathBuf,
    /// Runs executing at once.
    pub workers: usize,
    /// Queued runs beyond which triggers answer 429.
    pub max_queued: u64,
    /// Largest step upload.
    pub max_upload_bytes: usize,
    /// Largest HTTP trigger body.
    pub max_event_bytes: usize,
    /// On SIGTERM, how long running runs may take to finish; queued ones
    /// stay queued for the next start.
    pub grace: Duration,
    /// Finished runs kept per workflow, unless the workflow says otherwise.
    pub keep_runs: Option<u64>,
    /// Days finished runs are kept, unless the workflow says otherwise.
    pub keep_days: Option<f64>,
    /// How often old runs are pruned.
    pub prune_every: Duration,
    /// The time schedules and retention go by.
    pub clock: Arc<dyn crate::base::clock::Clock>,
    /// How long a claimed run stays this process's without a heartbeat;
    /// after that another worker (or process) may claim it again.
    pub lease: Duration,
    /// Uploads compiled at once (compiling takes a core each).
    pub max_compiles: usize,
    /// How long compiling one upload may take; a slower one is refused.
    pub compile_timeout: Duration,
}

impl ServeConfig {
    /// Defaults for a data directory.
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            workers: 4,
            max_queued: 10_000,
            max_upload_bytes: 50 << 20,
            max_event_bytes: 512 << 10,
            grace: Duration::from_secs(30),
            keep_runs: Some(10_000),
            keep_days: Some(30.0),
            prune_every: Duration::from_secs(60),
            clock: Arc::new(crate::base::clock::SystemClock),
            lease: Duration::from_secs(30),
            max_compiles: std::thread::available_parallelism().map_or(1, |n| n.get()),
            compile_timeout: Duration::from_secs(300),
        }
    }
}

/// What every handler shares.
pub struct AppState {
    /// How the server was started.
    pub config: ServeConfig,
    /// Runs every step of every run: one engine, catalog and egress client,
    /// shared.
    pub runtime: Arc<Runtime>,
    /// The store behind the backend traits (SQLite today), so the server
    /// runs unchanged on another backend.
    pub store: Arc<dyn Backend>,
    /// This process's lease owner id: a worker's writes to a run need it.
    /// A server's starts with [`SERVER_OWNER`], so the next server on the
    /// directory knows which runs left `running` were a dead server's.
    pub owner: String,
    /// The data directory's lock, held while the state lives (servers only).
    _lock: Option<owner::ServeLock>,
    /// Leases this process's workers hold, given back after a shutdown
    /// outlasts the grace period.
    leases: Mutex<HashSet<Lease>>,
    /// SHA-256 of the API token.
    token_hash: [u8; 32],
    /// Wakes a worker when a run is queued.
    pub work: tokio::sync::Notify,
    /// Set on shutdown: workers finish their run and take no other.
    pub stopping: std::sync::atomic::AtomicBool,
    /// Wakes the scheduler when a deploy changed a schedule.
    schedules_changed: tokio::sync::Notify,
    /// Parsed workflow versions (a version never changes).
    parsed: Mutex<HashMap<(String, u64), Arc<Workflow>>>,
    /// HTTP triggers of `respond` workflows waiting for their run's answer.
    waiting: Mutex<HashMap<String, tokio::sync::oneshot::Sender<Reply>>>,
    /// Events on their way to the store (see [`intake`]).
    intake: tokio::sync::mpsc::UnboundedSender<intake::Intake>,
    /// Refreshes runs' OAuth tokens, before a run and after a 401.
    pub refresher: Arc<crate::workflow::oauth::AccountRefresher>,
    /// Bounds the uploads compiling at once (`max_compiles`).
    compiles: Arc<tokio::sync::Semaphore>,
    /// Where this process serves, once known (`/v1/nodes` shows it).
    listen: OnceLock<std::net::SocketAddr>,
    /// When this state was made, ms since the Unix epoch.
    started_ms: i64,
    /// Runs queued, started, a step further or finished in this process,
    /// for `GET /v1/events`; a receiver that lags loses the oldest (a
    /// worker never waits for a reader).
    events: tokio::sync::broadcast::Sender<RunSummary>,
    /// Set once the server stops accepting: open event streams end, so
    /// the graceful shutdown need not wait for their clients to leave.
    closing: tokio::sync::watch::Sender<bool>,
}

/// What a waiting HTTP trigger gets from its run.
pub(crate) use crate::store::RunReply as Reply;

impl AppState {
    /// Opens the store of the data directory `lock` holds, takes or makes
    /// the API token (returned in clear only when it was just generated, to
    /// be printed once), and requeues the runs a server left running: with
    /// the lock held no other server lives, so those are a dead server's.
    /// Runs a CLI command holds keep their lease (see [`Self::open_local`]).
    pub fn open(
        config: ServeConfig,
        runtime: Arc<Runtime>,
        lock: owner::ServeLock,
    ) -> Result<(Arc<Self>, Option<String>), StoreError> {
        check_lock(&lock, &config)?;
        let store = Store::open(&config.data_dir)?;
        let (token_hash, generated) = auth::token_hash(&store)?;
        store.requeue_running_of(SERVER_OWNER)?;
        let owner = lease_owner(SERVER_OWNER);
        let state =
            Self::build(config, runtime, Arc::new(Sqlite::new(store)?), token_hash, owner, Some(lock));
        Ok((state, generated))
    }

    /// [`Self::open`] on a store other nodes may serve at the same time
    /// (PostgreSQL): the token is taken or made through the store, and no
    /// run left `running` is requeued at start (it may be a live node's;
    /// the reaper requeues runs whose lease expired). The node registers
    /// itself in the store under its lease owner id; `listen` is where it
    /// serves, as `/v1/nodes` shows it. [`serve_until`] keeps the
    /// registration alive and removes it on a clean shutdown.
    pub async fn open_shared(
        config: ServeConfig,
        runtime: Arc<Runtime>,
        lock: owner::ServeLock,
        store: Arc<dyn Backend>,
        listen: std::net::SocketAddr,
    ) -> Result<(Arc<Self>, Option<String>), StoreError> {
        check_lock(&lock, &config)?;
        let (token_hash, generated) = auth::shared_token_hash(&*store).await?;
        let owner = lease_owner(SERVER_OWNER);
        let state = Self::build(config, runtime, store, token_hash, owner, Some(lock));
        let _ = state.listen.set(listen);
        state.store.register_node(&state.node_info()).await?;
        Ok((state, generated))
    }

    /// [`Self::open_local`] on a given store (the CLI's local commands with
    /// `--database`): no token, no lock, no worker.
    pub fn open_local_on(config: ServeConfig, runtime: Arc<Runtime>, store: Arc<dyn Backend>) -> Arc<Self> {
        let mut unmatchable = [0u8; 32];
        getrandom::fill(&mut unmatchable).expect("the system's random source");
        Self::build(config, runtime, store, unmatchable, lease_owner("cli"), None)
    }

    /// The state for the CLI working on its own data directory in this
    /// process beside any server: no token, no lock, no requeue, and no
    /// worker; it runs only the runs it queued itself, under a lease.
    pub fn open_local(config: ServeConfig, runtime: Arc<Runtime>) -> Result<Arc<Self>, StoreError> {
        let store = Sqlite::open(&config.data_dir)?;
        let mut unmatchable = [0u8; 32];
        getrandom::fill(&mut unmatchable).expect("the system's random source");
        Ok(Self::build(config, runtime, Arc::new(store), unmatchable, lease_owner("cli"), None))
    }

    /// The state on any backend, the API token given by its SHA-256. No
    /// lock and no requeue: runs a dead process held are claimed again once
    /// their lease expires. Call it inside a Tokio runtime (the intake
    /// commits through it).
    pub fn with_backend(
        config: ServeConfig,
        runtime: Arc<Runtime>,
        store: Arc<dyn Backend>,
        token_hash: [u8; 32],
    ) -> Arc<Self> {
        Self::build(config, runtime, store, token_hash, lease_owner("process"), None)
    }

    fn build(
        config: ServeConfig,
        runtime: Arc<Runtime>,
        store: Arc<dyn Backend>,
        token_hash: [u8; 32],
        owner: String,
        lock: Option<owner::ServeLock>,
    ) -> Arc<Self> {
        let (intake_sender, events) = tokio::sync::mpsc::unbounded_channel();
        let refresher = crate::workflow::oauth::AccountRefresher::new(store.clone(), &runtime);
        let compiles = Arc::new(tokio::sync::Semaphore::new(config.max_compiles.max(1)));
        let state = Arc::new(Self {
            compiles,
            refresher,
            config,
            runtime,
            store,
            owner,
            _lock: lock,
            leases: Default::default(),
            token_hash,
            work: Default::default(),
            stopping: Default::default(),
            schedules_changed: Default::default(),
            parsed: Default::default(),
            waiting: Default::default(),
            intake: intake_sender,
            listen: OnceLock::new(),
            started_ms: crate::base::clock::now_ms(),
            events: tokio::sync::broadcast::channel(events::CAPACITY).0,
            closing: tokio::sync::watch::channel(false).0,
        });
        intake::start(Arc::downgrade(&state), events, tokio::runtime::Handle::current());
        state
    }

    /// The store.
    pub fn store(&self) -> &dyn Backend {
        &*self.store
    }

    /// Waits until no upload is compiling, one abandoned at the compile
    /// limit included (it goes on in a blocking thread, writing the
    /// compiler's function cache into the data directory): whoever removes
    /// the data directory must not race it.
    pub async fn compiles_ended(&self) {
        let all = u32::try_from(self.config.max_compiles.max(1)).unwrap_or(u32::MAX);
        // Closed only if the semaphore is, which nothing does.
        let _all = self.compiles.acquire_many(all).await;
    }

    /// Where uploaded steps live.
    pub fn steps_dir(&self) -> PathBuf {
        self.config.data_dir.join("steps")
    }

    /// A deployed workflow version, parsed once.
    pub(crate) fn workflow(&self, record: &WorkflowRecord) -> Result<Arc<Workflow>, ApiError> {
        let key = (record.name.clone(), record.version);
        if let Some(parsed) = self.parsed.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(parsed.clone());
        }
        let parsed = Arc::new(api::parse(self, &record.name, &record.definition)?);
        self.parsed.lock().unwrap_or_else(|p| p.into_inner()).insert(key, parsed.clone());
        Ok(parsed)
    }

    /// Hands a run's reply to the HTTP trigger waiting for it in this
    /// process, if any; gives the reply back when none waits here.
    pub(crate) fn reply(&self, run: &str, reply: Reply) -> Option<Reply> {
        match self.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(run) {
            Some(waiter) => {
                let _ = waiter.send(reply);
                None
            }
            None => Some(reply),
        }
    }

    /// Hands a run's reply to the trigger waiting for it, wherever it
    /// waits: in this process directly, else (on a shared store, for a
    /// `respond` workflow, the only kind whose trigger waits) through the
    /// store to the node that took the trigger. The first reply wins.
    pub(crate) async fn hand_reply(&self, run: &str, reply: Reply, respond: bool) {
        let Some(reply) = self.reply(run, reply) else { return };
        if respond
            && self.store.is_shared()
            && let Err(e) = self.store.put_reply(run, &reply).await
        {
            eprintln!("stephost: run {run}: handing its reply to the waiting node: {e}");
        }
    }

    /// Whether an HTTP trigger in this process waits for `run`.
    fn is_waiting(&self, run: &str) -> bool {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).contains_key(run)
    }

    /// The runs HTTP triggers in this process wait for.
    fn waiting_runs(&self) -> Vec<String> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }

    /// Wakes up to `n` idle workers (no more than there are).
    fn wake_workers(&self, n: usize) {
        for _ in 0..n.min(self.config.workers.max(1)) {
            self.work.notify_one();
        }
    }

    /// Makes sure every uploaded step `workflow` uses is a file under
    /// [`Self::steps_dir`], fetching what is missing from the store: on a
    /// shared store the upload may have reached another node, and the
    /// store keeps the bytes. On a store only this process serves the
    /// files are the copy, so nothing is fetched.
    pub async fn ensure_step_files(&self, workflow: &Workflow) -> Result<(), StoreError> {
        for step in &workflow.steps {
            self.ensure_step_file(&step.component).await?;
        }
        Ok(())
    }

    /// [`Self::ensure_step_files`] for one step file: fetched, checked
    /// against its id (the bytes' SHA-256) and written atomically, so no
    /// reader ever sees half a component or another component's bytes.
    async fn ensure_step_file(&self, path: &std::path::Path) -> Result<(), StoreError> {
        let dir = self.steps_dir();
        if !self.store.is_shared() || path.parent() != Some(dir.as_path()) || path.exists() {
            return Ok(());
        }
        let Some(id) = path.file_stem().and_then(|s| s.to_str()).filter(|id| api::is_step_id(id)) else {
            return Ok(());
        };
        let id = id.to_string();
        let bytes = self.store.step_bytes(&id).await?.ok_or_else(|| {
            StoreError::NotFound(format!("step {id} is not in the store (deleted? upload it again)"))
        })?;
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || write_step_file(&dir, &path, &id, &bytes))
            .await
            .map_err(|e| StoreError::Invalid(format!("writing a step file: {e}")))?
    }

    /// Tells the event streams open in this process about a run; no
    /// stream open, nothing happens.
    fn announce(&self, run: RunSummary) {
        let _ = self.events.send(run);
    }

    /// [`Self::announce`] with the summary made only if a stream is open.
    fn announce_with(&self, run: impl FnOnce() -> RunSummary) {
        if self.events.receiver_count() > 0 {
            self.announce(run());
        }
    }

    /// This process as the node registry and `/v1/nodes` show it.
    fn node_info(&self) -> NodeInfo {
        NodeInfo {
            id: self.owner.clone(),
            host: host_name(),
            pid: std::process::id(),
            listen: self.listen.get().map(|a| a.to_string()).unwrap_or_default(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            lease_ms: self.config.lease.as_millis() as u64,
        }
    }
}

/// Refuses a lock taken on another directory than the one `config` serves.
fn check_lock(lock: &owner::ServeLock, config: &ServeConfig) -> Result<(), StoreError> {
    if lock.data_dir() != config.data_dir {
        return Err(StoreError::Invalid(format!(
            "the lock of {} cannot open {}",
            lock.data_dir().display(),
            config.data_dir.display()
        )));
    }
    Ok(())
}

/// Writes a step's bytes from the store as `path` (`<dir>/<id>.wasm`),
/// refusing bytes that are not the step's: its id is their SHA-256.
fn write_step_file(
    dir: &std::path::Path,
    path: &std::path::Path,
    id: &str,
    bytes: &[u8],
) -> Result<(), StoreError> {
    use sha2::{Digest, Sha256};
    let actual = hex::encode(Sha256::digest(bytes));
    if !actual.eq_ignore_ascii_case(id) {
        return Err(StoreError::Invalid(format!(
            "step {id}: the store's bytes have SHA-256 {actual}, not the step's id; refused"
        )));
    }
    let io = |e: std::io::Error| {
        StoreError::Invalid(format!("step {id}: cannot write {} from the store: {e}", path.display()))
    };
    crate::base::files::create_private_dir(dir).map_err(io)?;
    let file = tempfile::Builder::new().suffix(".wasm").tempfile_in(dir).map_err(io)?;
    std::fs::write(file.path(), bytes).map_err(io)?;
    file.persist(path).map_err(|e| io(e.error))?;
    Ok(())
}

/// The machine's host name, as nodes list it ("" if the system has none).
fn host_name() -> String {
    let mut buffer = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length, which is passed.
    let done = unsafe { libc::gethostname(buffer.as_mut_ptr().cast(), buffer.len()) };
    if done != 0 {
        return String::new();
    }
    let end = buffer.iter().position(|&b| b == 0).unwrap_or(buffer.len());
    String::from_utf8_lossy(&buffer[..end]).into_owned()
}

/// How a server's lease owner ids begin: only the server holding the data
/// directory's lock uses it.
pub const SERVER_OWNER: &str = "serve:";

/// A lease owner id unique to this process and state: `role`, the pid (for
/// people reading the database) and a random part (pids are reused).
fn lease_owner(role: &str) -> String {
    let role = role.trim_end_matches(':');
    format!("{role}:{}:{}", std::process::id(), &crate::base::ids::unguessable_hex()[..16])
}

/// The routes: management under `/v1` (bearer token), triggers under `/e`.
pub fn router(state: Arc<AppState>) -> Router {
    let management = api::routes(state.clone())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require));
    Router::new()
        .nest("/v1", management)
        .merge(trigger::routes(state.clone()))
        .merge(web::routes())
        .layer(axum::middleware::map_response(close_after_refused_body))
        .with_state(state)
}

/// A body refused for its size was not read to the end, so the connection
/// cannot carry another request: say so, or a client reusing it would see
/// its next request cut off.
async fn close_after_refused_body(mut response: Response) -> Response {
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response
            .headers_mut()
            .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    response
}

/// The management routes without the token check, for the CLI calling them
/// in this process on its own data directory (nothing is listening).
pub fn local_router(state: Arc<AppState>) -> Router {
    Router::new().nest("/v1", api::routes(state.clone())).with_state(state)
}

/// Runs queued runs in this process until `run` has finished (the CLI's
/// `trigger` and `runs replay` without a server).
pub async fn run_until_finished(state: Arc<AppState>, run: &str) -> Result<(), crate::store::StoreError> {
    let lease = state.config.lease;
    loop {
        let Some(record) = state.store().run(run).await? else { return Ok(()) };
        match record.status {
            RunStatus::Queued => {}
            // A server on the same data directory has it, unless its lease
            // expired (then the claim below takes it over).
            RunStatus::Running => {
                match state.store().claim_run_by_id(run, &state.owner, lease).await? {
                    Some(claimed) => worker::run_one(&state, &claimed).await,
                    None => tokio::time::sleep(Duration::from_millis(100)).await,
                }
                continue;
            }
            _ => return Ok(()),
        }
        let due = record.retry_at_ms.unwrap_or(0) as i64;
        if due > crate::base::clock::now_ms() {
            tokio::time::sleep(Duration::from_millis((due - crate::base::clock::now_ms()).max(1) as u64))
                .await;
            continue;
        }
        // Only this run: other queued runs belong to whoever serves the directory.
        if let Some(claimed) = state.store().claim_run_by_id(run, &state.owner, lease).await? {
            worker::run_one(&state, &claimed).await;
        }
    }
}

/// Serves on `listener` with the workers until `shutdown` resolves; then
/// stops accepting, lets running runs finish within the grace period and
/// leaves queued ones in the store.
pub async fn serve_until(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr() {
        let _ = state.listen.set(address);
    }
    let shared = state.store.is_shared();
    // On a shared store a node may take triggers and API calls only, and
    // leave running them to the others.
    let workers = if shared { state.config.workers } else { state.config.workers.max(1) };
    let workers: Vec<_> = (0..workers).map(|_| tokio::spawn(worker::work(state.clone()))).collect();
    let background = [
        tokio::spawn(timers::run_schedules(state.clone())),
        tokio::spawn(retention::prune_forever(state.clone())),
    ];
    // Until the workers are done: a trigger still answering may wait for
    // another node's reply, and the node stays alive while it runs runs.
    let cluster = match shared {
        true => vec![
            tokio::spawn(signals::forward(state.clone())),
            tokio::spawn(nodes::keep_alive(state.clone())),
        ],
        false => Vec::new(),
    };
    let app = router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    let closing = state.clone();
    let shutdown = async move {
        shutdown.await;
        closing.closing.send_replace(true);
    };
    let served = axum::serve(listener, app).with_graceful_shutdown(shutdown).await;
    background.iter().for_each(|task| task.abort());
    if let Err(e) = served {
        cluster.iter().for_each(|task| task.abort());
        return Err(e);
    }
    state.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    state.work.notify_waiters();
    let running = state.leases.lock().unwrap_or_else(|p| p.into_inner()).len();
    eprintln!(
        "stephost: stopping: {running} running run(s) have up to {} to finish; queued runs stay queued for the next start",
        crate::base::units::human_duration(state.config.grace)
    );
    let drained = tokio::time::timeout(state.config.grace, futures::future::join_all(workers)).await;
    if drained.is_err() {
        let held: Vec<Lease> = state.leases.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
        for lease in held {
            if let Err(e) = state.store().release_run(&lease).await {
                eprintln!("stephost: run {}: giving it back to the queue: {e}", lease.run);
            }
        }
        eprintln!("stephost: runs still running after the grace period are queued again");
    }
    cluster.iter().for_each(|task| task.abort());
    if shared && let Err(e) = state.store.remove_node(&state.owner).await {
        eprintln!("stephost: leaving the node list: {e}");
    }
    Ok(())
}

/// [`serve_until`] SIGTERM or Ctrl-C.
pub async fn serve(state: Arc<AppState>, listener: tokio::net::TcpListener) -> std::io::Result<()> {
    serve_until(state, listener, async {
        #[cfg(unix)]
        {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing the SIGTERM handler");
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

/// An error answer: status and one line, as JSON `{"error": "…"}`.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(crate::store::views::ApiErrorBody { error: self.1, run: None })).into_response()
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}
