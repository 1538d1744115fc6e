//! `stephost build`: a JavaScript or Python step source into a step
//! component, with the language shim compiled in. The pinned toolchain is installed on first
//! use into the data directory (`<data>/toolchains`).

mod js;
mod python;
pub mod templates;

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
        "js" | "mjs" => js::build(source, out, data_dir)?,
        "py" => python::build(source, out, &data_dir.join("toolchains"), options.requirements.as_deref())?,
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

/// Runs a command, its output captured; `Err` holds the last lines of its
/// stderr (or stdout) on failure.
fn run_captured(command: &mut std::process::Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("cannot run {what}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    let text = if output.stderr.is_empty() { &output.stdout } else { &output.stderr };
    Err(last_lines(&String::from_utf8_lossy(text), 3))
}

/// The last `n` non-empty lines of `text`, joined with ` | `.
fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}
