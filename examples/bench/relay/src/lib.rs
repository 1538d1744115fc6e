//! `relay`: returns the return value of the step before it (the event for
//! the first step): `stephost bench suite` chains five of them to pass
//! 10 KiB along a workflow.
use serde_json::Value;
use stephost_sdk::{Context, export_step};

fn run(ctx: &Context) -> anyhow::Result<Value> {
    let steps = ctx.steps();
    match steps.names().into_iter().rfind(|name| name != "trigger") {
        Some(previous) => Ok(steps.require(&previous)?.return_value().clone()),
        None => ctx.event::<Value>(),
    }
}

export_step!(run);
