//! `transform`: builds a greeting from the `hello` step's return value and
//! its `fields` export; ends the workflow early when the event has no name.
use serde_json::{Value, json};
use stephost_sdk::{Context, export_step};

fn run(ctx: &Context) -> anyhow::Result<Value> {
    let hello = ctx.steps().require("hello")?;
    let fields: Vec<String> = hello.export_as("fields")?;
    let Some(name) = hello.return_value().get("name").and_then(Value::as_str) else {
        ctx.exit("the event has no `name`: nothing to greet")
    };
    let greeting = format!("Hello, {name}!");
    println!("transform: {greeting}");
    ctx.export("greeting", &greeting)?;
    Ok(json!({ "greeting": greeting, "field_count": fields.len() }))
}

export_step!(run);
