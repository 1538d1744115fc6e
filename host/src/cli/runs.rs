//! `stephost runs list|show|replay`, and showing a queued run (also for
//! `trigger`).

use super::api::Api;
use super::args::RunsCommand;
use super::context::{Storage, service_api};
use super::{output, render};
use anyhow::{Result, anyhow};
use serde_json::Value;
use std::process::ExitCode;
use stephost::store::views::RunList;
use stephost::store::{Run, RunStatus};

pub async fn run(storage: &Storage, command: RunsCommand) -> Result<ExitCode> {
    match command {
        RunsCommand::List { workflow, status, limit, server, format } => {
            let api = service_api(storage, &server).await?;
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &limit.to_string());
            if let Some(workflow) = &workflow {
                query.append_pair("workflow", workflow);
            }
            if let Some(status) = &status {
                query.append_pair("status", status);
            }
            let listed: RunList = api.get_as(&format!("/v1/runs?{}", query.finish())).await?;
            output::emit(format.json, &listed, render::run_list)?;
            Ok(ExitCode::SUCCESS)
        }
        RunsCommand::Show { id, server, format } => {
            let api = service_api(storage, &server).await?;
            let run: Run = api.get_as(&format!("/v1/runs/{id}")).await?;
            output::emit(format.json, &run, render::run)?;
            Ok(exit_code(&run))
        }
        RunsCommand::Replay { id, from_step, wait, server, format } => {
            let api = service_api(storage, &server).await?;
            let request = stephost::store::views::ReplayRequest { from_step };
            let queued = api
                .call(
                    http::Method::POST,
                    &format!("/v1/runs/{id}/replay"),
                    serde_json::to_vec(&request)?,
                    "application/json",
                )
                .await?;
            show_queued(&api, &queued, wait, format.json).await
        }
    }
}

/// Says a run was queued, or (with `wait`, and always locally) waits for
/// it and shows it.
pub async fn show_queued(api: &Api, queued: &Value, wait: bool, json: bool) -> Result<ExitCode> {
    let id =
        queued["run"].as_str().ok_or_else(|| anyhow!("the server answered without a run id: {queued}"))?;
    if !(wait || api.is_local()) {
        match json {
            true => println!("{queued:#}"),
            false => println!("queued run {id}"),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let run = api.finished(id).await?;
    output::emit(json, &run, render::run)?;
    Ok(exit_code(&run))
}

/// 1 when the shown run failed.
pub fn exit_code(run: &Run) -> ExitCode {
    match run.status {
        RunStatus::Failed => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    }
}
