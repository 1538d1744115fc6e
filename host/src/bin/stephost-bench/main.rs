//! The `stephost-bench` command: stephost next to what users would pick
//! instead, for stephost's developers and `docs/BENCHMARKS.md`
//! (`scripts/bench.sh` runs it). It is not part of the shipped `stephost`
//! binary, which keeps `stephost bench STEP` for users measuring their own
//! steps; both measure with the library's `stephost::bench`.

mod builds;
mod machine;
mod measure;
mod peers;
mod report;
mod suite;

use anyhow::{Context, Result, anyhow};
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;
use stephost::base::units::one_line;

/// Every comparison in one run: bare wasmtime (the floor), the trivial
/// step, a Node.js `vm` context and a Node.js process per run, `wasmtime
/// run` per run, cold loads of Rust/JS/Python steps, the egress proxy
/// against direct reqwest, 1–1,000 runs waiting on I/O, and a five-step
/// workflow. Prints a Markdown report (progress on stderr).
#[derive(Parser)]
#[command(name = "stephost-bench", version)]
struct Args {
    /// Data directory: the JavaScript and Python toolchains and the built
    /// language steps are kept there, as for `stephost`.
    #[arg(long, env = "STEPHOST_DATA", value_name = "DIR")]
    data: Option<PathBuf>,
    /// Where the bench steps were built (echo, relay, fetch, echo_command).
    #[arg(long, value_name = "DIR", default_value = "examples/target/wasm32-wasip2/release")]
    steps: PathBuf,
    /// The wasmtime CLI for the `wasmtime run` peer (default: on PATH;
    /// skipped with a note when there is none).
    #[arg(long, value_name = "FILE")]
    wasmtime: Option<PathBuf>,
    /// Also write the report into FILE (e.g. docs/BENCHMARKS.md), replacing
    /// the previous generated section and keeping the rest.
    #[arg(long, value_name = "FILE")]
    write: Option<PathBuf>,
    /// A smoke run: few runs, short windows (the numbers mean little).
    #[arg(long)]
    quick: bool,
    /// Skip building and measuring the JavaScript and Python steps.
    #[arg(long)]
    no_languages: bool,
    /// Run only these parts (repeatable): baseline, step, node, wasmtime,
    /// workflow, egress, scaling, server, inspector, cold, builds.
    #[arg(long, value_name = "PART")]
    only: Vec<String>,
    /// A PostgreSQL server's admin URL (a user that may create databases):
    /// the server part then also measures 1, 2 and 3 nodes on it, each on a
    /// new database.
    #[arg(long, value_name = "URL", env = "STEPHOST_BENCH_DATABASE_URL", hide_env_values = true)]
    database: Option<String>,
    /// Internal: compile COMPONENT into the cache under --data, print this
    /// process's peak RSS in bytes and exit (the suite's compile-memory
    /// figure, measured in a process of its own).
    #[arg(long, value_name = "COMPONENT", hide = true)]
    compile_peak_rss: Option<PathBuf>,
}

fn main() -> ExitCode {
    // An empty `STEPHOST_DATA=` means "not set", as for `stephost`, not "a
    // value is required".
    if std::env::var_os("STEPHOST_DATA").is_some_and(|value| value.is_empty()) {
        // SAFETY: no other thread runs yet.
        unsafe { std::env::remove_var("STEPHOST_DATA") };
    }
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(2)
        }
    }
}

/// Runs the suite (it builds the runtimes each part needs), prints the
/// report and writes it where asked.
fn run(args: Args) -> Result<()> {
    if let Some(component) = &args.compile_peak_rss {
        let cache = args.data.context("--compile-peak-rss needs --data (the cache directory)")?;
        let runtime =
            stephost::Runtime::new(stephost::RuntimeConfig { cache_dir: Some(cache), ..Default::default() })?;
        runtime.load(component)?;
        println!("{}", machine::peak_rss_bytes());
        return Ok(());
    }
    let data_dir = match args.data {
        Some(dir) => dir,
        None => dirs::data_local_dir()
            .map(|d| d.join("stephost"))
            .ok_or_else(|| anyhow!("no home directory: pass --data DIR or set STEPHOST_DATA"))?,
    };
    let options = suite::SuiteOptions {
        steps_dir: args.steps,
        wasmtime: args.wasmtime,
        data_dir,
        quick: args.quick,
        no_languages: args.no_languages,
        only: args.only,
        database: args.database.filter(|url| !url.is_empty()),
    };
    let report = suite::run(&options)?;
    let today = chrono::DateTime::from_timestamp_millis(stephost::base::clock::now_ms()).unwrap_or_default();
    let title = format!("{} — `stephost-bench`", today.format("%Y-%m-%d"));
    let markdown = report.markdown(&title);
    println!("{markdown}");
    if let Some(file) = &args.write {
        report::write_into(file, &markdown)
            .with_context(|| format!("cannot write the report into {}", file.display()))?;
        eprintln!("stephost-bench: written into {}", file.display());
    }
    Ok(())
}
