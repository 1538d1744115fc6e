//! The `stephost` command: parses arguments and calls the library.

mod cli;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use serde_json::Value;
use std::io::Read;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use stephost::{AccountFields, HostPolicy, Limits, Runtime, RuntimeConfig, StepConfig, StepInput, Workflow};

/// Run workflow code steps as sandboxed WebAssembly components.
///
/// A step gets the trigger event, earlier steps' results and its connected
/// accounts through the stephost:step WIT world; its only way out is HTTP
/// through the host, to the hosts it is allowed.
#[derive(Parser)]
#[command(name = "stephost", version, propagate_version = true)]
struct Cli {
    /// Data directory: the compiled-component cache and everything stephost
    /// stores.
    #[arg(long, global = true, env = "STEPHOST_DATA", value_name = "DIR")]
    data: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one step component and print its return value, exports and logs.
    Run(RunArgs),
    /// Show what a component imports and exports, and whether it is a step.
    Inspect {
        /// The component file (.wasm).
        component: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Work with workflow files (ordered steps).
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Connected accounts of apps (secrets encrypted at rest).
    #[command(subcommand)]
    Accounts(cli::manage::AccountsCommand),
    /// Environment variables for steps (secret by default).
    #[command(subcommand)]
    Env(cli::manage::EnvCommand),
    /// The app catalog: fields, hosts, where secrets may go, test requests.
    #[command(subcommand)]
    Apps(cli::manage::AppsCommand),
    /// Build a JavaScript (.js/.mjs) or Python (.py) step into a step
    /// component. Steps are Pipedream-style: `export default async (event,
    /// steps, auths) => …`, `export default defineComponent({ … })`, or
    /// Python's `def handler(pd):`. componentize-js / componentize-py are
    /// installed into the data directory on first use (needs node and npm,
    /// or python3 and pip).
    Build {
        /// The step source.
        source: PathBuf,
        /// The component to write (default: the source's name with .wasm).
        #[arg(short, long, value_name = "OUT.wasm")]
        out: Option<PathBuf>,
    },
    /// Serve the HTTP API: upload steps, deploy workflows, trigger them at
    /// /e/{endpoint} or on a schedule, inspect runs.
    Serve(cli::serve::ServeArgs),
    /// Upload and list step components (on a server with --server).
    #[command(subcommand)]
    Steps(cli::service::StepsCommand),
    /// Run a deployed workflow now with an event (manual trigger). Without
    /// --server it runs here and shows the run.
    Trigger {
        /// The deployed workflow's name.
        workflow: String,
        #[command(flatten)]
        event: EventArgs,
        /// The event as JSON text, instead of --event.
        #[arg(long, value_name = "JSON", conflicts_with = "event")]
        event_json: Option<String>,
        /// Wait for the run to finish and show it (always so without a server).
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        server: cli::service::ServerArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// List, show and replay the runs of deployed workflows.
    #[command(subcommand)]
    Runs(cli::service::RunsCommand),
    /// Write a new step project: plain, or performing an app's test request
    /// with the connected account.
    New {
        /// The step's name (letters, digits, underscores); also its folder.
        name: String,
        /// Start from this app's test request (see `stephost apps list`).
        #[arg(long)]
        app: Option<String>,
        /// The language of the step.
        #[arg(long, value_enum, default_value = "rust")]
        lang: Lang,
        /// Where to write it (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Read and check the audit log of outbound requests and secret reads.
    #[command(subcommand)]
    Audit(cli::audit::AuditCommand),
    /// Measure a step's end-to-end time (instantiate + run + collect) with
    /// its compiled component cached; the separate `stephost-bench` binary
    /// measures stephost side by side with bare wasmtime, Node.js and
    /// `wasmtime run`.
    Bench(BenchArgs),
}

#[derive(Subcommand)]
enum WorkflowCommand {
    /// Run a workflow file's steps in order; each sees the earlier ones.
    Run {
        /// The workflow file (TOML).
        workflow: PathBuf,
        #[command(flatten)]
        event: EventArgs,
        #[command(flatten)]
        egress: EgressArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Deploy a workflow file (uploading its components) for `stephost
    /// serve`: to the server given --server, else to the local data
    /// directory.
    Deploy {
        /// The workflow file (TOML); `component` files are uploaded.
        workflow: PathBuf,
        /// The workflow's name (default: its `name`, else the file name).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        server: cli::service::ServerArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Step languages `stephost new` can write.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Lang {
    Rust,
    /// A Node.js-style module (.mjs), built with `stephost build`.
    Js,
    /// A `def handler(pd)` module (.py), built with `stephost build`.
    Python,
}

#[derive(Args)]
struct RunArgs {
    /// The step component (.wasm).
    component: PathBuf,
    #[command(flatten)]
    event: EventArgs,
    /// Earlier steps' results: a JSON object of step name to result
    /// (`{"fetch": {"$return_value": …, "user_id": 1}}`).
    #[arg(long, value_name = "FILE")]
    steps: Option<PathBuf>,
    /// An environment variable for the step (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    env: Vec<String>,
    /// A secret environment variable (repeatable): the step sees a sealed
    /// placeholder, swapped for the value only on requests to its
    /// --allow-host destinations.
    #[arg(long = "secret-env", value_name = "K=V")]
    secret_env: Vec<String>,
    /// A connected account's field, e.g. slack.oauth_access_token=xoxb-…
    /// (repeatable). Secret fields reach the step sealed; the app's hosts
    /// are allowed too.
    #[arg(long = "auth", value_name = "APP.KEY=VALUE")]
    auths: Vec<String>,
    /// A connected account for the step (repeatable), e.g. slack=work (see
    /// `stephost accounts list`).
    #[arg(long = "account", value_name = "APP=NAME")]
    accounts: Vec<String>,
    /// A destination the step may reach: scheme://host[:port] with `*`
    /// wildcards, e.g. https://*.slack.com (repeatable; default: none).
    #[arg(long = "allow-host", value_name = "PATTERN")]
    allow_hosts: Vec<String>,
    /// Wall-clock limit in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, allow_negative_numbers = true)]
    timeout: f64,
    /// Memory limit in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256, allow_negative_numbers = true)]
    memory: u64,
    #[command(flatten)]
    egress: EgressArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct EventArgs {
    /// The trigger event: a JSON file, or - for stdin (default: {}).
    #[arg(long, value_name = "FILE")]
    event: Option<PathBuf>,
}

#[derive(Args)]
pub struct EgressArgs {
    /// Connect to ADDR for HOST:PORT, like curl --resolve (e.g. to point
    /// slack.com:443 at a local stand-in); the URL and TLS name stay.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    resolve: Vec<String>,
    /// Also trust this PEM CA certificate for outbound HTTPS (repeatable).
    #[arg(long, value_name = "FILE")]
    ca_cert: Vec<PathBuf>,
}

#[derive(Args)]
struct BenchArgs {
    /// The step component (.wasm).
    component: PathBuf,
    #[command(flatten)]
    event: EventArgs,
    /// How many runs to time (after 100 warm-up runs).
    #[arg(long, default_value_t = 10_000)]
    runs: u32,
    /// Instead: measure the egress proxy. COMPONENT must be the `fetch`
    /// example step; it is timed against a direct reqwest client, both
    /// making sequential GETs to a loopback server.
    #[arg(long)]
    egress: bool,
    /// Instead: serve COMPONENT as a one-step workflow on a loopback port
    /// and fire this many HTTP triggers at it; reports triggers/s and the
    /// trigger-to-finish p50/p99.
    #[arg(long, value_name = "N", conflicts_with = "egress", value_parser = clap::value_parser!(u64).range(1..))]
    triggers: Option<u64>,
    /// With --triggers: clients sending at once.
    #[arg(long, default_value_t = 64, requires = "triggers")]
    concurrency: usize,
}

fn main() -> ExitCode {
    // An empty `STEPHOST_DATA=` (or any STEPHOST_ variable) means "not set",
    // not "a value is required".
    for (name, value) in std::env::vars_os() {
        if value.is_empty() && name.to_string_lossy().starts_with("STEPHOST_") {
            // SAFETY: no other thread runs yet.
            unsafe { std::env::remove_var(name) };
        }
    }
    let cli = Cli::parse();
    if only_reads_local_files(&cli.command) {
        // `stephost apps list | head -1` ends quietly, as `ls` would, instead
        // of panicking on the closed pipe. Commands that use the network keep
        // SIGPIPE ignored: a peer closing a socket is an error they report.
        // SAFETY: nothing else runs yet; SIG_DFL is a valid disposition.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // One run at a time goes fastest on one thread (no cross-thread
    // wake-ups on the egress path); the server runs many at once.
    let runtime = match cli.command {
        Command::Serve(_) | Command::Bench(BenchArgs { triggers: Some(_), .. }) => {
            tokio::runtime::Builder::new_multi_thread().enable_all().build()
        }
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build(),
    };
    let result = runtime.context("cannot start the async runtime").and_then(|rt| rt.block_on(dispatch(cli)));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::from(2)
        }
    }
}

/// Commands that print what local files hold and open no socket.
fn only_reads_local_files(command: &Command) -> bool {
    use cli::manage::{AccountsCommand, EnvCommand};
    matches!(
        command,
        Command::Apps(_)
            | Command::Audit(_)
            | Command::Inspect { .. }
            | Command::Env(EnvCommand::List { .. })
            | Command::Accounts(AccountsCommand::List { .. } | AccountsCommand::Keys { .. })
    )
}

/// The API the service commands talk to: `--server`, or this data directory.
fn service_api(data_dir: &Path, server: &cli::service::ServerArgs) -> Result<cli::service::Api> {
    cli::service::Api::open(server, data_dir, || {
        runtime(data_dir, &EgressArgs { resolve: vec![], ca_cert: vec![] })
    })
}

/// `error: context: cause` on one line. A cause whose text the message
/// already shows (library errors name their source) is not repeated.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    let data_dir = data_dir(cli.data)?;
    match cli.command {
        Command::Run(args) => run_step(&data_dir, args).await,
        Command::Inspect { component, json } => {
            let runtime = runtime(&data_dir, &EgressArgs { resolve: vec![], ca_cert: vec![] })?;
            let report = runtime.inspect(&component)?;
            cli::print_report(&report, json)?;
            Ok(if report.misfit.is_some() { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        Command::Workflow(WorkflowCommand::Run { workflow, event, egress, json }) => {
            let runtime = runtime(&data_dir, &egress)?;
            let mut workflow = Workflow::from_file(&workflow)?;
            let store = stephost::store::Store::open(&data_dir)?;
            let refresher = cli::oauth::refresh_accounts(&data_dir, &runtime, &workflow.accounts()).await?;
            workflow.attach_store(&store, Some(&refresher))?;
            let event = read_event(&event)?;
            let outcome = workflow.run(&runtime, &event).await?;
            cli::print_workflow(&outcome, json)?;
            Ok(match outcome.status {
                stephost::WorkflowStatus::Failed { .. } => ExitCode::from(1),
                _ => ExitCode::SUCCESS,
            })
        }
        Command::Audit(command) => cli::audit::audit(&data_dir, command),
        Command::Build { source, out } => {
            let out = out.unwrap_or_else(|| stephost::build::default_output(&source));
            let built = stephost::build::build(&source, &out, &data_dir)?;
            let runtime = runtime(&data_dir, &EgressArgs { resolve: vec![], ca_cert: vec![] })?;
            let started = std::time::Instant::now();
            runtime.load(&out).with_context(|| format!("the built component {}", out.display()))?;
            println!(
                "built {} ({:.1} MB) in {:.1} s; precompiled in {:.1} s",
                out.display(),
                built.size as f64 / 1e6,
                built.duration.as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Serve(args) => {
            let runtime = Arc::new(runtime(&data_dir, &args.egress)?);
            cli::serve::serve(&data_dir, args, runtime).await
        }
        Command::Steps(command) => {
            let (cli::service::StepsCommand::Upload { server, .. }
            | cli::service::StepsCommand::List { server, .. }) = &command;
            let api = service_api(&data_dir, server)?;
            cli::service::steps(&api, command).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Workflow(WorkflowCommand::Deploy { workflow, name, server, json }) => {
            let api = service_api(&data_dir, &server)?;
            cli::service::deploy(&api, &workflow, name, json).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Trigger { workflow, event, event_json, wait, server, json } => {
            let api = service_api(&data_dir, &server)?;
            let event = match cli::service::event_json(event_json.as_deref())? {
                Some(event) => event,
                None => read_event(&event)?,
            };
            let ok = cli::service::trigger(&api, &workflow, &event, wait, json).await?;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Runs(command) => {
            let (cli::service::RunsCommand::List { server, .. }
            | cli::service::RunsCommand::Show { server, .. }
            | cli::service::RunsCommand::Replay { server, .. }) = &command;
            let api = service_api(&data_dir, server)?;
            let ok = cli::service::runs(&api, command).await?;
            Ok(if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::New { name, app, lang, dir } => {
            let catalog = cli::manage::catalog(&data_dir)?;
            let app = match &app {
                Some(app) => Some(catalog.require(app)?),
                None => None,
            };
            let dir = dir.unwrap_or_else(|| PathBuf::from(&name));
            let (build, wasm) = match lang {
                Lang::Rust => {
                    let sdk = stephost::build::templates::install_sdk(&data_dir)?;
                    stephost::build::templates::new_project(&dir, &name, app, &sdk)?;
                    (
                        format!(
                            "cd {} && cargo build --release     (or: cargo component build --release)",
                            dir.display()
                        ),
                        format!("target/wasm32-wasip2/release/{name}.wasm"),
                    )
                }
                Lang::Js | Lang::Python => {
                    let (language, extension) = match lang {
                        Lang::Js => (stephost::build::templates::ScriptLanguage::JavaScript, "mjs"),
                        _ => (stephost::build::templates::ScriptLanguage::Python, "py"),
                    };
                    stephost::build::templates::new_script_project(&dir, &name, app, language)?;
                    (
                        format!("cd {} && stephost build {name}.{extension}", dir.display()),
                        format!("{name}.wasm"),
                    )
                }
            };
            println!("wrote {}: build it with", dir.display());
            println!("  {build}");
            match app {
                Some(app) => println!(
                    "then: stephost accounts connect {0} && stephost run {wasm} --account {0}=default",
                    app.name
                ),
                None => println!("then: stephost run {wasm}"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Accounts(cli::manage::AccountsCommand::Connect {
            app,
            name,
            fields,
            oauth: true,
            client_id,
            client_secret,
            port,
            egress,
            ..
        }) => {
            let runtime = runtime(&data_dir, &egress)?;
            let client = cli::oauth::OAuthClient { client_id, client_secret, port };
            cli::oauth::connect_oauth(&data_dir, &runtime, &app, &name, &fields, client).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Accounts(cli::manage::AccountsCommand::Test { account, name, egress }) => {
            let runtime = runtime(&data_dir, &egress)?;
            let store = stephost::store::Store::open(&data_dir)?;
            let (app, name) = cli::manage::resolve_account(&store, runtime.catalog(), &account, &name)?;
            cli::oauth::refresh_accounts(&data_dir, &runtime, &[(app.clone(), name.clone())]).await?;
            let fields = store.account_fields(&app, &name)?.into_iter().map(|f| (f.key, f.value)).collect();
            let known = runtime.catalog().require(&app)?;
            let test = runtime.test_account(known, fields).await.map_err(|e| anyhow!(e))?;
            let verdict = match test.status {
                Some(status) => status.to_string(),
                None => "no response".into(),
            };
            println!("{app}/{name}: {} {} -> {verdict}", test.method, test.url);
            println!("  {}", test.detail.replace('\n', " "));
            Ok(if test.status.is_some_and(|s| (200..300).contains(&s)) {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        Command::Accounts(command) => cli::manage::accounts(&data_dir, command).map(|()| ExitCode::SUCCESS),
        Command::Env(command) => cli::manage::env(&data_dir, command).map(|()| ExitCode::SUCCESS),
        Command::Apps(command) => cli::manage::apps(&data_dir, command).map(|()| ExitCode::SUCCESS),
        Command::Bench(args) => {
            let component = args.component;
            if component == Path::new("suite") && !component.exists() {
                bail!("the peer comparison moved out of `stephost bench suite`: run `stephost-bench`");
            }
            let runtime = runtime(&data_dir, &EgressArgs { resolve: vec![], ca_cert: vec![] })?;
            if let Some(triggers) = args.triggers {
                let report = stephost::bench::triggers(
                    Arc::new(runtime),
                    &component,
                    triggers as usize,
                    args.concurrency,
                )
                .await?;
                println!("{report}");
                return Ok(ExitCode::SUCCESS);
            }
            let step = runtime.load(&component)?;
            if args.egress {
                println!("{}", stephost::bench::egress(&runtime, &step, 20, 200).await?);
                return Ok(ExitCode::SUCCESS);
            }
            let event = read_event(&args.event)?;
            let input = StepInput {
                step_name: step_name(&component),
                event: event.to_string(),
                ..Default::default()
            };
            let report = stephost::bench::step(&runtime, &step, &input, args.runs).await?;
            println!("{report}");
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn run_step(data_dir: &Path, args: RunArgs) -> Result<ExitCode> {
    let runtime = runtime(data_dir, &args.egress)?;
    let step = runtime.load(&args.component)?;
    let event = read_event(&args.event)?;
    let steps = match &args.steps {
        Some(path) => read_steps(path)?,
        None => Vec::new(),
    };
    if !(args.timeout > 0.0 && args.timeout <= 86_400.0) {
        bail!("--timeout {} must be above 0 and at most 86400 seconds", args.timeout);
    }
    let limits = Limits {
        timeout: Duration::from_secs_f64(args.timeout),
        memory_bytes: stephost::workflow::memory_limit(args.memory).map_err(|e| anyhow!("--memory: {e}"))?,
        ..Limits::default()
    };
    let policy = HostPolicy::parse(&args.allow_hosts)?;
    let store = stephost::store::Store::open(data_dir)?;
    let mut auths = parse_auths(&args.auths)?;
    let named = args
        .accounts
        .iter()
        .map(|flag| {
            let (app, name) =
                flag.split_once('=').ok_or_else(|| anyhow!("--account {flag}: expected APP=NAME"))?;
            Ok((app.to_string(), name.to_string()))
        })
        .collect::<Result<Vec<_>>>()?;
    let refresher = cli::oauth::refresh_accounts(data_dir, &runtime, &named).await?;
    for (app, name) in &named {
        let fields = store.account_fields(app, name)?;
        auths.push((app.clone(), fields.into_iter().map(|f| (f.key, f.value)).collect()));
    }
    let (stored_env, stored_secret_env) = store.env_for(None)?;
    for (app, fields) in &auths {
        let known = runtime.catalog().require(app).map_err(|e| anyhow!("--auth {app}.…: {e}"))?;
        for (key, _) in fields {
            known.require_field(key).map_err(|e| anyhow!("--auth {app}.{key}=…: {e}"))?;
        }
    }
    let input = StepInput {
        step_name: step_name(&args.component),
        event: event.to_string(),
        steps,
        auths,
        env: with_defaults(args.env.iter().map(|kv| parse_env(kv)).collect::<Result<_>>()?, stored_env),
        secret_env: with_defaults(
            args.secret_env.iter().map(|kv| parse_env(kv)).collect::<Result<_>>()?,
            stored_secret_env,
        ),
        ..StepInput::default()
    };
    let refresher = refresher.for_run(named);
    let outcome =
        runtime.run(&step, input, &StepConfig { limits, policy: Arc::new(policy), refresher }).await;
    cli::print_step(&outcome, args.json)?;
    Ok(if outcome.result.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `vars` plus every default whose name `vars` lacks.
fn with_defaults(mut vars: Vec<(String, String)>, defaults: Vec<(String, String)>) -> Vec<(String, String)> {
    for (name, value) in defaults {
        if !vars.iter().any(|(n, _)| *n == name) {
            vars.push((name, value));
        }
    }
    vars
}

/// The step's name in messages: the file stem, made a valid name.
fn step_name(component: &Path) -> String {
    let stem = component.file_stem().map_or("step".into(), |s| s.to_string_lossy().into_owned());
    stem.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

fn data_dir(flag: Option<PathBuf>) -> Result<PathBuf> {
    match flag {
        // An empty STEPHOST_DATA= means "not set".
        Some(dir) if !dir.as_os_str().is_empty() => Ok(dir),
        _ => dirs::data_local_dir()
            .map(|d| d.join("stephost"))
            .ok_or_else(|| anyhow!("no home directory: pass --data DIR or set STEPHOST_DATA")),
    }
}

fn runtime(data_dir: &Path, egress: &EgressArgs) -> Result<Runtime> {
    let mut config = RuntimeConfig {
        cache_dir: Some(data_dir.join("components")),
        catalog: Arc::new(cli::manage::catalog(data_dir)?),
        audit_path: Some(data_dir.join("audit.jsonl")),
        ..RuntimeConfig::default()
    };
    for spec in &egress.resolve {
        config.egress.resolve.push(parse_resolve(spec)?);
    }
    for path in &egress.ca_cert {
        let pem = std::fs::read(path).with_context(|| format!("--ca-cert {}", path.display()))?;
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            bail!("--ca-cert {}: not a PEM certificate (no BEGIN CERTIFICATE block)", path.display());
        }
        config.egress.extra_root_certs_pem.push(pem);
    }
    Ok(Runtime::new(config)?)
}

/// `HOST:PORT:ADDR` (ADDR may be `[v6]`).
/// `HOST:PORT:ADDR`, ADDR an IP (`[v6]` too) optionally with its own port
/// (`slack.com:443:127.0.0.1:8443` reaches a stand-in on another port).
fn parse_resolve(spec: &str) -> Result<(String, u16, SocketAddr)> {
    let bad = || anyhow!("--resolve {spec}: expected HOST:PORT:ADDR, e.g. slack.com:443:127.0.0.1");
    let (host, rest) = spec.split_once(':').ok_or_else(bad)?;
    let (port, addr) = rest.split_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let socket = match addr.parse::<SocketAddr>() {
        Ok(socket) => socket,
        Err(_) => {
            let ip = addr.trim_start_matches('[').trim_end_matches(']');
            (ip, port).to_socket_addrs().map_err(|_| bad())?.next().ok_or_else(bad)?
        }
    };
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.to_ascii_lowercase(), port, socket))
}

fn read_event(args: &EventArgs) -> Result<Value> {
    let Some(path) = &args.event else { return Ok(Value::Object(Default::default())) };
    let (text, name) = if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading the event from stdin")?;
        (text, "stdin".to_string())
    } else {
        let text = std::fs::read_to_string(path).with_context(|| format!("event file {}", path.display()))?;
        (text, path.display().to_string())
    };
    serde_json::from_str(&text).with_context(|| format!("the event in {name} is not valid JSON"))
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
