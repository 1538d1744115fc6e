//! The step contract: what the host hands a step and what it takes back.

use crate::support::{load, runtime};
use serde_json::{Value, json};
use stephost::{LogStream, StepConfig, StepError, StepInput};

fn input(event: Value) -> StepInput {
    StepInput { step_name: "probe".into(), event: event.to_string().into(), ..Default::default() }
}

#[tokio::test]
async fn event_steps_auths_and_env_reach_the_step_exactly() {
    let runtime = runtime();
    let probe = load(&runtime, "probe");
    let event = json!({ "user": { "id": 42, "name": "Ada" }, "tags": ["a", "b"], "unicode": "héllo ✓" });
    let earlier = json!({ "$return_value": { "id": 42 }, "user_id": 42 });
    let input = StepInput {
        steps: vec![
            ("trigger".into(), json!({ "event": event }).to_string().into()),
            ("fetch_user".into(), earlier.to_string().into()),
        ],
        auths: vec![(
            "slack".into(),
            vec![("oauth_access_token".into(), "xoxb-1".into()), ("oauth_uid".into(), "U1".into())],
        )],
        env: vec![("CHANNEL".into(), "#general".into()), ("EMPTY".into(), String::new())],
        ..input(event.clone())
    };

    let outcome = runtime.run(&probe, input, &StepConfig::default()).await;
    let seen = outcome.result.expect("the probe succeeds");

    assert_eq!(seen["event"], event);
    assert_eq!(seen["step_names"], json!(["trigger", "fetch_user"]));
    assert_eq!(seen["steps"]["fetch_user"], earlier);
    assert_eq!(seen["steps"]["trigger"]["event"], event);
    let token = seen["auths"]["slack"]["oauth_access_token"].as_str().unwrap();
    assert!(token.starts_with(stephost::secrets::PLACEHOLDER_PREFIX), "the secret arrives sealed: {token}");
    assert_eq!(seen["auths"]["slack"]["oauth_uid"], "U1", "non-secret fields arrive in clear");
    let keys: Vec<&String> = seen["auths"]["slack"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["oauth_access_token", "oauth_uid"], "keys come back in account order");
    assert_eq!(seen["env"], json!({ "CHANNEL": "#general", "EMPTY": "" }));
    assert_eq!(seen["args"], json!([]), "a step gets no arguments");
}

#[tokio::test]
async fn exports_logs_exit_and_respond_are_recorded() {
    let runtime = runtime();
    let probe = load(&runtime, "probe");
    let event = json!({ "actions": [
        { "do": "export", "name": "user_id", "value": 42 },
        { "do": "export", "name": "profile", "value": { "name": "Ada" } },
        { "do": "export", "name": "user_id", "value": 43 },
        { "do": "stdout", "text": "to stdout" },
        { "do": "stderr", "text": "to stderr" },
        { "do": "respond", "status": 201, "body": "created" },
        { "do": "exit", "reason": "nothing more to do" },
        { "do": "stdout", "text": "never printed" },
    ]});

    let outcome = runtime.run(&probe, input(event), &StepConfig::default()).await;

    assert_eq!(outcome.result.as_ref().unwrap(), &Value::Null, "an exited step returns null");
    assert_eq!(
        outcome.exports,
        vec![("user_id".into(), json!(43)), ("profile".into(), json!({ "name": "Ada" }))]
    );
    assert_eq!(outcome.exit.as_deref(), Some("nothing more to do"));
    let response = outcome.response.as_ref().expect("a response was set");
    assert_eq!((response.status, response.body.as_slice()), (201, b"created".as_slice()));
    let logs: Vec<_> = outcome.logs.iter().map(|l| (l.stream, l.text.as_str())).collect();
    assert_eq!(logs, [(LogStream::Stdout, "to stdout"), (LogStream::Stderr, "to stderr")]);
    assert_eq!(
        outcome.as_step_result(),
        json!({ "$return_value": null, "user_id": 43, "profile": { "name": "Ada" } })
    );
    // The text later steps read: the same, in the same order.
    assert_eq!(outcome.step_result_json(), r#"{"$return_value":null,"user_id":43,"profile":{"name":"Ada"}}"#);
}

#[tokio::test]
async fn invalid_export_names_are_refused_to_the_step() {
    let runtime = runtime();
    let probe = load(&runtime, "probe");
    for name in ["bad-name", "$return_value", "", "1st"] {
        let event = json!({ "actions": [{ "do": "export", "name": name, "value": 1 }] });
        let outcome = runtime.run(&probe, input(event), &StepConfig::default()).await;
        let error = outcome.result.unwrap_err().to_string();
        assert!(error.contains(&format!("export `{name}` refused")), "{name}: {error}");
        assert!(outcome.exports.is_empty());
    }
}

#[tokio::test]
async fn a_step_error_fails_the_step_with_its_message() {
    let runtime = runtime();
    let probe = load(&runtime, "probe");
    let event = json!({ "actions": [{ "do": "fail", "message": "the API said no" }] });
    let outcome = runtime.run(&probe, input(event), &StepConfig::default()).await;
    match outcome.result {
        Err(StepError::Failed { step, message }) => {
            assert_eq!(step, "probe");
            assert_eq!(message, "the API said no");
        }
        other => panic!("expected a step failure, got {other:?}"),
    }
}
