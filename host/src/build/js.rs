//! JavaScript steps: a syntax check with `node --check`, the user's module
//! joined with the shim (`shim.mjs`), and componentize-js (StarlingMonkey)
//! against the `stephost:step-js` world.

use super::{BuildError, COMPONENTIZE_JS_VERSION, failed, run_captured, write_files};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SHIM: &str = include_str!("shim.mjs");

/// The WIT the JS world is built from, written next to the build.
const WIT_FILES: &[(&str, &str)] = &[
    ("step-js.wit", include_str!("../../../wit/js/step-js.wit")),
    ("deps/step/step.wit", include_str!("../../../wit/step.wit")),
    ("deps/cli/environment.wit", include_str!("../../../wit/js/deps/cli/environment.wit")),
];

/// The name the step's default export gets inside the joined module.
const DEFAULT_BINDING: &str = "const __stephostDefault =";

pub(super) fn build(source: &Path, out: &Path, toolchains: &Path) -> Result<(), BuildError> {
    let code = std::fs::read_to_string(source)
        .map_err(|e| BuildError::Read { path: source.to_path_buf(), source: e })?;
    let work = tempfile::tempdir().map_err(|e| failed(source, e))?;
    check_syntax(source, &code, work.path())?;
    let joined = join_with_shim(source, &code)?;
    write_files(source, work.path(), &[("step.mjs", &joined)])?;
    let module = work.path().join("step.mjs");
    let wit = work.path().join("wit");
    write_files(source, &wit, WIT_FILES)?;
    let cli = componentize_js(toolchains)?;
    let mut command = Command::new("node");
    command
        .arg(&cli)
        .arg(&module)
        .arg("--wit")
        .arg(&wit)
        .args(["--world-name", "step-js", "--disable", "fetch-event", "--out"])
        .arg(out);
    run_captured(&mut command, "componentize-js").map_err(|detail| {
        failed(source, detail.replace(&module.display().to_string(), &source.display().to_string()))
    })
}

/// `node --check` on the user's own file (as a module), so a syntax error
/// names the user's line, not one in the joined module.
fn check_syntax(source: &Path, code: &str, work: &Path) -> Result<(), BuildError> {
    let copy = work.join("check.mjs");
    std::fs::write(&copy, code).map_err(|e| failed(source, e))?;
    let output = Command::new("node").arg("--check").arg(&copy).output().map_err(|_| missing_node())?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let line = text
        .lines()
        .next()
        .and_then(|first| first.rsplit(':').next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    let message = text.lines().find(|l| l.contains("Error:")).unwrap_or("syntax error").trim().to_string();
    Err(BuildError::Syntax { path: source.to_path_buf(), line, message })
}

/// The user's module with its default export bound to a name the shim
/// reads, then the shim. The user's lines keep their numbers.
fn join_with_shim(source: &Path, code: &str) -> Result<String, BuildError> {
    let mut found = false;
    let mut joined = String::with_capacity(code.len() + SHIM.len());
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if !found && trimmed.starts_with("export default") {
            let indent = &line[..line.len() - trimmed.len()];
            joined.push_str(indent);
            joined.push_str(DEFAULT_BINDING);
            joined.push_str(&trimmed["export default".len()..]);
            found = true;
        } else {
            joined.push_str(line);
        }
    }
    if !found {
        return Err(BuildError::Invalid {
            path: source.to_path_buf(),
            message: "no `export default`: export `async (event, steps, auths) => { … }` or `defineComponent({ … })`"
                .into(),
        });
    }
    if !joined.ends_with('\n') {
        joined.push('\n');
    }
    joined.push_str(SHIM);
    Ok(joined)
}

fn missing_node() -> BuildError {
    BuildError::MissingTool {
        tool: "node".into(),
        hint: "JavaScript steps are built with Node.js 18 or newer and npm; install them and try again"
            .into(),
    }
}

/// The componentize-js entry point, installed with npm into `toolchains`
/// on first use.
fn componentize_js(toolchains: &Path) -> Result<PathBuf, BuildError> {
    let prefix = toolchains.join(format!("componentize-js-{COMPONENTIZE_JS_VERSION}"));
    let cli = prefix.join("node_modules/@bytecodealliance/componentize-js/src/cli.js");
    if cli.is_file() {
        return Ok(cli);
    }
    let package = format!("@bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION}");
    eprintln!("stephost: installing {package} into {} (first JavaScript build only)…", prefix.display());
    std::fs::create_dir_all(&prefix)
        .map_err(|e| BuildError::Install { package: package.clone(), detail: e.to_string() })?;
    let status = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
        .arg(&prefix)
        .arg(&package)
        .stdout(Stdio::null())
        .status()
        .map_err(|_| BuildError::MissingTool {
            tool: "npm".into(),
            hint: "JavaScript steps need npm to install componentize-js once; install Node.js with npm"
                .into(),
        })?;
    if !status.success() || !cli.is_file() {
        return Err(BuildError::Install { package, detail: format!("npm exited with {status}") });
    }
    Ok(cli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_export_is_bound_and_lines_keep_their_numbers() {
        let code = "import x from 'y';\n\n  export default async (event) => event;\nconst later = 1;";
        let joined = join_with_shim(Path::new("s.mjs"), code).unwrap();
        let lines: Vec<&str> = joined.lines().collect();
        assert_eq!(lines[2], "  const __stephostDefault = async (event) => event;");
        assert_eq!(lines[3], "const later = 1;");
        assert!(joined.contains("export async function run()"));
    }

    #[test]
    fn a_module_without_a_default_export_is_refused() {
        let error = join_with_shim(Path::new("s.mjs"), "export const x = 1;\n").unwrap_err().to_string();
        assert!(error.starts_with("s.mjs: no `export default`"), "{error}");
    }
}
