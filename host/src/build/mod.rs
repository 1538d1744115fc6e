//! `stephost build`: a JavaScript or Python step source into a step
//! component, with the language shim compiled in. The pinned toolchain is installed on first
//! use into the data directory (`<data>/toolchains`).

mod js;
mod progress;
mod python;
pub mod templates;

pub use progress::{Phase, Progress};

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The componentize-js release `stephost build` uses for JavaScript.
pub const COMPONENTIZE_JS_VERSION: &str = "0.23.0";

/// The componentize-py release `stephost build` uses for Python.
pub const COMPONENTIZE_PY_VERSION: &str = "0.25.1";

/// The IANA time zone database every Python step gets, for `zoneinfo`
/// (the sandbox has no /usr/share/zoneinfo).
pub const TZDATA_VERSION: &str = "2025.2";

/// Why a step source could not be built; one line, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The step source could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The source file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },

    /// The source's extension is not `.js`, `.mjs` or `.py`.
    #[error("{path}: stephost builds JavaScript (.js, .mjs) and Python (.py) steps; give one of those")]
    UnknownKind {
        /// The source file.
        path: PathBuf,
    },

    /// A tool the build needs (node, npm, python, pip) is not installed.
    #[error("`{tool}` was not found: {hint}")]
    MissingTool {
        /// The command that could not be run.
        tool: String,
        /// What to install to get it.
        hint: String,
    },

    /// The first build of a language could not install its pinned
    /// componentize toolchain into the data directory.
    #[error("installing {package} failed (is the package registry reachable?): {detail}")]
    Install {
        /// The package and version, e.g. `componentize-py==0.25.1`.
        package: String,
        /// How the installer failed.
        detail: String,
    },

    /// The source does not parse; found before any toolchain is installed.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The source file.
        path: PathBuf,
        /// The line of the error, from 1; 0 if the checker did not say.
        line: usize,
        /// The checker's error line.
        message: String,
    },

    /// The source parses but is not a step: it lacks the JavaScript
    /// `export default` or the Python `def handler`.
    #[error("{path}: {message}")]
    Invalid {
        /// The source file.
        path: PathBuf,
        /// What is missing and how to write it.
        message: String,
    },

    /// The toolchain ran but did not produce a component (or its working
    /// files could not be written).
    #[error("building {path} failed: {detail}")]
    Failed {
        /// The source file.
        path: PathBuf,
        /// The last lines of the toolchain's error output, or the I/O error.
        detail: String,
    },
}

/// A built component.
#[derive(Debug, Clone)]
pub struct Built {
    /// Where the component was written.
    pub component: PathBuf,
    /// Size of the component, in bytes (0 if it could not be read back).
    pub size: u64,
    /// Wall-clock time the build took, toolchain install included.
    pub duration: Duration,
}

/// What a build may be told besides its source.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Python: the pip requirements file of the packages to bundle; by
    /// default `requirements.txt` beside the step, when there is one.
    pub requirements: Option<PathBuf>,
    /// Where the build's phases are shown.
    pub progress: Progress,
}

/// Builds `source` into the component `out`, installing the toolchain into
/// `data_dir` if needed (its progress goes to stderr).
pub fn build(source: &Path, out: &Path, data_dir: &Path) -> Result<Built, BuildError> {
    build_with(source, out, data_dir, &Options::default())
}

/// [`build`] with [`Options`], for `stephost build --requirements`.
pub fn build_with(
    source: &Path,
    out: &Path,
    data_dir: &Path,
    options: &Options,
) -> Result<Built, BuildError> {
    let started = Instant::now();
    let extension = source.extension().and_then(|e| e.to_str()).unwrap_or_default();
    match extension {
        "js" | "mjs" => js::build(source, out, data_dir, options.progress)?,
        "py" => python::build(
            source,
            out,
            &data_dir.join("toolchains"),
            options.requirements.as_deref(),
            options.progress,
        )?,
        _ => return Err(BuildError::UnknownKind { path: source.to_path_buf() }),
    }
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    Ok(Built { component: out.to_path_buf(), size, duration: started.elapsed() })
}

/// The default output of `source`: the same name, ending `.wasm`.
pub fn default_output(source: &Path) -> PathBuf {
    source.with_extension("wasm")
}

/// A build of `source` that failed for `detail`.
fn failed(source: &Path, detail: impl std::fmt::Display) -> BuildError {
    BuildError::Failed { path: source.to_path_buf(), detail: detail.to_string() }
}

/// Writes `files` (relative name, text) below `dir`, for the build of `source`.
fn write_files(source: &Path, dir: &Path, files: &[(&str, &str)]) -> Result<(), BuildError> {
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap_or(dir)).map_err(|e| failed(source, e))?;
        std::fs::write(&path, text).map_err(|e| failed(source, e))?;
    }
    Ok(())
}

/// Installs a toolchain into `target` unless `ready(target)` already
/// holds: `install` fills a staging directory beside it, which is then
/// renamed into place whole, so a build running at the same time (another
/// test, another `stephost build`) never sees a half-installed toolchain.
/// When two install at once the first rename wins and the other's copy is
/// dropped; a leftover partial `target` (an install killed midway before
/// staging existed) is replaced.
fn install_staged(
    target: &Path,
    ready: impl Fn(&Path) -> bool,
    install: impl FnOnce(&Path) -> Result<(), BuildError>,
) -> Result<(), BuildError> {
    if ready(target) {
        return Ok(());
    }
    let cannot = |what: &str, e: std::io::Error| BuildError::Install {
        package: target.display().to_string(),
        detail: format!("{what}: {e}"),
    };
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| cannot("creating its directory", e))?;
    let staging = tempfile::Builder::new()
        .prefix(".staging-")
        .tempdir_in(parent)
        .map_err(|e| cannot("creating a staging directory", e))?;
    install(staging.path())?;
    if !ready(staging.path()) {
        return Err(BuildError::Install {
            package: target.display().to_string(),
            detail: "the installer finished but left the toolchain incomplete".into(),
        });
    }
    if std::fs::rename(staging.path(), target).is_ok() || ready(target) {
        return Ok(());
    }
    std::fs::remove_dir_all(target).map_err(|e| cannot("removing an incomplete earlier install", e))?;
    match std::fs::rename(staging.path(), target) {
        Err(_) if ready(target) => Ok(()),
        moved => moved.map_err(|e| cannot("moving the install into place", e)),
    }
}

/// Runs a command, its output captured; `Err` holds what a failure wrote
/// (its stderr, or stdout when stderr is empty; see [`cause_of`]).
fn run_captured(command: &mut std::process::Command, what: &str) -> Result<(), String> {
    let output = command
        // A Rust toolchain's error must not come with its backtrace.
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let text = if output.stderr.is_empty() { &output.stdout } else { &output.stderr };
    Err(String::from_utf8_lossy(text).into_owned())
}

/// The cause in a toolchain's error output, on one line: its error lines
/// (up to three), not the stack frames, backtraces and log-file notes that
/// usually end it; the last lines when nothing reads as an error.
fn cause_of(text: &str) -> String {
    let text = text.split("Stack backtrace:").next().unwrap_or(text);
    let is_noise = |line: &str| {
        let frame = line.starts_with("at ")
            || line.starts_with("File \"")
            || line.split_once(": ").is_some_and(|(n, _)| n.parse::<u32>().is_ok())
            || line.chars().all(|c| matches!(c, '^' | '~' | ' '));
        frame
            || line.starts_with("Node.js v")
            || line.starts_with("npm error A complete log")
            || line.starts_with("npm error code ")
            || line.trim_start_matches("npm error").trim().chars().all(|c| c.is_ascii_digit())
            || line == "Traceback (most recent call last):"
            || line == "Caused by:"
    };
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !is_noise(l)).collect();
    let mut errors: Vec<&str> = Vec::new();
    for line in &lines {
        let lower = line.to_ascii_lowercase();
        if (lower.contains("error") || lower.contains("not found") || lower.contains("failed"))
            && !errors.contains(line)
        {
            errors.push(line);
        }
    }
    let chosen = if errors.is_empty() {
        &lines[lines.len().saturating_sub(3)..]
    } else {
        &errors[..errors.len().min(3)]
    };
    chosen.join(" | ")
}

/// The last `n` non-empty lines of `text`, joined with ` | `.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::{cause_of, install_staged};
    use std::path::Path;

    fn complete(dir: &Path) -> bool {
        dir.join("a").is_file() && dir.join("b").is_file()
    }

    #[test]
    fn a_toolchain_appears_only_complete_and_a_partial_one_is_replaced() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("tool");
        // A half-installed toolchain left by an older, killed install.
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("a"), "old").unwrap();
        install_staged(&target, complete, |staging| {
            std::fs::write(staging.join("a"), "new").unwrap();
            assert!(!complete(&target), "nothing complete is visible while installing");
            std::fs::write(staging.join("b"), "new").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "new");
        assert!(complete(&target));
        let left: Vec<_> = std::fs::read_dir(root.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, ["tool"], "no staging directory is left behind");
        // Ready already: nothing is installed again.
        install_staged(&target, complete, |_| panic!("installed twice")).unwrap();
    }

    #[test]
    fn when_another_install_wins_the_race_its_toolchain_is_kept() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("tool");
        install_staged(&target, complete, |staging| {
            // Another process finishes first.
            std::fs::create_dir_all(&target).unwrap();
            std::fs::write(target.join("a"), "theirs").unwrap();
            std::fs::write(target.join("b"), "theirs").unwrap();
            std::fs::write(staging.join("a"), "ours").unwrap();
            std::fs::write(staging.join("b"), "ours").unwrap();
            Ok(())
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(target.join("a")).unwrap(), "theirs");
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 1, "our copy is dropped");
    }

    #[test]
    fn an_installer_that_leaves_the_toolchain_incomplete_is_an_error() {
        let root = tempfile::tempdir().unwrap();
        let target = root.path().join("tool");
        let error = install_staged(&target, complete, |_| Ok(())).unwrap_err().to_string();
        assert!(error.contains("incomplete"), "{error}");
        assert!(!target.exists());
    }

    #[test]
    fn the_cause_of_an_npm_failure_is_its_error_not_its_log_note() {
        let npm = "npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/nope\nnpm error 404\nnpm error 404  The requested resource 'nope@*' could not be found.\nnpm error A complete log of this run can be found in: /root/.npm/_logs/x.log\n";
        assert_eq!(
            cause_of(npm),
            "npm error 404 Not Found - GET https://registry.npmjs.org/nope | npm error 404  The requested resource 'nope@*' could not be found."
        );
    }

    #[test]
    fn the_cause_of_a_rust_tools_failure_is_not_its_backtrace() {
        let text = "Error: the thing failed\n\nCaused by:\n    KeyError: 'missing'\n\nStack backtrace:\n   0: anyhow::msg\n  29: __libc_start_main_impl\n             at ./csu/libc-start.c:360:3\n  30: _start\n";
        assert_eq!(cause_of(text), "Error: the thing failed | KeyError: 'missing'");
    }

    #[test]
    fn without_an_error_line_the_last_lines_are_the_cause() {
        assert_eq!(cause_of("one\ntwo\n    at f (x.js:1:1)\nthree\nfour\n"), "two | three | four");
    }
}
