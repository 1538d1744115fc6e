//! Every flag and subcommand of `stephost`, in one place (clap derive).
//! The modules next to this one run them; nothing else defines a flag.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;

use super::account_ref::AccountRef;

/// Run workflow code steps as sandboxed WebAssembly components.
///
/// A step gets the trigger event, earlier steps' results and its connected
/// accounts through the stephost:step WIT world; its only way out is HTTP
/// through the host, to the hosts it is allowed.
///
/// An account is named APP (the app's only account) or APP/NAME, e.g.
/// `slack/work`, everywhere: `--account`, `accounts keys|test|remove`.
#[derive(Parser)]
#[command(name = "stephost", version, propagate_version = true)]
pub struct Cli {
    /// Data directory: the compiled-component cache, the master key
    /// (master.key, unless STEPHOST_MASTER_KEY is set) and the serve lock;
    /// without --database, also everything stephost stores (SQLite).
    #[arg(long, global = true, env = "STEPHOST_DATA", value_name = "DIR")]
    pub data: Option<PathBuf>,

    /// A PostgreSQL database several `stephost serve` nodes share
    /// (postgres://USER:PASSWORD@HOST:PORT/DB): steps, workflows, runs,
    /// accounts and env live there instead of the data directory, which
    /// keeps this node's caches, master key and lock. Every node needs the
    /// same STEPHOST_MASTER_KEY (or master.key). Empty: not set.
    #[arg(long, global = true, env = "STEPHOST_DATABASE_URL", hide_env_values = true, value_name = "URL")]
    pub database: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run one step component and print its return value, exports and logs.
    Run(RunArgs),
    /// Show what a component imports and exports, and whether it is a step.
    Inspect(InspectArgs),
    /// Work with workflow files (ordered steps).
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Connected accounts of apps (secrets encrypted at rest).
    #[command(subcommand)]
    Accounts(AccountsCommand),
    /// Environment variables for steps (secret by default).
    #[command(subcommand)]
    Env(EnvCommand),
    /// The app catalog: fields, hosts, where secrets may go, test requests.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Build a JavaScript (.js/.mjs) or Python (.py) step into a step component
    ///
    /// Steps are Pipedream-style: the body of `async (event,
    /// steps, auths) => { … }` (imports on top), `export default async
    /// (event, steps, auths) => …`, `export default defineComponent({ … })`,
    /// or Python's `def handler(pd):`. npm imports are installed and
    /// bundled (pinned by a lockfile beside the step); Python packages come
    /// from requirements.txt. componentize-js / componentize-py are
    /// installed into the data directory on first use (needs node and npm,
    /// or python3 and pip). Each phase is shown on stderr with its time; the
    /// component is compiled into the data directory's cache, so its first
    /// run starts at once, and a rebuild reuses what did not change.
    Build(BuildArgs),
    /// Serve the HTTP API: upload steps, deploy workflows, trigger them at
    /// /e/{endpoint} or on a schedule, inspect runs.
    Serve(ServeArgs),
    /// Upload and list step components (on a server with --server).
    #[command(subcommand)]
    Steps(StepsCommand),
    /// Run a deployed workflow now with an event (manual trigger). Without
    /// --server it runs here and shows the run.
    Trigger(TriggerArgs),
    /// List, show and replay the runs of deployed workflows.
    #[command(subcommand)]
    Runs(RunsCommand),
    /// Write a new step project: plain, or performing an app's test request
    /// with the connected account.
    New(NewArgs),
    /// Read and check the audit log of outbound requests and secret reads.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Measure a step's end-to-end time (instantiate + run + collect) with
    /// its compiled component cached; the separate `stephost-bench` binary
    /// measures stephost side by side with bare wasmtime, Node.js and
    /// `wasmtime run`.
    Bench(BenchArgs),
    /// List the nodes serving the database (with --database, several
    /// `stephost serve` processes): id, host, address, runs, last heartbeat.
    Nodes(NodesArgs),
}

impl Command {
    /// Commands that print what local files hold and open no socket: a
    /// closed pipe simply ends them.
    pub fn only_reads_local_files(&self) -> bool {
        matches!(
            self,
            Command::Apps(_)
                | Command::Audit(_)
                | Command::Inspect(_)
                | Command::Env(EnvCommand::List { .. })
                | Command::Accounts(AccountsCommand::List { .. } | AccountsCommand::Keys { .. })
        )
    }

    /// The server and `bench --triggers` run many steps at once; everything
    /// else runs one at a time, fastest on one thread.
    pub fn runs_many_at_once(&self) -> bool {
        matches!(self, Command::Serve(_) | Command::Bench(BenchArgs { triggers: Some(_), .. }))
    }
}

/// `--json`, the same on every command that prints something.
#[derive(Args, Clone, Copy, Default)]
pub struct JsonArg {
    /// Print JSON instead of text; errors too, as one line
    /// {"error": "…"} on stderr.
    #[arg(long)]
    pub json: bool,
}

/// An account: `APP`, `APP/NAME`, or `APP --name NAME`.
#[derive(Args, Clone)]
pub struct AccountArg {
    /// The account: APP (its only account) or APP/NAME, e.g. slack/work
    /// (see `stephost accounts list`).
    #[arg(value_name = "APP[/NAME]", value_parser = AccountRef::parse_flag)]
    pub account: AccountRef,
    /// The account's name: `APP --name NAME` is `APP/NAME`.
    #[arg(long)]
    pub name: Option<String>,
}

#[derive(Subcommand)]
pub enum WorkflowCommand {
    /// Run a workflow file's steps in order; each sees the earlier ones.
    /// A step's limits are keys of its [[steps]] table: timeout_secs,
    /// memory_mib, log_kib (stdout+stderr kept, default 1024) and
    /// output_kib (the return value and all exports, default 1024).
    Run {
        /// The workflow file (TOML).
        workflow: PathBuf,
        #[command(flatten)]
        event: EventArgs,
        #[command(flatten)]
        egress: EgressArgs,
        #[command(flatten)]
        format: JsonArg,
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
        server: ServerArgs,
        #[command(flatten)]
        format: JsonArg,
    },
    /// List the deployed workflows (newest version of each): name, version,
    /// HTTP endpoint, schedule; on the server given --server, else on the
    /// local data directory (or --database).
    List {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        format: JsonArg,
    },
    /// Replay every failed run of a deployed workflow (newest first)
    /// against its newest version; prints the queued replays.
    ReplayFailed {
        /// The workflow's name.
        name: String,
        /// At most this many failed runs (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        format: JsonArg,
    },
}

/// Step languages `stephost new` can write.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Lang {
    /// A Rust crate (cargo component), built with cargo.
    Rust,
    /// A Node.js-style module (.mjs), built with `stephost build`.
    Js,
    /// A `def handler(pd)` module (.py), built with `stephost build`.
    Python,
}

#[derive(Args)]
pub struct RunArgs {
    /// The step component (.wasm).
    pub component: PathBuf,
    #[command(flatten)]
    pub event: EventArgs,
    /// Earlier steps' results: a JSON object of step name to result
    /// (`{"fetch": {"$return_value": …, "user_id": 1}}`).
    #[arg(long, value_name = "FILE")]
    pub steps: Option<PathBuf>,
    /// An environment variable for the step (repeatable).
    #[arg(long = "env", value_name = "K=V")]
    pub env: Vec<String>,
    /// A secret environment variable (repeatable): the step sees a sealed
    /// placeholder, swapped for the value only on requests to its
    /// --allow-host destinations.
    #[arg(long = "secret-env", value_name = "K=V")]
    pub secret_env: Vec<String>,
    /// A connected account's field, e.g. slack.oauth_access_token=xoxb-…
    /// (repeatable). Secret fields reach the step sealed; the app's hosts
    /// are allowed too.
    #[arg(long = "auth", value_name = "APP.KEY=VALUE")]
    pub auths: Vec<String>,
    /// A connected account for the step (repeatable): APP (its only
    /// account) or APP/NAME, e.g. slack/work (see `stephost accounts list`).
    #[arg(long = "account", value_name = "APP[/NAME]", value_parser = AccountRef::parse_flag)]
    pub accounts: Vec<AccountRef>,
    /// A destination the step may reach: scheme://host[:port] with `*`
    /// wildcards, e.g. https://*.slack.com (repeatable; default: none).
    #[arg(long = "allow-host", value_name = "PATTERN")]
    pub allow_hosts: Vec<String>,
    /// Wall-clock limit in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0, allow_negative_numbers = true)]
    pub timeout: f64,
    /// Memory limit in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 256, allow_negative_numbers = true)]
    pub memory: u64,
    /// Log limit in KiB: stdout and stderr kept; beyond it they are cut
    /// with a notice and the step goes on (a workflow step's `log_kib`).
    #[arg(long, value_name = "KIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub log_kib: u64,
    /// Output limit in KiB: the return value, and all exports together; a
    /// larger one fails the step (a workflow step's `output_kib`).
    #[arg(long, value_name = "KIB", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..))]
    pub output_kib: u64,
    #[command(flatten)]
    pub egress: EgressArgs,
    #[command(flatten)]
    pub format: JsonArg,
}

#[derive(Args)]
pub struct InspectArgs {
    /// The component file (.wasm).
    pub component: PathBuf,
    #[command(flatten)]
    pub format: JsonArg,
}

#[derive(Args)]
pub struct BuildArgs {
    /// The step source.
    pub source: PathBuf,
    /// The component to write (default: the source's name with .wasm).
    #[arg(short, long, value_name = "OUT.wasm")]
    pub out: Option<PathBuf>,
    /// Python: pure-Python packages to bundle, pip's requirements format
    /// (default: `requirements.txt` beside the step, if there is one).
    #[arg(long, value_name = "FILE")]
    pub requirements: Option<PathBuf>,
}

#[derive(Args)]
pub struct TriggerArgs {
    /// The deployed workflow's name.
    pub workflow: String,
    #[command(flatten)]
    pub event: EventArgs,
    /// The event as JSON text, instead of --event.
    #[arg(long, value_name = "JSON", conflicts_with = "event", value_parser = event_json)]
    pub event_json: Option<serde_json::Value>,
    /// Wait for the run to finish and show it (always so without a server).
    #[arg(long)]
    pub wait: bool,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub format: JsonArg,
}

/// `--event-json JSON`.
fn event_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))
}

#[derive(Args)]
pub struct NewArgs {
    /// The step's name (letters, digits, underscores); also its folder.
    pub name: String,
    /// Start from this app's test request (see `stephost apps list`).
    #[arg(long)]
    pub app: Option<String>,
    /// The language of the step.
    #[arg(long, value_enum, default_value = "rust")]
    pub lang: Lang,
    /// Where to write it (default: ./NAME).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

#[derive(Args)]
pub struct EventArgs {
    /// The trigger event: a JSON file, or - for stdin (default: {}).
    #[arg(long, value_name = "FILE")]
    pub event: Option<PathBuf>,
}

/// How outbound HTTPS is reached: a stand-in's address, an extra CA.
#[derive(Args, Default)]
#[command(next_help_heading = "Egress")]
pub struct EgressArgs {
    /// Connect to ADDR for HOST:PORT, like curl --resolve (e.g. to point
    /// slack.com:443 at a local stand-in); the URL and TLS name stay.
    #[arg(long, value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// Also trust this PEM CA certificate for outbound HTTPS (repeatable).
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Vec<PathBuf>,
}

/// Where the service commands go.
#[derive(Args, Clone)]
pub struct ServerArgs {
    /// A stephost server, e.g. http://127.0.0.1:8787 (default: work on the
    /// local data directory in this process).
    #[arg(long, env = "STEPHOST_SERVER", value_name = "URL")]
    pub server: Option<String>,
    /// The server's API token (printed by `stephost serve` on first start).
    #[arg(long, env = "STEPHOST_API_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub token: Option<String>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: SocketAddr,
    /// Runs executing at once; 0 (only with --database) makes a node that
    /// takes triggers and API calls while other nodes run the runs.
    #[arg(long, default_value_t = 4)]
    pub workers: usize,
    /// How long a run this node claimed stays its own without a heartbeat
    /// (heartbeats come every third of it): a node that dies gives its runs
    /// to the others after this long, e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = lease)]
    pub lease: std::time::Duration,
    /// Queued runs beyond which triggers answer 429 (with Retry-After).
    #[arg(long, default_value_t = 10_000)]
    pub max_queued: u64,
    /// Finished runs kept per workflow (a workflow's [retention] wins).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keep_runs: u64,
    /// Days finished runs are kept (a workflow's [retention] wins).
    #[arg(long, default_value_t = 30.0, value_parser = positive_days)]
    pub keep_days: f64,
    /// On SIGTERM, how long running runs may take to finish (queued ones
    /// wait for the next start), e.g. 30s.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub grace: std::time::Duration,
    /// Uploads compiling at once (default: one per core); others wait.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..1024))]
    pub max_compiles: Option<u64>,
    /// An upload whose compilation takes longer is refused (422, one line)
    /// and nothing of it is kept, e.g. 5m.
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub compile_timeout: std::time::Duration,
    #[command(flatten)]
    pub egress: EgressArgs,
}

/// `--lease`: a humantime duration of at least a second (a shorter one
/// would have nodes heartbeating all the time).
fn lease(text: &str) -> Result<std::time::Duration, String> {
    match humantime::parse_duration(text) {
        Ok(lease) if lease >= std::time::Duration::from_secs(1) => Ok(lease),
        Ok(_) => Err(format!("`{text}` is shorter than 1s")),
        Err(e) => Err(format!("`{text}` is not a duration like 30s: {e}")),
    }
}

/// `stephost nodes`: which server to ask, and how to print the answer.
#[derive(Args)]
pub struct NodesArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub format: JsonArg,
}

fn positive_days(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(days) if days.is_finite() && days > 0.0 => Ok(days),
        _ => Err(format!("`{text}` is not a number of days above 0")),
    }
}

#[derive(Subcommand)]
pub enum AccountsCommand {
    /// Connect an account: asks for each field the app declares (secret ones
    /// without echo), or takes them from --field / --from-env. An account
    /// of that name already connected is replaced: at a terminal only
    /// after you say yes.
    Connect {
        /// The account to connect: APP (named `default`) or APP/NAME, e.g.
        /// slack/work; a workflow step names it in `auths = { slack = "work" }`.
        #[arg(value_name = "APP[/NAME]", value_parser = AccountRef::parse_flag)]
        account: AccountRef,
        /// The account's name: `APP --name NAME` is `APP/NAME`.
        #[arg(long)]
        name: Option<String>,
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
        #[command(flatten)]
        egress: EgressArgs,
    },
    /// List accounts: app, name, fields (secrets masked), created, last used.
    List {
        #[command(flatten)]
        format: JsonArg,
    },
    /// The property names of an account: `Object.keys(auths.APP)`, one a
    /// line.
    Keys {
        #[command(flatten)]
        account: AccountArg,
        #[command(flatten)]
        format: JsonArg,
    },
    /// Send the app's test request with the account through the egress
    /// path (secrets swapped in by the host) and show the status.
    Test {
        #[command(flatten)]
        account: AccountArg,
        #[command(flatten)]
        egress: EgressArgs,
        #[command(flatten)]
        format: JsonArg,
    },
    /// Remove an account.
    Remove {
        #[command(flatten)]
        account: AccountArg,
    },
}

#[derive(Subcommand)]
pub enum EnvCommand {
    /// Set an environment variable (secret by default).
    Set {
        /// The variable's name, as the step reads it.
        name: String,
        /// Its value.
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
        #[command(flatten)]
        format: JsonArg,
    },
    /// Remove an environment variable.
    Unset {
        /// The variable's name.
        name: String,
        /// The workflow's own variable (default: the global one).
        #[arg(long)]
        workflow: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum AppsCommand {
    /// One app a line: name, auth shape, hosts.
    List {
        #[command(flatten)]
        format: JsonArg,
    },
    /// An app's fields (which are secret), hosts, placements and test request.
    Show {
        /// The app, e.g. slack.
        app: String,
        #[command(flatten)]
        format: JsonArg,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the keyed hash chain: names an edit, removal, reorder or
    /// truncation (exit 1 when broken).
    Verify {
        #[command(flatten)]
        format: JsonArg,
    },
    /// Remove records older than N days; the log still verifies (its first
    /// line becomes a keyed checkpoint). A log that does not verify is not
    /// pruned.
    Prune {
        /// Keep the records of the last N days.
        #[arg(long, value_name = "N")]
        keep_days: u64,
        #[command(flatten)]
        format: JsonArg,
    },
    /// List audit records, newest last.
    List {
        /// Only this run.
        #[arg(long)]
        run: Option<String>,
        /// Only this step.
        #[arg(long)]
        step: Option<String>,
        /// Only requests that swapped in, or reads of, this app's secrets.
        #[arg(long)]
        app: Option<String>,
        /// Only refused requests.
        #[arg(long)]
        refused: bool,
        /// Print JSON lines (one record a line, as the log holds them)
        /// instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum StepsCommand {
    /// Upload a step component (.wasm); prints its id (the SHA-256).
    Upload {
        /// The component file (.wasm).
        file: PathBuf,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        format: JsonArg,
    },
    /// List uploaded steps.
    List {
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        format: JsonArg,
    },
}

#[derive(Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List {
        /// Only this workflow's runs.
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs in this state.
        #[arg(long, value_parser = run_states())]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: u64,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        format: JsonArg,
    },
    /// Show one run: its event, then each step with its return value,
    /// exports and logs.
    Show {
        /// The run's id (see `stephost runs list`).
        id: String,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        format: JsonArg,
    },
    /// Run a run's event again, against the newest version of its workflow.
    Replay {
        /// The run's id (see `stephost runs list`).
        id: String,
        /// Run from this step on: the steps before it are not run again,
        /// their stored results (return value, exports, logs, requests) are
        /// reused from the run.
        #[arg(long, value_name = "STEP")]
        from_step: Option<String>,
        /// Wait for the run to finish and show it (always so without a server).
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        format: JsonArg,
    },
}

/// The states `runs list --status` takes.
fn run_states() -> clap::builder::PossibleValuesParser {
    use clap::builder::PossibleValue;
    clap::builder::PossibleValuesParser::new([
        PossibleValue::new("queued").help("waiting for a worker (or for its retry)"),
        PossibleValue::new("running").help("running now"),
        PossibleValue::new("succeeded").help("every step succeeded"),
        PossibleValue::new("failed").help("a step failed"),
        PossibleValue::new("exited").help("a step ended the run early, on purpose"),
    ])
}

#[derive(Args)]
pub struct BenchArgs {
    /// The step component (.wasm).
    pub component: PathBuf,
    #[command(flatten)]
    pub event: EventArgs,
    /// How many runs to time (after 100 warm-up runs).
    #[arg(long, default_value_t = 10_000)]
    pub runs: u32,
    /// Instead: measure the egress proxy. COMPONENT must be the `fetch`
    /// example step; it is timed against a direct reqwest client, both
    /// making sequential GETs to a loopback server.
    #[arg(long)]
    pub egress: bool,
    /// Instead: serve COMPONENT as a one-step workflow on a loopback port
    /// and fire this many HTTP triggers at it; reports triggers/s and the
    /// trigger-to-finish p50/p99.
    #[arg(long, value_name = "N", conflicts_with = "egress", value_parser = clap::value_parser!(u64).range(1..))]
    pub triggers: Option<u64>,
    /// With --triggers: clients sending at once.
    #[arg(long, default_value_t = 64, requires = "triggers")]
    pub concurrency: usize,
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every argument and every possible value of every subcommand says
    /// what it is for in `--help`.
    #[test]
    fn every_argument_has_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
                if !arg.get_action().takes_values() {
                    continue; // a flag: its true/false are not choices
                }
                for value in arg.get_possible_values() {
                    if !value.is_hide_set() && value.get_help().is_none() {
                        missing.push(format!("{path} {id}={}", value.get_name()));
                    }
                }
            }
            for sub in command.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (the subcommand)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "stephost", &mut missing);
        assert!(missing.is_empty(), "arguments without help text:\n{}", missing.join("\n"));
    }
}
