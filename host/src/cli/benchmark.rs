//! `stephost bench`: runs the measurements in `bench/` and prints their
//! reports.

use super::args::{BenchArgs, BenchCommand, EgressArgs, SuiteArgs};
use super::bench;
use super::context::{read_event, runtime, step_name};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use stephost::StepInput;

pub async fn run(data_dir: &Path, args: BenchArgs) -> Result<ExitCode> {
    if let Some(BenchCommand::Suite(suite)) = args.suite {
        self::suite(data_dir.to_path_buf(), suite)?;
        return Ok(ExitCode::SUCCESS);
    }
    let component = args.component.context("name the step component to measure")?;
    let runtime = runtime(data_dir, &EgressArgs::default())?;
    let report = if let Some(triggers) = args.triggers {
        bench::triggers(Arc::new(runtime), &component, triggers as usize, args.concurrency).await?.to_string()
    } else {
        let step = runtime.load(&component)?;
        if args.egress {
            bench::egress(&runtime, &step, 20, 200).await?.to_string()
        } else {
            let event = read_event(&args.event)?;
            let input = StepInput {
                step_name: step_name(&component),
                event: event.to_string(),
                ..Default::default()
            };
            bench::step(&runtime, &step, &input, args.runs).await?
        }
    };
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

/// Runs the suite on its own thread (it builds the runtimes each part
/// needs), prints the report and writes it where asked.
fn suite(data_dir: PathBuf, args: SuiteArgs) -> Result<()> {
    let options = bench::suite::SuiteOptions {
        steps_dir: args.steps,
        wasmtime: args.wasmtime,
        data_dir,
        quick: args.quick,
        no_languages: args.no_languages,
        only: args.only,
    };
    let report = std::thread::spawn(move || bench::suite::run(&options))
        .join()
        .map_err(|_| anyhow::anyhow!("the benchmark suite panicked"))??;
    let today = chrono::DateTime::from_timestamp_millis(stephost::base::clock::now_ms()).unwrap_or_default();
    let title = format!("{} — `stephost bench suite`", today.format("%Y-%m-%d"));
    let markdown = report.markdown(&title);
    println!("{markdown}");
    if let Some(file) = &args.write {
        bench::report::write_into(file, &markdown)
            .with_context(|| format!("cannot write the report into {}", file.display()))?;
        eprintln!("stephost bench suite: written into {}", file.display());
    }
    Ok(())
}
