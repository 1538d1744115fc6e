//! What Pipedream JavaScript code expects of its runtime, in a built step
//! (`tests/fixtures/js/js_code.mjs`, one behaviour per `event.case`): errors
//! name the user's file and line, `$.flow.exit` ends the workflow after the
//! step, `Intl` fails loudly, Node's `crypto` hashes and HMACs.

use crate::languages::{js_guest, log_text, run_js, runtime};
use crate::support::{StandIn, guest};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};
use stephost::{Runtime, Workflow, WorkflowOutcome, WorkflowStatus};

/// Runs `js_code` (case from `event`) then the Rust `hello` step as a workflow.
async fn js_then_rust(runtime: &Runtime, event: Value) -> WorkflowOutcome {
    let definition = format!(
        "[[steps]]\nname = \"js_code\"\ncomponent = {:?}\n[[steps]]\nname = \"hello\"\ncomponent = {:?}\n",
        js_guest("js_code").display().to_string(),
        guest("hello").display().to_string(),
    );
    let workflow = Workflow::parse(&definition, std::path::Path::new("/js_code.toml")).unwrap();
    workflow.run(runtime, &event).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_js_step_names_the_users_file_and_line_in_its_error_and_stack() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);

    let outcome = js_then_rust(&runtime, json!({ "case": "nested" })).await;
    let WorkflowStatus::Failed { step, error } = &outcome.status else { panic!("{:?}", outcome.status) };
    assert_eq!(step, "js_code");
    assert!(error.ends_with("thing.missing is undefined (at js_code.mjs:6:3)"), "{error}");
    let stack = log_text(&outcome.steps[0]);
    assert!(stack.contains("at helper (js_code.mjs:6:3)"), "the helper's frame: {stack}");
    assert!(stack.contains("at nested (js_code.mjs:13:17)"), "its caller's frame: {stack}");
    assert!(!stack.contains("bundle.mjs"), "no frame names the bundle: {stack}");

    let thrown = run_js(&runtime, "js_code", json!({ "case": "throws" }), &[]).await;
    let error = thrown.result.unwrap_err().to_string();
    assert!(error.ends_with("can't access property \"boom\" of null (at js_code.mjs:11:5)"), "{error}");

    // The body form: the user's lines, and columns on the line its function opens.
    let body = run_js(&runtime, "body_error", json!({}), &[]).await;
    let error = body.result.as_ref().unwrap_err().to_string();
    assert!(error.ends_with("platform().nope is not a function (at body_error.mjs:3:31)"), "{error}");
    let stack = log_text(&body);
    assert!(stack.contains("(body_error.mjs:4:8)"), "{stack}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flow_exit_ends_the_workflow_after_the_step_which_goes_on_and_keeps_its_value_and_exports() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);

    let outcome = js_then_rust(&runtime, json!({ "case": "exit" })).await;
    assert_eq!(outcome.status, WorkflowStatus::Exited { step: "js_code".into(), reason: "why".into() });
    assert_eq!(outcome.steps.len(), 1, "the step after it did not run");
    let step = &outcome.steps[0];
    let value = step.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(step)));
    assert_eq!(value, &json!({ "kept": true }), "the return value after $.flow.exit is kept");
    assert_eq!(step.exports, [("after_exit".to_string(), json!("still ran"))], "the step went on");

    let outcome = js_then_rust(&runtime, json!({ "case": "return_exit" })).await;
    assert_eq!(outcome.status, WorkflowStatus::Exited { step: "js_code".into(), reason: "early".into() });
    assert_eq!(outcome.steps.len(), 1, "the step after it did not run");
    let step = &outcome.steps[0];
    assert_eq!(step.result.as_ref().unwrap(), &Value::Null, "`return $.flow.exit()` returns nothing");
    assert!(step.exports.is_empty(), "nothing after the return ran: {:?}", step.exports);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_locale_string_with_a_time_zone_throws_a_clear_error_instead_of_a_wrong_answer() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);
    let outcome = run_js(&runtime, "js_code", json!({ "case": "intl" }), &[]).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(&outcome)));
    assert_eq!(value["intl"], "undefined", "feature detection still sees no Intl");
    let zoned = value["zoned"].as_str().unwrap();
    assert!(
        zoned.starts_with("caught: Date.prototype.toLocaleString with a locale or options is not available in stephost: its JavaScript engine (StarlingMonkey) has no Intl"),
        "{zoned}"
    );
    assert!(zoned.contains("toISOString()"), "names the alternative: {zoned}");
    let money = value["money"].as_str().unwrap();
    assert!(money.starts_with("caught: Number.prototype.toLocaleString with a locale or options"), "{money}");
    assert_eq!(value["plain"], "Mon Jan 15 12:00:00 2024", "without arguments: the engine's UTC format");
    assert_eq!(value["number"], "1234.5");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_crypto_hashes_and_hmacs_match_the_rust_digests() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);
    let text = "The quick brown fox jumps over the lazy dog";
    let event =
        json!({ "case": "crypto", "text": text, "key": "Jefe", "hmacText": "what do ya want for nothing?" });
    let outcome = run_js(&runtime, "js_code", event, &[]).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(&outcome)));
    let hashes = &value["hashes"];
    assert_eq!(hashes["sha256"], hex::encode(Sha256::digest(text)));
    assert_eq!(hashes["sha512"], hex::encode(Sha512::digest(text)));
    // MD5 and SHA-1 of this text, and HMAC-SHA1 test case 2, as RFC 1321's
    // and RFC 2202's published vectors (no md5/sha1 crate here).
    assert_eq!(hashes["md5"], "9e107d9d372bb6826bd81d3542a419d6");
    assert_eq!(hashes["sha1"], "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12");
    assert_eq!(value["hmacHex"], "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
    mac.update(text.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(value["hmac"], expected);
    assert_eq!(value["raw"], json!({ "buffer": true, "length": 32 }), "digest() is a Buffer");
    assert_eq!((value["equal"].as_bool(), value["unequal"].as_bool()), (Some(true), Some(false)));
    assert_eq!((value["uuid"].as_u64(), value["random"].as_u64()), (Some(36), Some(16)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_is_not_async_returns_throws_and_hands_back_thenables_like_an_async_one() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);

    let returned = run_js(&runtime, "sync_step", json!({ "value": 5 }), &[]).await;
    assert_eq!(returned.result.unwrap(), json!({ "sync": 5 }));

    let thenable = run_js(&runtime, "sync_step", json!({ "thenable": true }), &[]).await;
    assert_eq!(thenable.result.unwrap(), json!({ "via": "thenable" }));

    let thrown = run_js(&runtime, "sync_step", json!({ "throw": true }), &[]).await;
    let error = thrown.result.as_ref().unwrap_err().to_string();
    assert!(error.contains("TypeError: sync boom (at sync_step.mjs:5:"), "{error}");
    assert!(log_text(&thrown).contains("sync_step.mjs:5:"), "the stack in the step's log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_json_cannot_hold_fails_the_step_with_a_clear_error_not_a_trap() {
    let slack = StandIn::start(&["slack.com"]).await;
    let runtime = runtime(&slack);

    for (event, expected) in [
        (json!({ "bigint": true }), "TypeError: BigInt value can't be serialized in JSON"),
        (json!({ "later_bigint": true }), "TypeError: BigInt value can't be serialized in JSON"),
        (json!({ "function": true }), "TypeError: the step returned a function, which is not JSON"),
    ] {
        let outcome = run_js(&runtime, "sync_step", event.clone(), &[]).await;
        let error = outcome.result.as_ref().unwrap_err().to_string();
        assert!(error.starts_with(&format!("step `sync_step` failed: {expected}")), "{event}: {error}");
    }
    let returned = run_js(&runtime, "sync_step", json!({ "value": 6 }), &[]).await;
    assert_eq!(returned.result.unwrap(), json!({ "sync": 6 }), "the same step returning data");
}
