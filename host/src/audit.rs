//! The audit log: one JSON line per outbound request and per secret read,
//! append-only, each line carrying the SHA-256 of the line before it and of
//! itself, so `verify` finds any edited, removed or reordered line.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The `prev` of the first line.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One outbound request attempt, allowed or refused.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct EgressRecord {
    /// The HTTP method, as the step sent it.
    pub method: String,
    /// `http` or `https`; empty if the URL could not be parsed.
    pub scheme: String,
    /// The host name (lower-cased) or IP address the step addressed.
    pub host: String,
    /// The port, the scheme's default when the URL gives none.
    pub port: u16,
    /// Path and query, query values masked.
    pub path: String,
    /// Secrets swapped in, as `app.key` / `env.NAME`.
    pub secrets: Vec<String>,
    /// Whether the host let the request go out; `false` for a refusal.
    pub allowed: bool,
    /// Why it was refused, or why it failed after being allowed.
    pub error: Option<String>,
    /// The response status; `None` if no response came back.
    pub status: Option<u16>,
    /// Request body bytes sent, after secrets were swapped in.
    pub bytes_out: u64,
    /// Response body bytes the step read.
    pub bytes_in: u64,
    /// Milliseconds from the request until its refusal, or until the step
    /// finished with (or dropped) the response body.
    pub duration_ms: u64,
}

/// What happened: an outbound request, or a step reading a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A step's outbound HTTP request, whether it went out or was refused.
    Request(EgressRecord),
    /// A step was handed a secret: an account's secret field it asked for,
    /// or a secret environment variable given to the run. It sees only a
    /// placeholder, but which secrets it held is on record.
    SecretRead {
        /// The app of the account, or `env` for an environment variable.
        app: String,
        /// The field name, or the environment variable's name.
        key: String,
    },
    /// An OAuth access token refreshed through the app's token endpoint.
    TokenRefresh {
        /// The app whose token endpoint was called.
        app: String,
        /// The name of the account whose token it was.
        account: String,
        /// Whether a new token was obtained and stored.
        ok: bool,
        /// Why the refresh failed; `None` when it succeeded.
        error: Option<String>,
    },
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The line's position in the log, from 0; a gap means a removed line.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The run's id; `-` for an event outside any run (a token refresh).
    pub run: String,
    /// The step's name; `-` for an event outside any step.
    pub step: String,
    /// What happened; its fields sit at the top level of the JSON line.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// The previous line's `hash` (all zeros for the first).
    pub prev: String,
    /// SHA-256 over `prev` and this entry's content.
    pub hash: String,
}

/// Why the log could not be written or read.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {message}")]
pub struct AuditError {
    /// The audit log file.
    pub path: PathBuf,
    /// What went wrong; for a broken chain, the line and why.
    pub message: String,
}

/// Where audit records go: the hash-chained file today, a database table
/// later. Sync on purpose: records are appended inside wasmtime host calls
/// and on the egress path; a networked sink hands them to one writer that
/// owns the chain.
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Appends one event; failures are returned, never hidden.
    fn append(&self, run: &str, step: &str, event: AuditEvent) -> Result<(), AuditError>;
}

/// The JSONL file as a sink.
impl AuditSink for AuditLog {
    fn append(&self, run: &str, step: &str, event: AuditEvent) -> Result<(), AuditError> {
        AuditLog::append(self, run, step, event)
    }
}

/// An open audit log; appends are serialized.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    state: Mutex<Tail>,
}

#[derive(Debug)]
struct Tail {
    file: File,
    seq: u64,
    last_hash: String,
}

impl AuditLog {
    /// Opens (or creates, owner-only) the log at `path`, continuing its chain.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        let fail = |message: String| AuditError { path: path.to_path_buf(), message };
        if let Some(dir) = path.parent() {
            crate::base::files::create_private_dir(dir).map_err(|e| fail(e.to_string()))?;
        }
        let (seq, last_hash) = match File::open(path) {
            Ok(file) => match BufReader::new(file).lines().map_while(Result::ok).last() {
                Some(line) => {
                    let entry: AuditEntry = serde_json::from_str(&line)
                        .map_err(|e| fail(format!("the last line is not an audit entry: {e}")))?;
                    (entry.seq + 1, entry.hash)
                }
                None => (0, GENESIS.to_string()),
            },
            Err(_) => (0, GENESIS.to_string()),
        };
        let mut options = OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(path).map_err(|e| fail(e.to_string()))?;
        Ok(Self { path: path.to_path_buf(), state: Mutex::new(Tail { file, seq, last_hash }) })
    }

    /// Appends one event. Failures are returned, never hidden.
    pub fn append(&self, run: &str, step: &str, event: AuditEvent) -> Result<(), AuditError> {
        let mut tail = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let at_ms = crate::base::clock::now_ms() as u64;
        let mut entry = AuditEntry {
            seq: tail.seq,
            at_ms,
            run: run.to_string(),
            step: step.to_string(),
            event,
            prev: tail.last_hash.clone(),
            hash: String::new(),
        };
        entry.hash = entry_hash(&entry);
        let mut line = serde_json::to_string(&entry).expect("audit entries serialize");
        line.push('\n');
        tail.file
            .write_all(line.as_bytes())
            .map_err(|e| AuditError { path: self.path.clone(), message: e.to_string() })?;
        tail.seq += 1;
        tail.last_hash = entry.hash;
        Ok(())
    }

    /// The file the log appends to.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// SHA-256 over `prev` and the entry's content (everything but `hash`).
fn entry_hash(entry: &AuditEntry) -> String {
    let mut content = serde_json::to_value(entry).expect("audit entries serialize");
    if let Value::Object(map) = &mut content {
        map.remove("hash");
    }
    let mut hasher = Sha256::new();
    hasher.update(entry.prev.as_bytes());
    hasher.update(content.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// Reads every entry; a line that does not parse is an error naming it.
pub fn read_entries(path: &Path) -> Result<Vec<AuditEntry>, AuditError> {
    let fail = |message: String| AuditError { path: path.to_path_buf(), message };
    let file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(fail(e.to_string())),
    };
    BufReader::new(file)
        .lines()
        .enumerate()
        .map(|(i, line)| {
            let line = line.map_err(|e| fail(e.to_string()))?;
            serde_json::from_str(&line).map_err(|e| fail(format!("line {}: not an audit entry: {e}", i + 1)))
        })
        .collect()
}

/// Checks the chain; `Ok(n)` with the number of entries, or the first
/// broken line and why.
pub fn verify(path: &Path) -> Result<usize, AuditError> {
    let entries = read_entries(path)?;
    let mut prev = GENESIS.to_string();
    for (i, entry) in entries.iter().enumerate() {
        let line = i + 1;
        let fail = |what: &str| AuditError {
            path: path.to_path_buf(),
            message: format!("line {line} (seq {}): {what}", entry.seq),
        };
        if entry.seq != i as u64 {
            return Err(fail(&format!("sequence number should be {i}: a line was removed, added or moved")));
        }
        if entry.prev != prev {
            return Err(fail("does not chain to the line before: a line was removed, added or moved"));
        }
        if entry_hash(entry) != entry.hash {
            return Err(fail("its content does not match its hash: the line was edited"));
        }
        prev = entry.hash.clone();
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(app: &str) -> AuditEvent {
        AuditEvent::SecretRead { app: app.into(), key: "token".into() }
    }

    fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path).unwrap();
        for i in 0..n {
            log.append("run1", "step", read(&format!("app{i}"))).unwrap();
        }
        (dir, path)
    }

    fn rewrite(path: &Path, change: impl FnOnce(&mut Vec<String>)) {
        let mut lines: Vec<String> =
            std::fs::read_to_string(path).unwrap().lines().map(String::from).collect();
        change(&mut lines);
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    #[test]
    fn an_intact_log_verifies_and_reopening_continues_the_chain() {
        let (_dir, path) = log_with(3);
        AuditLog::open(&path).unwrap().append("run2", "s", read("again")).unwrap();
        assert_eq!(verify(&path).unwrap(), 4);
    }

    #[test]
    fn edited_removed_and_reordered_lines_are_found() {
        type Tamper = fn(&mut Vec<String>);
        let cases: [(&str, Tamper); 4] = [
            ("edited", |l| l[1] = l[1].replace("app1", "appX")),
            ("removed", |l| {
                l.remove(1);
            }),
            ("reordered", |l| l.swap(0, 2)),
            ("last edited", |l| l[3] = l[3].replace("app3", "appX")),
        ];
        for (what, change) in cases {
            let (_dir, path) = log_with(4);
            rewrite(&path, change);
            let err = verify(&path).unwrap_err().to_string();
            assert!(err.contains("line "), "{what}: {err}");
        }
    }
}
