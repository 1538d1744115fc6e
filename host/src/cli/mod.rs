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
    let data = context::data_dir(cli.data)?;
    let data = data.as_path();
    match cli.command {
        Command::Run(args) => run::run(data, args).await,
        Command::Inspect(args) => inspect::run(data, args),
        Command::Workflow(command) => workflow::run(data, command).await,
        Command::Accounts(command) => accounts::run(data, command).await,
        Command::Env(command) => env::run(data, command),
        Command::Apps(command) => apps::run(data, command),
        Command::Build(args) => build::run(data, args),
        Command::Serve(args) => serve::run(data, args).await,
        Command::Steps(command) => steps::run(data, command).await,
        Command::Trigger(args) => trigger::run(data, args).await,
        Command::Runs(command) => runs::run(data, command).await,
        Command::New(args) => new::run(data, args),
        Command::Audit(command) => audit::run(data, None, command).await,
        Command::Bench(args) => benchmark::run(data, args).await,
    }
}
