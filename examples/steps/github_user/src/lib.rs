//! `github_user`: GitHub's test request, `GET https://api.github.com/user`
//! with `auths.github.oauth_access_token`. Exports the user's `login`.
use serde_json::Value;
use stephost_sdk::http::Request;
use stephost_sdk::{Context, export_step};

fn run(ctx: &Context) -> anyhow::Result<Value> {
    let token = ctx.auths().app("github")?.get("oauth_access_token")?;
    let user: Value = Request::get("https://api.github.com/user")
        .bearer(&token)
        .header("accept", "application/vnd.github+json")
        .header("user-agent", "stephost-step")
        .send()?
        .error_for_status()?
        .json()?;
    if let Some(login) = user.get("login") {
        ctx.export("login", login)?;
    }
    Ok(user)
}

export_step!(run);
