//! JavaScript and Python steps: built by `stephost build` (componentize-js
//! and componentize-py, installed once into `target/js-data`), run in the
//! same sandbox under the same egress proxy as Rust steps.

use crate::support::{GOOD_TOKEN, StandIn, guest, repo};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use stephost::secrets::PLACEHOLDER_PREFIX;
use stephost::{Runtime, RuntimeConfig, StepConfig, StepInput, StepOutcome, Workflow};

/// Where the JS toolchain and the built steps' compiled code are kept
/// between test runs.
fn js_data() -> PathBuf {
    repo().join("target/js-data")
}

/// `stephost build SOURCE` with the shared toolchains: its output and stderr.
fn build_with_shared_toolchains(source: &std::path::Path) -> (std::process::Output, String) {
    let output = crate::support::stephost_command()
        .arg("--data")
        .arg(js_data())
        .arg("build")
        .arg(source)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// A JS step (`examples/js/NAME.mjs` or `tests/fixtures/js/NAME.mjs`)
/// built with the real `stephost build`, once per test run.
pub fn js_guest(name: &str) -> PathBuf {
    built_guest(name, "js", "mjs")
}

/// A Python step (`examples/python/NAME.py` or `tests/fixtures/python/NAME.py`),
/// built once per test run.
pub fn py_guest(name: &str) -> PathBuf {
    built_guest(name, "python", "py")
}

fn built_guest(name: &str, dir: &str, extension: &str) -> PathBuf {
    static BUILT: Mutex<Option<HashMap<String, PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    let key = format!("{dir}/{name}");
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(&key) {
        return path.clone();
    }
    let example = repo().join(format!("examples/{dir}/{name}.{extension}"));
    let source = if example.is_file() {
        example
    } else {
        repo().join(format!("tests/fixtures/{dir}/{name}.{extension}"))
    };
    let out = repo().join(format!("target/built-steps/{dir}/{name}.wasm"));
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let output = crate::support::stephost_command()
        .arg("--data")
        .arg(js_data())
        .arg("build")
        .arg(&source)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "building {name}: {}", String::from_utf8_lossy(&output.stderr));
    built.as_mut().unwrap().insert(key, out.clone());
    out
}

/// A runtime reaching the Slack stand-in, sharing the compiled-code cache
/// of `stephost build` (StarlingMonkey takes seconds to compile).
pub(crate) fn runtime(slack: &StandIn) -> Runtime {
    Runtime::new(RuntimeConfig {
        egress: slack.egress(),
        cache_dir: Some(js_data().join("components")),
        max_concurrent_runs: 4,
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn slack_account() -> Vec<(String, Vec<(String, String)>)> {
    vec![(
        "slack".into(),
        vec![("oauth_access_token".into(), GOOD_TOKEN.into()), ("oauth_uid".into(), "U1".into())],
    )]
}

pub(crate) async fn run_js(runtime: &Runtime, name: &str, event: Value, env: &[(&str, &str)]) -> StepOutcome {
    run_built(runtime, &js_guest(name), name, event, env).await
}

pub(crate) async fn run_py(runtime: &Runtime, name: &str, event: Value, env: &[(&str, &str)]) -> StepOutcome {
    run_built(runtime, &py_guest(name), name, event, env).await
}

/// Runs a built step with the Slack account connected; fails if the real
/// token shows up anywhere in what the step produced.
async fn run_built(
    runtime: &Runtime,
    path: &std::path::Path,
    name: &str,
    event: Value,
    env: &[(&str, &str)],
) -> StepOutcome {
    run_with_accounts(runtime, path, name, event, env, slack_account()).await
}

/// [`run_built`] with the given accounts connected.
async fn run_with_accounts(
    runtime: &Runtime,
    path: &std::path::Path,
    name: &str,
    event: Value,
    env: &[(&str, &str)],
    auths: Vec<(String, Vec<(String, String)>)>,
) -> StepOutcome {
    let step = runtime.load(path).unwrap();
    let input = StepInput {
        step_name: name.into(),
        event: event.to_string().into(),
        steps: vec![("trigger".into(), json!({ "event": event }).to_string().into())],
        auths,
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        ..Default::default()
    };
    // Besides its apps' hosts, a step may reach only a name that never
    // resolves (RFC 6761): for checking that a DNS failure is named as such.
    let policy = stephost::HostPolicy::parse(&["https://no-such-host.invalid"]).unwrap();
    let config = StepConfig { policy: std::sync::Arc::new(policy), ..StepConfig::default() };
    let outcome = runtime.run(&step, input, &config).await;
    let everything = serde_json::to_string(&outcome).unwrap();
    assert!(!everything.contains(GOOD_TOKEN), "the real token reached the step's outcome: {everything}");
    outcome
}

pub(crate) fn log_text(outcome: &StepOutcome) -> String {
    outcome.logs.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_slack_example_posts_with_the_real_token_while_the_step_sees_a_placeholder() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);
    let outcome =
        run_js(&runtime, "slack_post", json!({ "text": "hi from js" }), &[("SLACK_CHANNEL", "#js")]).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(&outcome)));
    assert_eq!(value["ts"], "1712345678.000100");
    assert_eq!(value["fields"], json!(["oauth_access_token", "oauth_uid"]), "Object.keys(auths.slack)");
    let logs = log_text(&outcome);
    assert!(logs.contains(&format!("token: {PLACEHOLDER_PREFIX}")), "{logs}");
    assert!(logs.contains("slack fields: oauth_access_token, oauth_uid"), "{logs}");

    let posted = slack.requests();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));
    assert_eq!(
        posted[0].json(),
        json!({ "channel": "#js", "text": "hi from js" }),
        "process.env and the event"
    );
}

/// The seed's example, exactly as the seed writes it: Pipedream's legacy
/// body form importing the real `@slack/web-api` from npm.
const SEED_EXAMPLE: &str = r##"import { WebClient } from '@slack/web-api'
const web = new WebClient(auths.slack.oauth_access_token)
return await web.chat.postMessage({
  text: "Hello, world!",
  channel: "#general",
})
"##;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seeds_npm_example_runs_verbatim_with_the_real_slack_sdk() {
    let example = std::fs::read_to_string(repo().join("examples/js/seed_slack.mjs")).unwrap();
    assert_eq!(example, SEED_EXAMPLE, "the example is the seed's, verbatim");
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(readme.contains(&format!("```js\n{SEED_EXAMPLE}```")), "the README shows the seed's example");
    assert!(
        repo().join("examples/js/seed_slack.package-lock.json").is_file(),
        "the packages are pinned by a lockfile beside the step"
    );

    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);
    let outcome = run_js(&runtime, "seed_slack", json!({}), &[]).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(&outcome)));
    assert_eq!(value["ok"], true, "{value}");
    assert_eq!(value["ts"], "1712345678.000100");
    assert_eq!(value["message"]["text"], "Hello, world!");

    let posted = slack.requests();
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0].path, "/api/chat.postMessage");
    assert_eq!(posted[0].header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));
    let fields = posted[0].fields();
    assert_eq!(
        (fields["channel"].as_str(), fields["text"].as_str()),
        (Some("#general"), Some("Hello, world!"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axios_and_the_openai_sdk_from_npm_reach_their_apis_with_the_real_keys() {
    let apis = StandIn::start(&["slack.com", "api.openai.com"]).await;
    let runtime = runtime(&apis);
    let mut accounts = slack_account();
    accounts.push(("openai".into(), vec![("api_key".into(), GOOD_TOKEN.into())]));
    let outcome = run_with_accounts(&runtime, &js_guest("sdks"), "sdks", json!({}), &[], accounts).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(&outcome)));
    assert_eq!(value["slack"]["ts"], "1712345678.000100", "{value}");
    assert_eq!(value["reply"], "Hi from the stand-in");

    let requests = apis.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(
        (requests[0].host.as_str(), requests[0].path.as_str()),
        ("slack.com", "/api/chat.postMessage")
    );
    assert_eq!(requests[0].json(), json!({ "channel": "#axios", "text": "via axios" }));
    assert_eq!(
        (requests[1].host.as_str(), requests[1].path.as_str()),
        ("api.openai.com", "/v1/chat/completions")
    );
    assert_eq!(requests[1].json()["messages"][0]["content"], "Say hi");
    for request in &requests {
        assert_eq!(request.header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));
    }
}

#[test]
fn a_packages_install_scripts_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let package = dir.path().join("evil");
    std::fs::create_dir(&package).unwrap();
    std::fs::write(
        package.join("package.json"),
        r#"{"name":"evil","version":"1.0.0","main":"index.js","scripts":{"postinstall":"echo ran > ran.txt"}}"#,
    )
    .unwrap();
    // Broken on purpose: the build stops at bundling, after the install.
    std::fs::write(package.join("index.js"), "module.exports = {;\n").unwrap();
    std::fs::write(dir.path().join("package.json"), r#"{"dependencies":{"evil":"file:./evil"}}"#).unwrap();
    let source = dir.path().join("step.mjs");
    std::fs::write(&source, "import evil from 'evil'\nreturn evil\n").unwrap();
    let (_, stderr) = build_with_shared_toolchains(&source);
    assert!(dir.path().join("package-lock.json").is_file(), "installed, lockfile beside the step: {stderr}");
    assert!(stderr.contains("evil/index.js"), "stopped bundling the package: {stderr}");
    assert!(!package.join("ran.txt").exists(), "the postinstall script ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_builtins_are_shimmed_and_an_unavailable_one_is_a_catchable_error() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);
    let outcome = run_js(&runtime, "node_builtins", json!({ "n": 7 }), &[]).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(&outcome)));
    assert_eq!(value["platform"], "wasi");
    assert_eq!(value["base"], "b.txt");
    assert_eq!(value["query"], "a=1&b=x%20y");
    assert_eq!(value["base64"], "aGk=");
    assert_eq!(value["globalBuffer"], true);
    assert_eq!(value["uuid"], 36, "import('node:crypto') loads the web crypto shim");
    assert_eq!((value["title"].as_str(), value["version"].as_str()), (Some("stephost"), Some("string")));
    assert_eq!(value["event"], 7, "the body form gets the event");
    let dynamic = value["dynamic"].as_str().unwrap();
    assert!(dynamic.contains("`child_process` is not available in the stephost sandbox"), "{dynamic}");
    let write = value["write"].as_str().unwrap();
    assert!(write.contains("writing files is not available"), "{write}");
}

#[test]
fn a_step_importing_a_builtin_the_sandbox_cannot_offer_fails_the_build_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("sockets.mjs");
    std::fs::write(
        &source,
        "import os from 'os'\nimport { connect } from 'node:net'\nreturn connect(os.EOL)\n",
    )
    .unwrap();
    let (output, stderr) = build_with_shared_toolchains(&source);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let error: Vec<&str> = stderr.lines().filter(|l| !l.starts_with("stephost: ")).collect();
    assert_eq!(error.len(), 1, "one line besides the build's phases: {stderr}");
    assert!(error[0].contains("sockets.mjs:2: `net` is not available in the stephost sandbox"), "{stderr}");
    assert!(!source.with_extension("wasm").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn define_component_steps_read_this_app_auth_export_and_exit() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);
    let outcome = run_js(&runtime, "slack_post_component", json!({ "text": "component" }), &[]).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(&outcome)));
    assert_eq!(value["message"]["text"], "component");
    assert_eq!(outcome.exports, [("ts".to_string(), json!("1712345678.000100"))]);
    assert_eq!(slack.requests()[0].header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));

    let stopped = run_js(&runtime, "slack_post_component", json!({ "stop": true }), &[]).await;
    assert_eq!(stopped.exit.as_deref(), Some("asked to stop"));
    assert_eq!(stopped.exports.len(), 1, "exports made before the exit are kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_step_cannot_send_the_token_to_another_host_and_is_told_why() {
    let slack = StandIn::start(&["slack.com", "attacker.example"]).await;
    let runtime = runtime(&slack);
    let outcome = run_js(&runtime, "exfiltrate", json!({}), &[]).await;
    let value = outcome.result.as_ref().unwrap();
    let refused = value["refused"].as_str().unwrap();
    assert!(refused.starts_with("TypeError: fetch refused by stephost: "), "{refused}");
    assert!(refused.contains("attacker.example"), "the host's reason: {refused}");
    assert!(slack.requests().is_empty(), "nothing reached any host");
    assert!(outcome.egress[0].error.as_deref().unwrap_or_default().contains("attacker.example"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_passes_data_between_rust_js_and_python_steps() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);
    let definition = format!(
        "[[steps]]\nname = \"hello\"\ncomponent = {:?}\n[[steps]]\nname = \"mixed\"\ncomponent = {:?}\nenv = {{ GREETING = \"hey\" }}\n[[steps]]\nname = \"python\"\ncomponent = {:?}\nenv = {{ GREETING = \"hallo\" }}\n",
        guest("hello").display().to_string(),
        js_guest("mixed").display().to_string(),
        py_guest("mixed").display().to_string()
    );
    let workflow = Workflow::parse(&definition, std::path::Path::new("/mixed.toml")).unwrap();
    let outcome = workflow.run(&runtime, &json!({ "name": "Ada" })).await.unwrap();
    let js = &outcome.steps[1];
    let value = js.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(value["from_rust"], json!({ "name": "Ada" }));
    assert_eq!(value["fields"], json!(["name"]));
    assert_eq!(value["env"], "hey");
    assert_eq!(js.exports, [("shout".to_string(), json!("ADA"))]);
    let response = js.response.as_ref().expect("$.respond");
    assert_eq!(response.status, 201);
    assert_eq!(
        response.headers,
        [
            ("x-from".to_string(), "js".to_string()),
            ("content-type".to_string(), "application/json".to_string())
        ]
    );
    assert_eq!(response.body, br#"{"greeting":"hi Ada"}"#);
    let python = &outcome.steps[2];
    let value = python.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        value,
        &json!({ "from_js": "ADA", "from_rust": "Ada", "env": "hallo", "env_names": ["GREETING"] }),
        "the step's environment is its own, none of componentize-py's"
    );
    assert_eq!(python.exports, [("seen".to_string(), json!(["trigger", "hello", "mixed"]))]);
    let response = python.response.as_ref().expect("pd.respond");
    assert_eq!((response.status, response.body.as_slice()), (202, b"accepted".as_slice()));
    assert_eq!(response.headers, [("x-from".to_string(), "python".to_string())]);
}

#[test]
fn a_syntax_error_fails_the_build_with_the_users_line() {
    for (file, code, expected) in [
        (
            "broken.mjs",
            "export default async (event) => {\n  const x = ;\n  return x;\n};\n",
            "broken.mjs:2: SyntaxError: Unexpected token ';'",
        ),
        ("broken.py", "def handler(pd):\n    x = = 1\n", "broken.py:2: SyntaxError: invalid syntax"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join(file);
        std::fs::write(&source, code).unwrap();
        let (output, stderr) = build_with_shared_toolchains(&source);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
        assert!(!dir.path().join(file).with_extension("wasm").exists());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_slack_example_posts_with_the_real_token_exports_and_exits() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);
    let outcome =
        run_py(&runtime, "slack_post", json!({ "text": "hi from python" }), &[("SLACK_CHANNEL", "#py")])
            .await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(&outcome)));
    assert_eq!(value["fields"], json!(["oauth_access_token", "oauth_uid"]));
    assert_eq!(outcome.exports, [("ts".to_string(), json!("1712345678.000100"))]);
    let logs = log_text(&outcome);
    assert!(logs.contains(&format!("token: {PLACEHOLDER_PREFIX}")), "{logs}");
    let posted = slack.requests();
    assert_eq!(posted[0].header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));
    assert_eq!(
        posted[0].json(),
        json!({ "channel": "#py", "text": "hi from python" }),
        "os.environ and the event"
    );

    let stopped = run_py(&runtime, "slack_post", json!({ "stop": true }), &[]).await;
    assert_eq!(stopped.exit.as_deref(), Some("asked to stop"));
    let kept = stopped.result.as_ref().expect("as in Pipedream, the step goes on after pd.flow.exit");
    assert_eq!(kept["fields"], json!(["oauth_access_token", "oauth_uid"]), "its return value is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_step_cannot_send_the_token_to_another_host() {
    let slack = StandIn::start(&["slack.com", "attacker.example"]).await;
    let runtime = runtime(&slack);
    let outcome = run_py(&runtime, "exfiltrate", json!({}), &[]).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        value["refused"].as_str().unwrap().contains("HTTP-request-denied")
            || value["refused"].as_str().unwrap().contains("HttpRequestDenied"),
        "{value}"
    );
    assert!(slack.requests().is_empty(), "nothing reached any host");
}

#[test]
fn a_missing_toolchain_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for (file, code, tool) in [
        ("step.mjs", "export default async () => 1;\n", "`node` was not found"),
        ("step.py", "def handler(pd):\n    return 1\n", "`python3` was not found"),
    ] {
        let source = dir.path().join(file);
        std::fs::write(&source, code).unwrap();
        let output = crate::support::stephost_command()
            .arg("--data")
            .arg(dir.path().join("data"))
            .arg("build")
            .arg(&source)
            .env("PATH", dir.path())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(tool) && stderr.lines().count() == 1, "{stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_steps_import_the_stdlib_and_pypi_packages_at_run_time_and_speak_requests() {
    let slack = StandIn::start(&["slack.com", "attacker.example"]).await;
    let runtime = runtime(&slack);
    let outcome = run_py(&runtime, "batteries/batteries", json!({}), &[]).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(&outcome)));
    assert_eq!(
        value["stdlib"],
        json!({
            "most_common": [["a", 5], ["b", 2]],
            "csv": [["a", "b,c"], ["1", "2"]],
            "decimal": "3.305",
            "fraction": "1/2",
            "html": "&lt;a &amp; b&gt;",
            "email": "hello",
            "json": { "x": [1, 2] },
            "re": ["1", "22", "333"],
            "datetime": "2024-02-29",
            "base64": "c3RlcGhvc3Q=",
            "sha256": "c0999bfd5a53e3a0e8f86bdc66348251c05495d97a59a3d949b0d6cfd42c3bfd",
            "new_york": "2024-07-01T08:00:00-04:00",
            "six": "1.16.0",
        })
    );
    assert_eq!(value["posted"], json!([200, true, "1712345678.000100", "application/json"]));
    assert_eq!(
        value["http_error"],
        json!([
            "401 Client Error: Unauthorized for url: https://slack.com/user?q=a+b&n=2",
            401,
            "Bad credentials"
        ])
    );
    assert_eq!(value["refused"][0], "RequestRefused", "{value}");
    let refused = value["refused"][1].as_str().unwrap();
    assert!(refused.contains("https://attacker.example/collect: refused by stephost: "), "{refused}");
    // A name that does not resolve says DNS, not "connection refused".
    assert_eq!(value["dns"][0], "ConnectionError", "{value}");
    let dns = value["dns"][1].as_str().unwrap();
    assert!(dns.contains("DNS lookup") && dns.contains("no-such-host.invalid"), "{dns}");
    assert!(dns.ends_with("(DnsError)") && !dns.contains("refused"), "{dns}");
    let urllib = value["urllib"].as_str().unwrap();
    assert!(urllib.contains("`requests`") && urllib.contains("stephost_http"), "{urllib}");

    let received = slack.requests();
    assert_eq!(received.len(), 2, "nothing reached attacker.example: {received:?}");
    assert_eq!(received[0].header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));
    assert_eq!(received[0].json(), json!({ "channel": "#py", "text": "via requests" }));
    assert_eq!(received[1].path, "/user?q=a+b&n=2");
}
