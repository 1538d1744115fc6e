//! What users would pick instead, doing the same work as the trivial step
//! (parse the event, return it as JSON): a Node.js `vm` context per run, a
//! Node.js process per run, and `wasmtime run` as a process per run.

use super::measure::{self, Samples};
use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// One peer's numbers.
pub struct PeerResult {
    pub samples: Samples,
    pub runs_per_s: f64,
    /// The highest resident memory of the peer's process(es), in bytes.
    pub peak_rss: u64,
}

/// Untimed runs before timing, for the Node `vm` peer and the JS and
/// Python steps compared with it (the engines settle: code paged in,
/// caches and JITs warm).
pub const PEER_WARMUP: u32 = 200;

/// The Node.js script behind the `vm` peer: compiles the step once, then
/// per run creates a fresh context (what a host must do to keep runs
/// apart) and runs the step in it. `latency N` prints per-run timings,
/// `throughput MS` the runs done in MS milliseconds, each after `WARMUP`
/// untimed runs (the first argument).
const NODE_VM: &str = r#"
const vm = require('node:vm');
const eventText = require('node:fs').readFileSync(0, 'utf8');
const script = new vm.Script(
  'JSON.stringify((function step(event, steps, auths) { return event; })(JSON.parse(eventText), {}, {}))');
function once() {
  return script.runInContext(vm.createContext({ eventText }));
}
if (once() !== JSON.stringify(JSON.parse(eventText))) throw new Error('the vm step returned something else');
const [warmup, mode, n] = process.argv.slice(-3).map((arg, i) => (i === 1 ? arg : Number(arg)));
for (let i = 0; i < warmup; i++) once();
const out = { max_rss_kib: 0 };
if (mode === 'latency') {
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    once();
    samples.push(Number(process.hrtime.bigint() - t));
  }
  out.samples_ns = samples;
} else {
  const until = process.hrtime.bigint() + BigInt(n) * 1000000n;
  const started = process.hrtime.bigint();
  let runs = 0;
  while (process.hrtime.bigint() < until) { once(); runs++; }
  out.runs = runs;
  out.seconds = Number(process.hrtime.bigint() - started) / 1e9;
}
// The peak of this process's own memory (VmHWM): `maxRSS` also counts the
// memory of the process that spawned it, which the child shared until exec.
const hwm = /VmHWM:\s+(\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'));
out.max_rss_kib = hwm ? Number(hwm[1]) : process.resourceUsage().maxRSS;
process.stdout.write(JSON.stringify(out));
"#;

/// The step as a whole Node.js program: read the event, return it.
const NODE_PROCESS: &str = r#"
const eventText = require('node:fs').readFileSync(0, 'utf8');
const step = (event, steps, auths) => event;
process.stdout.write(JSON.stringify(step(JSON.parse(eventText), {}, {})));
"#;

/// `node --version`, or why there is no node.
pub fn node_version() -> Result<String> {
    let output = Command::new("node").arg("--version").output().context("node is not installed")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// A fresh `vm` context per run inside one Node.js process (latency), and
/// one such process per core (runs/s).
pub fn node_vm(event: &str, runs: u32, duration: Duration) -> Result<PeerResult> {
    let (samples, mut peak_rss) = node_vm_latencies(event, runs)?;
    let millis = duration.as_millis().to_string();
    let workers: Vec<_> = (0..measure::cores())
        .map(|_| {
            let (event, millis) = (event.to_string(), millis.clone());
            std::thread::spawn(move || node_json(&["throughput", &millis], &event))
        })
        .collect();
    let mut runs_per_s = 0.0;
    for worker in workers {
        let report = worker.join().map_err(|_| anyhow::anyhow!("a node thread panicked"))??;
        runs_per_s += report["runs"].as_f64().unwrap_or(0.0) / report["seconds"].as_f64().unwrap_or(1.0);
        peak_rss = peak_rss.max(report["max_rss_kib"].as_u64().unwrap_or(0) << 10);
    }
    Ok(PeerResult { samples: Samples::new(samples), runs_per_s, peak_rss })
}

/// `runs` timed runs of a fresh `vm` context each (after [`PEER_WARMUP`]
/// untimed) in a new Node.js process; the process's peak RSS.
pub fn node_vm_latencies(event: &str, runs: u32) -> Result<(Vec<Duration>, u64)> {
    let latency = node_json(&["latency", &runs.to_string()], event)?;
    let samples = latency["samples_ns"]
        .as_array()
        .context("the node vm script printed no samples")?
        .iter()
        .map(|ns| Duration::from_nanos(ns.as_u64().unwrap_or(0)))
        .collect();
    Ok((samples, latency["max_rss_kib"].as_u64().unwrap_or(0) << 10))
}

fn node_json(args: &[&str], event: &str) -> Result<serde_json::Value> {
    let mut command = Command::new("node");
    command.arg("-e").arg(NODE_VM).arg("--").arg(PEER_WARMUP.to_string()).args(args);
    let (output, _) = run_child(command, event)?;
    serde_json::from_slice(&output).context("the node vm script printed no JSON")
}

/// Peak RSS of a new process (this binary, `--compile-peak-rss`) compiling
/// `component` into an empty cache under `scratch` as a runtime loads it
/// (compile, check, store, no run): what compiling costs, without this
/// harness's own memory. The child reports its own VmHWM: `wait4`'s peak
/// would also count this process's memory, shared with the child until it
/// execs.
pub fn compile_peak_rss(component: &Path, scratch: &Path) -> Result<u64> {
    let cache = tempfile::tempdir_in(scratch)?;
    let mut command = Command::new(std::env::current_exe()?);
    command.arg("--compile-peak-rss").arg(component).arg("--data").arg(cache.path());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STEPHOST_") {
            command.env_remove(name);
        }
    }
    let (output, _) = run_child(command, "")?;
    String::from_utf8_lossy(&output).trim().parse().context("the compiling process printed no peak RSS")
}

/// A Node.js process per run.
pub fn node_process(event: &str, runs: u32, duration: Duration) -> Result<PeerResult> {
    process_per_run(event, runs, duration, || {
        let mut command = Command::new("node");
        command.arg("-e").arg(NODE_PROCESS);
        command
    })
}

/// Where `wasmtime` is: `explicit`, else on PATH.
pub fn find_wasmtime(explicit: Option<&Path>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return path.is_file().then(|| path.to_path_buf());
    }
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| Path::new(dir).join("wasmtime"))
        .find(|candidate| candidate.is_file())
}

/// `wasmtime run` as a process per run, on the command version of the
/// step precompiled by `wasmtime compile` (its fastest start).
pub fn wasmtime_run(
    wasmtime: &Path,
    command_component: &Path,
    scratch: &Path,
    event: &str,
    runs: u32,
    duration: Duration,
) -> Result<PeerResult> {
    let compiled = scratch.join("echo_command.cwasm");
    let status = Command::new(wasmtime)
        .arg("compile")
        .arg(command_component)
        .arg("-o")
        .arg(&compiled)
        .status()
        .with_context(|| format!("cannot start {}", wasmtime.display()))?;
    if !status.success() {
        bail!("`wasmtime compile {}` failed ({status})", command_component.display());
    }
    let wasmtime = wasmtime.to_path_buf();
    process_per_run(event, runs, duration, move || {
        let mut command = Command::new(&wasmtime);
        command.arg("run").arg("--allow-precompiled").arg(&compiled);
        command
    })
}

/// `wasmtime --version`.
pub fn wasmtime_version(wasmtime: &Path) -> String {
    Command::new(wasmtime)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// Times `runs` sequential processes (each fed the event and checked to
/// print it back), then runs/s with one spawning thread per core.
fn process_per_run(
    event: &str,
    runs: u32,
    duration: Duration,
    command: impl Fn() -> Command + Send + Sync + Clone + 'static,
) -> Result<PeerResult> {
    let expected = serde_json::from_str::<serde_json::Value>(event)?;
    let once = {
        let (event, command) = (event.to_string(), command.clone());
        move || -> Result<(Duration, u64)> {
            let started = Instant::now();
            let (output, rss) = run_child(command(), &event)?;
            let took = started.elapsed();
            let printed: serde_json::Value = serde_json::from_slice(&output)
                .with_context(|| format!("the peer printed {:?}", String::from_utf8_lossy(&output)))?;
            if printed != expected {
                bail!("the peer printed something else than the event");
            }
            Ok((took, rss))
        }
    };
    once()?;
    let mut samples = Vec::new();
    let mut peak_rss = 0;
    for _ in 0..runs {
        let (took, rss) = once()?;
        samples.push(took);
        peak_rss = peak_rss.max(rss);
    }
    let runs_per_s = measure::throughput(measure::cores(), duration, move || {
        let once = once.clone();
        async move { once().map(drop) }
    })?;
    Ok(PeerResult { samples: Samples::new(samples), runs_per_s, peak_rss })
}

/// Runs `command` with `input` on stdin; its stdout and peak RSS (bytes,
/// from the kernel's accounting of that one child).
fn run_child(mut command: Command, input: &str) -> Result<(Vec<u8>, u64)> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot start {:?}", command.get_program()))?;
    child.stdin.take().context("no stdin")?.write_all(input.as_bytes())?;
    let mut output = Vec::new();
    child.stdout.take().context("no stdout")?.read_to_end(&mut output)?;
    let (status, rss) = wait_with_rss(child.id())?;
    if status != 0 {
        bail!("{:?} exited with status {status}", command.get_program());
    }
    Ok((output, rss))
}

/// Reaps child `pid` with `wait4`, which also reports its peak RSS.
fn wait_with_rss(pid: u32) -> Result<(i32, u64)> {
    let mut status = 0;
    // SAFETY: `rusage` is plain data that wait4 fills in; `pid` is our own
    // child, reaped here exactly once (std's `Child` is never waited on).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if reaped < 0 {
        bail!("wait4 failed: {}", std::io::Error::last_os_error());
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    Ok((code, (usage.ru_maxrss as u64) << 10))
}
