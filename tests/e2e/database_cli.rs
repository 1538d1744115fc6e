//! The CLI on a shared PostgreSQL database (`--database`): what one node
//! stores another node sees, with the same master key; a bad URL, a missing
//! key and a wrong key are refused in one line. Each test makes its own
//! database through the admin URL in `STEPHOST_TEST_DATABASE_URL`; without
//! it a test says "skipped" and passes, except under `CI`, where it fails.

use crate::support::{guest, stephost_tokio_command};
use serde_json::Value;
use std::path::Path;
use std::process::{Output, Stdio};

/// The master key every node of a test shares (64 hex digits).
const KEY: &str = "4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b";

/// A master key other than [`KEY`].
const OTHER_KEY: &str = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";

/// A new, empty database's URL; `None` (after saying "skipped") without a
/// server to make it in.
async fn fresh_database() -> Option<String> {
    crate::support::TestDatabase::fresh().await.map(|db| db.url)
}

/// `stephost --data data --database url ARGS` with `STEPHOST_MASTER_KEY`
/// set to `key` (none: the data directory's key file, if any), and no other
/// `STEPHOST_*` variable of the developer's.
async fn stephost(data: &Path, url: &str, key: Option<&str>, args: &[&str]) -> Output {
    let mut command = stephost_tokio_command();
    command.arg("--data").arg(data).arg("--database").arg(url).args(args);
    if let Some(key) = key {
        command.env("STEPHOST_MASTER_KEY", key);
    }
    command.stdin(Stdio::null()).output().await.unwrap()
}

/// Runs `command` to its end; a command still running after two minutes
/// (e.g. a server that should have been refused) is killed and fails the test.
async fn finishes(mut command: tokio::process::Command, what: &str) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    match tokio::time::timeout(std::time::Duration::from_secs(120), child.wait_with_output()).await {
        Ok(output) => output.unwrap(),
        Err(_) => panic!("{what} was still running after two minutes"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a refusal: exit 2 and exactly one line on stderr.
fn assert_one_line_refusal(out: &Output, what: &str) -> String {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{what}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{what}: one line, got {stderr}");
    stderr
}

#[tokio::test]
async fn what_one_node_stores_another_node_with_the_same_key_sees_and_uses() {
    let Some(url) = fresh_database().await else { return };
    let (first, second) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for args in [
        &["env", "set", "API_KEY", "stored-secret-value-42"][..],
        &["env", "set", "CHANNEL", "#general", "--plain"],
        &[
            "accounts",
            "connect",
            "slack",
            "--field",
            "oauth_access_token=xoxb-shared-token-9",
            "--field",
            "oauth_uid=U7",
        ],
    ] {
        let out = stephost(first.path(), &url, Some(KEY), args).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    }
    assert!(
        !first.path().join("stephost.db").exists(),
        "with --database nothing is stored in the data directory's SQLite"
    );

    let listed = stephost(second.path(), &url, Some(KEY), &["env", "list", "--json"]).await;
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = listed.as_array().unwrap().iter().map(|v| v["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["API_KEY", "CHANNEL"], "{listed}");
    assert!(!listed.to_string().contains("stored-secret-value-42"), "a secret is masked: {listed}");

    let accounts = stephost(second.path(), &url, Some(KEY), &["accounts", "keys", "slack", "--json"]).await;
    assert!(accounts.status.success(), "{}", text(&accounts.stderr));
    let keys: Value = serde_json::from_slice(&accounts.stdout).unwrap();
    assert_eq!(keys, serde_json::json!(["oauth_access_token", "oauth_uid"]));

    // A step run on the second node gets the first node's env and account.
    let probe = guest("probe");
    let run = stephost(
        second.path(),
        &url,
        Some(KEY),
        &["run", probe.to_str().unwrap(), "--account", "slack", "--json"],
    )
    .await;
    assert!(run.status.success(), "{}", text(&run.stderr));
    let outcome: Value = serde_json::from_slice(&run.stdout).unwrap();
    let seen = &outcome["result"]["return_value"];
    assert_eq!(seen["env"]["CHANNEL"], "#general", "{seen}");
    assert!(seen["env"]["API_KEY"].as_str().unwrap().starts_with("stephost_sealed_"), "{seen}");
    assert_eq!(seen["auths"]["slack"]["oauth_uid"], "U7", "{seen}");
}

#[tokio::test]
async fn a_database_url_of_another_scheme_is_refused_in_one_line_that_hides_it() {
    let data = tempfile::tempdir().unwrap();
    let out = stephost(data.path(), "mysql://root:hunter2@db.example/app", Some(KEY), &["env", "list"]).await;
    let stderr = assert_one_line_refusal(&out, "a mysql:// URL");
    assert!(stderr.contains("--database") && stderr.contains("mysql://"), "{stderr}");
    assert!(stderr.contains("postgres://"), "says what is expected: {stderr}");
    assert!(!stderr.contains("hunter2"), "the password is never shown: {stderr}");

    // An empty URL is not set: the data directory's own store.
    let out = stephost(data.path(), "", Some(KEY), &["env", "set", "LOCAL", "1", "--plain"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(data.path().join("stephost.db").exists());
}

#[tokio::test]
async fn a_node_without_a_key_on_a_keyed_database_is_told_to_set_stephost_master_key() {
    let Some(url) = fresh_database().await else { return };
    let (first, keyless) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = stephost(first.path(), &url, Some(KEY), &["env", "set", "A", "1"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A password in the URL (the test server trusts local connections and
    // ignores it) must not reach the message.
    let with_password = url.replacen("://postgres@", "://postgres:hunter2@", 1);
    assert_ne!(with_password, url, "the test URL names the user `postgres`: {url}");
    let out = stephost(keyless.path(), &with_password, None, &["env", "list"]).await;
    let stderr = assert_one_line_refusal(&out, "a node without a key");
    assert!(stderr.contains("was set up with a master key: set STEPHOST_MASTER_KEY"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "the password is never shown: {stderr}");
    assert!(!keyless.path().join("master.key").exists(), "no new random key is made for a keyed database");
}

#[tokio::test]
async fn the_first_node_s_key_file_sets_up_a_new_database_and_another_key_is_refused() {
    let Some(url) = fresh_database().await else { return };
    let (first, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let out = stephost(first.path(), &url, None, &["env", "set", "A", "1"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(first.path().join("master.key").exists(), "a new database takes a new key file's key");

    let out = stephost(other.path(), &url, Some(OTHER_KEY), &["env", "list"]).await;
    let stderr = assert_one_line_refusal(&out, "another key");
    assert!(stderr.contains("wrong master key"), "{stderr}");

    // `serve` is refused the same way, before it binds or prints anything.
    let mut serve = stephost_tokio_command();
    serve
        .arg("--data")
        .arg(other.path())
        .args(["--database", &url, "serve", "--listen", "127.0.0.1:0"])
        .env("STEPHOST_MASTER_KEY", OTHER_KEY);
    let out = finishes(serve, "serve with another key").await;
    let stderr = assert_one_line_refusal(&out, "serve with another key");
    assert!(stderr.contains("wrong master key"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing printed: {}", text(&out.stdout));
}

#[tokio::test]
async fn serve_without_workers_needs_a_database() {
    let data = tempfile::tempdir().unwrap();
    let mut serve = stephost_tokio_command();
    serve.arg("--data").arg(data.path()).args(["serve", "--workers", "0", "--listen", "127.0.0.1:0"]);
    let out = finishes(serve, "serve --workers 0 without --database").await;
    let stderr = assert_one_line_refusal(&out, "--workers 0 without --database");
    assert!(stderr.contains("--workers 0 needs --database"), "{stderr}");
}
