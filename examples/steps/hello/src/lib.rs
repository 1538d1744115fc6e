//! `hello`: returns the trigger event as it is, and exports the event's
//! top-level field names as `fields`.
use serde_json::Value;
use stephost_sdk::{Context, export_step};

fn run(ctx: &Context) -> anyhow::Result<Value> {
    let event: Value = ctx.event()?;
    let fields: Vec<&String> = event.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    println!("hello: the event has {} field(s)", fields.len());
    ctx.export("fields", &fields)?;
    Ok(event)
}

export_step!(run);
