//! `echo`: the trivial step of `stephost bench suite`: parses the event and
//! returns it. The same work as the Node.js and `wasmtime run` peers.
use serde_json::Value;
use stephost_sdk::{Context, export_step};

fn run(ctx: &Context) -> anyhow::Result<Value> {
    ctx.event::<Value>()
}

export_step!(run);
