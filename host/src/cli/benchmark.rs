//! `stephost bench STEP`: times a user's own step (`stephost::bench`); the
//! peer comparison is the separate `stephost-bench` binary.

use super::args::{BenchArgs, EgressArgs};
use super::context::{read_event, runtime, step_name};
use anyhow::{Result, bail};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use stephost::StepInput;
use stephost::bench;

pub async fn run(data_dir: &Path, args: BenchArgs) -> Result<ExitCode> {
    let component = args.component;
    if component == Path::new("suite") && !component.exists() {
        bail!("the peer comparison moved out of `stephost bench suite`: run `stephost-bench`");
    }
    let runtime = runtime(&super::context::Storage::local(data_dir), &EgressArgs::default())?;
    let report = if let Some(triggers) = args.triggers {
        bench::triggers(Arc::new(runtime), &component, triggers as usize, args.concurrency).await?.to_string()
    } else {
        let step = runtime.load(&component)?;
        if args.egress {
            // This runtime writes the data directory's audit log already.
            bench::egress(&runtime, &step, None, 20, 200).await?.to_string()
        } else {
            let event = read_event(&args.event)?;
            let input = StepInput {
                step_name: step_name(&component),
                event: event.to_string().into(),
                ..Default::default()
            };
            bench::step(&runtime, &step, &input, args.runs).await?
        }
    };
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}
