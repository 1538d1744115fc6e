//! `stephost env set|list|unset`: environment variables for steps, in the
//! data directory or the shared database.

use super::args::EnvCommand;
use super::context::{Storage, backend};
use super::{output, render};
use anyhow::Result;
use std::process::ExitCode;

pub async fn run(storage: &Storage, command: EnvCommand) -> Result<ExitCode> {
    let store = backend(storage).await?;
    match command {
        EnvCommand::Set { name, value, plain, secret: _, workflow } => {
            store.set_env(&name, &value, !plain, workflow.as_deref()).await?;
            let scope = workflow.map_or("global".to_string(), |w| format!("workflow `{w}`"));
            println!("set {name} ({}, {scope})", if plain { "plain" } else { "secret" });
        }
        EnvCommand::List { format } => {
            output::emit(format.json, &store.list_env().await?, |v| render::env_list(v))?
        }
        EnvCommand::Unset { name, workflow } => {
            store.unset_env(&name, workflow.as_deref()).await?;
            println!("removed {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
