//! Outbound HTTP: the only way out, through the host's policy.

use crate::support::{GOOD_TOKEN, PlainServer, StandIn, load, runtime, runtime_with};
use serde_json::json;
use std::sync::Arc;
use stephost::{HostPolicy, StepConfig, StepInput};

fn config(allowed: &[&str]) -> StepConfig {
    StepConfig { policy: Arc::new(HostPolicy::parse(allowed).unwrap()), ..StepConfig::default() }
}

fn with_auth(step: &str, app: &str, token: &str) -> StepInput {
    StepInput {
        step_name: step.into(),
        event: "{}".into(),
        auths: vec![(app.into(), vec![("oauth_access_token".into(), token.into())])],
        ..Default::default()
    }
}

#[tokio::test]
async fn slack_post_reaches_the_slack_stand_in_with_the_token() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime_with(slack.egress(), None);
    let step = load(&runtime, "slack_post");

    let outcome = runtime
        .run(&step, with_auth("slack_post", "slack", GOOD_TOKEN), &config(&["https://slack.com"]))
        .await;

    let body = outcome.result.expect("the post succeeds");
    assert_eq!(body["ok"], true);
    let requests = slack.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("POST", "/api/chat.postMessage"));
    assert_eq!(sent.host, "slack.com");
    assert_eq!(sent.header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));
    assert_eq!(sent.json(), json!({ "channel": "#general", "text": "Hello, world!" }));
    let record = &outcome.egress[0];
    assert!(record.allowed);
    assert_eq!((record.host.as_str(), record.port, record.status), ("slack.com", 443, Some(200)));
}

#[tokio::test]
async fn github_user_test_request_returns_the_user_and_exports_the_login() {
    let github = StandIn::start(&["api.github.com"]).await;
    let runtime = runtime_with(github.egress(), None);
    let step = load(&runtime, "github_user");

    let outcome = runtime
        .run(&step, with_auth("github_user", "github", GOOD_TOKEN), &config(&["https://api.github.com"]))
        .await;

    assert_eq!(outcome.result.unwrap()["login"], "octocat");
    assert_eq!(outcome.exports, vec![("login".into(), json!("octocat"))]);
    let sent = &github.requests()[0];
    assert_eq!((sent.method.as_str(), sent.path.as_str()), ("GET", "/user"));
    assert_eq!(sent.header("user-agent"), Some("stephost-step"));
}

#[tokio::test]
async fn a_wrong_token_is_reported_with_the_apis_answer() {
    let github = StandIn::start(&["api.github.com"]).await;
    let runtime = runtime_with(github.egress(), None);
    let step = load(&runtime, "github_user");

    let outcome = runtime
        .run(&step, with_auth("github_user", "github", "wrong"), &config(&["https://api.github.com"]))
        .await;

    let error = outcome.result.unwrap_err().to_string();
    assert!(error.contains("HTTP 401: Bad credentials"), "{error}");
}

#[tokio::test]
async fn request_to_a_host_not_allowed_is_refused_and_the_step_sees_an_error() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime_with(slack.egress(), None);
    let probe = load(&runtime, "probe");
    let event = json!({ "actions": [{ "do": "http", "method": "POST", "url": "https://slack.com/api/chat.postMessage" }] });

    for allowed in [&[][..], &["https://api.github.com", "https://*.slack.com", "http://slack.com"][..]] {
        let input =
            StepInput { step_name: "probe".into(), event: event.to_string().into(), ..Default::default() };
        let outcome = runtime.run(&probe, input, &config(allowed)).await;

        let error = outcome.result.unwrap()["http"][0]["error"].as_str().unwrap().to_string();
        assert!(
            error.contains("refused by stephost: https://slack.com:443 is not in the step's allowed hosts"),
            "{error}"
        );
        let record = &outcome.egress[0];
        assert!(!record.allowed);
        assert!(
            record
                .error
                .as_deref()
                .unwrap()
                .contains("https://slack.com:443 is not in the step's allowed hosts"),
            "{record:?}"
        );
    }
    assert!(slack.requests().is_empty(), "nothing reached the server");
}

#[tokio::test]
async fn redirects_are_handed_to_the_step_not_followed() {
    let server = PlainServer::start().await;
    let runtime = runtime();
    let probe = load(&runtime, "probe");
    let allowed = format!("http://127.0.0.1:{}", server.addr.port());
    let event = json!({ "actions": [{ "do": "http", "url": server.url("/redirect") }] });
    let input =
        StepInput { step_name: "probe".into(), event: event.to_string().into(), ..Default::default() };

    let outcome = runtime.run(&probe, input, &config(&[&allowed])).await;

    let seen = outcome.result.unwrap();
    assert_eq!((&seen["http"][0]["status"], &seen["http"][0]["body"]), (&json!(302), &json!("moved")));
    assert_eq!(server.requests().len(), 1, "the redirect was not followed");
}

#[tokio::test]
async fn request_method_headers_and_body_arrive_intact() {
    let server = PlainServer::start().await;
    let runtime = runtime();
    let probe = load(&runtime, "probe");
    let allowed = format!("http://127.0.0.1:{}", server.addr.port());
    let big_body = "b".repeat(300_000);
    let event = json!({ "actions": [{
        "do": "http", "method": "PUT", "url": server.url("/things/7?x=1"),
        "headers": { "x-custom": "yes" }, "body": big_body,
    }]});
    let input =
        StepInput { step_name: "probe".into(), event: event.to_string().into(), ..Default::default() };

    let outcome = runtime.run(&probe, input, &config(&[&allowed])).await;

    assert_eq!(outcome.result.unwrap()["http"][0]["body"], "echo PUT /things/7?x=1");
    let sent = &server.requests()[0];
    assert_eq!(sent.header("x-custom"), Some("yes"));
    assert_eq!(sent.body.len(), 300_000);
    assert_eq!(sent.host, format!("127.0.0.1:{}", server.addr.port()));
}

#[tokio::test]
async fn slow_and_oversized_responses_end_with_clear_errors() {
    let server = PlainServer::start().await;
    let egress = stephost::EgressConfig {
        first_byte_timeout: std::time::Duration::from_millis(300),
        max_response_bytes: 1 << 20,
        ..stephost::EgressConfig::default()
    };
    let runtime = runtime_with(egress, None);
    let probe = load(&runtime, "probe");
    let allowed = format!("http://127.0.0.1:{}", server.addr.port());
    let event = json!({ "actions": [
        { "do": "http", "url": server.url("/hang") },
        { "do": "http", "url": server.url("/big") },
    ]});
    let input =
        StepInput { step_name: "probe".into(), event: event.to_string().into(), ..Default::default() };

    let outcome = runtime.run(&probe, input, &config(&[&allowed])).await;

    let seen = outcome.result.unwrap();
    assert!(
        seen["http"][0]["error"].as_str().unwrap().ends_with("timed out waiting for the response"),
        "{}",
        seen["http"][0]
    );
    assert_eq!(outcome.egress[0].error.as_deref(), Some("no response within 300 ms"));
    let big = seen["http"][1]["error"].as_str().unwrap();
    assert!(big.ends_with("HTTP response body size exceeds limit: 1048576 bytes"), "{big}");
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_error_not_a_refused_connection() {
    let runtime = runtime();
    let probe = load(&runtime, "probe");
    // `.invalid` never resolves (RFC 6761): the system's resolver says so.
    let event = json!({ "actions": [{ "do": "http", "url": "https://no-such-host.invalid/hook" }] });
    let input =
        StepInput { step_name: "probe".into(), event: event.to_string().into(), ..Default::default() };
    let outcome = runtime.run(&probe, input, &config(&["https://no-such-host.invalid"])).await;

    let error = outcome.result.unwrap()["http"][0]["error"].as_str().unwrap().to_string();
    assert!(error.contains("DNS lookup failed: no-such-host.invalid did not resolve"), "{error}");
    assert!(!error.contains("refused"), "{error}");
    let record = &outcome.egress[0];
    assert!(record.allowed, "the policy let it through; the name failed: {record:?}");
    let recorded = record.error.as_deref().unwrap();
    assert!(recorded.contains("DNS lookup of no-such-host.invalid failed"), "{recorded}");
}
