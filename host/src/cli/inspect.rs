//! `stephost inspect`: what a component imports and exports.

use super::args::{EgressArgs, InspectArgs};
use super::{context, output, render};
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;

pub fn run(data_dir: &Path, args: InspectArgs) -> Result<ExitCode> {
    let runtime = context::runtime(&context::Storage::local(data_dir), &EgressArgs::default())?;
    let report = runtime.inspect(&args.component)?;
    output::emit(args.format.json, &report, render::report)?;
    Ok(if report.misfit.is_some() { ExitCode::from(1) } else { ExitCode::SUCCESS })
}
