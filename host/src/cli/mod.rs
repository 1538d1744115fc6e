//! The `stephost` command: every flag in `args`, one module per
//! subcommand, one renderer per object in `render`, and `output` choosing
//! text or JSON.

pub mod account_ref;
pub mod accounts;
pub mod api;
pub mod apps;
pub mod args;
pub mod audit;
pub mod benchmark;
pub mod build;
pub mod context;
pub mod env;
pub mod inspect;
pub mod new;
pub mod nodes;
pub mod oauth;
pub mod output;
pub mod render;
pub mod run;
pub mod runs;
pub mod serve;
pub mod steps;
pub mod trigger;
pub mod workflow;

use anyhow::Result;
use args::{Cli, Command};
use std::process::ExitCode;

/// Runs the subcommand: the one `match` on what was asked.
pub async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let storage = context::Storage::new(context::data_dir(cli.data)?, cli.database)?;
    let data = storage.data.as_path();
    match cli.command {
        Command::Run(args) => run::run(&storage, args).await,
        Command::Inspect(args) => inspect::run(data, args),
        Command::Workflow(command) => workflow::run(&storage, command).await,
        Command::Accounts(command) => accounts::run(&storage, command).await,
        Command::Env(command) => env::run(&storage, command).await,
        Command::Apps(command) => apps::run(data, command),
        Command::Build(args) => build::run(data, args),
        Command::Serve(args) => serve::run(&storage, args).await,
        Command::Steps(command) => steps::run(&storage, command).await,
        Command::Trigger(args) => trigger::run(&storage, args).await,
        Command::Runs(command) => runs::run(&storage, command).await,
        Command::New(args) => new::run(data, args),
        Command::Audit(command) => audit::run(data, storage.database.as_deref(), command).await,
        Command::Bench(args) => benchmark::run(data, args).await,
        Command::Nodes(args) => nodes::run(&storage, args).await,
    }
}
