//! `relay`: returns the return value of the step before it (the event for
//! the first step): `stephost bench suite` chains five of them to pass
//! 10 KiB along a workflow.
//!
//! By default it passes the data on as JSON text, never parsed into a
//! `Value` (`raw_return_value`, `raw_event`): what a step that only hands
//! data on costs. With `RELAY_PARSE=1` it reads the data into a `Value` and
//! returns it written out again: what a step that looks inside costs.
use serde_json::Value;
use serde_json::value::RawValue;
use stephost_sdk::{Context, export_step};

fn run(ctx: &Context) -> anyhow::Result<Box<RawValue>> {
    let parse = std::env::var("RELAY_PARSE").is_ok_and(|v| v == "1");
    let steps = ctx.steps();
    let previous = steps.names().into_iter().rfind(|name| name != "trigger");
    match (previous, parse) {
        (Some(previous), false) => steps.require(&previous)?.raw_return_value(),
        (None, false) => ctx.raw_event(),
        (Some(previous), true) => to_raw(steps.require(&previous)?.return_value()),
        (None, true) => to_raw(&ctx.event::<Value>()?),
    }
}

fn to_raw(value: &Value) -> anyhow::Result<Box<RawValue>> {
    Ok(serde_json::value::to_raw_value(value)?)
}

export_step!(run);
