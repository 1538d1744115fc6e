//! `stephost new`: a new step project, plain or from an app's test request.

use super::args::{Lang, NewArgs};
use super::context;
use anyhow::Result;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use stephost::build::templates;

pub fn run(data_dir: &Path, args: NewArgs) -> Result<ExitCode> {
    let NewArgs { name, app, lang, dir } = args;
    let catalog = context::catalog(data_dir)?;
    let app = match &app {
        Some(app) => Some(catalog.require(app)?),
        None => None,
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
    let (build, wasm) = match lang {
        Lang::Rust => {
            let sdk = templates::install_sdk(data_dir)?;
            templates::new_project(&dir, &name, app, &sdk)?;
            (
                format!(
                    "cd {} && cargo build --release     (or: cargo component build --release)",
                    dir.display()
                ),
                format!("target/wasm32-wasip2/release/{name}.wasm"),
            )
        }
        Lang::Js | Lang::Python => {
            let (language, extension) = match lang {
                Lang::Js => (templates::ScriptLanguage::JavaScript, "mjs"),
                _ => (templates::ScriptLanguage::Python, "py"),
            };
            templates::new_script_project(&dir, &name, app, language)?;
            (format!("cd {} && stephost build {name}.{extension}", dir.display()), format!("{name}.wasm"))
        }
    };
    println!("wrote {}: build it with", dir.display());
    println!("  {build}");
    match app {
        Some(app) => {
            println!("then: stephost accounts connect {0} && stephost run {wasm} --account {0}", app.name)
        }
        None => println!("then: stephost run {wasm}"),
    }
    Ok(ExitCode::SUCCESS)
}
