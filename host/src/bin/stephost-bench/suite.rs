//! `stephost-bench`: every comparison of issue 7 in one process run,
//! on the same machine: the bare-wasmtime floor, stephost's trivial step,
//! its peers (Node.js `vm`, a Node.js process, `wasmtime run`), cold loads
//! of Rust/JS/Python steps, the egress proxy against direct reqwest,
//! scaling with runs waiting on I/O, a five-step workflow, and building
//! JS/Python steps.

use super::machine::{self, RssSampler};
use super::measure::{self, Samples, latencies, throughput};
use super::peers;
use super::report::{Report, Row};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stephost::bench::baseline::Baseline;
use stephost::{HostPolicy, Runtime, RuntimeConfig, StepComponent, StepConfig, StepInput, Workflow};

/// What the suite needs from the command line.
pub struct SuiteOptions {
    /// Where the built bench steps are (`echo.wasm`, `relay.wasm`,
    /// `fetch.wasm`, `echo_command.wasm`).
    pub steps_dir: PathBuf,
    /// The `wasmtime` CLI for the `wasmtime run` peer (else found on PATH).
    pub wasmtime: Option<PathBuf>,
    /// The data directory: JS/Python toolchains and built steps live there.
    pub data_dir: PathBuf,
    /// Fewer runs and shorter windows: a smoke run, not a measurement.
    pub quick: bool,
    /// Skip building and measuring JS and Python steps.
    pub no_languages: bool,
    /// Run only these parts (see [`SECTIONS`]); empty: all.
    pub only: Vec<String>,
    /// A PostgreSQL server's admin URL: the server part makes a database per
    /// row there and measures 1, 2 and 3 nodes (without it, only SQLite).
    pub database: Option<String>,
}

/// How long each measurement runs.
struct Effort {
    runs: u32,
    process_runs: u32,
    window: Duration,
    workflow_runs: u32,
    language_runs: u32,
    egress_batches: u32,
}

impl Effort {
    fn new(quick: bool) -> Self {
        match quick {
            false => Self {
                runs: 20_000,
                process_runs: 40,
                window: Duration::from_secs(3),
                workflow_runs: 2_000,
                language_runs: 300,
                egress_batches: 40,
            },
            true => Self {
                runs: 200,
                process_runs: 3,
                window: Duration::from_millis(200),
                workflow_runs: 20,
                language_runs: 5,
                egress_batches: 2,
            },
        }
    }
}

/// The trivial step's event.
const EVENT: &str = r#"{"name":"Ada","email":"ada@example.com","plan":"pro"}"#;

/// The parts of the suite, in the order they run (`--only` picks some).
pub const SECTIONS: &[&str] = &[
    "baseline",
    "step",
    "node",
    "wasmtime",
    "workflow",
    "egress",
    "scaling",
    "server",
    "inspector",
    "cold",
    "builds",
];

/// The built bench steps.
struct Steps {
    echo: PathBuf,
    relay: PathBuf,
    fetch: PathBuf,
    echo_command: PathBuf,
}

/// Runs every comparison (or those in `only`); prints progress to stderr
/// and returns the report.
pub fn run(options: &SuiteOptions) -> Result<Report> {
    if let Some(unknown) = options.only.iter().find(|name| !SECTIONS.contains(&name.as_str())) {
        bail!("--only {unknown}: no such part (parts: {})", SECTIONS.join(", "));
    }
    let wants = |section: &str| options.only.is_empty() || options.only.iter().any(|s| s == section);
    let effort = Effort::new(options.quick);
    let step_file = |name: &str| -> Result<PathBuf> {
        let path = options.steps_dir.join(format!("{name}.wasm"));
        if !path.is_file() {
            bail!(
                "{} is missing: build the bench steps first (cargo build --release --target wasm32-wasip2 --manifest-path examples/Cargo.toml)",
                path.display()
            );
        }
        path.canonicalize().with_context(|| format!("cannot resolve {}", path.display()))
    };
    let steps = Steps {
        echo: step_file("echo")?,
        relay: step_file("relay")?,
        fetch: step_file("fetch")?,
        echo_command: step_file("echo_command")?,
    };
    let scratch = tempfile::tempdir().context("cannot create a scratch directory")?;
    let mut report = Report::new(machine::describe());
    if options.quick {
        report
            .notes
            .push("quick mode: few runs and short windows, smoke numbers rather than a measurement".into());
    }
    if !options.only.is_empty() {
        report.notes.push(format!("only these parts ran (--only): {}", options.only.join(", ")));
    }
    if !machine::reset_peak_rss() {
        report
            .notes
            .push("in-process peak RSS is the process's peak so far (/proc/self/clear_refs refused)".into());
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if wants("baseline") {
        baseline_section(&mut report, &rt, &effort, &steps)?;
    }
    if wants("step") {
        step_section(&mut report, &rt, &effort, &steps)?;
    }
    if wants("node") {
        node_section(&mut report, &effort)?;
    }
    if wants("wasmtime") {
        wasmtime_section(&mut report, &effort, &steps, options, scratch.path())?;
    }
    if wants("workflow") {
        workflow_section(&mut report, &rt, &effort, &steps, scratch.path())?;
    }
    if wants("egress") {
        progress("egress: proxy versus direct reqwest");
        let runtime = Runtime::new(RuntimeConfig::default())?;
        let fetch = runtime.load(&steps.fetch)?;
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)?;
        let log = stephost::audit::AuditLog::open(
            &scratch.path().join("egress-audit.jsonl"),
            stephost::audit::AuditKey::new(key),
        )?;
        let audited = Runtime::new(RuntimeConfig { audit: Some(Arc::new(log)), ..Default::default() })?;
        report.egress = Some(rt.block_on(stephost::bench::egress(
            &runtime,
            &fetch,
            Some(&audited),
            effort.egress_batches,
            200,
        ))?);
    }
    if wants("scaling") {
        progress("scaling: runs waiting on I/O");
        let levels: &[usize] = if options.quick { &[1, 10] } else { &[1, 10, 100, 1_000] };
        report.scaling = scaling(&steps.fetch, levels, Duration::from_millis(50))?;
    }
    if wants("server") {
        server_section(&mut report, &rt, &steps, options)?;
    }
    if wants("inspector") {
        let (runs, requests) = if options.quick { (1_000, 50) } else { (10_000, 300) };
        progress(&format!("inspector: the web page's reads with {runs} runs stored"));
        let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
        report.inspector =
            Some(rt.block_on(stephost::bench::inspector(runtime, &steps.echo, runs, requests))?);
    }
    // Last: JS and Python steps leave hundreds of MB mapped.
    if wants("cold") {
        cold_section(&mut report, &rt, &effort, &steps, options, scratch.path())?;
    }
    if wants("builds") && !options.no_languages {
        for (language, source) in [("JavaScript", ECHO_JS), ("Python", ECHO_PY)] {
            // Installs the toolchains if they are not yet.
            if let Err(e) = build_language_step(language, source, &options.data_dir) {
                report.notes.push(format!("{language} builds skipped: {e:#}"));
                continue;
            }
            progress(&format!("builds: {language} first build, rebuilds, first run"));
            match rt.block_on(super::builds::measure(language, &options.data_dir, scratch.path())) {
                Ok(row) => report.builds.push(row),
                Err(e) => report.notes.push(format!("{language} builds not measured: {e:#}")),
            }
        }
    }
    Ok(report)
}

/// Durable HTTP triggers of the trivial step through `serve`: the embedded
/// store, then (given a PostgreSQL server) 1, 2 and 3 nodes, each row on a
/// new database.
fn server_section(
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    steps: &Steps,
    options: &SuiteOptions,
) -> Result<()> {
    let (triggers, clients) = if options.quick { (200, 16) } else { (5_000, 64) };
    let runtime =
        Arc::new(Runtime::new(RuntimeConfig { max_concurrent_runs: 64, ..RuntimeConfig::default() })?);
    progress("server: durable triggers on the embedded store");
    let embedded = rt.block_on(stephost::bench::triggers(runtime.clone(), &steps.echo, triggers, clients))?;
    report.server.push(("SQLite (embedded)".into(), embedded));
    let Some(admin) = &options.database else {
        report.notes.push("server on PostgreSQL skipped: no --database (scripts/bench.sh starts one)".into());
        return Ok(());
    };
    for nodes in 1..=3 {
        progress(&format!("server: durable triggers on PostgreSQL, {nodes} node(s)"));
        let database = rt.block_on(fresh_database(admin))?;
        let cluster = stephost::bench::Cluster { database: &database, nodes };
        let row = rt.block_on(stephost::bench::triggers_on(
            runtime.clone(),
            &steps.echo,
            triggers,
            clients,
            Some(cluster),
        ))?;
        report.server.push((format!("PostgreSQL, {nodes} node{}", if nodes == 1 { "" } else { "s" }), row));
    }
    Ok(())
}

/// A new empty database on the PostgreSQL server at `admin`: its URL.
async fn fresh_database(admin: &str) -> Result<String> {
    let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
        .await
        .context("cannot connect to the --database server")?;
    let driver = tokio::spawn(connection);
    let name = format!("stephost_bench_{}", &stephost::base::ids::unguessable_hex()[..12]);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .context("cannot create a bench database")?;
    drop(client);
    let _ = driver.await;
    let mut url = url::Url::parse(admin).context("--database is not a URL")?;
    url.set_path(&name);
    Ok(url.to_string())
}

fn baseline_section(
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    effort: &Effort,
    steps: &Steps,
) -> Result<()> {
    progress("bare wasmtime (baseline)");
    machine::reset_peak_rss();
    let baseline = Arc::new(Baseline::new(&steps.echo, EVENT)?);
    let (samples, _) =
        rt.block_on(latencies(1_000, effort.runs, || async { baseline.run_once().await.map(drop) }))?;
    let rate = throughput(measure::cores(), effort.window, move || {
        let baseline = baseline.clone();
        async move { baseline.run_once().await.map(drop) }
    })?;
    report.runs.push(Row::timed("bare wasmtime: InstancePre + pooling, empty WASI (floor)", &samples, rate));
    report.baseline = Some(samples.median());
    Ok(())
}

fn step_section(
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    effort: &Effort,
    steps: &Steps,
) -> Result<()> {
    progress("stephost trivial step");
    machine::reset_peak_rss();
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
    let step = runtime.load(&steps.echo)?;
    let input = StepInput { step_name: "echo".into(), event: EVENT.into(), ..Default::default() };
    let (samples, _) = rt.block_on(latencies(1_000, effort.runs, || run_checked(&runtime, &step, &input)))?;
    let rate = throughput(measure::cores(), effort.window, move || {
        let (runtime, step, input) = (runtime.clone(), step.clone(), input.clone());
        async move { run_checked(&runtime, &step, &input).await }
    })?;
    report.runs.push(Row::timed("stephost: trivial Rust step end to end", &samples, rate));
    report.step = Some((samples, rate));
    Ok(())
}

fn node_section(report: &mut Report, effort: &Effort) -> Result<()> {
    let version = match peers::node_version() {
        Ok(version) => version,
        Err(e) => {
            report.notes.push(format!("Node.js peers skipped: {e}"));
            return Ok(());
        }
    };
    progress("Node.js vm context per run");
    let node = peers::node_vm(EVENT, effort.runs, effort.window)?;
    report.runs.push(Row::peer(&format!("Node.js {version}: fresh `vm` context per run"), &node));
    report.node_vm = Some(node.samples.median());
    progress("Node.js process per run");
    let node = peers::node_process(EVENT, effort.process_runs, effort.window)?;
    report.runs.push(Row::peer(&format!("Node.js {version}: a process per run"), &node));
    report.node_process = Some(node.samples.median());
    Ok(())
}

fn wasmtime_section(
    report: &mut Report,
    effort: &Effort,
    steps: &Steps,
    options: &SuiteOptions,
    scratch: &Path,
) -> Result<()> {
    let Some(wasmtime) = peers::find_wasmtime(options.wasmtime.as_deref()) else {
        report.notes.push(
            "`wasmtime run` peer skipped: no wasmtime CLI (scripts/bench.sh installs wasmtime-cli 48.0.8 into target/tools)"
                .into(),
        );
        return Ok(());
    };
    progress("wasmtime run per run");
    let version = peers::wasmtime_version(&wasmtime);
    let peer = peers::wasmtime_run(
        &wasmtime,
        &steps.echo_command,
        scratch,
        EVENT,
        effort.process_runs,
        effort.window,
    )?;
    report.runs.push(Row::peer(&format!("`{version} run` (precompiled), a process per run"), &peer));
    report.wasmtime_run = Some(peer.samples.median());
    Ok(())
}

/// The five-step relay workflow, passing its data on as text and parsing
/// it, measured in [`TURNS`] rounds that take turns: this machine's speed
/// drifts by tens of percent from one second to the next, and a row
/// measured in one stretch reported whichever speed that stretch had.
fn workflow_section(
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    effort: &Effort,
    steps: &Steps,
    scratch: &Path,
) -> Result<()> {
    let variants = [
        ("stephost: 5-step workflow passing 10 KiB on as JSON text (one task)", ""),
        (
            "stephost: 5-step workflow passing 10 KiB, each step parsing it (one task)",
            "env = { RELAY_PARSE = \"1\" }\n",
        ),
    ];
    progress("5-step workflows passing 10 KiB");
    machine::reset_peak_rss();
    // Compiled into a cache file: `perf` then names the steps' functions.
    let cache = Some(scratch.join("cache-relay"));
    let runtime = Runtime::new(RuntimeConfig { cache_dir: cache, ..Default::default() })?;
    let event = ten_kib_event();
    let workflows = variants
        .iter()
        .map(|(_, env)| {
            let definition = (1..=5)
                .map(|i| {
                    let component = steps.relay.display().to_string();
                    format!("[[steps]]\nname = \"relay{i}\"\ncomponent = {component:?}\n{env}")
                })
                .collect::<String>();
            Workflow::parse(&definition, &scratch.join("relay.toml"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let share = (effort.workflow_runs / TURNS).max(1);
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); workflows.len()];
    for _ in 0..TURNS {
        for (workflow, taken) in workflows.iter().zip(&mut samples) {
            // Each run must finish all five steps; the last run's value is
            // compared with the event after the timing (a deep comparison
            // in the loop would time the harness, not the workflow).
            let last = std::cell::RefCell::new(None);
            let (round, _) = rt.block_on(latencies(20, share, || async {
                let outcome = workflow.run(&runtime, &event).await?;
                if outcome.steps.len() != 5 || outcome.steps.iter().any(|step| step.result.is_err()) {
                    bail!("the relay workflow did not run its five steps: {:?}", outcome.status);
                }
                *last.borrow_mut() = Some(outcome);
                Ok(())
            }))?;
            match last.into_inner().as_ref().and_then(|outcome| outcome.steps.last()).map(|step| &step.result)
            {
                Some(Ok(value)) if *value == event => {}
                _ => bail!("the relay workflow did not pass the event along"),
            }
            taken.extend(round.into_vec());
        }
    }
    for ((what, _), taken) in variants.iter().zip(samples) {
        // One task runs them back to back: runs/s is runs over their sum.
        let one_task = taken.len() as f64 / taken.iter().sum::<Duration>().as_secs_f64();
        report.runs.push(Row::timed(what, &Samples::new(taken), one_task));
    }
    Ok(())
}

fn cold_section(
    report: &mut Report,
    rt: &tokio::runtime::Runtime,
    effort: &Effort,
    steps: &Steps,
    options: &SuiteOptions,
    scratch: &Path,
) -> Result<()> {
    let mut languages = vec![("Rust", steps.echo.clone())];
    if !options.no_languages {
        for (language, source) in [("JavaScript", ECHO_JS), ("Python", ECHO_PY)] {
            match build_language_step(language, source, &options.data_dir) {
                Ok(path) => languages.push((language, path)),
                Err(e) => report.notes.push(format!("{language} step skipped: {e:#}")),
            }
        }
    }
    for (language, component) in &languages {
        progress(&format!("cold load: {language}"));
        let cold = rt.block_on(cold_load(component, scratch, effort.language_runs))?;
        let compile_rss = match peers::compile_peak_rss(component, scratch) {
            Ok(peak) => Some(peak),
            Err(e) => {
                report.notes.push(format!("compiling the {language} step in a new process: {e:#}"));
                None
            }
        };
        report.cold.push(super::report::ColdRow { language: language.to_string(), compile_rss, ..cold });
    }
    // After every cold row: a steady row's runtime is kept for the runs
    // taking turns, and would count in a later cold row's peak RSS.
    let mut loaded = Vec::new();
    for (language, component) in &languages {
        if *language != "Rust" {
            progress(&format!("per run: the {language} step"));
            let (row, runtime, step) = steady_runs(rt, effort, component, scratch, language)?;
            report.runs.push(row);
            loaded.push((language.to_string(), runtime, step));
        }
    }
    if !loaded.is_empty() {
        progress("per run, taking turns: the JS and Python steps and a Node `vm` context");
        report.in_turns = in_turns(rt, effort, &loaded, report.node_vm.is_some())?;
    }
    Ok(())
}

/// Rounds of [`in_turns`].
const TURNS: u32 = 5;

/// The JS and Python steps and the Node `vm` peer measured again in
/// [`TURNS`] rounds, each round a share of the runs of each in turn: their
/// own rows are minutes apart, and this machine's speed drifts by tens of
/// percent over minutes, which alone moved the JS-to-Node ratio from 1.6× to
/// 3×. The ratios of issue 17's targets are taken from these medians.
fn in_turns(
    rt: &tokio::runtime::Runtime,
    effort: &Effort,
    loaded: &[(String, Arc<Runtime>, Arc<StepComponent>)],
    with_node: bool,
) -> Result<Vec<(String, Duration)>> {
    let share = (effort.runs / TURNS).max(1);
    let input = StepInput { step_name: "echo".into(), event: EVENT.into(), ..Default::default() };
    let mut node = Vec::new();
    let mut steps: Vec<Vec<Duration>> = vec![Vec::new(); loaded.len()];
    for _ in 0..TURNS {
        if with_node {
            node.extend(peers::node_vm_latencies(EVENT, share)?.0);
        }
        for ((_, runtime, step), samples) in loaded.iter().zip(&mut steps) {
            let (round, _) = rt.block_on(latencies(20, share, || run_checked(runtime, step, &input)))?;
            samples.extend(round.into_vec());
        }
    }
    let mut medians: Vec<(String, Duration)> = loaded
        .iter()
        .zip(steps)
        .map(|((language, _, _), samples)| (language.clone(), Samples::new(samples).median()))
        .collect();
    if with_node {
        medians.push(("Node".into(), Samples::new(node).median()));
    }
    Ok(medians)
}

/// A JS or Python step per run as the trivial Rust step and the Node `vm`
/// peer are measured (the same warm-up, as many runs, then all cores): the
/// cold row's "each run after" is the first few hundred runs after a
/// restart, still paging the compiled code in.
fn steady_runs(
    rt: &tokio::runtime::Runtime,
    effort: &Effort,
    component: &Path,
    scratch: &Path,
    language: &str,
) -> Result<(super::report::Row, Arc<Runtime>, Arc<StepComponent>)> {
    machine::reset_peak_rss();
    let cache = cache_dir(component, scratch);
    let runtime = Arc::new(Runtime::new(RuntimeConfig { cache_dir: Some(cache), ..Default::default() })?);
    let step = runtime.load(component)?;
    let input = StepInput { step_name: "echo".into(), event: EVENT.into(), ..Default::default() };
    let (samples, _) =
        rt.block_on(latencies(peers::PEER_WARMUP, effort.runs, || run_checked(&runtime, &step, &input)))?;
    let (kept, kept_step) = (runtime.clone(), step.clone());
    let rate = throughput(measure::cores(), effort.window, move || {
        let (runtime, step, input) = (runtime.clone(), step.clone(), input.clone());
        async move { run_checked(&runtime, &step, &input).await }
    })?;
    Ok((super::report::Row::timed(&super::report::language_row(language), &samples, rate), kept, kept_step))
}

/// The compiled-component cache of `component` in the scratch directory:
/// the cold row compiles into it, the steady rows load from it.
fn cache_dir(component: &Path, scratch: &Path) -> PathBuf {
    scratch.join(format!("cache-{}", component.file_stem().unwrap_or_default().to_string_lossy()))
}

fn progress(what: &str) {
    eprintln!("stephost-bench: {what}…");
}

/// One run of `step` that must succeed.
async fn run_checked(runtime: &Runtime, step: &StepComponent, input: &StepInput) -> Result<()> {
    let outcome = runtime.run(step, input.clone(), &StepConfig::default()).await;
    match outcome.result {
        Ok(_) => Ok(()),
        Err(error) => bail!("the step failed, nothing to measure: {error}"),
    }
}

/// An event of ~10 KiB: 100 small records.
fn ten_kib_event() -> Value {
    let items: Vec<Value> =
        (0..100).map(|i| json!({ "id": i, "sku": format!("SKU-{i:05}"), "note": "x".repeat(60) })).collect();
    json!({ "order": "A-1", "items": items })
}

/// The trivial step in JavaScript, the seed's legacy signature.
const ECHO_JS: &str = "export default async (event, steps, auths) => event;\n";
/// The trivial step in Python, Pipedream's handler.
const ECHO_PY: &str = "def handler(pd):\n    return pd.steps[\"trigger\"][\"event\"]\n";

/// Builds the trivial step in `language` with `stephost build`, afresh on
/// every suite run: a step built by an earlier stephost would measure that
/// stephost's build (its entry code and bindings), not this one's.
fn build_language_step(language: &str, source: &str, data_dir: &Path) -> Result<PathBuf> {
    let extension = if language == "Python" { "py" } else { "mjs" };
    let dir = data_dir.join("bench");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let out = dir.join(format!("echo-{extension}.wasm"));
    progress(&format!("building the {language} step"));
    let file = dir.join(format!("echo.{extension}"));
    std::fs::write(&file, source)?;
    stephost::build::build(&file, &out, data_dir)?;
    Ok(out)
}

/// First run with an empty cache (compile), then after a restart (a new
/// runtime on the same cache directory: read the compiled code), then
/// steady per-run time.
async fn cold_load(component: &Path, scratch: &Path, runs: u32) -> Result<super::report::ColdRow> {
    let cache = cache_dir(component, scratch);
    let config = || RuntimeConfig { cache_dir: Some(cache.clone()), ..Default::default() };
    let input = StepInput { step_name: "echo".into(), event: EVENT.into(), ..Default::default() };
    let size = std::fs::metadata(component)?.len();
    machine::reset_peak_rss();
    let runtime = Runtime::new(config())?;
    let started = Instant::now();
    let step = runtime.load(component)?;
    run_checked(&runtime, &step, &input).await?;
    let compiled = started.elapsed();
    drop((step, runtime));

    let runtime = Runtime::new(config())?;
    let started = Instant::now();
    let step = runtime.load(component)?;
    let load = started.elapsed();
    if step.source != stephost::runtime::cache::CacheSource::Disk {
        bail!("{} was not read from the disk cache after the restart", component.display());
    }
    run_checked(&runtime, &step, &input).await?;
    let restarted = started.elapsed();
    let (each, _) = latencies(3, runs, || run_checked(&runtime, &step, &input)).await?;
    Ok(super::report::ColdRow {
        language: String::new(),
        size,
        compiled,
        load,
        restarted,
        each,
        peak_rss: machine::peak_rss_bytes(),
        compile_rss: None,
    })
}

/// One level of the scaling run.
pub struct ScaleRow {
    pub concurrent: usize,
    pub runs: usize,
    pub runs_per_s: f64,
    pub latency: Samples,
    pub peak_rss: u64,
    /// Peak RSS above the level's starting RSS, per run the server held
    /// at once (a lower bound of the instances alive then).
    pub per_run_bytes: u64,
    /// The most requests the loopback server held at once.
    pub max_waiting: u64,
}

/// Runs of `fetch` each waiting `delay` on a loopback server, `concurrent`
/// at a time, on a multi-threaded runtime with one worker per core.
fn scaling(fetch: &Path, levels: &[usize], delay: Duration) -> Result<Vec<ScaleRow>> {
    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(measure::cores()).enable_all().build()?;
    rt.block_on(async {
        let waiting = Arc::new(AtomicU64::new(0));
        let most = Arc::new(AtomicU64::new(0));
        let (w, m) = (waiting.clone(), most.clone());
        let app = axum::Router::new().route(
            "/wait",
            axum::routing::get(move || {
                let (waiting, most) = (w.clone(), m.clone());
                async move {
                    let now = waiting.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    waiting.fetch_sub(1, Ordering::SeqCst);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = Arc::new(StepConfig {
            policy: Arc::new(HostPolicy::parse(&[format!("http://{addr}")])?),
            ..Default::default()
        });
        let input = StepInput {
            step_name: "wait".into(),
            event: json!({ "url": format!("http://{addr}/wait") }).to_string().into(),
            ..Default::default()
        };
        let mut rows = Vec::new();
        for &concurrent in levels {
            progress(&format!("scaling: {concurrent} at once"));
            let runs = (concurrent * 4).max(20);
            // A fresh runtime a level: no instance slots kept warm by the last.
            let runtime = Arc::new(Runtime::new(RuntimeConfig::default())?);
            let step = runtime.load(fetch)?;
            most.store(0, Ordering::SeqCst);
            let before = machine::rss_bytes();
            let sampler = RssSampler::start();
            let next = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let tasks: Vec<_> = (0..concurrent)
                .map(|_| {
                    let (runtime, step, input, config, next) =
                        (runtime.clone(), step.clone(), input.clone(), config.clone(), next.clone());
                    tokio::spawn(async move {
                        let mut times = Vec::new();
                        while next.fetch_add(1, Ordering::Relaxed) < runs as u64 {
                            let outcome = runtime.run(&step, input.clone(), &config).await;
                            if let Err(error) = outcome.result {
                                bail!("a waiting run failed: {error}");
                            }
                            times.push(outcome.duration);
                        }
                        Ok(times)
                    })
                })
                .collect();
            let mut times = Vec::with_capacity(runs);
            for task in tasks {
                times.extend(task.await??);
            }
            let took = started.elapsed();
            let peak = sampler.stop();
            rows.push(ScaleRow {
                concurrent,
                runs,
                runs_per_s: runs as f64 / took.as_secs_f64(),
                latency: Samples::new(times),
                peak_rss: peak,
                per_run_bytes: peak.saturating_sub(before) / most.load(Ordering::SeqCst).max(1),
                max_waiting: most.load(Ordering::SeqCst),
            });
        }
        Ok(rows)
    })
}
