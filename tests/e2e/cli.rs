//! The `stephost` command as users run it.

use crate::support::{guest, repo};
use serde_json::{Value, json};
use std::process::Output;

fn stephost(args: &[&str], stdin: Option<&str>) -> Output {
    let data = tempfile::tempdir().unwrap();
    let mut command = crate::support::stephost_command();
    command.args(args).env("STEPHOST_DATA", data.path()).current_dir(repo());
    if let Some(input) = stdin {
        use std::io::Write;
        command
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        return child.wait_with_output().unwrap();
    }
    command.output().unwrap()
}

/// `stephost --data DATA ARGS…` from the repository, its output collected.
fn stephost_in(data: &std::path::Path, args: &[&str]) -> Output {
    crate::support::stephost_command()
        .arg("--data")
        .arg(data)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_prints_return_value_exports_logs_and_duration() {
    let hello = guest("hello");
    let out = stephost(&["run", hello.to_str().unwrap(), "--event", "-"], Some(r#"{"name":"Ada"}"#));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let expected_order = [
        "return value:",
        "\"name\": \"Ada\"",
        "exports:",
        "fields = [\"name\"]",
        "logs:",
        "hello: the event has 1 field(s)",
        "duration: ",
    ];
    let mut at = 0;
    for needle in expected_order {
        let found = stdout[at..]
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` missing or out of order in:\n{stdout}"));
        at += found;
    }
}

#[test]
fn run_marks_stderr_lines_and_passes_env_and_auths() {
    let probe = guest("probe");
    let event = r#"{"actions":[{"do":"stderr","text":"careful"}]}"#;
    let out = stephost(
        &[
            "run",
            probe.to_str().unwrap(),
            "--event",
            "-",
            "--env",
            "A=1",
            "--auth",
            "slack.oauth_uid=U1",
            "--json",
        ],
        Some(event),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    let seen = &json["result"]["return_value"];
    assert_eq!(seen["env"]["A"], "1");
    assert_eq!(seen["auths"]["slack"]["oauth_uid"], "U1");
    assert_eq!(json["logs"][0]["stream"], "stderr");

    let out = stephost(&["run", probe.to_str().unwrap(), "--event", "-"], Some(event));
    assert!(text(&out.stdout).contains("err careful"), "{}", text(&out.stdout));
}

#[test]
fn a_failing_step_exits_1_with_the_error_on_stdout_and_logs_kept() {
    let hostile = guest("hostile");
    let out = stephost(
        &["run", hostile.to_str().unwrap(), "--event", "-", "--timeout", "0.3"],
        Some(r#"{"attack":"loop"}"#),
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains("error: step `hostile` timed out after 300 ms"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn the_demo_workflow_runs_from_the_cli() {
    guest("hello");
    let out = stephost(
        &["workflow", "run", "examples/workflows/demo.toml", "--event", "examples/events/signup.json"],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("step hello:") && stdout.contains("step transform:"), "{stdout}");
    assert!(stdout.contains("\"greeting\": \"Hello, Ada Lovelace!\""), "{stdout}");
    assert!(stdout.contains("workflow `demo` succeeded"), "{stdout}");
}

/// The keys of a JSON document, nested, with every value reduced to its
/// keys (an array to its first element's): what a script can rely on.
fn keys(value: &serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), keys(v))).collect(),
        serde_json::Value::Array(items) => items.first().map(keys).unwrap_or_default(),
        _ => serde_json::Value::Null,
    }
}

#[test]
fn a_workflow_file_run_and_a_stored_run_print_the_same_keys() {
    guest("hello");
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = crate::support::stephost_command()
            .arg("--data")
            .arg(data.path())
            .args(args)
            .current_dir(repo())
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let (demo, signup) = ("examples/workflows/demo.toml", "examples/events/signup.json");
    let from_file = run(&["workflow", "run", demo, "--event", signup, "--json"]);
    run(&["workflow", "deploy", demo, "--json"]);
    let triggered = run(&["trigger", "demo", "--event", signup, "--json"]);
    let id = triggered["id"].as_str().expect("a local trigger prints the finished run");
    let shown = run(&["runs", "show", id, "--json"]);

    assert_eq!(shown, triggered, "trigger --json and runs show --json print the same run");
    assert_eq!(keys(&from_file), keys(&shown), "{from_file:#}\n{shown:#}");
    assert_eq!(from_file["status"], "succeeded");
    assert!(from_file["version"].is_null() && shown["version"] == 1);
    let step = &shown["outcome"]["steps"][0];
    assert!(step["duration_ms"].is_f64() && step["exports"].is_object(), "{step}");
    assert!(shown["outcome"]["duration_ms"].is_f64(), "{shown}");
}

#[test]
fn bad_input_gets_a_one_line_error_and_exit_code_2() {
    let hello = guest("hello");
    let hello = hello.to_str().unwrap();
    let cases: [(&[&str], Option<&str>, &str); 7] = [
        (&["run", "missing.wasm"], None, "error: missing.wasm: cannot read: No such file or directory"),
        (&["run", hello, "--event", "-"], Some("{oops"), "error: the event in stdin is not valid JSON"),
        (
            &["run", hello, "--allow-host", "slack.com"],
            None,
            "error: allowed host `slack.com` is invalid: no `://`",
        ),
        (
            &["run", hello, "--auth", "slack=secret-value"],
            None,
            "error: --auth slack=…: expected APP.KEY=VALUE",
        ),
        (
            &["run", hello, "--memory", "0"],
            None,
            "error: --memory: memory limit 0 MiB must be between 1 and 4096 MiB",
        ),
        (&["run", hello, "--timeout", "-1"], None, "error: --timeout -1 must be above 0"),
        (&["workflow", "run", "nope.toml"], None, "error: nope.toml: cannot read"),
    ];
    for (args, stdin, expected) in cases {
        let out = stephost(args, stdin);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: one line: {stderr}");
        assert!(!stderr.contains("secret-value"), "auth values are never echoed");
    }
}

#[test]
fn help_explains_the_commands_and_flags() {
    let out = stephost(&["run", "--help"], None);
    let help = text(&out.stdout);
    for flag in [
        "--event",
        "--steps",
        "--env",
        "--auth",
        "--allow-host",
        "--timeout",
        "--memory",
        "--json",
        "--resolve",
        "--log-kib",
        "--output-kib",
    ] {
        assert!(help.contains(flag), "run --help lacks {flag}:\n{help}");
    }
    let out = stephost(&["--help"], None);
    let help = text(&out.stdout);
    for command in ["run", "inspect", "workflow", "bench"] {
        assert!(help.contains(command), "--help lacks {command}");
    }
}

#[test]
fn apps_list_and_show_describe_the_catalog() {
    let out = stephost(&["apps", "list"], None);
    let listed = text(&out.stdout);
    assert!(listed.lines().count() >= 15, "{listed}");
    assert!(
        listed.lines().any(|l| l.starts_with("zendesk") && l.ends_with("https://{subdomain}.zendesk.com")),
        "{listed}"
    );
    let out = stephost(&["apps", "show", "twilio"], None);
    let shown = text(&out.stdout);
    for needle in [
        "auth: basic",
        "hosts: https://api.twilio.com",
        "auth_token",
        "secret, in header:authorization",
        "account_sid",
        "test request: GET https://api.twilio.com/2010-04-01/Accounts/{account_sid}.json",
    ] {
        assert!(shown.contains(needle), "`{needle}` missing:\n{shown}");
    }
    let out = stephost(&["apps", "show", "nope"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: app `nope` is not in the app catalog (known: airtable,"));
}

#[test]
fn a_listing_into_a_closed_pipe_ends_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let data = tempfile::tempdir().unwrap();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = crate::support::stephost_command()
        .arg("--data")
        .arg(data.path())
        .args(["apps", "list"])
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(text(&out.stderr), "", "no panic, no message");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "ended by the closed pipe, as `ls | head` is");
}

#[test]
fn small_cli_mistakes_get_one_line_errors() {
    let cases: [(&[&str], &str); 3] = [
        (&["runs", "list", "--status", "bogus"], "invalid value 'bogus' for '--status"),
        (&["new", "trigger"], "`trigger` is reserved"),
        (&["run", "Cargo.toml", "--ca-cert", "Cargo.toml"], "--ca-cert Cargo.toml: not a PEM certificate"),
    ];
    for (args, expected) in cases {
        let out = stephost(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(expected), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn connecting_one_field_says_one_field() {
    let out =
        stephost(&["accounts", "connect", "anthropic", "--field", "api_key=sk-ant-test-0123456789"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("connected anthropic account `default` (1 field)"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn an_empty_stephost_data_means_the_default_directory() {
    let home = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let out = crate::support::stephost_command()
        .args(["env", "list"])
        .env("STEPHOST_DATA", "")
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        home.path().join(".local/share/stephost/stephost.db").is_file(),
        "the store is in the default place"
    );
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing was written where the command ran"
    );
}

#[test]
fn an_account_is_named_app_or_app_slash_name_everywhere() {
    let data = tempfile::tempdir().unwrap();
    let st = |args: &[&str]| stephost_in(data.path(), args);
    assert!(st(&["accounts", "connect", "anthropic", "--field", "api_key=sk-ant-one"]).status.success());
    for who in [&["anthropic"][..], &["anthropic/default"], &["anthropic", "--name", "default"]] {
        let out = st(&[&["accounts", "keys", "--json"][..], who].concat());
        let keys: Value = serde_json::from_slice(&out.stdout).expect("JSON");
        assert_eq!(keys, json!(["api_key"]), "{who:?}: {}", text(&out.stderr));
    }
    assert_eq!(text(&st(&["accounts", "keys", "anthropic"]).stdout), "api_key\n", "one key a line");
    st(&["accounts", "connect", "anthropic/work", "--field", "api_key=sk-ant-two"]);
    let out = st(&["accounts", "keys", "anthropic"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr)
            .contains("anthropic has several accounts (default, work): say which, e.g. anthropic/"),
        "{}",
        text(&out.stderr)
    );
    let out = st(&["accounts", "keys", "anthropic/work", "--name", "default"]);
    assert!(text(&out.stderr).contains("give the account's name once"), "{}", text(&out.stderr));
    let probe = guest("probe");
    let probe = probe.to_str().unwrap();
    // The old `APP=NAME` still names the same account, so scripts keep working.
    for account in ["anthropic/work", "anthropic=work"] {
        let out = st(&["run", probe, "--account", account, "--json"]);
        assert!(out.status.success(), "{account}: {}", text(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let key = v["result"]["return_value"]["auths"]["anthropic"]["api_key"].as_str().unwrap();
        assert!(key.starts_with("stephost_sealed_"), "{account}: {key}");
    }
    let out = st(&["run", probe, "--account", "nobody"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--account nobody: no nobody account"), "{}", text(&out.stderr));
    // With one account left, no name is needed.
    assert!(st(&["accounts", "remove", "anthropic/default"]).status.success());
    let out = st(&["run", probe, "--account", "anthropic"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(st(&["accounts", "remove", "anthropic"]).status.success());
}

#[test]
fn listings_and_shows_print_json_with_objects() {
    let data = tempfile::tempdir().unwrap();
    let json = |args: &[&str]| -> Value {
        let out = stephost_in(data.path(), args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    let apps = json(&["apps", "list", "--json"]);
    assert!(apps.as_array().unwrap().len() >= 15);
    let zendesk = apps.as_array().unwrap().iter().find(|a| a["name"] == "zendesk").unwrap();
    assert!(zendesk["hosts"].as_array().unwrap().contains(&json!("https://{subdomain}.zendesk.com")));
    let twilio = json(&["apps", "show", "twilio", "--json"]);
    assert_eq!(twilio["fields"]["auth_token"]["secret"], true);
    assert_eq!(twilio["fields"]["auth_token"]["placements"], json!(["header:authorization"]));
    assert_eq!(
        &apps.as_array().unwrap().iter().find(|a| a["name"] == "twilio").unwrap(),
        &&twilio,
        "one shape"
    );
    let verified = json(&["audit", "verify", "--json"]);
    assert_eq!((verified["intact"].as_bool(), verified["records"].as_u64()), (Some(true), Some(0)));
    stephost_in(data.path(), &["accounts", "connect", "anthropic", "--field", "api_key=sk-ant-x"]);
    let listed = json(&["accounts", "list", "--json"]);
    assert_eq!(listed[0]["account"], "anthropic/default");
    assert_eq!(listed[0]["fields"]["api_key"], "••••••••");
    assert_eq!(json(&["accounts", "keys", "anthropic", "--json"]), json!(["api_key"]));
    let hello = guest("hello");
    let report = json(&["inspect", hello.to_str().unwrap(), "--json"]);
    assert_eq!(report["exports"]["run"], "function", "{report}");
}

#[test]
fn with_json_errors_are_one_json_line_on_stderr() {
    for (args, expected) in [
        (&["apps", "show", "nope", "--json"][..], "app `nope` is not in the app catalog"),
        (&["runs", "list", "--status", "bogus", "--json"], "invalid value 'bogus' for '--status"),
        (&["run", "missing.wasm", "--json"], "missing.wasm: cannot read"),
    ] {
        let out = stephost(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stdout), "");
        let stderr = text(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        let e: Value = serde_json::from_str(&stderr).expect("JSON error");
        assert!(e["error"].as_str().unwrap().contains(expected), "{stderr}");
    }
}

#[test]
fn audit_verify_reports_a_broken_chain_and_exits_1() {
    // A refused request (no --allow-host) writes an audit line; then it is edited.
    let data = tempfile::tempdir().unwrap();
    let mut command = crate::support::stephost_command();
    command.arg("--data").arg(data.path()).args(["run", guest("probe").to_str().unwrap(), "--event", "-"]);
    command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null());
    let mut child = command.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"actions":[{"do":"http","url":"https://example.com/"}]}"#)
        .unwrap();
    child.wait().unwrap();
    let log = data.path().join("audit.jsonl");
    let edited = std::fs::read_to_string(&log).unwrap().replacen("example.com", "examp1e.com", 1);
    std::fs::write(&log, edited).unwrap();
    let out = stephost_in(data.path(), &["audit", "verify", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["intact"], false);
    assert!(v["problem"].as_str().unwrap().contains("line 1"), "{v}");
    let out = stephost_in(data.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).starts_with("error: audit log "), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("hash chain broken at line 1"), "{}", text(&out.stderr));
}

#[test]
fn output_kib_limits_the_return_value_from_the_cli() {
    let hostile = guest("hostile");
    let args = ["run", hostile.to_str().unwrap(), "--event", "-", "--output-kib", "1"];
    let out = stephost(&args, Some(r#"{"attack":"big_return"}"#));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("over its 1 KiB output limit"), "{}", text(&out.stdout));
    let out = stephost(&["run", hostile.to_str().unwrap(), "--output-kib", "0"], None);
    assert_eq!(out.status.code(), Some(2), "a limit of 0 is refused");
}

#[test]
fn serve_on_a_busy_port_fails_before_making_or_printing_a_token() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let out = stephost_in(data.path(), &["serve", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "", "no token printed");
    assert!(text(&out.stderr).starts_with(&format!("error: listening on {addr}")), "{}", text(&out.stderr));
    let store = stephost::store::Store::open(data.path()).unwrap();
    assert_eq!(store.meta("api_token_sha256").unwrap(), None, "no token stored either");
}

#[test]
fn connecting_an_existing_account_says_it_replaced_it() {
    let data = tempfile::tempdir().unwrap();
    let first =
        stephost_in(data.path(), &["accounts", "connect", "anthropic", "--field", "api_key=sk-ant-one"]);
    assert!(text(&first.stdout).contains("connected anthropic account `default` (1 field)"));
    let again =
        stephost_in(data.path(), &["accounts", "connect", "anthropic", "--field", "api_key=sk-ant-two"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("replaced anthropic account `default` (1 field)"),
        "{}",
        text(&again.stdout)
    );
}

#[test]
fn connecting_an_existing_account_at_a_terminal_asks_first() {
    let data = tempfile::tempdir().unwrap();
    stephost_in(data.path(), &["accounts", "connect", "anthropic", "--field", "api_key=sk-ant-one"]);
    let mut command = crate::support::stephost_command();
    command.arg("--data").arg(data.path()).args([
        "accounts",
        "connect",
        "anthropic",
        "--field",
        "api_key=sk-ant-two",
    ]);
    let mut session = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
    session.exp_string("anthropic/default exists").unwrap();
    session.send_line("n").unwrap();
    session.exp_string("kept anthropic/default").unwrap();
    session.exp_eof().unwrap();
    let store = stephost::store::Store::open(data.path()).unwrap();
    assert_eq!(store.account_fields("anthropic", "default").unwrap()[0].value, "sk-ant-one");
}

#[test]
fn runs_show_lists_each_steps_http_requests_with_the_real_cause() {
    let probe = guest("probe");
    let data = tempfile::tempdir().unwrap();
    let workflow = data.path().join("lookup.toml");
    std::fs::write(
        &workflow,
        format!(
            "[[steps]]\nname = \"lookup\"\ncomponent = {:?}\nallowed_hosts = [\"https://no-such-host.invalid\"]\n",
            probe.to_str().unwrap()
        ),
    )
    .unwrap();
    let event = data.path().join("event.json");
    let actions =
        serde_json::json!({ "actions": [{ "do": "http", "url": "https://no-such-host.invalid/hook" }] });
    std::fs::write(&event, actions.to_string()).unwrap();
    let run = |args: &[&str]| {
        let out =
            crate::support::stephost_command().arg("--data").arg(data.path()).args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        text(&out.stdout)
    };
    run(&["workflow", "deploy", workflow.to_str().unwrap()]);
    let triggered = run(&["trigger", "lookup", "--event", event.to_str().unwrap(), "--json"]);
    let id = serde_json::from_str::<Value>(&triggered).unwrap()["id"].as_str().unwrap().to_string();

    let shown = run(&["runs", "show", &id]);
    let listed =
        shown.split_once("http requests:").map(|(_, after)| after).unwrap_or_else(|| panic!("{shown}"));
    assert!(
        listed.contains(
            "GET https://no-such-host.invalid:443/hook -> failed: DNS lookup of no-such-host.invalid failed"
        ),
        "{shown}"
    );
}
