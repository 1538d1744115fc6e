//! `stephost env set|list|unset`: environment variables for steps.

use super::args::EnvCommand;
use super::{output, render};
use anyhow::Result;
use std::path::Path;
use std::process::ExitCode;
use stephost::store::Store;

pub fn run(data_dir: &Path, command: EnvCommand) -> Result<ExitCode> {
    let store = Store::open(data_dir)?;
    match command {
        EnvCommand::Set { name, value, plain, secret: _, workflow } => {
            store.set_env(&name, &value, !plain, workflow.as_deref())?;
            let scope = workflow.map_or("global".to_string(), |w| format!("workflow `{w}`"));
            println!("set {name} ({}, {scope})", if plain { "plain" } else { "secret" });
        }
        EnvCommand::List { format } => {
            output::emit(format.json, &store.list_env()?, |v| render::env_list(v))?
        }
        EnvCommand::Unset { name, workflow } => {
            store.unset_env(&name, workflow.as_deref())?;
            println!("removed {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
