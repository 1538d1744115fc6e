//! `stephost build`: a JavaScript or Python step into a component, its
//! phases shown on stderr, and compiled to native code into the data
//! directory's cache so its first run starts at once.

use super::args::{BuildArgs, EgressArgs};
use super::context;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::ExitCode;
use stephost::build::Progress;

pub fn run(data_dir: &Path, args: BuildArgs) -> Result<ExitCode> {
    let BuildArgs { source, out, requirements } = args;
    let out = out.unwrap_or_else(|| stephost::build::default_output(&source));
    let progress = Progress::to_stderr();
    let options = stephost::build::Options { requirements, progress };
    let previous = std::fs::read(&out).ok().map(|bytes| hex::encode(Sha256::digest(bytes)));
    let built = stephost::build::build_with(&source, &out, data_dir, &options)?;
    let runtime = context::runtime(&context::Storage::local(data_dir), &EgressArgs::default())?;
    let started = std::time::Instant::now();
    let compiling = progress.phase("compiling to native code");
    let step = runtime.load(&out).with_context(|| format!("the built component {}", out.display()))?;
    compiling.done();
    // The component this build replaced is not run again from here: its
    // compiled code would only fill the cache.
    if let Some(replaced) = previous.filter(|hash| *hash != step.hash) {
        runtime.forget_compiled(&replaced);
    }
    println!(
        "built {} ({:.1} MB) in {:.1} s; compiled in {:.1} s",
        out.display(),
        built.size as f64 / 1e6,
        built.duration.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
