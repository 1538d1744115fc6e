//! `stephost build` as a user meets it: its phases on stderr, a failure's
//! real cause, the cached splicing of the JS engine, and compiled code in
//! the data directory's cache so the first run does not compile again.

use crate::support::{repo, stephost_command};
use std::path::{Path, PathBuf};
use std::process::Output;
use stephost::runtime::cache::CacheSource;
use stephost::{Runtime, RuntimeConfig};

/// The data directory whose toolchains the language tests share.
fn shared_data() -> PathBuf {
    repo().join("target/js-data")
}

/// `stephost build SOURCE -o OUT` in the data directory `data`; its
/// output and stderr.
fn build_in(data: &Path, source: &Path, out: &Path) -> (Output, String) {
    let output = stephost_command()
        .arg("--data")
        .arg(data)
        .arg("build")
        .arg(source)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// `stephost build SOURCE -o OUT` with the shared toolchains.
fn build(source: &Path, out: &Path) -> (Output, String) {
    build_in(&shared_data(), source, out)
}

/// A data directory of its own whose toolchains (installed by the shared
/// one's first JS build) and compiled functions are the shared ones', so
/// what the build caches for itself is seen alone.
fn data_sharing_toolchains() -> tempfile::TempDir {
    crate::languages::js_guest("slack_post");
    let data = tempfile::tempdir().unwrap();
    let shared = shared_data().join("toolchains");
    let toolchains = data.path().join("toolchains");
    let componentize_js = format!("componentize-js-{}", stephost::build::COMPONENTIZE_JS_VERSION);
    std::fs::create_dir_all(toolchains.join(&componentize_js)).unwrap();
    std::os::unix::fs::symlink(
        shared.join(&componentize_js).join("node_modules"),
        toolchains.join(&componentize_js).join("node_modules"),
    )
    .unwrap();
    for entry in std::fs::read_dir(&shared).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with("esbuild@") {
            std::os::unix::fs::symlink(entry.path(), toolchains.join(entry.file_name())).unwrap();
        }
    }
    std::fs::create_dir_all(data.path().join("components")).unwrap();
    std::os::unix::fs::symlink(
        shared_data().join("components/functions"),
        data.path().join("components/functions"),
    )
    .unwrap();
    data
}

/// The position of each of `phases` in `stderr`, failing if one is missing
/// or out of order.
fn assert_phases_in_order(stderr: &str, phases: &[&str]) {
    let mut from = 0;
    for phase in phases {
        let at = stderr[from..]
            .find(&format!("stephost: {phase}"))
            .unwrap_or_else(|| panic!("phase `{phase}` missing or out of order in:\n{stderr}"));
        from += at + phase.len();
    }
}

/// The spliced engines componentize-js keeps between builds in `data`.
fn spliced_engines(data: &Path) -> Vec<(PathBuf, std::time::SystemTime)> {
    let dir =
        data.join(format!("toolchains/componentize-js-{}/spliced", stephost::build::COMPONENTIZE_JS_VERSION));
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().extension().is_some_and(|x| x == "wasm"))
                .map(|e| (e.path(), e.metadata().unwrap().modified().unwrap()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn a_js_build_shows_its_phases_reuses_the_spliced_engine_and_its_first_run_does_not_compile() {
    let data = data_sharing_toolchains();
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("phases.mjs");
    let out = dir.path().join("phases.wasm");
    std::fs::write(&source, "export default async (event) => ({ doubled: event.n * 2 });\n").unwrap();
    let (output, stderr) = build_in(data.path(), &source, &out);
    assert!(output.status.success(), "{stderr}");
    assert_phases_in_order(
        &stderr,
        &["bundling with esbuild", "componentizing with StarlingMonkey", "compiling to native code"],
    );
    let spliced = spliced_engines(data.path());
    assert_eq!(spliced.len(), 1, "one spliced engine for the step world: {spliced:?}");

    std::fs::write(&source, "export default async (event) => ({ tripled: event.n * 3 });\n").unwrap();
    let (output, stderr) = build_in(data.path(), &source, &out);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(spliced_engines(data.path()), spliced, "the rebuild reused the spliced engine, unchanged");
    let compiled: Vec<_> = std::fs::read_dir(data.path().join("components"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(compiled.len(), 1, "the replaced component's compiled code is gone: {compiled:?}");

    let runtime = Runtime::new(RuntimeConfig {
        cache_dir: Some(data.path().join("components")),
        max_concurrent_runs: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(
        runtime.load(&out).unwrap().source,
        CacheSource::Disk,
        "compiled by the build, not by the run"
    );
}

#[test]
fn a_js_step_that_throws_while_loading_fails_the_build_with_its_exception() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("throws.mjs");
    std::fs::write(
        &source,
        "const settings = null;\nconst channel = settings.channel;\nexport default async () => channel;\n",
    )
    .unwrap();
    let (output, stderr) = build(&source, &dir.path().join("throws.wasm"));
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let error = stderr.lines().last().unwrap();
    assert!(error.contains("the step threw while its module was loaded"), "{stderr}");
    assert!(error.contains("TypeError: can't access property \"channel\", settings is null"), "{stderr}");
    assert!(error.contains("(at throws.mjs:2:"), "the user's line, through the source map: {stderr}");
    assert!(!error.contains("cli.js") && !error.contains("Node.js v"), "no stack frames: {stderr}");
}

#[test]
fn a_python_step_that_raises_while_imported_fails_the_build_naming_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("raises.py");
    std::fs::write(
        &source,
        "settings = {}\n\nchannel = settings[\"channel\"]\n\ndef handler(pd):\n    return channel\n",
    )
    .unwrap();
    let (output, stderr) = build(&source, &dir.path().join("raises.wasm"));
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_phases_in_order(&stderr, &["componentizing with componentize-py"]);
    let error = stderr.lines().last().unwrap();
    assert!(error.contains("raises.py:3: KeyError: 'channel'"), "{stderr}");
    assert!(!error.contains("libc") && !error.contains("_start"), "no backtrace: {stderr}");
}
