//! `stephost new`: generated step projects build and run without edits.

use crate::support::{GOOD_TOKEN, StandIn};
use serde_json::Value;
use std::path::Path;

fn cargo_build(project: &Path, target: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2"])
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {}", project.display(), String::from_utf8_lossy(&out.stderr));
}

/// The largest initial linear memory of a component's core modules.
fn initial_memory_bytes(component: &Path) -> u64 {
    let bytes = std::fs::read(component).unwrap();
    let mut largest = 0;
    for payload in wasmparser::Parser::new(0).parse_all(&bytes) {
        if let wasmparser::Payload::MemorySection(memories) = payload.unwrap() {
            for memory in memories {
                largest = largest.max(memory.unwrap().initial * 65536);
            }
        }
    }
    largest
}

async fn stephost(data: &Path, args: &[&str]) -> std::process::Output {
    crate::support::stephost_async(data, args, None).await
}

/// `stephost run STEP --account APP=default --json` with `host` pointed at
/// the stand-in; the outcome, after checking the run succeeded.
async fn run_against(data: &Path, wasm: &Path, app: &str, host: &str, apis: &StandIn, ca: &Path) -> Value {
    let resolve = format!("{host}:443:{}", apis.addr);
    let account = format!("{app}=default");
    let args = [
        "run",
        wasm.to_str().unwrap(),
        "--account",
        &account,
        "--resolve",
        &resolve,
        "--ca-cert",
        ca.to_str().unwrap(),
        "--json",
    ];
    let out = stephost(data, &args).await;
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}: {printed}", wasm.display());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_steps_for_three_auth_shapes_build_and_run_against_stand_ins() {
    let apis = StandIn::start(&["slack.com", "api.twilio.com", "api.postmarkapp.com"]).await;
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("templates");
    let ca = work.path().join("ca.pem");
    std::fs::write(&ca, &apis.ca_pem).unwrap();

    // OAuth bearer, HTTP Basic from two fields, and a service-specific header.
    let cases = [
        ("slack", "oauth_access_token", "ok", None),
        ("twilio", "auth_token", "sid", Some("account_sid=AC123")),
        ("postmark", "server_token", "Name", None),
    ];
    for (app, field, answer_key, plain_field) in cases {
        let name = format!("{app}_check");
        let project = work.path().join(&name);
        let out = stephost(&data, &["new", &name, "--app", app, "--dir", project.to_str().unwrap()]).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        cargo_build(&project, &target);
        let field_flag = format!("{field}={GOOD_TOKEN}");
        let mut connect = vec!["accounts", "connect", app, "--field", &field_flag];
        if let Some(plain) = plain_field {
            connect.extend(["--field", plain]);
        }
        let out = stephost(&data, &connect).await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

        let wasm = target.join(format!("wasm32-wasip2/release/{name}.wasm"));
        let host = match app {
            "slack" => "slack.com",
            "twilio" => "api.twilio.com",
            _ => "api.postmarkapp.com",
        };
        let outcome = run_against(&data, &wasm, app, host, &apis, &ca).await;
        assert!(outcome["result"]["return_value"].get(answer_key).is_some(), "{app}: {outcome}");
        assert_eq!(outcome["egress"][0]["secrets"][0], format!("{app}.{field}"));
    }
    assert_eq!(apis.requests().len(), 3);
    let sent: Vec<String> = apis.requests().iter().map(|r| format!("{:?}", r.headers)).collect();
    assert!(sent[0].contains(GOOD_TOKEN) && sent[2].contains(GOOD_TOKEN), "bearer and service header");
    assert!(sent[1].contains("Basic "), "twilio's Basic credentials (checked by the stand-in)");

    let plain = work.path().join("plain_step");
    let out = stephost(&data, &["new", "plain_step", "--dir", plain.to_str().unwrap()]).await;
    assert!(out.status.success());
    cargo_build(&plain, &target);
    // The project's .cargo/config.toml gives each run a 1 MiB heap on top
    // of the 1 MiB stack: a run that allocates does not grow its memory.
    let initial = initial_memory_bytes(&target.join("wasm32-wasip2/release/plain_step.wasm"));
    assert!(initial >= 2 << 20, "the step starts with {initial} bytes of memory, no heap");
    let out =
        stephost(&data, &["run", target.join("wasm32-wasip2/release/plain_step.wasm").to_str().unwrap()])
            .await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"received\": {}"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let again = stephost(&data, &["new", "plain_step", "--dir", plain.to_str().unwrap()]).await;
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_js_and_python_steps_build_and_run_against_stand_ins() {
    let apis = StandIn::start(&["slack.com", "api.twilio.com", "api.postmarkapp.com"]).await;
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    // The toolchains are installed once, into the data directory the language tests share.
    let toolchains = crate::support::repo().join("target/js-data");
    let ca = work.path().join("ca.pem");
    std::fs::write(&ca, &apis.ca_pem).unwrap();
    let cases = [
        ("js", "slack", "oauth_access_token", "ok", None, "slack.com"),
        ("js", "twilio", "auth_token", "sid", Some("account_sid=AC123"), "api.twilio.com"),
        ("python", "postmark", "server_token", "Name", None, "api.postmarkapp.com"),
        ("python", "twilio", "auth_token", "sid", Some("account_sid=AC123"), "api.twilio.com"),
    ];
    for (lang, app, field, answer_key, plain_field, host) in cases {
        let name = format!("{app}_{lang}");
        let project = work.path().join(&name);
        let out = stephost(
            &data,
            &["new", &name, "--app", app, "--lang", lang, "--dir", project.to_str().unwrap()],
        )
        .await;
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let source = project.join(format!("{name}.{}", if lang == "js" { "mjs" } else { "py" }));
        let out = stephost(&toolchains, &["build", source.to_str().unwrap()]).await;
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));

        let field_flag = format!("{field}={GOOD_TOKEN}");
        let mut connect = vec!["accounts", "connect", app, "--field", &field_flag];
        if let Some(plain) = plain_field {
            connect.extend(["--field", plain]);
        }
        if stephost(&data, &["accounts", "list"]).await.stdout.windows(app.len()).all(|w| w != app.as_bytes())
        {
            let out = stephost(&data, &connect).await;
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let wasm = project.join(format!("{name}.wasm"));
        let outcome = run_against(&data, &wasm, app, host, &apis, &ca).await;
        assert!(outcome["result"]["return_value"].get(answer_key).is_some(), "{name}: {outcome}");
        assert_eq!(outcome["egress"][0]["secrets"][0], format!("{app}.{field}"), "{name}");
    }
    assert_eq!(apis.requests().len(), 4, "every generated step reached its app with the real secret");
}
