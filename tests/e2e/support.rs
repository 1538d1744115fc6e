//! Shared test support: the guest components (built once per test run), a
//! runtime factory, and real loopback servers standing in for APIs.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use stephost::{EgressConfig, Runtime, RuntimeConfig, StepComponent};
use tokio_rustls::rustls;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A guest component from the examples workspace (example steps and test
/// fixtures), built once for the whole test run.
pub fn guest(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
            .arg(repo().join("examples/Cargo.toml"))
            .status()
            .expect("running cargo to build the guest components");
        assert!(status.success(), "building the guest components failed");
    });
    let path = repo().join("examples/target/wasm32-wasip2/release").join(format!("{name}.wasm"));
    assert!(path.is_file(), "no guest component at {}", path.display());
    path
}

/// A runtime without a disk cache, sized small for tests.
pub fn runtime() -> Runtime {
    runtime_with(EgressConfig::default(), None)
}

/// A runtime with the given egress settings and cache directory.
pub fn runtime_with(egress: EgressConfig, cache_dir: Option<PathBuf>) -> Runtime {
    Runtime::new(RuntimeConfig { cache_dir, egress, max_concurrent_runs: 16, ..RuntimeConfig::default() })
        .expect("runtime")
}

/// Loads a guest into a runtime.
pub fn load(runtime: &Runtime, name: &str) -> Arc<StepComponent> {
    runtime.load(&guest(name)).expect("loading the guest")
}

/// Fails if any file below `dir` holds any of `secrets` in clear.
pub fn assert_not_stored(dir: &Path, secrets: &[&str]) {
    for file in files_under(dir) {
        let bytes = std::fs::read(&file).unwrap();
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in clear in {file:?}"
            );
        }
    }
}

/// A wait loop's limit: two minutes, far beyond what any wait in these
/// tests takes on a loaded machine; past it the test fails naming `what`.
pub struct Deadline {
    until: std::time::Instant,
    what: &'static str,
}

impl Deadline {
    pub fn new(what: &'static str) -> Self {
        Self { until: std::time::Instant::now() + std::time::Duration::from_secs(120), what }
    }

    /// Fails the test if the deadline has passed.
    pub fn check(&self) {
        assert!(std::time::Instant::now() < self.until, "gave up waiting: {}", self.what);
    }
}

/// A loopback server whose `/gate` answers its headers at once and its body
/// (`done`) only once the test opens the gate, counting the requests: a
/// step calling it stays `running` as long as the test wants.
pub struct Gate {
    pub addr: std::net::SocketAddr,
    arrived: Arc<std::sync::atomic::AtomicUsize>,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    pub async fn start() -> Self {
        let arrived = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (open, _) = tokio::sync::watch::channel(false);
        let (count, opened) = (arrived.clone(), open.clone());
        let app = axum::Router::new().route(
            "/gate",
            axum::routing::get(move || {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut opened = opened.subscribe();
                async move {
                    // Headers now (the egress first-byte limit is met), the
                    // body when the gate opens.
                    let body = futures::stream::once(async move {
                        let _ = opened.wait_for(|open| *open).await;
                        Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"done"))
                    });
                    axum::body::Body::from_stream(body)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, arrived, open }
    }

    /// Waits until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize, what: &'static str) {
        let deadline = Deadline::new(what);
        while self.arrived.load(std::sync::atomic::Ordering::SeqCst) < n {
            deadline.check();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    pub fn release(&self) {
        self.open.send_replace(true);
    }

    pub fn requests(&self) -> usize {
        self.arrived.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A one-step probe workflow allowed to reach the gate, with a timeout far
/// beyond any wait here.
pub fn gated_workflow(step: &serde_json::Value, gate: &Gate) -> String {
    format!(
        "[[steps]]\nname = \"probe\"\nstep = {step}\ntimeout_secs = 600\nallowed_hosts = [\"http://{}\"]\n",
        gate.addr
    )
}

/// A manual run's event: call the gate once.
pub fn gate_event(gate: &Gate) -> serde_json::Value {
    serde_json::json!({ "actions": [{ "do": "http", "url": format!("http://{}/gate", gate.addr) }] })
}

/// The `stephost` binary with none of the developer's `STEPHOST_*`
/// variables: a test sets what it needs itself.
pub fn stephost_command() -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stephost"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STEPHOST_") {
            command.env_remove(name);
        }
    }
    command
}

/// [`stephost_command`] for async tests.
pub fn stephost_tokio_command() -> tokio::process::Command {
    tokio::process::Command::from(stephost_command())
}

/// Runs the CLI with `--data data`, without blocking the test's executor
/// (stand-in servers run on it); `stdin` is written and closed.
pub async fn stephost_async(data: &Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    use tokio::io::AsyncWriteExt;
    let mut child = crate::support::stephost_tokio_command()
        .arg("--data")
        .arg(data)
        .args(database_args(data).await)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or_default().as_bytes()).await.unwrap();
    drop(input);
    child.wait_with_output().await.unwrap()
}

/// Every file below `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() { files.extend(files_under(&path)) } else { files.push(path) }
    }
    files
}

/// One request a stand-in server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub host: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }

    /// The body's fields, sent as JSON or as a form (as Slack's SDK does).
    pub fn fields(&self) -> serde_json::Value {
        let form =
            self.header("content-type").is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if !form {
            return self.json();
        }
        let pairs =
            url::form_urlencoded::parse(&self.body).map(|(k, v)| (k.into_owned(), v.into_owned().into()));
        serde_json::Value::Object(pairs.collect())
    }
}

type Log = Arc<Mutex<Vec<Recorded>>>;

/// A real HTTPS server on 127.0.0.1 standing in for API hosts (Slack,
/// GitHub), with a certificate for their names from a test CA. Point the
/// runtime at it with [`StandIn::egress`], as `curl --resolve` would.
pub struct StandIn {
    pub addr: SocketAddr,
    pub ca_pem: String,
    names: Vec<String>,
    log: Log,
}

/// The token the stand-in accepts.
pub const GOOD_TOKEN: &str = "xoxb-real-test-token-0123456789";

impl StandIn {
    /// Starts the stand-in for `names` (e.g. `["slack.com", "api.github.com"]`).
    pub async fn start(names: &[&str]) -> Self {
        let log: Log = Arc::default();
        let (addr, ca_pem) = serve_tls(names, api_routes(log.clone())).await;
        Self { addr, ca_pem, names: names.iter().map(|n| n.to_string()).collect(), log }
    }

    /// Egress settings that send the stand-in's names here and trust its CA.
    pub fn egress(&self) -> EgressConfig {
        EgressConfig {
            resolve: self.names.iter().map(|n| (n.clone(), 443, self.addr)).collect(),
            extra_root_certs_pem: vec![self.ca_pem.clone().into_bytes()],
            ..EgressConfig::default()
        }
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }
}

/// Serves `app` over TLS on 127.0.0.1 for `names`, with a certificate of a
/// CA of its own: its address and the CA's PEM (for the egress roots).
pub async fn serve_tls(names: &[&str], app: axum::Router) -> (SocketAddr, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "stephost test CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    let leaf = rcgen::CertificateParams::new(names).unwrap().signed_by(&leaf_key, &issuer).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (addr, ca_cert.pem())
}

/// A plain-HTTP server on 127.0.0.1 with the same routes.
pub struct PlainServer {
    pub addr: SocketAddr,
    log: Log,
}

impl PlainServer {
    pub async fn start() -> Self {
        let log: Log = Arc::default();
        let app = api_routes(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().unwrap().clone()
    }
}

/// Slack's `chat.postMessage`, OpenAI's `/v1/chat/completions`, GitHub's `/user`, a redirect and an echo.
fn api_routes(log: Log) -> Router {
    Router::new().fallback(handle).with_state(log)
}

async fn handle(State(log): State<Log>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 16 << 20).await.unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        host: parts.headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_string(),
        path: parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
            .collect(),
        body: body.to_vec(),
    };
    log.lock().unwrap().push(recorded.clone());
    let authorized = recorded.header("authorization") == Some(&format!("Bearer {GOOD_TOKEN}"));
    match (recorded.method.as_str(), parts.uri.path()) {
        ("POST", "/api/chat.postMessage") if authorized => {
            let sent = recorded.fields();
            axum::Json(serde_json::json!({
                "ok": true, "channel": "C024BE91L", "ts": "1712345678.000100",
                "message": { "text": sent["text"], "type": "message" }
            }))
            .into_response()
        }
        ("POST", "/api/chat.postMessage") => {
            axum::Json(serde_json::json!({ "ok": false, "error": "invalid_auth" })).into_response()
        }
        ("POST", "/v1/chat/completions") if authorized => {
            let sent = recorded.json();
            axum::Json(serde_json::json!({
                "id": "chatcmpl-1", "object": "chat.completion", "created": 1712345678, "model": sent["model"],
                "choices": [{ "index": 0, "finish_reason": "stop",
                              "message": { "role": "assistant", "content": "Hi from the stand-in" } }],
                "usage": { "prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7 }
            }))
            .into_response()
        }
        ("GET", "/user") if authorized => {
            axum::Json(serde_json::json!({ "login": "octocat", "id": 583231, "type": "User" }))
                .into_response()
        }
        ("GET", "/user") => (StatusCode::UNAUTHORIZED, "Bad credentials").into_response(),
        ("POST", "/api/auth.test") if authorized => {
            axum::Json(serde_json::json!({ "ok": true, "user_id": "U1", "team": "stephost" })).into_response()
        }
        ("POST", "/api/auth.test") => (
            StatusCode::UNAUTHORIZED,
            axum::Json(serde_json::json!({ "ok": false, "error": "invalid_auth" })),
        )
            .into_response(),
        ("GET", "/server") if recorded.header("x-postmark-server-token") == Some(GOOD_TOKEN) => {
            axum::Json(serde_json::json!({ "ID": 1, "Name": "stephost" })).into_response()
        }
        ("GET", "/2010-04-01/Accounts/AC123.json") => {
            use base64::Engine;
            let expected = base64::engine::general_purpose::STANDARD.encode(format!("AC123:{GOOD_TOKEN}"));
            if recorded.header("authorization") == Some(&format!("Basic {expected}")) {
                axum::Json(serde_json::json!({ "sid": "AC123", "status": "active" })).into_response()
            } else {
                (StatusCode::UNAUTHORIZED, "{\"code\":20003}").into_response()
            }
        }
        ("GET", "/api/v2/users/me.json") if authorized => {
            axum::Json(serde_json::json!({ "user": { "id": 1, "name": "Agent" } })).into_response()
        }
        ("GET", "/server") => (StatusCode::UNAUTHORIZED, "{\"ErrorCode\":10}").into_response(),
        ("GET", "/echo-headers") => {
            let headers: serde_json::Map<String, serde_json::Value> =
                recorded.headers.iter().map(|(n, v)| (n.clone(), v.clone().into())).collect();
            let echoed = recorded.header("authorization").unwrap_or_default().to_string();
            ([("x-echo-authorization", echoed)], axum::Json(serde_json::Value::Object(headers)))
                .into_response()
        }
        ("GET", "/reflect-reversed") => {
            let token = recorded.header("authorization").unwrap_or_default().trim_start_matches("Bearer ");
            token.chars().rev().collect::<String>().into_response()
        }
        ("GET", "/redirect-to-attacker") => {
            (StatusCode::FOUND, [("location", "https://attacker.example/collect")], "moved").into_response()
        }
        ("GET", "/hang") => {
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            "too late".into_response()
        }
        ("GET", "/big") => "x".repeat(3 << 20).into_response(),
        ("GET", "/gzip") => ([("content-encoding", "gzip")], vec![0x1fu8, 0x8b, 0x08, 0x00]).into_response(),
        // Hostile echoes: what the request carried, sent back encoded.
        ("GET", path) if path.starts_with("/echo/") => {
            let authorization = recorded.header("authorization").unwrap_or_default();
            let value = match parts.uri.query() {
                Some("whole") => authorization,
                _ => authorization.trim_start_matches("Bearer "),
            };
            echo(&path["/echo/".len()..], value)
        }
        ("GET", "/echo-earliest") => {
            let first = log.lock().unwrap().iter().find_map(|r| r.header("authorization").map(String::from));
            first.unwrap_or_default().into_response()
        }
        ("GET", "/gzip-unlabelled") => {
            let mut gz = vec![0x1fu8, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03];
            gz.extend_from_slice(GOOD_TOKEN.as_bytes());
            gz.into_response()
        }
        ("GET", "/double-coding") => ([("content-encoding", "identity, gzip")], "plain").into_response(),
        ("GET", "/redirect") => {
            (StatusCode::FOUND, [("location", "http://127.0.0.1:9/elsewhere")], "moved").into_response()
        }
        _ => (StatusCode::OK, format!("echo {} {}", recorded.method, recorded.path)).into_response(),
    }
}

/// `value` sent back in `form`: `raw`, `base64`, `base64url` (no padding),
/// `base64-after-N` (inside a longer base64 string, N bytes in), `hex`,
/// `HEX`, `percent` (every byte, lower case), `form` (form-urlencoded),
/// `json-u` (every character a `\u` escape), `json-some` (every other one),
/// `header-name` (as a response header's name), and `chunked-FORM` (one
/// byte per chunk).
fn echo(form: &str, value: &str) -> Response {
    if let Some(inner) = form.strip_prefix("chunked-") {
        let bytes = encoded(inner, value).into_bytes();
        let chunks = bytes.into_iter().map(|b| Ok::<_, std::io::Error>(Bytes::from(vec![b])));
        return axum::body::Body::from_stream(futures::stream::iter(chunks)).into_response();
    }
    if form == "header-name" {
        let name = format!("x-echo-{}", value.to_ascii_lowercase());
        let mut response = "see the headers".into_response();
        let name = axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap();
        response.headers_mut().insert(name, axum::http::HeaderValue::from_static("1"));
        return response;
    }
    encoded(form, value).into_response()
}

fn encoded(form: &str, value: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    match form {
        "raw" => value.to_string(),
        "base64" => STANDARD.encode(value),
        "base64url" => URL_SAFE_NO_PAD.encode(value),
        f if f.starts_with("base64-after-") => {
            let offset: usize = f["base64-after-".len()..].parse().unwrap();
            let blob = format!("{}{value}{}", "#".repeat(offset), "trailing bytes");
            format!("{{\"blob\":\"{}\"}}", STANDARD.encode(blob))
        }
        "hex" => hex::encode(value),
        "HEX" => hex::encode_upper(value),
        "percent" => value.bytes().map(|b| format!("%{b:02x}")).collect(),
        "form" => url::form_urlencoded::byte_serialize(value.as_bytes()).collect(),
        "json-u" => format!(
            "{{\"token\":\"{}\"}}",
            value.chars().map(|c| format!("\\u{:04x}", c as u32)).collect::<String>()
        ),
        "json-some" => format!(
            "{{\"token\":\"{}\"}}",
            value
                .chars()
                .enumerate()
                .map(|(i, c)| if i % 2 == 1 { format!("\\u{:04X}", c as u32) } else { c.to_string() })
                .collect::<String>()
        ),
        other => panic!("unknown echo form {other}"),
    }
}

/// The admin URL of the test PostgreSQL server (`scripts/lib/postgres.sh`
/// starts one and sets it).
const ADMIN_URL: &str = "STEPHOST_TEST_DATABASE_URL";

/// A database of its own for one test, on the test PostgreSQL server.
pub struct TestDatabase {
    /// Its URL: the admin URL with this database's name.
    pub url: String,
}

impl TestDatabase {
    /// A new, empty database; `None` (after saying "skipped") without a
    /// server to make it in, except under `CI`, which never skips.
    pub async fn fresh() -> Option<Self> {
        let admin = match std::env::var(ADMIN_URL) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
                assert!(!ci, "{ADMIN_URL} is not set under CI: start PostgreSQL (scripts/lib/postgres.sh)");
                eprintln!("skipped: no {ADMIN_URL}");
                return None;
            }
        };
        let name = format!("stephost_{}", &stephost::base::ids::unguessable_hex()[..16]);
        let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls).await.unwrap();
        let driver = tokio::spawn(connection);
        client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        drop(client);
        let _ = driver.await;
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        Some(Self { url: url.to_string() })
    }
}

/// The master key every node of a test cluster shares.
pub const NODE_MASTER_KEY: &str = "6e6f6465206d6173746572206b657920666f722074657374732121212121212a";

/// The API token every node of a test cluster accepts.
pub const NODE_TOKEN: &str = "node-test-token";

/// A `stephost serve` node on `database` with its own data directory:
/// `--workers workers --lease lease`, `NODE_MASTER_KEY` and `NODE_TOKEN`
/// unless `env` sets them otherwise. Returns the process and its base URL
/// once it says it serves.
pub async fn spawn_node(
    data: &Path,
    database: &str,
    workers: usize,
    lease: &str,
    env: &[(&str, &str)],
) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut command = stephost_tokio_command();
    command
        .arg("--data")
        .arg(data)
        .args(["--database", database, "serve", "--listen", "127.0.0.1:0"])
        .args(["--workers", &workers.to_string(), "--lease", lease])
        .env("STEPHOST_MASTER_KEY", NODE_MASTER_KEY)
        .env("STEPHOST_API_TOKEN", NODE_TOKEN)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let started = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(base) = line.strip_prefix("stephost serving on ") {
                return Some(base.to_string());
            }
        }
        None
    })
    .await
    .expect("a node starts within two minutes");
    let base = started.expect("the node said where it serves");
    // Keep reading its stdout so a later line never meets a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

/// Whether this pass runs the server tests on PostgreSQL
/// (`STEPHOST_TEST_BACKEND=postgres`, the second pass of `scripts/test.sh`).
pub fn on_postgres() -> bool {
    std::env::var("STEPHOST_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// The database a data directory's server uses on the PostgreSQL pass (made
/// on first use, the same for a restart on the directory); `None` on the
/// embedded store.
pub async fn database_for(data: &Path) -> Option<String> {
    static DATABASES: OnceLock<tokio::sync::Mutex<std::collections::HashMap<PathBuf, String>>> =
        OnceLock::new();
    if !on_postgres() {
        return None;
    }
    let mut databases = DATABASES.get_or_init(Default::default).lock().await;
    if let Some(url) = databases.get(data) {
        return Some(url.clone());
    }
    let db =
        TestDatabase::fresh().await.expect("STEPHOST_TEST_BACKEND=postgres needs STEPHOST_TEST_DATABASE_URL");
    databases.insert(data.to_path_buf(), db.url.clone());
    Some(db.url)
}

/// `--database URL` for a `stephost` command on `data` on the PostgreSQL
/// pass; nothing on the embedded store.
pub async fn database_args(data: &Path) -> Vec<String> {
    match database_for(data).await {
        Some(url) => vec!["--database".into(), url],
        None => Vec::new(),
    }
}

/// The store a data directory's server used, opened as the server did.
pub async fn open_store(data: &Path) -> Arc<dyn stephost::store::Backend> {
    match database_for(data).await {
        None => Arc::new(stephost::store::Sqlite::open(data).unwrap()),
        Some(url) => {
            let key =
                stephost::store::crypto::MasterKey::load(&data.join(stephost::store::KEY_FILE)).unwrap();
            let clock = Arc::new(stephost::base::clock::SystemClock);
            Arc::new(stephost::store::Postgres::connect(&url, key, clock).await.unwrap())
        }
    }
}
