//! Python steps: a syntax check with `python3 -m py_compile`, the user's
//! module next to the shim (`python/app.py`, the entry, and
//! `python/stephost_http.py`), and componentize-py against the
//! `stephost:step-py` world.

use super::{
    BuildError, COMPONENTIZE_PY_VERSION, Progress, TZDATA_VERSION, cause_of, failed, run_captured,
    write_files,
};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The shim modules, written next to the user's module.
const MODULES: &[(&str, &str)] = &[
    ("app.py", include_str!("python/app.py")),
    ("stephost_http.py", include_str!("python/stephost_http.py")),
    ("stephost_bundle.py", include_str!("python/stephost_bundle.py")),
    ("requests/__init__.py", include_str!("python/requests/__init__.py")),
    ("requests/exceptions.py", include_str!("python/requests/exceptions.py")),
    // What `importlib.metadata.version("requests")` reads for the shim.
    ("requests-2.32.3.dist-info/METADATA", include_str!("python/requests-2.32.3.dist-info/METADATA")),
];

/// The WIT the Python world is built from.
const WIT_FILES: &[(&str, &str)] = &[
    ("step-py.wit", include_str!("../../../wit/py/step-py.wit")),
    ("deps/step/step.wit", include_str!("../../../wit/step.wit")),
    ("deps/cli/cli.wit", include_str!("../../../wit/py/deps/cli/cli.wit")),
    ("deps/clocks/clocks.wit", include_str!("../../../wit/py/deps/clocks/clocks.wit")),
    ("deps/filesystem/filesystem.wit", include_str!("../../../wit/py/deps/filesystem/filesystem.wit")),
    ("deps/http/http.wit", include_str!("../../../wit/py/deps/http/http.wit")),
    ("deps/io/io.wit", include_str!("../../../wit/py/deps/io/io.wit")),
    ("deps/random/random.wit", include_str!("../../../wit/py/deps/random/random.wit")),
    ("deps/sockets/sockets.wit", include_str!("../../../wit/py/deps/sockets/sockets.wit")),
];

/// The module name the user's file gets (the shim imports it).
const USER_MODULE: &str = "user_step.py";

/// The Python version of componentize-py's interpreter: wheels are chosen for it.
const PYTHON_VERSION: &str = "3.14";

pub(super) fn build(
    source: &Path,
    out: &Path,
    toolchains: &Path,
    requirements: Option<&Path>,
    progress: Progress,
) -> Result<(), BuildError> {
    let code = std::fs::read_to_string(source)
        .map_err(|e| BuildError::Read { path: source.to_path_buf(), source: e })?;
    let work = tempfile::tempdir().map_err(|e| failed(source, e))?;
    let app = work.path().join("app");
    write_files(source, &app, &[(USER_MODULE, &code)])?;
    check_syntax(source, &app.join(USER_MODULE))?;
    if !code.contains("def handler") {
        return Err(BuildError::Invalid {
            path: source.to_path_buf(),
            message: "no `def handler(pd):` — Python steps are written in Pipedream's handler form".into(),
        });
    }
    write_files(source, &app, MODULES)?;
    let wit = work.path().join("wit");
    write_files(source, &wit, WIT_FILES)?;
    let beside = source.with_file_name("requirements.txt");
    let requirements = requirements.or_else(|| beside.is_file().then_some(beside.as_path()));
    let (tool, pythonpath) = componentize_py(toolchains, progress)?;
    let venv = packages(source, toolchains, requirements, progress)?;
    let componentizing = progress.phase("componentizing with componentize-py (CPython)");
    let mut command = Command::new(tool);
    command
        .env("PYTHONPATH", pythonpath)
        // componentize-py bundles $VIRTUAL_ENV's site-packages, else the
        // machine's: always point it at the build's own.
        .env("VIRTUAL_ENV", &venv)
        .env_remove("PIPENV_ACTIVE")
        .arg("-d")
        .arg(&wit)
        .args(["-w", "step-py", "componentize", "app", "-p"])
        .arg(&app)
        .arg("-o")
        .arg(out);
    componentizing.finish(run_captured(&mut command, "componentize-py").map_err(|text| {
        raised_at_import(source, &text).unwrap_or_else(|| {
            let user = app.join(USER_MODULE).display().to_string();
            failed(source, cause_of(&text).replace(&user, &source.display().to_string()))
        })
    }))
}

/// The user's exception when importing the step's module failed while
/// the component was pre-initialized: componentize-py's traceback, read
/// for the last frame in the user's file and the exception line.
fn raised_at_import(source: &Path, text: &str) -> Option<BuildError> {
    let traceback = text.split("Caused by:").next()?;
    let marker = format!("File \"/0/{USER_MODULE}\", line ");
    let line = traceback
        .rmatch_indices(&marker)
        .next()
        .and_then(|(at, _)| traceback[at + marker.len()..].split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())?;
    let exception = traceback.lines().map(str::trim).rfind(|l| {
        !l.is_empty()
            && !l.starts_with("File ")
            && l.contains(": ")
            && !l.starts_with('^')
            && !l.starts_with('~')
    })?;
    Some(BuildError::Syntax {
        path: source.to_path_buf(),
        line,
        message: format!("{exception} (raised while the step's module was imported, at build time)"),
    })
}

fn python() -> &'static str {
    "python3"
}

/// `py_compile` on the user's file, so a syntax error names its line.
fn check_syntax(source: &Path, copy: &Path) -> Result<(), BuildError> {
    let output = Command::new(python()).args(["-m", "py_compile"]).arg(copy).output().map_err(|_| {
        BuildError::MissingTool {
            tool: python().into(),
            hint: "Python steps are built with Python 3.10 or newer and pip; install them and try again"
                .into(),
        }
    })?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let line = text
        .split("line ")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let message =
        text.lines().rev().find(|l| l.contains("Error")).unwrap_or("syntax error").trim().to_string();
    Err(BuildError::Syntax { path: source.to_path_buf(), line, message })
}

/// The componentize-py executable and its PYTHONPATH, installed with pip
/// into `toolchains` on first use.
fn componentize_py(toolchains: &Path, progress: Progress) -> Result<(PathBuf, PathBuf), BuildError> {
    let target = toolchains.join(format!("componentize-py-{COMPONENTIZE_PY_VERSION}"));
    let tool = |dir: &Path| dir.join("bin/componentize-py");
    super::install_staged(
        &target,
        |dir| tool(dir).is_file(),
        |staging| {
            let package = format!("componentize-py=={COMPONENTIZE_PY_VERSION}");
            let installing = progress
                .phase(format!("installing {package} into {} (first Python build only)", target.display()));
            let status = Command::new(python())
                .env("PIP_ROOT_USER_ACTION", "ignore")
                // `--target` installs into our own directory, never the system's.
                .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--target"])
                .arg(staging)
                .arg(&package)
                .stdout(Stdio::null())
                .status()
                .map_err(|_| BuildError::MissingTool {
                    tool: "pip".into(),
                    hint: "Python steps need pip to install componentize-py once; install Python 3 with pip"
                        .into(),
                })?;
            if !status.success() {
                return Err(BuildError::Install { package, detail: format!("pip exited with {status}") });
            }
            installing.done();
            Ok(())
        },
    )?;
    Ok((tool(&target), target))
}

/// The build's own packages: tzdata and the requirements (if any),
/// installed with pip as pure-Python wheels into a directory of the data
/// directory keyed by their hash, never the machine's site-packages.
/// Returns the virtual-environment root componentize-py reads
/// (`lib/python3.14/site-packages` below it).
fn packages(
    source: &Path,
    toolchains: &Path,
    requirements: Option<&Path>,
    progress: Progress,
) -> Result<PathBuf, BuildError> {
    let text = match requirements {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| BuildError::Read { path: path.to_path_buf(), source: e })?,
        None => String::new(),
    };
    let wants_tzdata = !text.lines().any(|l| l.trim_start().to_ascii_lowercase().starts_with("tzdata"));
    let tzdata = format!("tzdata=={TZDATA_VERSION}");
    let mut hasher = Sha256::new();
    hasher.update(format!("{COMPONENTIZE_PY_VERSION}\n{PYTHON_VERSION}\n{wants_tzdata}\n{tzdata}\n"));
    hasher.update(&text);
    let key = hex::encode(&hasher.finalize()[..8]);
    let venv = toolchains.join("python-packages").join(&key);
    super::install_staged(&venv, Path::is_dir, |staging| {
        let site = staging.join(format!("lib/python{PYTHON_VERSION}/site-packages"));
        std::fs::create_dir_all(&site).map_err(|e| failed(source, e))?;
        let what = match requirements {
            Some(path) => format!("{} and {tzdata}", path.display()),
            None => tzdata.clone(),
        };
        let installing =
            progress.phase(format!("installing {what} for Python steps into {}", venv.display()));
        let mut command = Command::new(python());
        command
            .env("PIP_ROOT_USER_ACTION", "ignore")
            .env("PIP_BREAK_SYSTEM_PACKAGES", "1")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-input",
                "--no-compile",
            ])
            // Wheels for the component's interpreter, pure Python only: a
            // package with native code cannot run in the sandbox.
            .args(["--only-binary=:all:", "--platform", "any", "--implementation", "py"])
            .args(["--python-version", PYTHON_VERSION, "--target"])
            .arg(&site);
        if wants_tzdata {
            command.arg(&tzdata);
        }
        if let Some(path) = requirements {
            command.arg("-r").arg(path);
        }
        run_captured(&mut command, "pip").map_err(|text| BuildError::Install {
            package: what.clone(),
            detail: format!("{} (Python steps take pure-Python packages only)", cause_of(&text)),
        })?;
        installing.done();
        Ok(())
    })?;
    Ok(venv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bundled_requests_metadata_gives_the_shims_own_version() {
        let file = |name: &str| MODULES.iter().find(|(n, _)| *n == name).unwrap().1;
        let version = file("requests/__init__.py")
            .lines()
            .find_map(|l| l.strip_prefix("__version__ = \""))
            .and_then(|v| v.strip_suffix('"'))
            .unwrap();
        let dist_info = format!("requests-{version}.dist-info/METADATA");
        assert!(file(&dist_info).contains(&format!("\nVersion: {version}\n")), "{dist_info}");
    }
}
