//! OAuth accounts: the authorization-code flow with PKCE against a real
//! loopback token endpoint, refresh of an expired token before a run, and a
//! failed refresh that marks the account and stops the run with a reason.

use crate::support::{StandIn, guest};
use axum::extract::{Form, State};
use base64::Engine;
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::AsyncBufReadExt;

#[derive(Default)]
struct Provider {
    /// The S256 challenge the authorize URL carried.
    challenge: String,
    /// Whether refreshes are refused (echoing the refresh token and client
    /// secret in the error description, as a careless provider might).
    refuse_refresh: bool,
    /// Seconds the first token lives (0: due for refresh at once).
    first_expires_in: u64,
    /// The token a refresh hands out (default `at-2`).
    refreshed_token: Option<String>,
    /// Refreshes are answered with a 307 to `/stolen`.
    redirect_refresh: bool,
    /// Requests that reached `/stolen`.
    stolen: usize,
    forms: Vec<HashMap<String, String>>,
}

type Shared = Arc<Mutex<Provider>>;

/// A provider whose first token is good for an hour (no refresh before a
/// run) and whose refresh hands out `refreshed`.
fn valid_for_an_hour(refreshed: &str) -> Provider {
    Provider { first_expires_in: 3600, refreshed_token: Some(refreshed.into()), ..Provider::default() }
}

async fn token(
    State(provider): State<Shared>,
    Form(form): Form<HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut p = provider.lock().unwrap();
    p.forms.push(form.clone());
    match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let verifier = form.get("code_verifier").cloned().unwrap_or_default();
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(verifier.as_bytes()));
            if form.get("code").map(String::as_str) != Some("the-code") || challenge != p.challenge {
                return (
                    axum::http::StatusCode::BAD_REQUEST,
                    axum::Json(json!({ "error": "invalid_grant" })),
                )
                    .into_response();
            }
            axum::Json(json!({ "ok": true, "access_token": "at-1", "refresh_token": "rt-1",
                               "expires_in": p.first_expires_in, "authed_user": { "id": "U9" } }))
            .into_response()
        }
        Some("refresh_token") if p.redirect_refresh => {
            (axum::http::StatusCode::TEMPORARY_REDIRECT, [("location", "http://oauth.test/stolen")], "moved")
                .into_response()
        }
        Some("refresh_token")
            if !p.refuse_refresh && form.get("refresh_token").map(String::as_str) == Some("rt-1") =>
        {
            let token = p.refreshed_token.clone().unwrap_or_else(|| "at-2".into());
            axum::Json(json!({ "access_token": token, "refresh_token": "rt-2", "expires_in": 3600 }))
                .into_response()
        }
        _ => {
            let echo = format!(
                "bad refresh token {} for {}",
                form.get("refresh_token").cloned().unwrap_or_default(),
                form.get("client_secret").cloned().unwrap_or_default()
            );
            (
                axum::http::StatusCode::BAD_REQUEST,
                axum::Json(json!({ "error": "invalid_grant", "error_description": echo })),
            )
                .into_response()
        }
    }
}

async fn stephost(data: &std::path::Path, args: &[&str]) -> std::process::Output {
    crate::support::stephost_async(data, args, None).await
}

/// Connects slack by OAuth, playing the browser; returns the provider and
/// the `--resolve` that reaches its token endpoint (`http://oauth.test`: the
/// host's token client refuses loopback addresses written as IPs).
async fn connect_by_oauth(data: &std::path::Path) -> (Shared, String) {
    connect_with(data, Provider::default()).await
}

async fn connect_with(data: &std::path::Path, provider: Provider) -> (Shared, String) {
    let provider: Shared = Arc::new(Mutex::new(provider));
    let app = axum::Router::new()
        .route("/token", axum::routing::post(token))
        .route(
            "/stolen",
            axum::routing::any(|State(provider): State<Shared>| async move {
                provider.lock().unwrap().stolen += 1;
                "thanks"
            }),
        )
        .with_state(provider.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    std::fs::create_dir_all(data.join("apps")).unwrap();
    let slack = include_str!("../../host/apps/slack.toml")
        .replace("https://slack.com/oauth/v2/authorize", "http://oauth.test/authorize")
        .replace("https://slack.com/api/oauth.v2.access", "http://oauth.test/token");
    let resolve = format!("oauth.test:80:{endpoint}");
    std::fs::write(data.join("apps/slack.toml"), slack).unwrap();

    let mut child = crate::support::stephost_tokio_command()
        .arg("--data")
        .arg(data)
        .args(crate::support::database_args(data).await)
        .args([
            "accounts",
            "connect",
            "slack",
            "--oauth",
            "--client-id",
            "cid",
            "--client-secret",
            "client-secret-value",
            "--resolve",
            &resolve,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let query = authorize_query(&mut child).await;
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["client_id"], "cid");
    provider.lock().unwrap().challenge = query["code_challenge"].clone();
    let redirect = format!("{}?code=the-code&state={}", query["redirect_uri"], query["state"]);
    let page = reqwest::get(&redirect).await.unwrap().text().await.unwrap();
    assert!(page.starts_with("Connected."), "{page}");
    let status = child.wait().await.unwrap();
    assert!(status.success());
    (provider, resolve)
}

/// Connects slack by OAuth (its token due at once), sets the provider up
/// with `configure`, and runs the probe with the account: the run must stop
/// before it starts (exit 2). The provider and what the CLI said.
async fn run_with_an_expired_token(data: &std::path::Path, configure: fn(&mut Provider)) -> (Shared, String) {
    let (provider, oauth) = connect_by_oauth(data).await;
    configure(&mut provider.lock().unwrap());
    let probe = guest("probe");
    let out =
        stephost(data, &["run", probe.to_str().unwrap(), "--account", "slack=default", "--resolve", &oauth])
            .await;
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    (provider, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// The query of the authorize URL `accounts connect --oauth` prints.
async fn authorize_query(child: &mut tokio::process::Child) -> HashMap<String, String> {
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let url = loop {
        let line = lines.next_line().await.unwrap().expect("the CLI prints the authorize URL");
        if line.starts_with("http") && line.contains("state=") {
            break url::Url::parse(&line).unwrap();
        }
    };
    // The CLI prints more (the outcome): keep reading, so it never writes
    // into a closed pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    url.query_pairs().into_owned().collect()
}

/// Runs the probe with the stored slack account, making `calls` POSTs to
/// Slack's auth.test (a loopback stand-in) with the sealed token.
async fn probe_slack(data: &std::path::Path, calls: usize, oauth: &str) -> (StandIn, std::process::Output) {
    let call = r#"{"do":"http","method":"POST","url":"https://slack.com/api/auth.test","headers":{"authorization":"Bearer {auth:slack.oauth_access_token}"}}"#;
    probe_slack_with(data, &vec![call; calls].join(","), oauth).await
}

/// Runs the probe with the stored slack account and `actions` (JSON list
/// items), Slack's hosts on a loopback stand-in.
async fn probe_slack_with(
    data: &std::path::Path,
    actions: &str,
    oauth: &str,
) -> (StandIn, std::process::Output) {
    let slack = StandIn::start(&["slack.com"]).await;
    let ca = data.join("ca.pem");
    std::fs::write(&ca, &slack.ca_pem).unwrap();
    let resolve = format!("slack.com:443:{}", slack.addr);
    let event_file = data.join("event.json");
    std::fs::write(&event_file, format!(r#"{{"actions":[{actions}]}}"#)).unwrap();
    let probe = guest("probe");
    let args = [
        "run",
        probe.to_str().unwrap(),
        "--account",
        "slack=default",
        "--event",
        event_file.to_str().unwrap(),
    ];
    let tls = ["--resolve", &resolve, "--resolve", oauth, "--ca-cert", ca.to_str().unwrap(), "--json"];
    let out = stephost(data, &args.into_iter().chain(tls).collect::<Vec<_>>()).await;
    (slack, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_flow_connects_and_an_expired_token_is_refreshed_before_the_run() {
    let data = tempfile::tempdir().unwrap();
    let (provider, oauth) = connect_with(
        data.path(),
        Provider { refreshed_token: Some(crate::support::GOOD_TOKEN.into()), ..Provider::default() },
    )
    .await;
    let listed = stephost(data.path(), &["accounts", "list"]).await;
    assert!(
        String::from_utf8_lossy(&listed.stdout)
            .contains("slack/default  oauth_access_token=•••••••• oauth_uid=U9")
    );

    let (slack, out) = probe_slack(data.path(), 1, &oauth).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        slack.requests()[0].header("authorization"),
        Some(format!("Bearer {}", crate::support::GOOD_TOKEN).as_str()),
        "the refreshed token went out"
    );
    let refresh = provider.lock().unwrap().forms.last().cloned().unwrap();
    assert_eq!(
        (refresh["grant_type"].as_str(), refresh["refresh_token"].as_str()),
        ("refresh_token", "rt-1")
    );

    // The chain the run wrote to: the data directory's, or the database's.
    let listed = stephost(data.path(), &["audit", "list", "--json"]).await;
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let audit = String::from_utf8(listed.stdout).unwrap();
    let refreshed: Vec<Value> = audit
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "token_refresh")
        .collect();
    assert_eq!(refreshed.len(), 1);
    assert_eq!(refreshed[0]["ok"], true);
    crate::support::assert_not_stored(
        data.path(),
        &["at-1", crate::support::GOOD_TOKEN, "rt-1", "rt-2", "client-secret-value"],
    );

    // The token is fresh now: the next run does not refresh again.
    let forms_before = provider.lock().unwrap().forms.len();
    let probe = guest("probe");
    stephost(
        data.path(),
        &["run", probe.to_str().unwrap(), "--account", "slack=default", "--resolve", &oauth],
    )
    .await;
    assert_eq!(provider.lock().unwrap().forms.len(), forms_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_marks_the_account_and_stops_the_run_with_a_reason() {
    let data = tempfile::tempdir().unwrap();
    let (_, stderr) = run_with_an_expired_token(data.path(), |p| p.refuse_refresh = true).await;
    assert!(
        stderr.contains(
            "the slack account `default` could not be refreshed: bad refresh token [redacted] for [redacted]; reconnect it"
        ),
        "{stderr}"
    );
    let listed = stephost(data.path(), &["accounts", "list"]).await;
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains("refresh failed: bad refresh token [redacted]"), "{listed}");
    crate::support::assert_not_stored(data.path(), &["rt-1", "client-secret-value"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_from_the_apps_host_refreshes_the_token_once_and_retries() {
    let data = tempfile::tempdir().unwrap();
    let (provider, oauth) = connect_with(data.path(), valid_for_an_hour(crate::support::GOOD_TOKEN)).await;
    let (slack, out) = probe_slack(data.path(), 2, &oauth).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen = &outcome["result"]["return_value"];
    assert_eq!(seen["http"][0]["status"], 200, "the retried request succeeded: {outcome}");
    assert_eq!(seen["http"][1]["status"], 200, "later requests carry the new token");
    let good = format!("Bearer {}", crate::support::GOOD_TOKEN);
    assert_eq!(authorizations(&slack), ["Bearer at-1".to_string(), good.clone(), good]);
    assert_eq!(refreshes(&provider), 1, "refreshed once");
    assert!(outcome["logs"].to_string().contains("slack answered 401: token refreshed, request retried"));
    assert!(
        !out.stdout
            .windows(crate::support::GOOD_TOKEN.len())
            .any(|w| w == crate::support::GOOD_TOKEN.as_bytes())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_still_gets_401_is_tried_once_per_app_and_run() {
    let data = tempfile::tempdir().unwrap();
    let (provider, oauth) = connect_with(data.path(), valid_for_an_hour("still-refused")).await;
    let (slack, out) = probe_slack(data.path(), 3, &oauth).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(refreshes(&provider), 1, "one refresh per app and run, however many 401s follow");
    assert_eq!(
        authorizations(&slack),
        ["Bearer at-1", "Bearer still-refused", "Bearer still-refused", "Bearer still-refused"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_token_echoed_after_a_refresh_is_redacted() {
    let data = tempfile::tempdir().unwrap();
    let (_provider, oauth) = connect_with(data.path(), valid_for_an_hour(crate::support::GOOD_TOKEN)).await;
    let call = r#"{"do":"http","method":"POST","url":"https://slack.com/api/auth.test","headers":{"authorization":"Bearer {auth:slack.oauth_access_token}"}}"#;
    let earliest = r#"{"do":"http","url":"https://slack.com/echo-earliest","save":"seen","reverse":true}"#;
    let (slack, out) = probe_slack_with(data.path(), &format!("{call},{earliest}"), &oauth).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        slack.requests()[0].header("authorization"),
        Some("Bearer at-1"),
        "the first request had the old token"
    );
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Kept reversed by the step: what it saw, not what redaction of its
    // return value left.
    let echoed: String =
        outcome["result"]["return_value"]["vars"]["seen"].as_str().unwrap().chars().rev().collect();
    assert!(
        echoed.starts_with("Bearer stephost_sealed_"),
        "the retired token comes back as the placeholder: {echoed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_from_the_token_endpoint_is_not_followed() {
    let data = tempfile::tempdir().unwrap();
    let (provider, stderr) = run_with_an_expired_token(data.path(), |p| p.redirect_refresh = true).await;
    assert!(
        stderr.contains("answered a redirect (HTTP 307 Temporary Redirect), which is not followed"),
        "{stderr}"
    );
    assert_eq!(provider.lock().unwrap().stolen, 0, "the refresh token and client secret were not sent on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_endpoint_on_an_internal_address_is_refused_like_a_steps_request() {
    let data = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = listener.local_addr().unwrap();
    let hits = Arc::new(Mutex::new(0usize));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let counted = counted.clone();
        async move {
            *counted.lock().unwrap() += 1;
            "{}"
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    std::fs::create_dir_all(data.path().join("apps")).unwrap();
    let slack = include_str!("../../host/apps/slack.toml")
        .replace("https://slack.com/api/oauth.v2.access", &format!("http://{endpoint}/token"));
    std::fs::write(data.path().join("apps/slack.toml"), slack).unwrap();
    let mut child = crate::support::stephost_tokio_command()
        .arg("--data")
        .arg(data.path())
        .args(crate::support::database_args(data.path()).await)
        .args(["accounts", "connect", "slack", "--oauth", "--client-id", "cid"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let query = authorize_query(&mut child).await;
    let redirect = format!("{}?code=the-code&state={}", query["redirect_uri"], query["state"]);
    reqwest::get(&redirect).await.unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("it is a loopback address"), "{stderr}");
    assert_eq!(*hits.lock().unwrap(), 0, "no request reached the internal address");
}

/// Connects slack by OAuth with `provider`, serves the data directory
/// (Slack's hosts on a loopback stand-in), deploys the probe with the
/// account and runs it once by hand, making one call to Slack; returns the
/// provider, the stand-in and the finished run.
async fn run_on_a_server(data: &std::path::Path, provider: Provider) -> (Shared, StandIn, Value) {
    use stephost::server::ServeConfig;
    let (provider, oauth) = connect_with(data, provider).await;
    let slack = StandIn::start(&["slack.com"]).await;
    let mut egress = slack.egress();
    let (_, rest) = oauth.split_once(":80:").unwrap();
    egress.resolve.push(("oauth.test".into(), 80, rest.parse().unwrap()));
    let runtime = stephost::Runtime::new(stephost::RuntimeConfig {
        egress,
        max_concurrent_runs: 16,
        audit: Some(crate::audit::keyed_log(data)),
        ..stephost::RuntimeConfig::default()
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (state, token) = crate::server::open_state(
        ServeConfig::new(data.to_path_buf()),
        runtime,
        listener.local_addr().unwrap(),
    )
    .await;
    tokio::spawn(stephost::server::serve(state, listener));
    let http = reqwest::Client::new();
    let token = token.unwrap();
    let step: Value = http
        .post(format!("{base}/v1/steps"))
        .bearer_auth(&token)
        .body(std::fs::read(guest("probe")).unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let definition =
        format!("[[steps]]\nname = \"probe\"\nstep = {}\nauths = {{ slack = \"default\" }}\n", step["id"]);
    let deployed = http
        .put(format!("{base}/v1/workflows/refresh"))
        .bearer_auth(&token)
        .body(definition)
        .send()
        .await
        .unwrap();
    assert_eq!(deployed.status(), 200, "{}", deployed.text().await.unwrap());
    let event = json!({ "actions": [{ "do": "http", "method": "POST", "url": "https://slack.com/api/auth.test",
                                      "headers": { "authorization": "Bearer {auth:slack.oauth_access_token}" } }] });
    let manual: Value = http
        .post(format!("{base}/v1/workflows/refresh/runs"))
        .bearer_auth(&token)
        .body(event.to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = manual["run"].as_str().unwrap();
    let deadline = crate::support::Deadline::new("the server's run to finish");
    let run = loop {
        let run: Value = http
            .get(format!("{base}/v1/runs/{id}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if !matches!(run["status"].as_str(), Some("queued" | "running")) {
            break run;
        }
        deadline.check();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(run["status"], "succeeded", "{run}");
    crate::support::assert_not_stored(
        data,
        &["at-1", crate::support::GOOD_TOKEN, "rt-1", "rt-2", "client-secret-value"],
    );
    (provider, slack, run)
}

fn refreshes(provider: &Shared) -> usize {
    provider.lock().unwrap().forms.iter().filter(|f| f["grant_type"] == "refresh_token").count()
}

fn authorizations(slack: &StandIn) -> Vec<String> {
    slack.requests().iter().map(|r| r.header("authorization").unwrap_or_default().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refreshes_an_expired_token_before_a_run() {
    let data = tempfile::tempdir().unwrap();
    let provider =
        Provider { refreshed_token: Some(crate::support::GOOD_TOKEN.into()), ..Provider::default() };
    let (provider, slack, run) = run_on_a_server(data.path(), provider).await;
    let good = format!("Bearer {}", crate::support::GOOD_TOKEN);
    assert_eq!(authorizations(&slack), [good], "the refreshed token went out: {run}");
    assert_eq!(refreshes(&provider), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_refreshes_after_a_401_during_a_run() {
    let data = tempfile::tempdir().unwrap();
    let provider = valid_for_an_hour(crate::support::GOOD_TOKEN);
    let (provider, slack, run) = run_on_a_server(data.path(), provider).await;
    let good = format!("Bearer {}", crate::support::GOOD_TOKEN);
    assert_eq!(authorizations(&slack), ["Bearer at-1".to_string(), good], "{run}");
    assert_eq!(refreshes(&provider), 1);
    assert_eq!(run["outcome"]["steps"][0]["result"]["return_value"]["http"][0]["status"], 200, "{run}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workflow_run_refreshes_before_the_run_and_after_a_401() {
    for (first_expires_in, expected) in [(0, vec!["good"]), (3600, vec!["Bearer at-1", "good"])] {
        let data = tempfile::tempdir().unwrap();
        let (provider, oauth) = connect_with(
            data.path(),
            Provider {
                first_expires_in,
                refreshed_token: Some(crate::support::GOOD_TOKEN.into()),
                ..Provider::default()
            },
        )
        .await;
        let slack = StandIn::start(&["slack.com"]).await;
        let files = tempfile::tempdir().unwrap();
        let ca = files.path().join("ca.pem");
        std::fs::write(&ca, &slack.ca_pem).unwrap();
        let workflow = files.path().join("workflow.toml");
        std::fs::write(
            &workflow,
            format!(
                "name = \"refresh\"\n[[steps]]\nname = \"probe\"\ncomponent = {:?}\nauths = {{ slack = \"default\" }}\n",
                guest("probe")
            ),
        )
        .unwrap();
        let event = files.path().join("event.json");
        let call = json!({ "do": "http", "method": "POST", "url": "https://slack.com/api/auth.test",
                           "headers": { "authorization": "Bearer {auth:slack.oauth_access_token}" } });
        std::fs::write(&event, json!({ "actions": [call] }).to_string()).unwrap();
        let resolve = format!("slack.com:443:{}", slack.addr);
        let out = stephost(
            data.path(),
            &[
                "workflow",
                "run",
                workflow.to_str().unwrap(),
                "--event",
                event.to_str().unwrap(),
                "--resolve",
                &resolve,
                "--resolve",
                &oauth,
                "--ca-cert",
                ca.to_str().unwrap(),
            ],
        )
        .await;
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let good = format!("Bearer {}", crate::support::GOOD_TOKEN);
        let expected: Vec<String> =
            expected.iter().map(|e| if *e == "good" { good.clone() } else { e.to_string() }).collect();
        assert_eq!(authorizations(&slack), expected, "token first expiring in {first_expires_in} s");
        assert_eq!(refreshes(&provider), 1);
    }
}
