//! `stephost accounts …`, `stephost env …` and `stephost apps …`: the
//! connected accounts, environment variables and app catalog.

use anyhow::{Context, Result, anyhow, bail};
use clap::Subcommand;
use std::io::IsTerminal;
use std::path::Path;
use stephost::Catalog;
use stephost::store::Store;

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Connect an account: asks for each field the app declares (secret ones
    /// without echo), or takes them from --field / --from-env.
    Connect {
        /// The app, e.g. slack (see `stephost apps list`).
        app: String,
        /// The account's name, used by workflows (`auths = { slack = "work" }`).
        #[arg(long, default_value = "default")]
        name: String,
        /// A field's value (repeatable).
        #[arg(long = "field", value_name = "KEY=VALUE")]
        fields: Vec<String>,
        /// Take each missing field from the environment variable
        /// APP_KEY in upper case, e.g. SLACK_OAUTH_ACCESS_TOKEN.
        #[arg(long)]
        from_env: bool,
        /// Run the OAuth authorization-code flow (PKCE): print the URL to
        /// open, wait on a loopback redirect, exchange the code.
        #[arg(long)]
        oauth: bool,
        /// Your OAuth app's client ID (with --oauth).
        #[arg(long, env = "STEPHOST_OAUTH_CLIENT_ID", requires = "oauth")]
        client_id: Option<String>,
        /// Your OAuth app's client secret, if it has one (with --oauth).
        #[arg(long, env = "STEPHOST_OAUTH_CLIENT_SECRET", requires = "oauth", hide_env_values = true)]
        client_secret: Option<String>,
        /// The loopback port for the redirect (0: any free port); register
        /// http://127.0.0.1:PORT/callback with your OAuth app.
        #[arg(long, default_value_t = 0, requires = "oauth")]
        port: u16,
        /// How the token endpoint is reached (with --oauth).
        #[command(flatten)]
        egress: crate::EgressArgs,
    },
    /// List accounts: app, name, fields (secrets masked), created, last used.
    List {
        #[arg(long)]
        json: bool,
    },
    /// The property names of an app's account: `Object.keys(auths.APP)`.
    Keys {
        app: String,
        #[arg(long, default_value = "default")]
        name: String,
    },
    /// Send the app's test request with the account through the egress
    /// path (secrets swapped in by the host) and show the status.
    Test {
        /// The account: `APP` (with --name), `APP/NAME`, or a NAME that
        /// only one account has.
        account: String,
        #[arg(long, default_value = "default")]
        name: String,
        #[command(flatten)]
        egress: crate::EgressArgs,
    },
    /// Remove an account.
    Remove {
        app: String,
        #[arg(long, default_value = "default")]
        name: String,
    },
}

#[derive(Subcommand)]
pub enum EnvCommand {
    /// Set an environment variable (secret by default).
    Set {
        name: String,
        value: String,
        /// Store and show in clear.
        #[arg(long, conflicts_with = "secret")]
        plain: bool,
        /// Encrypt, and hand steps a sealed placeholder (the default).
        #[arg(long)]
        secret: bool,
        /// Only for this workflow (overrides a global one of the same name).
        #[arg(long)]
        workflow: Option<String>,
    },
    /// List environment variables (secret values masked).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Remove an environment variable.
    Unset {
        name: String,
        #[arg(long)]
        workflow: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AppsCommand {
    /// One app a line: name, auth shape, hosts.
    List,
    /// An app's fields (which are secret), hosts, placements and test request.
    Show { app: String },
}

/// The app catalog as the CLI sees it: built-in apps plus `<data>/apps`.
pub fn catalog(data_dir: &Path) -> Result<Catalog> {
    Ok(Catalog::with_dir(&data_dir.join("apps"))?)
}

pub fn accounts(data_dir: &Path, command: AccountsCommand) -> Result<()> {
    let catalog = catalog(data_dir)?;
    let mut store = Store::open(data_dir)?;
    match command {
        AccountsCommand::Connect { oauth: true, .. } => unreachable!("handled with the runtime in main"),
        AccountsCommand::Connect { app, name, fields, from_env, .. } => {
            let declared = catalog.require(&app)?;
            let mut given: Vec<(String, String)> = Vec::new();
            for flag in &fields {
                let (key, value) = flag
                    .split_once('=')
                    .ok_or_else(|| anyhow!("--field {}: expected KEY=VALUE", key_of(flag)))?;
                given.push((key.to_string(), value.to_string()));
            }
            for field in &declared.fields {
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
            store.connect_account(&catalog, &app, &name, &given)?;
            let plural = if given.len() == 1 { "" } else { "s" };
            println!("connected {app} account `{name}` ({} field{plural})", given.len());
        }
        AccountsCommand::List { json } => {
            let accounts = store.list_accounts()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&accounts)?);
            } else if accounts.is_empty() {
                println!("no accounts: connect one with `stephost accounts connect APP`");
            }
            for a in accounts.iter().filter(|_| !json) {
                let fields: Vec<String> = a.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let used =
                    a.last_used_ms.map_or("never used".to_string(), |ms| format!("last used {}", when(ms)));
                println!(
                    "{}/{}  {}  created {}, {used}, {}",
                    a.app,
                    a.name,
                    fields.join(" "),
                    when(a.created_ms),
                    a.status
                );
            }
        }
        AccountsCommand::Keys { app, name } => {
            let keys: Vec<String> = store.account_fields(&app, &name)?.into_iter().map(|f| f.key).collect();
            println!("{}", serde_json::to_string(&keys)?);
        }
        AccountsCommand::Test { .. } => unreachable!("handled with the runtime in main"),
        AccountsCommand::Remove { app, name } => {
            store.remove_account(&app, &name)?;
            println!("removed {app} account `{name}`");
        }
    }
    Ok(())
}

pub fn env(data_dir: &Path, command: EnvCommand) -> Result<()> {
    let store = Store::open(data_dir)?;
    match command {
        EnvCommand::Set { name, value, plain, secret: _, workflow } => {
            store.set_env(&name, &value, !plain, workflow.as_deref())?;
            let scope = workflow.map_or("global".to_string(), |w| format!("workflow `{w}`"));
            println!("set {name} ({}, {scope})", if plain { "plain" } else { "secret" });
        }
        EnvCommand::List { json } => {
            let vars = store.list_env()?;
            if json {
                println!("{}", serde_json::to_string_pretty(&vars)?);
            }
            for v in vars.iter().filter(|_| !json) {
                let scope = v.workflow.as_deref().map_or("global".to_string(), |w| format!("workflow {w}"));
                println!("{}={}  ({}, {scope})", v.name, v.shown, if v.secret { "secret" } else { "plain" });
            }
        }
        EnvCommand::Unset { name, workflow } => {
            store.unset_env(&name, workflow.as_deref())?;
            println!("removed {name}");
        }
    }
    Ok(())
}

pub fn apps(data_dir: &Path, command: AppsCommand) -> Result<()> {
    let catalog = catalog(data_dir)?;
    match command {
        AppsCommand::List => {
            for app in catalog.apps() {
                println!("{:<15} {:<14} {}", app.name, app.auth, hosts_of(app).join(" "));
            }
        }
        AppsCommand::Show { app } => {
            let app = catalog.require(&app)?;
            println!("{} ({}), auth: {}", app.name, app.title, app.auth);
            println!("hosts: {}", hosts_of(app).join(", "));
            println!("fields:");
            for f in &app.fields {
                let placement: Vec<String> = f.placements.iter().map(|p| p.to_string()).collect();
                let kind =
                    if f.secret { format!("secret, in {}", placement.join(", ")) } else { "plain".into() };
                println!("  {:<20} {kind}  {}", f.name, f.description);
            }
            if let Some(test) = &app.test_request {
                println!("test request: {} {}", test.method, test.url);
                for (name, value) in &test.headers {
                    println!("  {name}: {value}");
                }
            }
        }
    }
    Ok(())
}

/// Which account `target` means: `APP/NAME`, an app (with `name`), or an
/// account name only one app has.
pub fn resolve_account(
    store: &Store,
    catalog: &Catalog,
    target: &str,
    name: &str,
) -> Result<(String, String)> {
    if let Some((app, account)) = target.split_once('/') {
        return Ok((app.to_string(), account.to_string()));
    }
    if catalog.get(target).is_some() {
        return Ok((target.to_string(), name.to_string()));
    }
    let matches: Vec<_> = store.list_accounts()?.into_iter().filter(|a| a.name == target).collect();
    match matches.as_slice() {
        [one] => Ok((one.app.clone(), one.name.clone())),
        [] => bail!("no app or account named `{target}` (see `stephost accounts list`)"),
        many => {
            let apps: Vec<String> = many.iter().map(|a| format!("{}/{}", a.app, a.name)).collect();
            bail!("several accounts are named `{target}`: say which, e.g. {}", apps.join(" or "))
        }
    }
}

/// An app's hosts, templated ones (`https://{subdomain}.zendesk.com`) too.
fn hosts_of(app: &stephost::App) -> Vec<String> {
    app.hosts.patterns().iter().map(|p| p.to_string()).chain(app.host_templates.iter().cloned()).collect()
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

/// Milliseconds since the epoch as an RFC 3339 UTC time.
fn when(ms: u64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_seconds(at).to_string()
}
