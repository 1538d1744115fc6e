//! The first experience of a JS or Python step: its first build on a
//! machine whose toolchains are installed (no build cache yet), a rebuild
//! after a small edit, and the first run after a build in a new process —
//! each as `stephost build` does it (build, then compile into the cache).

use super::report::BuildRow;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use stephost::build::{Options, Progress};
use stephost::{Runtime, RuntimeConfig, StepConfig, StepInput};

/// Rebuilds measured per language (the median is reported).
const REBUILDS: usize = 3;

/// A trivial step in `language` whose result depends on `version`, so
/// each edit changes the code, not only a comment.
fn source(language: &str, version: usize) -> (String, &'static str) {
    match language {
        "Python" => (
            format!(
                "def handler(pd):\n    return {{\"event\": pd.steps[\"trigger\"][\"event\"], \"version\": {version}}}\n"
            ),
            "py",
        ),
        _ => (
            format!("export default async (event, steps, auths) => ({{ event, version: {version} }});\n"),
            "mjs",
        ),
    }
}

/// A data directory of its own in `scratch`, using the toolchains
/// installed in `shared` but none of its caches (compiled functions, the
/// spliced JS engine).
fn fresh_data_dir(shared: &Path, scratch: &Path, language: &str) -> Result<PathBuf> {
    let data = scratch.join(format!("builds-{language}"));
    let toolchains = data.join("toolchains");
    std::fs::create_dir_all(&toolchains)?;
    let shared_toolchains = std::fs::canonicalize(shared.join("toolchains"))
        .with_context(|| format!("no toolchains in {}", shared.display()))?;
    for entry in std::fs::read_dir(&shared_toolchains)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with("componentize-js-") {
            // The spliced engine is cached beside node_modules: share only the package.
            std::fs::create_dir_all(toolchains.join(&name))?;
            std::os::unix::fs::symlink(
                entry.path().join("node_modules"),
                toolchains.join(&name).join("node_modules"),
            )?;
        } else {
            std::os::unix::fs::symlink(entry.path(), toolchains.join(&name))?;
        }
    }
    Ok(data)
}

/// `stephost build`: the build, then compiling into the data directory's
/// cache. Returns (whole time, compile time).
fn build_and_compile(source: &Path, out: &Path, data: &Path) -> Result<(Duration, Duration)> {
    let started = Instant::now();
    let options = Options { progress: Progress::quiet(), ..Options::default() };
    stephost::build::build_with(source, out, data, &options)?;
    let compiling = Instant::now();
    let runtime = runtime(data)?;
    runtime.load(out)?;
    Ok((started.elapsed(), compiling.elapsed()))
}

fn runtime(data: &Path) -> Result<Runtime> {
    Ok(Runtime::new(RuntimeConfig {
        cache_dir: Some(data.join("components")),
        max_concurrent_runs: 4,
        ..RuntimeConfig::default()
    })?)
}

/// First build, rebuilds and first run of `language`'s trivial step;
/// `shared` holds the installed toolchains.
pub async fn measure(language: &str, shared: &Path, scratch: &Path) -> Result<BuildRow> {
    let data = fresh_data_dir(shared, scratch, language)?;
    let (code, extension) = source(language, 0);
    let file = data.join(format!("step.{extension}"));
    let out = data.join("step.wasm");
    std::fs::write(&file, code)?;
    let (first, first_compile) = build_and_compile(&file, &out, &data)?;
    let mut rebuilds = Vec::new();
    for version in 1..=REBUILDS {
        std::fs::write(&file, source(language, version).0)?;
        rebuilds.push(build_and_compile(&file, &out, &data)?);
    }
    rebuilds.sort();
    let (rebuild, rebuild_compile) = rebuilds[rebuilds.len() / 2];

    let started = Instant::now();
    let runtime = runtime(&data)?;
    let step = runtime.load(&out)?;
    let input = StepInput { step_name: "step".into(), event: r#"{"n":1}"#.into(), ..Default::default() };
    let outcome = runtime.run(&step, input, &StepConfig::default()).await;
    let first_run = started.elapsed();
    if let Err(error) = outcome.result {
        anyhow::bail!("the built {language} step failed: {error}");
    }
    Ok(BuildRow { language: language.into(), first, first_compile, rebuild, rebuild_compile, first_run })
}
