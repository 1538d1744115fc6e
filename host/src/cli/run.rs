//! `stephost run`: one step component, here, with its flags as its inputs.

use super::args::RunArgs;
use super::context::{Storage, backend, read_event, refresh_accounts, runtime, step_name};
use super::{output, render};
use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use stephost::workflow::merge_under;
use stephost::{AccountFields, HostPolicy, Limits, StepConfig, StepInput};

pub async fn run(storage: &Storage, args: RunArgs) -> Result<ExitCode> {
    // The store first: a refused master key is the one line shown.
    let store = backend(storage).await?;
    let runtime = runtime(storage, &args.egress)?;
    let step = runtime.load(&args.component)?;
    let event = read_event(&args.event)?;
    let steps = match &args.steps {
        Some(path) => read_steps(path)?,
        None => Vec::new(),
    };
    if !(args.timeout > 0.0 && args.timeout <= 86_400.0) {
        bail!("--timeout {} must be above 0 and at most 86400 seconds", args.timeout);
    }
    let kib = |kib: u64| usize::try_from(kib.saturating_mul(1024)).unwrap_or(usize::MAX);
    let limits = Limits {
        timeout: Duration::from_secs_f64(args.timeout),
        memory_bytes: stephost::workflow::memory_limit(args.memory).map_err(|e| anyhow!("--memory: {e}"))?,
        log_bytes: kib(args.log_kib),
        output_bytes: kib(args.output_kib),
    };
    let policy = HostPolicy::parse(&args.allow_hosts)?;
    let mut auths = parse_auths(&args.auths)?;
    let mut named = Vec::with_capacity(args.accounts.len());
    for account in &args.accounts {
        named.push(account.resolve(&*store).await.with_context(|| format!("--account {account}"))?);
    }
    let refresher = refresh_accounts(&store, &runtime, &named).await?;
    for (app, name) in &named {
        let fields = store.account_fields(app, name).await?;
        auths.push((app.clone(), fields.into_iter().map(|f| (f.key, f.value)).collect()));
    }
    let (stored_env, stored_secret_env) = store.env_for(None).await?;
    for (app, fields) in &auths {
        let known = runtime.catalog().require(app).map_err(|e| anyhow!("--auth {app}.…: {e}"))?;
        for (key, _) in fields {
            known.require_field(key).map_err(|e| anyhow!("--auth {app}.{key}=…: {e}"))?;
        }
    }
    let mut env = args.env.iter().map(|kv| parse_env(kv)).collect::<Result<Vec<_>>>()?;
    merge_under(&mut env, &stored_env);
    let mut secret_env = args.secret_env.iter().map(|kv| parse_env(kv)).collect::<Result<Vec<_>>>()?;
    merge_under(&mut secret_env, &stored_secret_env);
    let input = StepInput {
        step_name: step_name(&args.component),
        event: event.to_string().into(),
        steps: steps.into_iter().map(|(name, result)| (name, result.into())).collect(),
        auths,
        env,
        secret_env,
        ..StepInput::default()
    };
    let refresher = refresher.for_run(named);
    let outcome =
        runtime.run(&step, input, &StepConfig { limits, policy: Arc::new(policy), refresher }).await;
    output::emit(args.format.json, &outcome, |o| render::step(o, ""))?;
    Ok(if outcome.result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn read_steps(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("steps file {}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("the steps file {} is not valid JSON", path.display()))?;
    let Value::Object(map) = value else {
        bail!("the steps file {} must hold a JSON object of step name to result", path.display());
    };
    map.into_iter()
        .map(|(name, result)| {
            if !stephost::base::names::is_valid_name(&name) {
                bail!("the steps file {}: `{name}` is not a valid step name", path.display());
            }
            Ok((name, result.to_string()))
        })
        .collect()
}

fn parse_env(kv: &str) -> Result<(String, String)> {
    let (key, value) = kv.split_once('=').ok_or_else(|| anyhow!("--env {kv}: expected K=V"))?;
    if key.is_empty() || key.contains('\0') || value.contains('\0') {
        bail!("--env {key}: names are non-empty and neither name nor value may hold a NUL byte");
    }
    Ok((key.to_string(), value.to_string()))
}

/// `APP.KEY=VALUE` flags grouped by app, in the order given. The value is
/// never echoed in errors.
fn parse_auths(flags: &[String]) -> Result<Vec<(String, AccountFields)>> {
    let mut apps: Vec<(String, AccountFields)> = Vec::new();
    for flag in flags {
        let Some((target, value)) = flag.split_once('=') else {
            bail!("--auth: expected APP.KEY=VALUE (got no `=`)");
        };
        let Some((app, key)) = target.split_once('.') else {
            bail!("--auth {target}=…: expected APP.KEY=VALUE, e.g. slack.oauth_access_token=…");
        };
        if app.is_empty() || key.is_empty() {
            bail!("--auth {target}=…: the app and the key must not be empty");
        }
        match apps.iter_mut().find(|(name, _)| name == app) {
            Some((_, fields)) => fields.push((key.to_string(), value.to_string())),
            None => apps.push((app.to_string(), vec![(key.to_string(), value.to_string())])),
        }
    }
    Ok(apps)
}
