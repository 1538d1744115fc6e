//! Connected accounts and environment variables, from `accounts connect`
//! and `env set` to a step run and a workflow run.

use crate::support::{GOOD_TOKEN, StandIn, guest};
use serde_json::Value;

async fn stephost(data: &std::path::Path, args: &[&str], stdin: Option<&str>) -> std::process::Output {
    crate::support::stephost_async(data, args, stdin).await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn a_connected_account_and_stored_env_reach_a_step_sealed_and_the_api_in_clear() {
    let slack = StandIn::start(&["slack.com"]).await;
    let data = tempfile::tempdir().unwrap();
    let ca = data.path().join("ca.pem");
    std::fs::write(&ca, &slack.ca_pem).unwrap();
    let token_flag = format!("oauth_access_token={GOOD_TOKEN}");
    for args in [
        &[
            "accounts",
            "connect",
            "slack",
            "--name",
            "work",
            "--field",
            &token_flag,
            "--field",
            "oauth_uid=U1",
        ][..],
        &["env", "set", "API_KEY", "stored-secret-value-42"],
        &["env", "set", "CHANNEL", "#general", "--plain"],
    ] {
        let out = stephost(data.path(), args, None).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    let keys = stephost(data.path(), &["accounts", "keys", "slack/work", "--json"], None).await;
    let keys: serde_json::Value = serde_json::from_slice(&keys.stdout).expect("--json prints JSON");
    assert_eq!(keys, serde_json::json!(["oauth_access_token", "oauth_uid"]));

    let probe = guest("probe");
    let resolve = format!("slack.com:443:{}", slack.addr);
    let event = r##"{"actions":[{"do":"http","method":"POST","url":"https://slack.com/api/chat.postMessage",
        "headers":{"authorization":"Bearer {auth:slack.oauth_access_token}","content-type":"application/json"},
        "body":"{\"channel\":\"#general\",\"text\":\"hi\"}"}]}"##;
    let out = stephost(
        data.path(),
        &["run", probe.to_str().unwrap(), "--account", "slack/work", "--event", "-", "--json"]
            .into_iter()
            .chain(["--resolve", &resolve, "--ca-cert", ca.to_str().unwrap()])
            .collect::<Vec<_>>(),
        Some(event),
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen = &outcome["result"]["return_value"];
    assert_eq!(seen["http"][0]["status"], 200, "{seen}");
    assert_eq!(seen["auths"]["slack"]["oauth_uid"], "U1");
    assert!(seen["auths"]["slack"]["oauth_access_token"].as_str().unwrap().starts_with("stephost_sealed_"));
    assert!(seen["env"]["API_KEY"].as_str().unwrap().starts_with("stephost_sealed_"));
    assert_eq!(seen["env"]["CHANNEL"], "#general");
    assert_eq!(slack.requests()[0].header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));

    let listed = stephost(data.path(), &["accounts", "list"], None).await;
    let listed = text(&listed.stdout);
    assert!(
        listed.contains("slack/work  oauth_access_token=•••••••• oauth_uid=U1")
            && listed.contains("last used"),
        "{listed}"
    );
    crate::support::assert_not_stored(data.path(), &[GOOD_TOKEN, "stored-secret-value-42"]);
}

#[tokio::test]
async fn a_workflow_step_names_its_account_and_a_missing_one_is_a_clear_error() {
    let data = tempfile::tempdir().unwrap();
    let flow = data.path().join("flow.toml");
    std::fs::write(
        &flow,
        format!(
            "name = \"notify\"\n[[steps]]\nname = \"check\"\ncomponent = \"{}\"\nauths = {{ slack = \"work\" }}\n",
            guest("probe").display()
        ),
    )
    .unwrap();
    let missing = stephost(data.path(), &["workflow", "run", flow.to_str().unwrap()], None).await;
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing.stderr).contains("step `check`: no `slack` account named `work`"),
        "{}",
        text(&missing.stderr)
    );

    let token_flag = format!("oauth_access_token={GOOD_TOKEN}");
    stephost(data.path(), &["accounts", "connect", "slack", "--name", "work", "--field", &token_flag], None)
        .await;
    stephost(data.path(), &["env", "set", "LEVEL", "global", "--plain"], None).await;
    stephost(data.path(), &["env", "set", "LEVEL", "for-notify", "--plain", "--workflow", "notify"], None)
        .await;
    let out = stephost(data.path(), &["workflow", "run", flow.to_str().unwrap(), "--json"], None).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    let seen = &run["outcome"]["steps"][0]["result"]["return_value"];
    assert!(seen["auths"]["slack"]["oauth_access_token"].as_str().unwrap().starts_with("stephost_sealed_"));
    assert_eq!(seen["env"]["LEVEL"], "for-notify", "the workflow's value overrides the global one");
}

#[tokio::test]
async fn a_wrong_master_key_is_a_clear_error_not_an_empty_account() {
    let data = tempfile::tempdir().unwrap();
    let token_flag = format!("oauth_access_token={GOOD_TOKEN}");
    stephost(data.path(), &["accounts", "connect", "slack", "--field", &token_flag], None).await;
    std::fs::write(data.path().join("master.key"), "ab".repeat(32)).unwrap();
    let out = stephost(data.path(), &["accounts", "list"], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("wrong master key"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn accounts_test_sends_the_apps_test_request_through_the_egress_path() {
    let github = StandIn::start(&["api.github.com"]).await;
    let data = tempfile::tempdir().unwrap();
    let ca = data.path().join("ca.pem");
    std::fs::write(&ca, &github.ca_pem).unwrap();
    let resolve = format!("api.github.com:443:{}", github.addr);
    let egress = ["--resolve", resolve.as_str(), "--ca-cert", ca.to_str().unwrap()];
    for (name, token, code, verdict) in
        [("good", GOOD_TOKEN, 0, "GET https://api.github.com/user -> 200"), ("bad", "ghp_wrong", 1, "-> 401")]
    {
        let token_flag = format!("oauth_access_token={token}");
        stephost(
            data.path(),
            &["accounts", "connect", "github", "--name", name, "--field", &token_flag],
            None,
        )
        .await;
        let args: Vec<&str> =
            ["accounts", "test", "github", "--name", name].into_iter().chain(egress).collect();
        let out = stephost(data.path(), &args, None).await;
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
        assert!(text(&out.stdout).contains(verdict), "{}", text(&out.stdout));
    }
    let args: Vec<&str> = ["accounts", "test", "github/good", "--json"].into_iter().chain(egress).collect();
    let out = stephost(data.path(), &args, None).await;
    let tested: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(
        (tested["account"].as_str(), tested["status"].as_u64(), tested["ok"].as_bool()),
        (Some("github/good"), Some(200), Some(true))
    );
    let sent = github.requests();
    assert_eq!(sent[0].header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));
    assert_eq!(sent[0].header("user-agent"), Some("stephost"));
    let audit = std::fs::read_to_string(data.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"secrets\":[\"github.oauth_access_token\"]") && !audit.contains(GOOD_TOKEN));
}

#[tokio::test]
async fn basic_auth_and_per_account_hosts_work_through_the_egress_path() {
    let apis = StandIn::start(&["api.twilio.com", "acme.zendesk.com", "other.zendesk.com"]).await;
    let data = tempfile::tempdir().unwrap();
    let ca = data.path().join("ca.pem");
    std::fs::write(&ca, &apis.ca_pem).unwrap();
    let token = format!("auth_token={GOOD_TOKEN}");
    let oauth = format!("oauth_access_token={GOOD_TOKEN}");
    stephost(
        data.path(),
        &["accounts", "connect", "twilio", "--field", "account_sid=AC123", "--field", &token],
        None,
    )
    .await;
    stephost(
        data.path(),
        &["accounts", "connect", "zendesk", "--field", "subdomain=acme", "--field", &oauth],
        None,
    )
    .await;
    let bad = stephost(
        data.path(),
        &[
            "accounts",
            "connect",
            "zendesk",
            "--name",
            "bad",
            "--field",
            "subdomain=evil.com#",
            "--field",
            &oauth,
        ],
        None,
    )
    .await;
    assert_eq!(bad.status.code(), Some(2));
    assert!(text(&bad.stderr).contains("zendesk.subdomain must be a host label"), "{}", text(&bad.stderr));

    for (app, host, expected) in
        [("twilio", "api.twilio.com", "-> 200"), ("zendesk", "acme.zendesk.com", "-> 200")]
    {
        let resolve = format!("{host}:443:{}", apis.addr);
        let out = stephost(
            data.path(),
            &["accounts", "test", app, "--resolve", &resolve, "--ca-cert", ca.to_str().unwrap()],
            None,
        )
        .await;
        assert!(text(&out.stdout).contains(expected), "{app}: {}{}", text(&out.stdout), text(&out.stderr));
    }

    // The zendesk token goes to the account's own subdomain only.
    let probe = crate::support::guest("probe");
    let event = r#"{"actions":[{"do":"http","url":"https://other.zendesk.com/api/v2/users/me.json",
        "headers":{"authorization":"Bearer {auth:zendesk.oauth_access_token}"}}]}"#;
    let resolve = format!("other.zendesk.com:443:{}", apis.addr);
    let out = stephost(
        data.path(),
        &["run", probe.to_str().unwrap(), "--account", "zendesk", "--allow-host", "https://*.zendesk.com"]
            .into_iter()
            .chain(["--resolve", &resolve, "--ca-cert", ca.to_str().unwrap(), "--event", "-", "--json"])
            .collect::<Vec<_>>(),
        Some(event),
    )
    .await;
    let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
    let reason = outcome["egress"][0]["error"].as_str().unwrap_or_default();
    assert!(
        reason.contains("secret zendesk.oauth_access_token may not be sent to https://other.zendesk.com"),
        "{outcome}"
    );
    assert_eq!(apis.requests().len(), 2, "only the two test requests went out");
}

#[test]
fn connect_asks_for_each_field_and_does_not_echo_secrets() {
    let data = tempfile::tempdir().unwrap();
    let mut command = crate::support::stephost_command();
    command.arg("--data").arg(data.path()).args(["accounts", "connect", "slack", "--name", "typed"]);
    let mut session = rexpect::session::spawn_command(command, Some(10_000)).unwrap();
    session.exp_string("oauth_access_token (").unwrap();
    session.send_line("xoxb-typed-at-the-prompt").unwrap();
    let between = session.exp_string("oauth_uid (").unwrap();
    assert!(!between.contains("xoxb-typed-at-the-prompt"), "the secret was echoed: {between:?}");
    session.send_line("U5").unwrap();
    session.exp_string("connected slack account `typed`").unwrap();
    session.exp_eof().unwrap();
    let store = stephost::store::Store::open(data.path()).unwrap();
    let fields = store.account_fields("slack", "typed").unwrap();
    assert_eq!((fields[0].value.as_str(), fields[1].value.as_str()), ("xoxb-typed-at-the-prompt", "U5"));
}

#[tokio::test]
async fn connect_from_env_and_remove() {
    let data = tempfile::tempdir().unwrap();
    let out = crate::support::stephost_tokio_command()
        .arg("--data")
        .arg(data.path())
        .args(["accounts", "connect", "openai", "--name", "ci", "--from-env"])
        .env("OPENAI_API_KEY", "sk-from-the-environment")
        .env("OPENAI_ORGANIZATION", "org-1")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let keys = stephost(data.path(), &["accounts", "keys", "openai", "--name", "ci", "--json"], None).await;
    let keys: serde_json::Value = serde_json::from_slice(&keys.stdout).expect("--json prints JSON");
    assert_eq!(keys, serde_json::json!(["api_key", "organization"]));
    crate::support::assert_not_stored(data.path(), &["sk-from-the-environment"]);

    let removed = stephost(data.path(), &["accounts", "remove", "openai/ci"], None).await;
    assert!(removed.status.success());
    let again = stephost(data.path(), &["accounts", "remove", "openai", "--name", "ci"], None).await;
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("no `openai` account named `ci`"));
    let missing = crate::support::stephost_tokio_command()
        .arg("--data")
        .arg(data.path())
        .args(["accounts", "connect", "openai", "--from-env"])
        .env_remove("OPENAI_API_KEY")
        .output()
        .await
        .unwrap();
    assert!(
        text(&missing.stderr)
            .contains("openai needs `api_key`: pass --field api_key=… or set OPENAI_API_KEY")
    );
}
