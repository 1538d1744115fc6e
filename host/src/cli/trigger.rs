//! `stephost trigger`: a manual run of a deployed workflow.

use super::args::TriggerArgs;
use super::context::{Storage, read_event, service_api};
use super::runs::show_queued;
use anyhow::Result;
use std::process::ExitCode;

pub async fn run(storage: &Storage, args: TriggerArgs) -> Result<ExitCode> {
    let api = service_api(storage, &args.server).await?;
    let event = match args.event_json {
        Some(event) => event,
        None => read_event(&args.event)?,
    };
    let queued = api
        .call(
            http::Method::POST,
            &format!("/v1/workflows/{}/runs", args.workflow),
            event.to_string().into_bytes(),
            "application/json",
        )
        .await?;
    show_queued(&api, &queued, args.wait, args.format.json).await
}
