//! `slack_post`: the seed's example. Posts "Hello, world!" to `#general`
//! through Slack's `chat.postMessage` with `auths.slack.oauth_access_token`.
//! The event may set `channel` and `text`.
use serde_json::{Value, json};
use stephost_sdk::http::Request;
use stephost_sdk::{Context, export_step};

fn run(ctx: &Context) -> anyhow::Result<Value> {
    let event: Value = ctx.event()?;
    let channel = event.get("channel").and_then(Value::as_str).unwrap_or("#general");
    let text = event.get("text").and_then(Value::as_str).unwrap_or("Hello, world!");
    let token = ctx.auths().app("slack")?.get("oauth_access_token")?;

    let response = Request::post("https://slack.com/api/chat.postMessage")
        .bearer(&token)
        .json(&json!({ "channel": channel, "text": text }))?
        .send()?
        .error_for_status()?;
    let body: Value = response.json()?;
    if body.get("ok") != Some(&Value::Bool(true)) {
        anyhow::bail!("Slack refused the message: {}", body.get("error").unwrap_or(&body));
    }
    println!("posted to {channel}");
    Ok(body)
}

export_step!(run);
