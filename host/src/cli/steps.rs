//! `stephost steps upload|list`: step components on the server.

use super::args::StepsCommand;
use super::context::{Storage, service_api};
use super::{output, render};
use anyhow::Result;
use std::process::ExitCode;
use stephost::store::views::StepList;

pub async fn run(storage: &Storage, command: StepsCommand) -> Result<ExitCode> {
    match command {
        StepsCommand::Upload { file, server, format } => {
            let uploaded = service_api(storage, &server).await?.upload(&file).await?;
            output::emit(format.json, &uploaded, |u| {
                format!("uploaded {} as step {}\n", file.display(), u["id"].as_str().unwrap_or_default())
            })?;
        }
        StepsCommand::List { server, format } => {
            let listed: StepList = service_api(storage, &server).await?.get_as("/v1/steps").await?;
            output::emit(format.json, &listed, render::step_list)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
