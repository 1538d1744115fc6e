//! What `stephost bench STEP` measures: end-to-end time of a step, the
//! egress proxy's overhead against a direct reqwest client on the same
//! loopback server, and HTTP triggers through a server. The
//! `stephost-bench` binary (the suite comparing stephost with its peers)
//! measures with the same functions, so both report the same numbers.

pub mod baseline;
mod inspector;

pub use inspector::{InspectorReport, inspector};

use crate::store::RunStatus;
use crate::{HostPolicy, Runtime, StepComponent, StepConfig, StepInput};
use anyhow::{Result, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Times `runs` sequential runs after a warm-up; returns a report.
pub async fn step(runtime: &Runtime, step: &StepComponent, input: &StepInput, runs: u32) -> Result<String> {
    let config = StepConfig::default();
    for _ in 0..100 {
        let outcome = runtime.run(step, input.clone(), &config).await;
        if let Err(error) = outcome.result {
            bail!("the step fails, nothing to measure: {error}");
        }
    }
    let mut samples = Vec::with_capacity(runs as usize);
    let started = Instant::now();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let _ = runtime.run(step, input.clone(), &config).await;
        samples.push(t.elapsed());
    }
    let total = started.elapsed();
    samples.sort();
    Ok(format!(
        "{} runs of {}: median {}, p99 {}, min {}, {:.0} runs/s on one task",
        samples.len(),
        step.path.display(),
        us(quantile(&samples, 0.5)),
        us(quantile(&samples, 0.99)),
        us(samples[0]),
        samples.len() as f64 / total.as_secs_f64()
    ))
}

/// The token the benchmark's server expects; sealed for the step.
const TOKEN: &str = "bench-secret-token-0123456789";

/// Per-request times of direct reqwest and of the proxied `fetch` step:
/// what `stephost bench --egress` prints and the suite tabulates.
pub struct EgressReport {
    /// The loopback server's URL, to say what was fetched.
    pub url: String,
    /// Sequential GETs per batch; the times are per request.
    pub per_batch: u32,
    /// Timed batches (after one warming connections up); the times are
    /// their median.
    pub batches: u32,
    /// A reqwest client calling the server directly: the floor.
    pub direct: Duration,
    /// The same step through bare wasmtime-wasi-http forwarding to reqwest.
    pub bare: Duration,
    /// The step through stephost's egress proxy, a secret swapped in.
    pub proxied: Duration,
    /// The 99th percentile of the bare floor's batches.
    pub bare_p99: Duration,
    /// The 99th percentile of the proxy's batches.
    pub proxied_p99: Duration,
    /// The proxy with every request written to an audit log file, as
    /// `serve` and the CLI keep one (when an audited runtime was given).
    pub audited: Option<Duration>,
}

impl EgressReport {
    /// The proxy's extra time per request, in percent of the direct time.
    pub fn overhead_percent(&self) -> f64 {
        (self.proxied.as_secs_f64() / self.direct.as_secs_f64() - 1.0) * 100.0
    }
}

impl std::fmt::Display for EgressReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sequential GETs to {}, median of {} batches:\n  direct reqwest:                    {} per request\n  step through bare wasi:http → reqwest: {} per request\n  step through the proxy (secret swapped in): {} per request\n  overhead: {:+.0}% ({} per request)",
            self.per_batch,
            self.url,
            self.batches,
            us(self.direct),
            us(self.bare),
            us(self.proxied),
            self.overhead_percent(),
            us(self.proxied.saturating_sub(self.direct))
        )
    }
}

/// Per-request time of `per_batch` sequential GETs, median over `batches`:
/// direct reqwest versus the `fetch` step through the egress proxy with a
/// secret swapped into every request (and, with `audited`, the same
/// through a runtime writing an audit log).
pub async fn egress(
    runtime: &Runtime,
    fetch: &StepComponent,
    audited: Option<&Runtime>,
    batches: u32,
    per_batch: u32,
) -> Result<EgressReport> {
    let audited = match audited {
        Some(runtime) => Some((runtime, runtime.load(&fetch.path)?)),
        None => None,
    };
    let batches = batches.max(1);
    let authorized = Arc::new(AtomicU64::new(0));
    let seen = authorized.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                if headers.get("authorization").is_some_and(|v| v == format!("Bearer {TOKEN}").as_str()) {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/");

    let client = reqwest::Client::builder().no_proxy().build()?;
    let event = serde_json::json!({ "url": url, "times": per_batch }).to_string();
    let bare = baseline::HttpBaseline::new(&fetch.path, &event, vec![("TOKEN".into(), TOKEN.into())])?;
    let config = StepConfig {
        policy: Arc::new(HostPolicy::parse(&[format!("http://{addr}")])?),
        ..Default::default()
    };
    let input = StepInput {
        step_name: "fetch".into(),
        event: event.into(),
        secret_env: vec![("TOKEN".into(), TOKEN.into())],
        ..Default::default()
    };
    let mut swapped = 0;
    // The three paths take turns batch by batch, so a slower moment of the
    // machine falls on all three alike.
    let (mut direct, mut floor, mut proxied, mut logged) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut proxy = async |runtime: &Runtime, fetch: &StepComponent| -> Result<Duration> {
        let before = authorized.load(Ordering::Relaxed);
        let t = Instant::now();
        let outcome = runtime.run(fetch, input.clone(), &config).await;
        let took = t.elapsed();
        swapped += authorized.load(Ordering::Relaxed) - before;
        if let Err(error) = outcome.result {
            bail!("the fetch step failed: {error}");
        }
        Ok(took / per_batch)
    };
    for _ in 0..=batches {
        let t = Instant::now();
        for _ in 0..per_batch {
            client.get(&url).bearer_auth(TOKEN).send().await?.bytes().await?;
        }
        direct.push(t.elapsed() / per_batch);

        let t = Instant::now();
        bare.run_once().await?;
        floor.push(t.elapsed() / per_batch);

        proxied.push(proxy(runtime, fetch).await?);
        if let Some((runtime, fetch)) = &audited {
            logged.push(proxy(runtime, fetch).await?);
        }
    }
    let paths = if audited.is_some() { 2 } else { 1 };
    if swapped != u64::from((batches + 1) * per_batch * paths) {
        bail!("only {swapped} proxied requests carried the swapped-in secret");
    }
    let audited = (!logged.is_empty()).then(|| median(&mut logged.split_off(1)));
    // The first batch of each warms connections up.
    let mut timed = [direct, floor, proxied].map(|mut batches| batches.split_off(1));
    let [direct, bare, proxied] = timed.each_mut().map(|batches| median(batches));
    // `median` left the batches sorted.
    let (bare_p99, proxied_p99) = (quantile(&timed[1], 0.99), quantile(&timed[2], 0.99));
    Ok(EgressReport { url, per_batch, batches, direct, bare, proxied, bare_p99, proxied_p99, audited })
}

/// The `q` quantile of sorted samples.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    quantile(samples, 0.5)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// What the trigger benchmark (`stephost bench --triggers`) measured.
pub struct TriggerReport {
    /// Triggers accepted (each started one run).
    pub triggers: usize,
    /// Clients sending at once.
    pub concurrency: usize,
    /// The server's workers (one per core).
    pub workers: usize,
    /// From the first trigger sent to the last 200 received.
    pub accepted_per_s: f64,
    /// From the first trigger sent to the last run finished.
    pub finished_per_s: f64,
    /// Trigger stored → run finished, from the store's timestamps (ms):
    /// the median.
    pub p50_ms: u64,
    /// The same latency's 99th percentile (ms).
    pub p99_ms: u64,
    /// Triggers answered 429 and sent again.
    pub retried: usize,
}

impl std::fmt::Display for TriggerReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} HTTP triggers ({} at once, {} workers): accepted {:.0}/s, finished {:.0}/s sustained; trigger-to-finish p50 {} ms, p99 {} ms; {} answered 429 and retried",
            self.triggers,
            self.concurrency,
            self.workers,
            self.accepted_per_s,
            self.finished_per_s,
            self.p50_ms,
            self.p99_ms,
            self.retried
        )
    }
}

/// Serves a one-step workflow of `component` on a loopback port from a
/// throw-away data directory, fires `triggers` HTTP triggers from
/// `concurrency` clients (retrying 429s), waits for every run and reports
/// throughput and trigger-to-finish latency.
pub async fn triggers(
    runtime: Arc<Runtime>,
    component: &std::path::Path,
    triggers: usize,
    concurrency: usize,
) -> Result<TriggerReport> {
    triggers_on(runtime, component, triggers, concurrency, None).await
}

/// Deploys the one-step workflow `bench` of the step `hash` on `state`,
/// as an upload and a deploy do: the bytes in the store (where other nodes
/// fetch them), the file in this node's steps directory.
async fn deploy_bench(
    state: &crate::server::AppState,
    hash: &str,
    bytes: &[u8],
) -> Result<crate::store::WorkflowRecord> {
    state.store().put_step(hash, bytes, Some("bench")).await?;
    let steps_dir = state.steps_dir();
    std::fs::create_dir_all(&steps_dir)?;
    std::fs::write(steps_dir.join(format!("{hash}.wasm")), bytes)?;
    let definition = format!("[[steps]]\nname = \"step\"\nstep = \"{hash}\"\n");
    Ok(state.store().put_workflow("bench", &definition, &[]).await?)
}

/// Waits until no run of `bench` is queued or running.
async fn wait_until_idle(state: &crate::server::AppState) -> Result<()> {
    loop {
        let queued = state.store().list_runs(Some("bench"), Some(RunStatus::Queued), 1).await?.len();
        let running = state.store().list_runs(Some("bench"), Some(RunStatus::Running), 1).await?.len();
        if queued + running == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Where [`triggers_on`] keeps its runs: the embedded store of a throw-away
/// data directory, or `nodes` nodes in this process sharing the (empty)
/// PostgreSQL database at `database`, clients spread over them.
pub struct Cluster<'a> {
    /// The database's URL.
    pub database: &'a str,
    /// Nodes serving it, each with its own data directory and port.
    pub nodes: usize,
}

/// [`triggers`] on the embedded store (`cluster` `None`) or on a cluster of
/// nodes sharing one PostgreSQL database.
pub async fn triggers_on(
    runtime: Arc<Runtime>,
    component: &std::path::Path,
    triggers: usize,
    concurrency: usize,
    cluster: Option<Cluster<'_>>,
) -> Result<TriggerReport> {
    use crate::server::{AppState, ServeConfig};
    let node_count = cluster.as_ref().map_or(1, |c| c.nodes.max(1));
    // One worker per core on the embedded store (a worker there is busy on
    // the CPU); four per core on PostgreSQL, where a worker mostly waits on
    // the database's round trips (measured: 1 node, 2 → 8 workers: 432 →
    // 736 runs/s finished on 2 cores).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers_each = if cluster.is_some() { 4 * cores } else { cores };
    // One master key for all the nodes, as a cluster's operator gives them.
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let step = runtime.load(component)?;
    let bytes = std::fs::read(component)?;
    let mut dirs = Vec::new();
    let mut states = Vec::new();
    let mut urls = Vec::new();
    let mut servers = Vec::new();
    let mut endpoint = None;
    for node in 0..node_count {
        let data = tempfile::tempdir()?;
        let mut config = ServeConfig::new(data.path().to_path_buf());
        config.workers = workers_each;
        let lock = crate::server::owner::ServeLock::acquire(data.path())?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let listen = listener.local_addr()?;
        let state = match &cluster {
            Some(cluster) => {
                let (key, clock) = (crate::store::crypto::MasterKey::from_bytes(&key), config.clock.clone());
                let store = crate::store::Postgres::connect(cluster.database, key, clock).await?;
                AppState::open_shared(config, runtime.clone(), lock, Arc::new(store), listen).await?.0
            }
            _ => AppState::open(config, runtime.clone(), lock)?.0,
        };
        if node == 0 {
            endpoint = Some(deploy_bench(&state, &step.hash, &bytes).await?.endpoint);
        }
        urls.push(format!("http://{listen}/e/{}", endpoint.as_deref().unwrap_or_default()));
        servers.push(tokio::spawn(crate::server::serve(state.clone(), listener)));
        states.push(state);
        dirs.push(data);
    }
    let state = states[0].clone();
    let workers = workers_each * node_count;
    let urls = Arc::new(urls);

    let http = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let retried = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency.max(1))
        .map(|client| {
            let (http, next, retried) = (http.clone(), next.clone(), retried.clone());
            // Each client talks to one node, the clients spread evenly.
            let url = urls[client % urls.len()].clone();
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= triggers as u64 {
                        return Ok::<_, anyhow::Error>(ids);
                    }
                    loop {
                        let response =
                            http.post(url.as_str()).json(&serde_json::json!({ "i": i })).send().await?;
                        match response.status().as_u16() {
                            200 => {
                                let body: serde_json::Value = response.json().await?;
                                ids.push(body["run"].as_str().unwrap_or_default().to_string());
                                break;
                            }
                            429 => {
                                retried.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(10)).await;
                            }
                            status => bail!("trigger {i} answered {status}"),
                        }
                    }
                }
            })
        })
        .collect();
    let mut ids = Vec::with_capacity(triggers);
    for client in clients {
        ids.extend(client.await??);
    }
    let accepted = started.elapsed();
    wait_until_idle(&state).await?;
    let finished = started.elapsed();
    servers.iter().for_each(|server| server.abort());
    let mut latencies = Vec::with_capacity(ids.len());
    for id in &ids {
        let run = state.store().run(id).await?.ok_or_else(|| anyhow::anyhow!("run {id} was lost"))?;
        if run.status != RunStatus::Succeeded {
            bail!("run {id} {}: the benchmark's step must succeed", run.status);
        }
        latencies.push(run.finished_ms.unwrap_or(run.created_ms) - run.created_ms);
    }
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok(TriggerReport {
        triggers: ids.len(),
        concurrency,
        workers,
        accepted_per_s: ids.len() as f64 / accepted.as_secs_f64(),
        finished_per_s: ids.len() as f64 / finished.as_secs_f64(),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        retried: retried.load(Ordering::Relaxed) as usize,
    })
}
