//! Workflows: steps in order, data passed along, exit and failure.

use crate::support::{guest, runtime};
use serde_json::json;
use std::path::Path;
use stephost::{Workflow, WorkflowStatus};

/// A workflow file in a temp dir naming guests by absolute path.
fn workflow(steps: &[(&str, &str)]) -> Workflow {
    let mut text = String::from("name = \"test\"\n");
    for (name, component) in steps {
        text.push_str(&format!(
            "[[steps]]\nname = \"{name}\"\ncomponent = \"{}\"\n",
            guest(component).display()
        ));
    }
    Workflow::parse(&text, Path::new("/tmp/test.toml")).expect("valid workflow")
}

#[tokio::test]
async fn two_step_workflow_passes_return_value_and_exports_along() {
    let runtime = runtime();
    let flow = workflow(&[("hello", "hello"), ("transform", "transform"), ("check", "probe")]);
    let event = json!({ "name": "Ada", "email": "ada@example.com" });

    let outcome = flow.run(&runtime, &event).await.unwrap();

    assert_eq!(outcome.status, WorkflowStatus::Succeeded);
    assert_eq!(outcome.steps.len(), 3);
    assert_eq!(outcome.steps[0].result.as_ref().unwrap(), &event);
    assert_eq!(
        outcome.steps[1].result.as_ref().unwrap(),
        &json!({ "greeting": "Hello, Ada!", "field_count": 2 })
    );
    let seen = outcome.steps[2].result.as_ref().unwrap();
    assert_eq!(seen["step_names"], json!(["trigger", "hello", "transform"]));
    assert_eq!(seen["steps"]["trigger"], json!({ "event": event }));
    assert_eq!(seen["steps"]["hello"], json!({ "$return_value": event, "fields": ["email", "name"] }));
    assert_eq!(seen["steps"]["transform"]["greeting"], "Hello, Ada!");
}

#[tokio::test]
async fn exit_ends_the_workflow_after_that_step() {
    let runtime = runtime();
    let flow = workflow(&[("hello", "hello"), ("transform", "transform"), ("never", "probe")]);

    let outcome = flow.run(&runtime, &json!({ "email": "no-name@example.com" })).await.unwrap();

    assert_eq!(
        outcome.status,
        WorkflowStatus::Exited {
            step: "transform".into(),
            reason: "the event has no `name`: nothing to greet".into()
        }
    );
    assert_eq!(outcome.steps.len(), 2, "the step after the exit did not run");
}

#[tokio::test]
async fn a_failing_step_stops_the_workflow_and_is_named() {
    let runtime = runtime();
    let flow = workflow(&[("first", "probe"), ("boom", "hostile"), ("never", "probe")]);

    let outcome = flow.run(&runtime, &json!({ "attack": "panic" })).await.unwrap();

    let WorkflowStatus::Failed { step, error } = &outcome.status else {
        panic!("expected a failure, got {:?}", outcome.status)
    };
    assert_eq!(step, "boom");
    assert!(error.starts_with("step `boom` trapped: panicked"), "{error}");
    assert_eq!(outcome.steps.len(), 2);
}

#[tokio::test]
async fn a_missing_component_fails_before_any_step_runs() {
    let runtime = runtime();
    let text = format!(
        "[[steps]]\nname = \"ok\"\ncomponent = \"{}\"\n[[steps]]\nname = \"gone\"\ncomponent = \"nowhere.wasm\"\n",
        guest("probe").display()
    );
    let flow = Workflow::parse(&text, Path::new("/tmp/flows/w.toml")).unwrap();
    let error = flow.run(&runtime, &json!({})).await.unwrap_err().to_string();
    assert!(
        error.contains("step `gone`") && error.contains("/tmp/flows/nowhere.wasm: cannot read"),
        "{error}"
    );
}

#[tokio::test]
async fn a_return_value_reaches_later_steps_and_the_record_as_the_step_wrote_it() {
    // The host keeps a step's return value as the JSON text it returned:
    // a number a `Value` would round (beyond u64, trailing zeros, an
    // exponent) reaches the next step's input and the stored record as
    // written. Text that would not parse as a `Value` is still refused.
    let runtime = runtime();
    let relay = runtime.load(&guest("relay")).unwrap();
    let written = r#"{"big": 123456789012345678901234567890, "price": 1.50, "e": 1E2, "s": "a\u00e9"}"#;
    let input = |event: &str| stephost::StepInput {
        step_name: "relay".into(),
        event: event.into(),
        ..Default::default()
    };

    let outcome = runtime.run(&relay, input(written), &Default::default()).await;

    let value = outcome.result.as_ref().expect("relay returns the event");
    assert_eq!(value.text(), written);
    assert_eq!(value["s"], "a\u{e9}", "and reads as its value");
    let next = outcome.step_result_json();
    assert_eq!(next, format!("{{\"$return_value\":{written}}}"));
    let record = serde_json::to_string(&outcome).unwrap();
    assert!(record.contains(&format!("{{\"return_value\":{written}}}")), "{record}");

    let refused = runtime.run(&relay, input(r#"{"n": 1e400}"#), &Default::default()).await;
    let error = refused.result.expect_err("a number out of range is not a value");
    assert!(error.to_string().contains("out of range"), "{error}");
}

#[tokio::test]
async fn a_step_passes_an_earlier_return_value_on_as_json_text_unchanged() {
    // `relay` hands the previous step's return value on with the SDK's
    // `raw_return_value` (the event's with `raw_event` when first): JSON
    // text that is never parsed into a `Value`. With RELAY_PARSE=1 it goes
    // through a `Value` instead; both must hand on exactly the return value
    // (not hello's export beside it, not the envelope), escapes and all.
    let relay = guest("relay").display().to_string();
    let hello = guest("hello").display().to_string();
    let text = format!(
        "name = \"relays\"\n\
         [[steps]]\nname = \"first\"\ncomponent = {relay:?}\n\
         [[steps]]\nname = \"hello\"\ncomponent = {hello:?}\n\
         [[steps]]\nname = \"raw\"\ncomponent = {relay:?}\n\
         [[steps]]\nname = \"parsed\"\ncomponent = {relay:?}\nenv = {{ RELAY_PARSE = \"1\" }}\n\
         [[steps]]\nname = \"raw_again\"\ncomponent = {relay:?}\n"
    );
    let flow = Workflow::parse(&text, Path::new("/tmp/relays.toml")).expect("valid workflow");
    let event = json!({
        "name": "Zoë \"Z\" \\ \u{1F600}",
        "big": 18446744073709551615u64,
        "tiny": -1.5e-300,
        "nested": [{ "a": [1, 2, { "b": null }] }, true, ""],
    });

    let outcome = flow.run(&runtime(), &event).await.unwrap();

    assert_eq!(outcome.status, WorkflowStatus::Succeeded);
    let results: Vec<_> = outcome.steps.iter().map(|s| s.result.as_ref().unwrap()).collect();
    assert_eq!(results.len(), 5);
    for (step, result) in outcome.steps.iter().zip(&results) {
        assert_eq!(*result, &event, "step {} did not hand the event on unchanged", step.step);
    }
    assert!(outcome.steps[2].exports.is_empty(), "relay has no exports of its own");
}
