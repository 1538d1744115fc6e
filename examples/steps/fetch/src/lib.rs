//! `fetch`: GETs the event's `url` (`times` times, default 1) and returns
//! the last status and body. If the `TOKEN` environment variable is set
//! (typically a secret one), it goes along as a bearer token. Used by
//! `stephost bench --egress` to measure the proxy.
use serde_json::{Value, json};
use stephost_sdk::http::Request;
use stephost_sdk::{Context, export_step};

fn run(ctx: &Context) -> anyhow::Result<Value> {
    let event: Value = ctx.event()?;
    let url =
        event.get("url").and_then(Value::as_str).ok_or_else(|| anyhow::anyhow!("the event needs a `url`"))?;
    let times = event.get("times").and_then(Value::as_u64).unwrap_or(1).max(1);
    let token = std::env::var("TOKEN").ok();
    let mut last = json!(null);
    for _ in 0..times {
        let mut request = Request::get(url);
        if let Some(token) = &token {
            request = request.bearer(token);
        }
        let response = request.send()?;
        last = json!({ "status": response.status, "body": response.text() });
    }
    Ok(last)
}

export_step!(run);
