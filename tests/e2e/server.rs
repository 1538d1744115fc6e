//! `stephost serve` on an ephemeral loopback port: auth, uploads, deploys,
//! HTTP triggers with JSON, form and text bodies, manual runs, and the
//! inspector.

use crate::support::{Gate, gate_event, gated_workflow, guest, runtime};
use serde_json::{Value, json};
use std::sync::Arc;
use stephost::server::owner::ServeLock;
use stephost::server::{AppState, ServeConfig};
use stephost::store::RunStatus;

/// The server's state on its data directory: on the embedded store, or
/// under `STEPHOST_TEST_BACKEND=postgres` on a fresh PostgreSQL database as
/// a node of a cluster would (the state and the token, if one was made).
pub(crate) async fn open_state(
    config: ServeConfig,
    runtime: stephost::Runtime,
    listen: std::net::SocketAddr,
) -> (Arc<AppState>, Option<String>) {
    let lock = ServeLock::acquire(&config.data_dir).unwrap();
    match crate::support::database_for(&config.data_dir).await {
        None => AppState::open(config, Arc::new(runtime), lock).unwrap(),
        Some(url) => {
            let key =
                stephost::store::crypto::MasterKey::load(&config.data_dir.join(stephost::store::KEY_FILE))
                    .unwrap();
            let store = stephost::store::Postgres::connect(&url, key, config.clock.clone()).await.unwrap();
            AppState::open_shared(config, Arc::new(runtime), lock, Arc::new(store), listen).await.unwrap()
        }
    }
}

/// A server in this process on an ephemeral loopback port, with its own
/// data directory.
pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) token: String,
    pub(crate) http: reqwest::Client,
    pub(crate) state: Arc<AppState>,
    _data: tempfile::TempDir,
}

impl Server {
    pub(crate) async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts with the default configuration changed by `configure`.
    pub(crate) async fn start_with(configure: impl FnOnce(&mut ServeConfig)) -> Self {
        Self::start_custom(|_| runtime(), configure).await
    }

    /// Starts with the runtime `make_runtime` builds for the data directory.
    pub(crate) async fn start_custom(
        make_runtime: impl FnOnce(&std::path::Path) -> stephost::Runtime,
        configure: impl FnOnce(&mut ServeConfig),
    ) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut config = ServeConfig::new(data.path().to_path_buf());
        configure(&mut config);
        let runtime = make_runtime(data.path());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (state, token) = open_state(config, runtime, listener.local_addr().unwrap()).await;
        tokio::spawn(stephost::server::serve(state.clone(), listener));
        Self {
            base,
            token: token.expect("a token is generated on first start"),
            http: reqwest::Client::new(),
            state,
            _data: data,
        }
    }

    /// The server's data directory.
    pub(crate) fn data(&self) -> &std::path::Path {
        self._data.path()
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (u16, Value) {
        let response = self
            .http
            .request(method, self.url(path))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub(crate) async fn upload(&self, bytes: Vec<u8>) -> (u16, Value) {
        self.api(reqwest::Method::POST, "/v1/steps", bytes).await
    }

    /// `POST /v1/steps` as a browser form sends it: a text part `note`,
    /// then `file` as the part `field` with the file name `file_name`.
    pub(crate) async fn upload_multipart(
        &self,
        field: &str,
        file_name: &str,
        file: &[u8],
    ) -> reqwest::Response {
        let mut body = b"--XYZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n".to_vec();
        body.extend_from_slice(
            format!(
                "--XYZ\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(b"Content-Type: application/wasm\r\n\r\n");
        body.extend_from_slice(file);
        body.extend_from_slice(b"\r\n--XYZ--\r\n");
        self.http
            .post(self.url("/v1/steps"))
            .bearer_auth(&self.token)
            .header("content-type", "multipart/form-data; boundary=XYZ")
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// Uploads a guest and deploys it as the one step `name` of `workflow`,
    /// with `settings` (TOML) above the step and `step_settings` in it;
    /// the deploy's answer.
    pub(crate) async fn deploy_guest(
        &self,
        workflow: &str,
        guest_name: &str,
        settings: &str,
        step_settings: &str,
    ) -> Value {
        let (status, step) = self.upload(std::fs::read(guest(guest_name)).unwrap()).await;
        assert_eq!(status, 201, "{step}");
        let definition = format!(
            "{settings}\n[[steps]]\nname = \"{guest_name}\"\nstep = {}\n{step_settings}\n",
            step["id"]
        );
        let (status, deployed) =
            self.api(reqwest::Method::PUT, &format!("/v1/workflows/{workflow}"), definition).await;
        assert_eq!(status, 200, "{deployed}");
        deployed
    }

    /// Runs of a workflow, newest first (at most 1000, the API's largest page).
    pub(crate) async fn runs(&self, workflow: &str) -> Vec<Value> {
        let (_, listed) =
            self.api(reqwest::Method::GET, &format!("/v1/runs?workflow={workflow}&limit=1000"), "").await;
        listed["runs"].as_array().unwrap().clone()
    }

    /// Waits until the run has finished, then returns it; fails after two
    /// minutes (far beyond any run of these tests, on a loaded machine).
    pub(crate) async fn finished(&self, id: &str) -> Value {
        let deadline = crate::support::Deadline::new("a run to finish");
        loop {
            let (_, run) = self.api(reqwest::Method::GET, &format!("/v1/runs/{id}"), "").await;
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                return run;
            }
            deadline.check();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn management_routes_need_the_token() {
    let server = Server::start().await;
    for (method, path) in
        [("GET", "/v1/steps"), ("POST", "/v1/steps"), ("PUT", "/v1/workflows/x"), ("GET", "/v1/runs")]
    {
        let response = server.http.request(method.parse().unwrap(), server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        let wrong = server
            .http
            .request(method.parse().unwrap(), server.url(path))
            .bearer_auth("sht_wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401, "{method} {path} with a wrong token");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_are_refused_with_their_reason() {
    let server = Server::start().await;
    let core = wat::parse_str("(module)").unwrap();
    for (bytes, reason) in [
        (b"not wasm at all".to_vec(), "is not a WebAssembly file"),
        (core, "is a core module, not a component"),
        (std::fs::read(guest("command")).unwrap(), "does not fit the stephost:step world"),
    ] {
        let (status, body) = server.upload(bytes).await;
        assert_eq!(status, 400);
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with("the upload ") && error.contains(reason), "{error}");
    }
    let (_, listed) = server.api(reqwest::Method::GET, "/v1/steps", "").await;
    assert_eq!(listed["steps"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_deploy_trigger_and_inspect() {
    let server = Server::start().await;
    let (status, hello) = server.upload(std::fs::read(guest("hello")).unwrap()).await;
    assert_eq!(status, 201);
    let (_, transform) = server.upload(std::fs::read(guest("transform")).unwrap()).await;
    let (_, probe) = server.upload(std::fs::read(guest("probe")).unwrap()).await;
    let (_, again) = server.upload(std::fs::read(guest("hello")).unwrap()).await;
    assert_eq!(again["id"], hello["id"], "stored by content hash");

    let definition = format!(
        "[[steps]]\nname = \"hello\"\nstep = {}\n[[steps]]\nname = \"transform\"\nstep = {}\n",
        hello["id"], transform["id"]
    );
    let (status, deployed) =
        server.api(reqwest::Method::PUT, "/v1/workflows/greet", definition.clone()).await;
    assert_eq!(status, 200, "{deployed}");
    assert_eq!(deployed["version"], 1);
    let endpoint = deployed["endpoint"].as_str().unwrap().to_string();

    let response =
        server.http.post(server.url(&endpoint)).json(&json!({ "name": "Ada" })).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let run_id = response.json::<Value>().await.unwrap()["run"].as_str().unwrap().to_string();
    let run = server.finished(&run_id).await;
    // An HTTP event carries the name under `body`: transform finds no
    // top-level name and ends the workflow early, which the run records.
    assert_eq!(run["status"], "exited", "{run}");
    assert_eq!(run["outcome"]["reason"], "the event has no `name`: nothing to greet");
    assert_eq!(
        run["outcome"]["steps"][0]["exports"]["fields"],
        json!(["body", "client_ip", "headers", "method", "path", "query", "url"])
    );
    assert_eq!(run["event"]["body"], json!({ "name": "Ada" }));
    assert_eq!(run["version"], 1);

    let (_, v2) = server.api(reqwest::Method::PUT, "/v1/workflows/greet", definition).await;
    assert_eq!((v2["version"].as_u64(), v2["endpoint"].as_str()), (Some(2), Some(endpoint.as_str())));

    let (_, listed) = server.api(reqwest::Method::GET, "/v1/runs?workflow=greet&status=exited", "").await;
    assert_eq!(listed["runs"][0]["id"], run_id.as_str());

    // Event shapes: form and text bodies, query, lowercased headers.
    let echo = format!("[[steps]]\nname = \"echo\"\nstep = {}\n", probe["id"]);
    let (_, deployed) = server.api(reqwest::Method::PUT, "/v1/workflows/echo", echo).await;
    let echo_url = server.url(deployed["endpoint"].as_str().unwrap());
    let form = server
        .http
        .post(format!("{echo_url}/sub/path?x=1&y=two"))
        .header("X-Custom", "Yes")
        .form(&[("a", "1"), ("b", "two words")])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let event = &server.finished(form["run"].as_str().unwrap()).await["outcome"]["steps"][0]["result"]["return_value"]
        ["event"];
    assert_eq!(event["body"], json!({ "a": "1", "b": "two words" }));
    assert_eq!(event["query"], json!({ "x": "1", "y": "two" }));
    assert_eq!(event["headers"]["x-custom"], "Yes");
    assert_eq!(event["method"], "POST");
    assert!(event["path"].as_str().unwrap().ends_with("/sub/path"));
    assert_eq!(event["client_ip"], "127.0.0.1");

    let text = server
        .http
        .put(&echo_url)
        .header("content-type", "text/plain")
        .body("just text")
        .send()
        .await
        .unwrap();
    let run = server.finished(text.json::<Value>().await.unwrap()["run"].as_str().unwrap()).await;
    assert_eq!(run["event"]["body"], "just text");
    assert_eq!(run["event"]["method"], "PUT");

    let (status, manual) =
        server.api(reqwest::Method::POST, "/v1/workflows/greet/runs", r#"{"name":"Grace"}"#).await;
    assert_eq!(status, 202);
    let run = server.finished(manual["run"].as_str().unwrap()).await;
    assert_eq!(run["outcome"]["steps"][1]["result"]["return_value"]["greeting"], "Hello, Grace!");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_endpoints_steps_and_bad_workflows_get_clear_errors() {
    let server = Server::start().await;
    let missing = server.http.post(server.url("/e/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let (status, body) = server
        .api(
            reqwest::Method::PUT,
            "/v1/workflows/w",
            format!("[[steps]]\nname = \"a\"\nstep = \"{}\"\n", "0".repeat(64)),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains(&format!("no uploaded step {}", "0".repeat(64))),
        "{body}"
    );
    let (status, body) = server
        .api(reqwest::Method::PUT, "/v1/workflows/w", "[[steps]]\nname = \"a\"\nstep = \"xyz\"\n")
        .await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("is not an uploaded step's id"), "{body}");
    let (status, _) = server.api(reqwest::Method::GET, "/v1/runs/nope", "").await;
    assert_eq!(status, 404);
}

/// The real binary serving on an ephemeral port; its base URL.
pub(crate) async fn spawn_server(data: &std::path::Path, workers: &str) -> (tokio::process::Child, String) {
    let (child, base, _stderr) = spawn_server_logged(data, workers).await;
    (child, base)
}

/// [`spawn_server`], with the server's stderr lines also handed to the
/// test as they come (they still reach the test's own stderr).
pub(crate) async fn spawn_server_logged(
    data: &std::path::Path,
    workers: &str,
) -> (tokio::process::Child, String, tokio::sync::mpsc::UnboundedReceiver<String>) {
    use tokio::io::AsyncBufReadExt;
    let mut child = crate::support::stephost_tokio_command()
        .arg("--data")
        .arg(data)
        .args(crate::support::database_args(data).await)
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", workers])
        // On PostgreSQL a dead node's runs wait for its lease: keep it short.
        .args(if crate::support::on_postgres() { &["--lease", "3s"][..] } else { &[][..] })
        .env("STEPHOST_API_TOKEN", "crash-test-token")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (lines_out, stderr) = tokio::sync::mpsc::unbounded_channel();
    let mut errors = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            eprintln!("{line}");
            let _ = lines_out.send(line);
        }
    });
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(line) = lines.next_line().await.unwrap() {
        if let Some(base) = line.strip_prefix("stephost serving on ") {
            return (child, base.to_string(), stderr);
        }
    }
    panic!("the server did not start");
}

/// A server over HTTP with a token: the calls the tests below repeat.
pub(crate) struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Remote {
    pub(crate) fn new(base: &str, token: &str) -> Self {
        Self { base: base.to_string(), token: token.to_string(), http: reqwest::Client::new() }
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        let response =
            self.http.get(format!("{}{path}", self.base)).bearer_auth(&self.token).send().await.unwrap();
        response.json().await.unwrap()
    }

    /// Uploads a guest; its id.
    pub(crate) async fn upload(&self, name: &str) -> Value {
        let url = format!("{}/v1/steps", self.base);
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.token)
            .body(std::fs::read(guest(name)).unwrap())
            .send()
            .await;
        response.unwrap().json::<Value>().await.unwrap()["id"].clone()
    }

    pub(crate) async fn deploy(&self, workflow: &str, definition: String) -> Value {
        let url = format!("{}/v1/workflows/{workflow}", self.base);
        let response = self.http.put(url).bearer_auth(&self.token).body(definition).send().await;
        response.unwrap().json().await.unwrap()
    }

    pub(crate) async fn manual_run(&self, workflow: &str, event: &Value) -> reqwest::Response {
        let url = format!("{}/v1/workflows/{workflow}/runs", self.base);
        self.http.post(url).bearer_auth(&self.token).json(event).send().await.unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_event_completes_after_a_sigkill_and_restart() {
    let data = tempfile::tempdir().unwrap();
    // Each run waits at the gate, so with one worker every event but one is
    // still queued when the host is killed.
    let gate = Gate::start().await;
    let (mut child, base) = spawn_server(data.path(), "1").await;
    let remote = Remote::new(&base, "crash-test-token");
    let step = remote.upload("probe").await;
    let deployed = remote.deploy("crash", gated_workflow(&step, &gate)).await;
    assert_eq!(deployed["version"], 1);

    let mut accepted = Vec::new();
    for _ in 0..60 {
        // A manual run takes the body as the event itself.
        let response = remote.manual_run("crash", &gate_event(&gate)).await;
        assert_eq!(response.status(), 202);
        accepted.push(response.json::<Value>().await.unwrap()["run"].as_str().unwrap().to_string());
    }
    gate.wait_for(1, "a run to reach the gate").await;
    let running = remote.get("/v1/runs?status=running").await;
    assert_eq!(running["runs"].as_array().unwrap().len(), 1, "one run is mid-way: {running}");
    let pending = remote.get("/v1/runs?status=queued&limit=100").await;
    assert_eq!(pending["runs"].as_array().unwrap().len(), 59, "the rest wait");
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    gate.release();
    let (_child, base) = spawn_server(data.path(), "4").await;
    let remote = Remote::new(&base, "crash-test-token");
    let deadline = crate::support::Deadline::new("every accepted run to finish after the restart");
    for id in &accepted {
        let run = loop {
            let run = remote.get(&format!("/v1/runs/{id}")).await;
            if !matches!(run["status"].as_str(), Some("queued" | "running")) {
                break run;
            }
            deadline.check();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(run["status"], "succeeded", "{run}");
        assert_eq!(run["outcome"]["steps"][0]["result"]["return_value"]["http"][0]["body"], "done");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_with_retry_after_and_drops_nothing() {
    let data = tempfile::tempdir().unwrap();
    let mut config = ServeConfig::new(data.path().to_path_buf());
    config.max_queued = 3;
    // The router alone: no workers, so the queue only fills.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (state, token) = open_state(config, runtime(), listener.local_addr().unwrap()).await;
    let token = token.unwrap();
    let app =
        stephost::server::router(state.clone()).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let remote = Remote::new(&base, &token);
    let step = remote.upload("hello").await;
    let deployed = remote.deploy("q", format!("[[steps]]\nname = \"hello\"\nstep = {step}\n")).await;
    let url = format!("{base}{}", deployed["endpoint"].as_str().unwrap());
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = remote.http.post(&url).body("x").send().await.unwrap();
        statuses.push((
            response.status().as_u16(),
            response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_string()),
        ));
    }
    assert_eq!(
        statuses,
        [(200, None), (200, None), (200, None), (429, Some("1".into())), (429, Some("1".into()))]
    );
    assert_eq!(state.store().queued_runs().await.unwrap(), 3, "every 200 is a stored run");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_running_run_finish_and_leaves_the_rest_queued() {
    let gate = Gate::start().await;
    let data = tempfile::tempdir().unwrap();
    let (mut child, base, mut stderr) = spawn_server_logged(data.path(), "1").await;
    let remote = Remote::new(&base, "crash-test-token");
    let step = remote.upload("probe").await;
    remote.deploy("slow", gated_workflow(&step, &gate)).await;
    for _ in 0..4 {
        remote.manual_run("slow", &gate_event(&gate)).await;
    }
    // One run waits at the gate; the server is asked to stop, and the gate
    // opens only once the server says it has stopped taking runs.
    gate.wait_for(1, "a run to reach the gate").await;
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let said = tokio::time::timeout(std::time::Duration::from_secs(120), async {
        while let Some(line) = stderr.recv().await {
            if line.starts_with("stephost: stopping:") {
                return line;
            }
        }
        panic!("the server ended without saying it was stopping");
    })
    .await
    .expect("the server says it is stopping within two minutes");
    assert!(said.contains("queued runs stay queued"), "{said}");
    gate.release();
    assert!(child.wait().await.unwrap().success(), "a clean exit after the drain");

    let store = crate::support::open_store(data.path()).await;
    let runs = store.list_runs(Some("slow"), None, 10).await.unwrap();
    let count = |status: RunStatus| runs.iter().filter(|r| r.status == status).count();
    assert_eq!(count(RunStatus::Running), 0, "nothing is left half-done");
    assert_eq!(count(RunStatus::Failed), 0);
    assert_eq!(count(RunStatus::Succeeded), 1, "the run under way finished");
    assert_eq!(count(RunStatus::Queued), 3, "the rest wait for the next start");
}

/// The CLI with `--server base` and the test token: exit code, stdout, stderr.
async fn cli_on(data: &std::path::Path, base: &str, mut args: Vec<&str>) -> (Option<i32>, String, String) {
    args.extend(["--server", base, "--token", "crash-test-token"]);
    let out = crate::support::stephost_async(data, &args, None).await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_deploys_triggers_and_inspects_runs_on_a_server() {
    let data = tempfile::tempdir().unwrap();
    let (_child, base) = spawn_server(data.path(), "2").await;
    let client = tempfile::tempdir().unwrap();
    let repo = crate::support::repo();
    let (demo, signup) =
        (repo.join("examples/workflows/demo.toml"), repo.join("examples/events/signup.json"));
    let (code, out, err) =
        cli_on(client.path(), &base, vec!["workflow", "deploy", demo.to_str().unwrap()]).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("deployed workflow `demo` version 1"), "{out}");
    assert!(out.contains(&format!("HTTP trigger: {base}/e/")), "{out}");
    let remote = Remote::new(&base, "crash-test-token");
    assert_eq!(
        remote.get("/v1/steps").await["steps"].as_array().unwrap().len(),
        2,
        "both components uploaded"
    );

    let (code, out, err) =
        cli_on(client.path(), &base, vec!["trigger", "demo", "--event", signup.to_str().unwrap(), "--wait"])
            .await;
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("succeeded") && out.contains("Hello, Ada Lovelace!"), "{out}");
    let logs = out.split_once("logs:\n").map_or("", |(_, below)| below);
    assert!(
        logs.lines().any(|line| line.trim() == "transform: Hello, Ada Lovelace!"),
        "the step's logs are shown below it: {out}"
    );

    let (_, listed, _) =
        cli_on(client.path(), &base, vec!["runs", "list", "--workflow", "demo", "--json"]).await;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let first = listed["runs"][0]["id"].as_str().unwrap().to_string();
    let (code, out, _) = cli_on(client.path(), &base, vec!["runs", "replay", &first, "--wait"]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("Hello, Ada Lovelace!"), "{out}");
    assert_eq!(remote.get("/v1/runs?workflow=demo").await["runs"].as_array().unwrap().len(), 2);
    let (_, shown, _) = cli_on(client.path(), &base, vec!["runs", "show", &first]).await;
    assert!(shown.starts_with(&format!("run {first} of `demo` v1: succeeded")), "{shown}");

    let (code, out, err) =
        cli_on(client.path(), &base, vec!["steps", "upload", repo.join("README.md").to_str().unwrap()]).await;
    assert_eq!((code, out.as_str()), (Some(2), ""));
    assert!(err.contains("not a WebAssembly file") && err.lines().count() == 1, "{err}");

    let wrong = crate::support::stephost_async(
        client.path(),
        &["runs", "list", "--server", &base, "--token", "wrong"],
        None,
    )
    .await;
    let err = String::from_utf8_lossy(&wrong.stderr);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(err.contains("a valid bearer token is required"), "{err}");
    assert!(
        !client.path().join(stephost::store::DATABASE_FILE).exists(),
        "nothing went to the local data directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_server_the_cli_deploys_and_runs_on_the_local_data_directory() {
    let data = tempfile::tempdir().unwrap();
    let demo = crate::support::repo().join("examples/workflows/demo.toml");
    let cli = |args: &'static [&'static str]| {
        let data = data.path().to_path_buf();
        async move {
            let out = crate::support::stephost_async(&data, args, None).await;
            (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
        }
    };
    let deployed =
        crate::support::stephost_async(data.path(), &["workflow", "deploy", demo.to_str().unwrap()], None)
            .await;
    assert!(deployed.status.success(), "{}", String::from_utf8_lossy(&deployed.stderr));
    // A run queued for someone else (a server on this directory) is left alone.
    let store = crate::support::open_store(data.path()).await;
    let other = {
        let demo = store.workflow("demo").await.unwrap().unwrap();
        let id = stephost::base::ids::new_run_id();
        let event = serde_json::json!({ "name": "Other" });
        store.enqueue_runs(&[stephost::store::NewRun::new(id.clone(), &demo, &event)]).await.unwrap();
        id
    };
    let (code, out) = cli(&["trigger", "demo", "--event-json", r#"{"name":"Grace"}"#]).await;
    assert_eq!(code, Some(0));
    assert!(out.contains("Hello, Grace!"), "ran here at once: {out}");
    let (_, listed) = cli(&["runs", "list"]).await;
    assert!(listed.contains("demo") && listed.contains("succeeded"), "{listed}");
    assert_eq!(
        store.list_runs(Some("demo"), Some(RunStatus::Succeeded), 10).await.unwrap().len(),
        1,
        "stored like a server run"
    );
    assert_eq!(
        store.run(&other).await.unwrap().unwrap().status,
        RunStatus::Queued,
        "only its own run was taken"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflows_are_listed_newest_version_first_by_name_without_deleted_ones() {
    let server = Server::start().await;
    server.deploy_guest("second", "hello", "", "").await;
    server.deploy_guest("first", "hello", "[schedule]\nevery_minutes = 15\n", "").await;
    server.deploy_guest("second", "hello", "", "").await;
    server.deploy_guest("gone", "hello", "", "").await;
    let (status, _) = server.api(reqwest::Method::DELETE, "/v1/workflows/gone", "").await;
    assert_eq!(status, 204);

    let (status, listed) = server.api(reqwest::Method::GET, "/v1/workflows", "").await;
    assert_eq!(status, 200, "{listed}");
    let seen: Vec<(String, u64)> = listed["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap().to_string(), w["version"].as_u64().unwrap()))
        .collect();
    assert_eq!(seen, [("first".to_string(), 1), ("second".to_string(), 2)], "{listed}");
    assert!(listed["workflows"][0]["schedule"].as_str().is_some_and(|s| s.contains("15")), "{listed}");

    let out = crate::support::stephost_async(
        server.data(),
        &["workflow", "list", "--server", &server.base, "--token", &server.token],
        None,
    )
    .await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("first  v1  /e/") && lines[1].starts_with("second  v2  /e/"), "{text}");
}
