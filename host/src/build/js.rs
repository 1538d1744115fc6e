//! JavaScript steps: the step's form found (a module with a default export,
//! or Pipedream's legacy body of `async (event, steps, auths) => { … }`),
//! a syntax check with `node --check`, its npm packages installed (pinned by
//! a lockfile beside the step), everything bundled with esbuild next to the
//! shim (`js/entry.mjs`, `js/prelude.mjs`, Node built-in shims in `js/node`),
//! and componentize-js (StarlingMonkey) against the `stephost:step-js` world.

use super::{
    BuildError, COMPONENTIZE_JS_VERSION, Progress, cause_of, failed, last_lines, run_captured, write_files,
};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The esbuild release bundling a step with its packages, and the packages
/// the shims use (`Buffer`, `EventEmitter`, the source-map decoder naming
/// the user's line in a failed step's stack, `crypto.createHash`/`createHmac`).
const ESBUILD_PACKAGES: &[&str] =
    &["esbuild@0.28.2", "buffer@6.0.3", "events@3.3.0", "source-map-js@1.2.1", "@noble/hashes@2.4.0"];

/// A file of each of [`ESBUILD_PACKAGES`]: all present, the toolchain is installed.
const ESBUILD_READY: &[&str] = &[
    "esbuild/lib/main.js",
    "buffer/index.js",
    "events/events.js",
    "source-map-js/source-map.js",
    "@noble/hashes/legacy.js",
];

/// The bundler driver, the shim modules and the Node built-in shims,
/// written into each build's working directory.
const BUNDLE_FILES: &[(&str, &str)] = &[
    ("bundle.cjs", include_str!("js/bundle.cjs")),
    ("componentize.mjs", include_str!("js/componentize.mjs")),
    ("entry.mjs", include_str!("js/entry.mjs")),
    ("prelude.mjs", include_str!("js/prelude.mjs")),
    ("stacks.mjs", include_str!("js/stacks.mjs")),
    ("node/assert.mjs", include_str!("js/node/assert.mjs")),
    ("node/crypto.mjs", include_str!("js/node/crypto.mjs")),
    ("node/fs.mjs", include_str!("js/node/fs.mjs")),
    ("node/fs_promises.mjs", include_str!("js/node/fs_promises.mjs")),
    ("node/os.mjs", include_str!("js/node/os.mjs")),
    ("node/path.mjs", include_str!("js/node/path.mjs")),
    ("node/process.mjs", include_str!("js/node/process.mjs")),
    ("node/querystring.mjs", include_str!("js/node/querystring.mjs")),
    ("node/stream.mjs", include_str!("js/node/stream.mjs")),
    ("node/stream_web.mjs", include_str!("js/node/stream_web.mjs")),
    ("node/string_decoder.mjs", include_str!("js/node/string_decoder.mjs")),
    ("node/timers.mjs", include_str!("js/node/timers.mjs")),
    ("node/timers_promises.mjs", include_str!("js/node/timers_promises.mjs")),
    ("node/url.mjs", include_str!("js/node/url.mjs")),
    ("node/util.mjs", include_str!("js/node/util.mjs")),
    ("node/zlib.mjs", include_str!("js/node/zlib.mjs")),
];

/// The WIT the JS world is built from, written next to the build.
const WIT_FILES: &[(&str, &str)] = &[
    ("step-js.wit", include_str!("../../../wit/js/step-js.wit")),
    ("deps/step/step.wit", include_str!("../../../wit/step.wit")),
    ("deps/cli/environment.wit", include_str!("../../../wit/js/deps/cli/environment.wit")),
];

/// The exit code of the bundler driver for a problem in the user's code
/// (its stdout is then `{"line", "message"}`).
const USER_ERROR: i32 = 3;

pub(super) fn build(
    source: &Path,
    out: &Path,
    data_dir: &Path,
    progress: Progress,
) -> Result<(), BuildError> {
    let code = std::fs::read_to_string(source)
        .map_err(|e| BuildError::Read { path: source.to_path_buf(), source: e })?;
    let source = &std::path::absolute(source).map_err(|e| failed(source, e))?;
    let work = tempfile::tempdir().map_err(|e| failed(source, e))?;
    let module = step_module(source, &code)?;
    check_syntax(source, module.as_deref().unwrap_or(&code), work.path())?;
    write_files(source, work.path(), BUNDLE_FILES)?;
    let user_code = match &module {
        Some(wrapped) => {
            write_files(source, work.path(), &[("body.mjs", wrapped)])?;
            Some(work.path().join("body.mjs"))
        }
        None => None,
    };
    let data_dir = &std::path::absolute(data_dir).map_err(|e| failed(source, e))?;
    let toolchains = data_dir.join("toolchains");
    let esbuild = esbuild(&toolchains, progress)?;
    let bundled = work.path().join("bundle.mjs");
    let mut config = serde_json::json!({
        "esbuild": esbuild.join("node_modules/esbuild"),
        "toolchain": esbuild,
        "work": work.path(),
        "user": source,
        "userCode": user_code,
        "entry": work.path().join("entry.mjs"),
        "shims": work.path().join("node"),
        "outfile": bundled,
        "nodePaths": [],
        "bodyOpen": module.as_deref().and_then(body_open),
    });
    let bundling = progress.phase("bundling with esbuild");
    let packages: BTreeMap<String, Option<String>> =
        serde_json::from_str(&driver(source, work.path(), "scan", &config)?)
            .map_err(|e| failed(source, format!("the bundler's package list: {e}")))?;
    let own_manifest = source.parent().map(|dir| dir.join("package.json")).filter(|p| p.is_file());
    if !packages.is_empty() || own_manifest.is_some() {
        let modules = install_packages(source, &packages, own_manifest.as_deref(), data_dir, progress)?;
        config["nodePaths"] = serde_json::json!([modules]);
    }
    driver(source, work.path(), "bundle", &config)?;
    bundling.done();
    let wit = work.path().join("wit");
    write_files(source, &wit, WIT_FILES)?;
    let componentize_js = componentize_js(&toolchains, progress)?;
    let componentizing = progress.phase("componentizing with StarlingMonkey");
    let config = serde_json::json!({
        "componentizeJs": componentize_js,
        "source": bundled,
        "wit": wit,
        "world": "step-js",
        "out": out,
        "disable": ["fetch-event"],
        "cache": toolchains.join(format!("componentize-js-{COMPONENTIZE_JS_VERSION}/spliced")),
        "toolchain": esbuild,
    });
    componentizing.finish(driver(source, work.path(), "componentize", &config).map(drop).map_err(|error| {
        match error {
            BuildError::Failed { path, detail } => BuildError::Failed {
                path,
                detail: detail.replace(&bundled.display().to_string(), &source.display().to_string()),
            },
            other => other,
        }
    }))
}

/// `None` for a module (it has an `export`, so it must export a default:
/// `export default …`, `defineComponent`, or `export { x as default }`);
/// for Pipedream's legacy body form (imports on top, a top-level `return`),
/// the body wrapped in `export default async (event, steps, auths) => { … }`
/// with its imports hoisted. The user's lines keep their numbers.
fn step_module(source: &Path, code: &str) -> Result<Option<String>, BuildError> {
    let starts_export = |line: &str| {
        let t = line.trim_start();
        t.starts_with("export ") || t.starts_with("export{")
    };
    if code.lines().any(starts_export) {
        let has_default = code.lines().any(|line| {
            let t = line.trim_start();
            t.starts_with("export default") || (t.starts_with("export") && t.contains("as default"))
        }) || code.contains(" as default");
        if !has_default {
            return Err(BuildError::Invalid {
                path: source.to_path_buf(),
                message: "no `export default`: export `async (event, steps, auths) => { … }` or `defineComponent({ … })`, or write the body of one (imports on top, then the code, with a top-level `return`)"
                    .into(),
            });
        }
        return Ok(None);
    }
    Ok(Some(wrap_body(code)))
}

/// Where [`wrap_body`] opened the step's function: `{line, shift}` (the
/// 1-based line, and how many columns the opening pushed its code right),
/// for the run-time stack to give the user's columns on that line.
fn body_open(wrapped: &str) -> Option<serde_json::Value> {
    let line = wrapped.lines().position(|l| l.starts_with(BODY_OPEN))?;
    Some(serde_json::json!({ "line": line + 1, "shift": BODY_OPEN.len() }))
}

/// What opens the step's function in the legacy body form.
const BODY_OPEN: &str = "export default async (event, steps, auths) => { ";

/// The legacy body form as a module: import statements stay where they are
/// while they lead (later ones move after the body, imports being hoisted
/// anyway) and the first other line opens the step's function.
fn wrap_body(code: &str) -> String {
    let mut body = String::with_capacity(code.len() + 64);
    let mut hoisted = String::new();
    let mut opened = false;
    let mut in_import = false;
    for line in code.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let starts_import =
            trimmed.starts_with("import") && trimmed[6..].starts_with([' ', '\t', '{', '*', '\'', '"']);
        if in_import || starts_import {
            let end = line.trim_end().trim_end_matches(';').trim_end();
            in_import = !(end.ends_with('\'') || end.ends_with('"'));
            if opened {
                hoisted.push_str(line);
                body.push('\n');
            } else {
                body.push_str(line);
            }
            continue;
        }
        if !opened && !trimmed.trim().is_empty() {
            body.push_str(BODY_OPEN);
            opened = true;
        }
        body.push_str(line);
    }
    if !body.ends_with('\n') {
        body.push('\n');
    }
    if !opened {
        body.push_str(BODY_OPEN);
    }
    body.push_str("};\n");
    body.push_str(&hoisted);
    body
}

/// `node --check` on the step as a module (the body form wrapped, its
/// lines in place), so a syntax error names the user's line.
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

/// Runs a driver in node: the bundler (`js/bundle.cjs`) in `mode` "scan"
/// or "bundle", or the componentizer (`js/componentize.mjs`) for mode
/// "componentize"; its stdout.
fn driver(source: &Path, work: &Path, mode: &str, config: &serde_json::Value) -> Result<String, BuildError> {
    let mut command = Command::new("node");
    match mode {
        "componentize" => command.arg(work.join("componentize.mjs")),
        _ => command.arg(work.join("bundle.cjs")).arg(mode),
    };
    let output = command.arg(config.to_string()).output().map_err(|_| missing_node())?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if output.status.success() {
        return Ok(stdout);
    }
    if output.status.code() == Some(USER_ERROR) && mode == "componentize" {
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
        let cause = report["message"].as_str().unwrap_or("componentize-js failed without saying why");
        return Err(failed(source, format!("componentize-js: {}", cause.trim())));
    }
    if output.status.code() == Some(USER_ERROR) {
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_default();
        let message = report["message"].as_str().unwrap_or("cannot be bundled").to_string();
        return Err(match report["line"].as_u64() {
            Some(line) if line > 0 => {
                BuildError::Syntax { path: source.to_path_buf(), line: line as usize, message }
            }
            _ => BuildError::Invalid { path: source.to_path_buf(), message },
        });
    }
    Err(failed(
        source,
        format!("bundling with esbuild: {}", last_lines(&String::from_utf8_lossy(&output.stderr), 6)),
    ))
}

/// Installs the step's npm packages into `<data>/npm/steps/<key>` (npm's
/// cache in `<data>/npm/cache`), pinned by the lockfile beside the step:
/// `package-lock.json` next to the step's own `package.json`, else
/// `<step>.package-lock.json`, written on the first install. Install
/// scripts do not run. Returns the `node_modules` to bundle from.
fn install_packages(
    source: &Path,
    packages: &BTreeMap<String, Option<String>>,
    own_manifest: Option<&Path>,
    data_dir: &Path,
    progress: Progress,
) -> Result<PathBuf, BuildError> {
    let dir = source.parent().unwrap_or(Path::new("."));
    let (mut manifest, lockfile) = match own_manifest {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| failed(source, e))?;
            let manifest: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                BuildError::Invalid { path: path.to_path_buf(), message: format!("not valid JSON: {e}") }
            })?;
            (manifest, dir.join("package-lock.json"))
        }
        None => {
            let stem = source.file_stem().and_then(|s| s.to_str()).unwrap_or("step");
            (
                serde_json::json!({ "name": "stephost-step", "private": true }),
                dir.join(format!("{stem}.package-lock.json")),
            )
        }
    };
    if !manifest["dependencies"].is_object() {
        manifest["dependencies"] = serde_json::json!({});
    }
    // The install runs elsewhere: a local `file:` package is found from the step's directory.
    if let Some(dependencies) = manifest["dependencies"].as_object_mut() {
        for spec in dependencies.values_mut() {
            if let Some(local) =
                spec.as_str().and_then(|s| s.strip_prefix("file:")).filter(|l| !l.starts_with('/'))
            {
                *spec = format!("file:{}", dir.join(local).display()).into();
            }
        }
    }
    for (name, version) in packages {
        let dependencies = &mut manifest["dependencies"];
        if let Some(version) = version {
            dependencies[name] = version.clone().into();
        } else if dependencies.get(name).is_none() {
            dependencies[name] = "*".into();
        }
    }
    let manifest = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    let key = hex::encode(&Sha256::digest(source.display().to_string().as_bytes())[..8]);
    let project = data_dir.join("npm/steps").join(key);
    let stamp = |lock: &str| hex::encode(Sha256::digest(format!("{manifest}\0{lock}").as_bytes()));
    let locked = std::fs::read_to_string(&lockfile).unwrap_or_default();
    let modules = project.join("node_modules");
    if std::fs::read_to_string(project.join("stamp")).ok() == Some(stamp(&locked)) && modules.is_dir() {
        return Ok(modules);
    }
    let names: Vec<&str> = packages.keys().map(String::as_str).collect();
    let what = format!("npm packages {} for {}", names.join(", "), source.display());
    let installing = progress.phase(format!("installing {what}"));
    let install_error = |detail: String| BuildError::Install { package: what.clone(), detail };
    std::fs::create_dir_all(&project).map_err(|e| install_error(e.to_string()))?;
    std::fs::write(project.join("package.json"), &manifest).map_err(|e| install_error(e.to_string()))?;
    let project_lock = project.join("package-lock.json");
    if locked.is_empty() {
        let _ = std::fs::remove_file(&project_lock);
    } else {
        std::fs::write(&project_lock, &locked).map_err(|e| install_error(e.to_string()))?;
    }
    let mut command = Command::new("npm");
    command
        .current_dir(&project)
        .args(["install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error", "--cache"])
        .arg(data_dir.join("npm/cache"));
    run_captured(&mut command, "npm").map_err(|text| install_error(cause_of(&text)))?;
    let new_lock = std::fs::read_to_string(&project_lock).map_err(|e| install_error(e.to_string()))?;
    if new_lock != locked {
        std::fs::write(&lockfile, &new_lock)
            .map_err(|e| failed(source, format!("writing {}: {e}", lockfile.display())))?;
    }
    std::fs::write(project.join("stamp"), stamp(&new_lock)).map_err(|e| install_error(e.to_string()))?;
    installing.done();
    Ok(modules)
}

/// The directory esbuild (and the shims' packages) are installed in, with
/// npm into `toolchains` on first use.
fn esbuild(toolchains: &Path, progress: Progress) -> Result<PathBuf, BuildError> {
    let prefix = toolchains.join(ESBUILD_PACKAGES.join("+").replace('/', "_"));
    let ready = |dir: &Path| ESBUILD_READY.iter().all(|file| dir.join("node_modules").join(file).is_file());
    npm_install(&prefix, ready, ESBUILD_PACKAGES, "bundles JavaScript steps", progress)?;
    Ok(prefix)
}

/// `npm install PACKAGES` into `prefix` for a toolchain, unless
/// `ready(prefix)` (see [`super::install_staged`]).
fn npm_install(
    prefix: &Path,
    ready: impl Fn(&Path) -> bool,
    packages: &[&str],
    why: &str,
    progress: Progress,
) -> Result<(), BuildError> {
    super::install_staged(prefix, ready, |staging| {
        let package = packages.join(" ");
        let installing = progress
            .phase(format!("installing {package} into {} (first JavaScript build only)", prefix.display()));
        let mut command = Command::new("npm");
        command
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
            .arg(staging)
            .args(packages)
            .stdout(Stdio::null());
        installing.finish(match command.output() {
            Err(_) => Err(BuildError::MissingTool {
                tool: "npm".into(),
                hint: format!("JavaScript steps need npm (it installs what {why}); install Node.js with npm"),
            }),
            Ok(output) if output.status.success() => Ok(()),
            Ok(output) => Err(BuildError::Install {
                package,
                detail: cause_of(&String::from_utf8_lossy(&output.stderr)),
            }),
        })
    })
}

fn missing_node() -> BuildError {
    BuildError::MissingTool {
        tool: "node".into(),
        hint: "JavaScript steps are built with Node.js 18 or newer and npm; install them and try again"
            .into(),
    }
}

/// The componentize-js package directory, installed with npm into
/// `toolchains` on first use.
fn componentize_js(toolchains: &Path, progress: Progress) -> Result<PathBuf, BuildError> {
    let prefix = toolchains.join(format!("componentize-js-{COMPONENTIZE_JS_VERSION}"));
    let package = |dir: &Path| dir.join("node_modules/@bytecodealliance/componentize-js");
    let ready = |dir: &Path| package(dir).join("src/componentize.js").is_file();
    let name = format!("@bytecodealliance/componentize-js@{COMPONENTIZE_JS_VERSION}");
    npm_install(&prefix, ready, &[&name], "componentizes them", progress)?;
    Ok(package(&prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_module_with_a_default_export_is_built_as_it_is() {
        for code in [
            "import x from 'y';\nexport default async (event) => event;\n",
            "export default defineComponent({ async run() {} });\n",
            "const step = async () => 1;\nexport { step as default };\n",
        ] {
            assert_eq!(step_module(Path::new("s.mjs"), code).unwrap(), None, "{code}");
        }
    }

    #[test]
    fn the_legacy_body_form_is_wrapped_with_its_imports_hoisted_and_lines_kept() {
        let code = "import { WebClient } from '@slack/web-api'\nimport {\n  a,\n} from \"b\";\n\nconst web = new WebClient(auths.slack.token)\nimport c from 'c'\nreturn await web.x({\n  text: `import x`,\n})";
        let wrapped = step_module(Path::new("s.mjs"), code).unwrap().expect("the body form");
        let lines: Vec<&str> = wrapped.lines().collect();
        assert_eq!(lines[0], "import { WebClient } from '@slack/web-api'");
        assert_eq!(lines[3], "} from \"b\";");
        assert_eq!(
            lines[5],
            "export default async (event, steps, auths) => { const web = new WebClient(auths.slack.token)"
        );
        assert_eq!(lines[6], "", "a later import leaves its line");
        assert_eq!(lines[7], "return await web.x({");
        assert_eq!(&lines[10..], ["};", "import c from 'c'"]);
    }

    #[test]
    fn a_module_without_a_default_export_is_refused() {
        let error = step_module(Path::new("s.mjs"), "export const x = 1;\n").unwrap_err().to_string();
        assert!(error.starts_with("s.mjs: no `export default`"), "{error}");
    }
}
