//! `stephost accounts connect|list|keys|test|remove`.

use super::args::{AccountsCommand, EgressArgs};
use super::context::{Storage, backend, catalog, refresh_accounts, runtime};
use super::oauth::{OAuthClient, connect_oauth};
use super::output;
use super::render::{self, AccountTestView, AccountView};
use anyhow::{Context, Result, anyhow, bail};
use std::io::IsTerminal;
use std::process::ExitCode;
use stephost::store::Backend;

pub async fn run(storage: &Storage, command: AccountsCommand) -> Result<ExitCode> {
    match command {
        AccountsCommand::Connect {
            account,
            name,
            fields,
            from_env,
            oauth,
            client_id,
            client_secret,
            port,
            egress,
        } => {
            let account = account.named(name)?;
            let (app, name) = (account.app.clone(), account.name.unwrap_or_else(|| "default".into()));
            let catalog = catalog(&storage.data)?;
            catalog.require(&app)?;
            let given = parse_fields(&fields)?;
            let store = backend(storage).await?;
            let Some(replacing) = may_replace(&*store, &app, &name).await? else {
                eprintln!("kept {app}/{name} (nothing changed)");
                return Ok(ExitCode::from(1));
            };
            let verb = if replacing { "replaced" } else { "connected" };
            if oauth {
                let runtime = runtime(storage, &egress)?;
                let client = OAuthClient { client_id, client_secret, port };
                connect_oauth(&*store, &runtime, &app, &name, given, client).await?;
                println!("{verb} {app} account `{name}` by OAuth");
            } else {
                let given = ask_missing(&catalog, &app, given, from_env)?;
                store.connect_account(&catalog, &app, &name, &given).await?;
                let plural = if given.len() == 1 { "" } else { "s" };
                println!("{verb} {app} account `{name}` ({} field{plural})", given.len());
            }
        }
        AccountsCommand::List { format } => {
            let accounts: Vec<AccountView> =
                backend(storage).await?.list_accounts().await?.into_iter().map(AccountView::of).collect();
            output::emit(format.json, &accounts, |a| render::account_list(a))?;
        }
        AccountsCommand::Keys { account, format } => {
            let store = backend(storage).await?;
            let (app, name) = account.account.named(account.name)?.resolve(&*store).await?;
            let keys: Vec<String> =
                store.account_fields(&app, &name).await?.into_iter().map(|f| f.key).collect();
            output::emit(format.json, &keys, |keys| keys.iter().map(|k| format!("{k}\n")).collect())?;
        }
        AccountsCommand::Test { account, egress, format } => {
            return test(storage, account, egress, format.json).await;
        }
        AccountsCommand::Remove { account } => {
            let store = backend(storage).await?;
            let (app, name) = account.account.named(account.name)?.resolve(&*store).await?;
            store.remove_account(&app, &name).await?;
            println!("removed {app} account `{name}`");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `accounts test`: the app's test request, with the account's secrets
/// swapped in by the egress path; exit 1 unless it answers 2xx.
async fn test(
    storage: &Storage,
    account: super::args::AccountArg,
    egress: EgressArgs,
    json: bool,
) -> Result<ExitCode> {
    let store = backend(storage).await?;
    let runtime = runtime(storage, &egress)?;
    let (app, name) = account.account.named(account.name)?.resolve(&*store).await?;
    refresh_accounts(&store, &runtime, &[(app.clone(), name.clone())]).await?;
    let fields = store.account_fields(&app, &name).await?.into_iter().map(|f| (f.key, f.value)).collect();
    let known = runtime.catalog().require(&app)?;
    let test = runtime.test_account(known, fields).await.map_err(|e| anyhow!(e))?;
    let view = AccountTestView::of(format!("{app}/{name}"), test);
    output::emit(json, &view, render::account_test)?;
    Ok(if view.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Whether connecting `app/name` goes ahead, and if it replaces an account:
/// `None` when the user, asked at a terminal, kept the old one. A script
/// (no terminal) replaces it and is told so.
async fn may_replace(store: &dyn Backend, app: &str, name: &str) -> Result<Option<bool>> {
    let Some(existing) = store.list_accounts().await?.into_iter().find(|a| a.app == app && a.name == name)
    else {
        return Ok(Some(false));
    };
    if !std::io::stdin().is_terminal() {
        return Ok(Some(true));
    }
    eprint!("{app}/{name} exists (created {}): replace it? [y/N] ", render::time(existing.created_ms));
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).context("reading the answer")?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes").then_some(true))
}

/// `--field KEY=VALUE` flags; a value is never echoed in errors.
fn parse_fields(flags: &[String]) -> Result<Vec<(String, String)>> {
    flags
        .iter()
        .map(|flag| {
            let (key, value) = flag
                .split_once('=')
                .ok_or_else(|| anyhow!("--field {}: expected KEY=VALUE", key_of(flag)))?;
            Ok((key.to_string(), value.to_string()))
        })
        .collect()
}

/// Each declared field `given` lacks: from the environment (--from-env),
/// else asked at a terminal. A missing secret field is an error.
fn ask_missing(
    catalog: &stephost::Catalog,
    app: &str,
    mut given: Vec<(String, String)>,
    from_env: bool,
) -> Result<Vec<(String, String)>> {
    for field in &catalog.require(app)?.fields {
        if given.iter().any(|(k, _)| *k == field.name) {
            continue;
        }
        let variable = format!("{}_{}", app, field.name).to_ascii_uppercase();
        let value = if from_env {
            std::env::var(&variable).ok()
        } else if std::io::stdin().is_terminal() {
            Some(ask(&field.name, &field.description, field.secret)?)
        } else {
            None
        };
        match value {
            Some(value) if !value.is_empty() => given.push((field.name.clone(), value)),
            _ if field.secret => bail!(
                "{app} needs `{}`: pass --field {}=… or set {variable} with --from-env",
                field.name,
                field.name
            ),
            _ => {}
        }
    }
    Ok(given)
}

fn ask(field: &str, description: &str, secret: bool) -> Result<String> {
    let prompt = format!("{field} ({description}): ");
    if secret {
        rpassword::prompt_password(prompt).context("reading a secret field")
    } else {
        eprint!("{prompt}");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("reading a field")?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }
}

/// The key of a `KEY=VALUE` flag, never its value (which may be secret).
fn key_of(flag: &str) -> &str {
    flag.split_once('=').map_or("…", |(k, _)| k)
}
