//! `stephost workflow run` (here) and `stephost workflow deploy` (for
//! `stephost serve`).

use super::api::Api;
use super::args::WorkflowCommand;
use super::context::{Storage, backend, read_event, refresh_accounts, runtime, service_api};
use super::{output, render, runs};
use anyhow::{Context, Result, anyhow};
use std::path::Path;
use std::process::ExitCode;
use stephost::Workflow;

pub async fn run(storage: &Storage, command: WorkflowCommand) -> Result<ExitCode> {
    match command {
        WorkflowCommand::Run { workflow, event, egress, format } => {
            let store = backend(storage).await?;
            let runtime = runtime(storage, &egress)?;
            let mut workflow = Workflow::from_file(&workflow)?;
            let refresher = refresh_accounts(&store, &runtime, &workflow.accounts()).await?;
            workflow.attach_store(&*store, Some(&refresher)).await?;
            let event = read_event(&event)?;
            let started_ms = stephost::base::clock::now_ms() as u64;
            let run = workflow.run(&runtime, &event).await?.into_run(event, started_ms);
            output::emit(format.json, &run, render::run)?;
            Ok(runs::exit_code(&run))
        }
        WorkflowCommand::Deploy { workflow, name, server, format } => {
            let api = service_api(storage, &server).await?;
            deploy(&api, &workflow, name, format.json).await?;
            Ok(ExitCode::SUCCESS)
        }
        WorkflowCommand::List { server, format } => {
            let api = service_api(storage, &server).await?;
            let listed: stephost::store::views::WorkflowList = api.get_as("/v1/workflows").await?;
            output::emit(format.json, &listed, render::workflow_list)?;
            Ok(ExitCode::SUCCESS)
        }
        WorkflowCommand::ReplayFailed { name, limit, server, format } => {
            let api = service_api(storage, &server).await?;
            let path = format!("/v1/workflows/{name}/replay-failed?limit={limit}");
            let answer = api.call(http::Method::POST, &path, Vec::new(), "application/json").await?;
            let replays: stephost::store::views::ReplayList =
                serde_json::from_value(answer).context("the server's answer to replay-failed")?;
            output::emit(format.json, &replays, render::replay_list)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Uploads every `component = "file.wasm"` step of the workflow file, names
/// it by id instead, and deploys the result.
async fn deploy(api: &Api, file: &Path, name: Option<String>, json: bool) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("workflow file {}", file.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", file.display()))?;
    let base = file.parent().unwrap_or(Path::new("."));
    for step in table.get_mut("steps").and_then(|s| s.as_array_mut()).into_iter().flatten() {
        let Some(step) = step.as_table_mut() else { continue };
        if let Some(component) = step.remove("component") {
            let path = base.join(
                component
                    .as_str()
                    .ok_or_else(|| anyhow!("{}: `component` must be a file name", file.display()))?,
            );
            let uploaded = api.upload(&path).await?;
            step.insert(
                "step".into(),
                toml::Value::String(uploaded["id"].as_str().unwrap_or_default().into()),
            );
        }
    }
    let name = name
        .or_else(|| table.get("name").and_then(|n| n.as_str()).map(String::from))
        .or_else(|| file.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .ok_or_else(|| anyhow!("give the workflow a name with --name"))?;
    let deployed = api
        .call(
            http::Method::PUT,
            &format!("/v1/workflows/{name}"),
            toml::to_string(&table)?.into_bytes(),
            "application/toml",
        )
        .await?;
    let trigger = match api {
        Api::Remote { base, .. } => {
            format!("  HTTP trigger: {base}{}", deployed["endpoint"].as_str().unwrap_or_default())
        }
        Api::Local { .. } => {
            format!(
                "  HTTP trigger: {} on `stephost serve`",
                deployed["endpoint"].as_str().unwrap_or_default()
            )
        }
    };
    output::emit(json, &deployed, |d| render::deployed(&name, d, &trigger))
}
