//! The audit log of a data directory: one keyed chain whatever the number
//! of writers, tampering named by kind, a secret read recorded once per run
//! with its count, and pruning that leaves a log that still verifies.

use crate::support::{GOOD_TOKEN, guest, stephost_command};
use serde_json::{Value, json};
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::Arc;
use stephost::audit::{AuditEntry, AuditEvent, AuditKey, AuditLog, read_entries};
use stephost::store::crypto::MasterKey;

/// The audit key of `data` as the CLI derives it from `<data>/master.key`
/// (written first if missing, as the CLI would).
pub(crate) fn key_of(data: &Path) -> AuditKey {
    let file = data.join("master.key");
    if !file.exists() {
        std::fs::create_dir_all(data).unwrap();
        let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        std::fs::write(&file, hex::encode(bytes)).unwrap();
    }
    let bytes: [u8; 32] =
        hex::decode(std::fs::read_to_string(&file).unwrap().trim()).unwrap().try_into().unwrap();
    MasterKey::from_bytes(&bytes).audit_key()
}

/// The data directory's keyed audit log, as the CLI opens it.
pub(crate) fn keyed_log(data: &Path) -> Arc<AuditLog> {
    Arc::new(AuditLog::open(&data.join("audit.jsonl"), key_of(data)).unwrap())
}

fn stephost_in(data: &Path, args: &[&str]) -> Output {
    stephost_command().arg("--data").arg(data).args(args).output().unwrap()
}

/// `stephost run probe` reading the Slack token, with a secret env var;
/// `reads` more reads of the token through the event's actions.
fn probe_command(data: &Path, reads: usize, secret_env: bool) -> std::process::Command {
    let actions: Vec<Value> =
        (0..reads).map(|_| json!({ "do": "stdout", "text": "{auth:slack.oauth_access_token}" })).collect();
    let event = data.join(format!("event-{reads}.json"));
    if !event.exists() {
        std::fs::write(&event, json!({ "actions": actions }).to_string()).unwrap();
    }
    let mut command = stephost_command();
    command.arg("--data").arg(data).args(["run", guest("probe").to_str().unwrap(), "--json", "--event"]);
    command.arg(&event).args(["--auth", &format!("slack.oauth_access_token={GOOD_TOKEN}")]);
    if secret_env {
        command.args(["--secret-env", "API_KEY=audit-secret-value-1"]);
    }
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

fn verify_json(data: &Path) -> (Option<i32>, Value) {
    let out = stephost_in(data, &["audit", "verify", "--json"]);
    (out.status.code(), serde_json::from_slice(&out.stdout).expect("a JSON verdict"))
}

fn lines(data: &Path) -> Vec<String> {
    std::fs::read_to_string(data.join("audit.jsonl")).unwrap().lines().map(String::from).collect()
}

fn write_lines(data: &Path, lines: &[String]) {
    std::fs::write(data.join("audit.jsonl"), lines.join("\n") + "\n").unwrap();
}

#[test]
fn twenty_runs_at_once_and_writer_threads_leave_one_intact_chain() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    // A fresh data directory: the twenty also race to create the database,
    // its schema and the master key.
    let children: Vec<_> = (0..20).map(|_| probe_command(data, 0, true).spawn().unwrap()).collect();
    let log = keyed_log(data);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..25 {
                    let event = AuditEvent::SecretEnv { name: format!("T{t}_{i}") };
                    log.append("in-process", "thread", event).unwrap();
                }
            })
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    for thread in threads {
        thread.join().unwrap();
    }
    // Each run: the env var handed over, the token read once.
    let (code, verdict) = verify_json(data);
    assert_eq!((code, &verdict["intact"]), (Some(0), &json!(true)), "{verdict}");
    assert_eq!(verdict["records"], 20 * 2 + 4 * 25, "{verdict}");
    let entries = read_entries(&data.join("audit.jsonl")).unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..140).collect::<Vec<u64>>());
}

#[test]
fn a_step_reading_a_secret_many_times_writes_one_record_with_the_count() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path();
    let out = probe_command(data, 200, true).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = probe_command(data, 1, false).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let entries = read_entries(&data.join("audit.jsonl")).unwrap();
    let reads: Vec<(&str, u64)> = entries
        .iter()
        .filter_map(|e| match &e.event {
            AuditEvent::SecretRead { app, key, count } if app == "slack" && key == "oauth_access_token" => {
                Some((e.run.as_str(), *count))
            }
            _ => None,
        })
        .collect();
    // 200 reads by the actions and one by the probe's report; then 1 + 1.
    assert_eq!(reads.iter().map(|(_, n)| *n).collect::<Vec<_>>(), [201, 2], "{entries:?}");
    let given: Vec<&AuditEntry> = entries
        .iter()
        .filter(|e| matches!(&e.event, AuditEvent::SecretEnv { name } if name == "API_KEY"))
        .collect();
    assert_eq!(given.len(), 1, "only the run that was given the variable records it");
    assert_eq!(given[0].run, reads[0].0);
    assert_eq!(entries.len(), 3, "{entries:?}");
    let listed = String::from_utf8_lossy(&stephost_in(data, &["audit", "list"]).stdout).into_owned();
    assert!(listed.contains("read secret slack.oauth_access_token 201 times"), "{listed}");
    assert!(listed.contains("was given secret env API_KEY"), "{listed}");
}

/// A data directory with a log of `n` records written through the CLI's key.
fn data_with_records(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let log = keyed_log(dir.path());
    for i in 0..n {
        log.append("run1", "step", AuditEvent::SecretEnv { name: format!("VAR{i}") }).unwrap();
    }
    dir
}

#[test]
fn verify_names_an_edit_a_removal_a_reorder_and_a_truncation() {
    type Tamper = fn(&mut Vec<String>);
    let cases: [(&str, Tamper, &str); 5] = [
        ("edit", |l| l[2] = l[2].replace("VAR2", "VARX"), "line 3"),
        ("removal", |l| drop(l.remove(2)), "line 3"),
        ("reorder", |l| l.swap(1, 3), "line 3"),
        ("truncation", |l| drop(l.pop()), "1 record was cut from the end"),
        ("removal", |l| drop(l.remove(0)), "line 1"),
    ];
    for (kind, tamper, place) in cases {
        let data = data_with_records(5);
        let (code, verdict) = verify_json(data.path());
        assert_eq!((code, verdict["records"].as_u64()), (Some(0), Some(5)));
        let mut changed = lines(data.path());
        tamper(&mut changed);
        write_lines(data.path(), &changed);
        let (code, verdict) = verify_json(data.path());
        assert_eq!(code, Some(1), "{kind}: {verdict}");
        assert_eq!(
            (verdict["intact"].as_bool(), verdict["found"].as_str()),
            (Some(false), Some(kind)),
            "{verdict}"
        );
        assert!(verdict["problem"].as_str().unwrap().contains(place), "{kind}: {verdict}");
        let out = stephost_in(data.path(), &["audit", "verify"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr.starts_with(&format!(
                "error: audit log {}: {kind}: ",
                data.path().join("audit.jsonl").display()
            )),
            "{stderr}"
        );
    }
}

#[test]
fn a_log_rewritten_without_the_key_is_caught() {
    use sha2::{Digest, Sha256};
    let data = data_with_records(4);
    // Change one record and recompute every hash the way an unkeyed chain
    // did: SHA-256 over the previous hash and the content.
    let mut prev = "0".repeat(64);
    let rewritten: Vec<String> = lines(data.path())
        .iter()
        .map(|line| {
            let mut entry: serde_json::Map<String, Value> = serde_json::from_str(line).unwrap();
            entry.remove("hash");
            entry.insert("prev".into(), Value::String(prev.clone()));
            if entry["name"] == "VAR1" {
                entry.insert("name".into(), json!("NOTHING_TO_SEE"));
            }
            let content = Value::Object(entry.clone()).to_string();
            let hash = hex::encode(
                Sha256::new().chain_update(prev.as_bytes()).chain_update(content.as_bytes()).finalize(),
            );
            entry.insert("hash".into(), Value::String(hash.clone()));
            prev = hash;
            Value::Object(entry).to_string()
        })
        .collect();
    write_lines(data.path(), &rewritten);
    let (code, verdict) = verify_json(data.path());
    assert_eq!((code, verdict["found"].as_str()), (Some(1), Some("edit")), "{verdict}");
    assert!(verdict["problem"].as_str().unwrap().contains("line 1"), "{verdict}");
}

#[test]
fn a_pruned_log_verifies_and_tampering_after_the_prune_is_still_caught() {
    let data = data_with_records(6);
    let out = stephost_in(data.path(), &["audit", "prune", "--keep-days", "0", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let pruned: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pruned, json!({ "removed": 6, "kept": 0 }));
    let head = lines(data.path());
    assert_eq!(head.len(), 1, "only the checkpoint is left");
    assert!(head[0].contains("\"event\":\"checkpoint\""), "{}", head[0]);
    assert_eq!(
        verify_json(data.path()),
        (Some(0), json!({ "path": data.path().join("audit.jsonl"), "intact": true, "records": 0 }))
    );
    // The chain goes on from the checkpoint, across processes.
    let out = probe_command(data.path(), 0, true).output().unwrap();
    assert!(out.status.success());
    assert_eq!(verify_json(data.path()).1["records"], 2);
    let after = lines(data.path());
    for (kind, changed) in [
        ("removal", after[1..].to_vec()),
        (
            "edit",
            vec![
                after[0].replace("\"pruned_before_ms\":", "\"pruned_before_ms\":1"),
                after[1].clone(),
                after[2].clone(),
            ],
        ),
        ("truncation", after[..2].to_vec()),
    ] {
        write_lines(data.path(), &changed);
        let (code, verdict) = verify_json(data.path());
        assert_eq!((code, verdict["found"].as_str()), (Some(1), Some(kind)), "{verdict}");
    }
    write_lines(data.path(), &after);
    assert_eq!(verify_json(data.path()).0, Some(0));
}
