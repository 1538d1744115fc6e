//! The audit log: one JSON line per outbound request, per secret a run was
//! given or read, and per token refresh; append-only and keyed. Each line
//! carries the HMAC-SHA256, under a key derived from the master key, of the
//! line before and of itself, so `verify` finds any edited, removed or
//! reordered line and a rewrite without the key; a keyed anchor beside the
//! log (the last sequence number and hash) finds a cut tail. The chain
//! works on lines (seal one, verify a list, prune a list into a
//! checkpoint), so each store of lines keeps the same chain: the JSONL file
//! here, whose appends from any number of processes are serialized by an
//! exclusive file lock, and the store layer's table in a shared database.

mod chain;
mod log;
mod verify;

pub use chain::{Anchor, GENESIS, seal_entry};
pub use log::{AuditLog, PruneCut, Pruned, prune_lines};
pub use verify::{Tamper, parse_lines, read_entries, verify, verify_lines};

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

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

/// What happened: an outbound request, a secret a step read or was given,
/// a token refresh, or the head of a pruned log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum AuditEvent {
    /// A step's outbound HTTP request, whether it went out or was refused.
    Request(EgressRecord),
    /// A step asked for an account's secret field, `count` times in its
    /// run: one record per run and field, written when the run ends, so a
    /// step reading in a loop does not grow the log per call. It saw only a
    /// placeholder, but which secrets it held is on record.
    SecretRead {
        /// The app of the account (`env` in logs from before `secret_env`
        /// had its own record).
        app: String,
        /// The field name.
        key: String,
        /// How many times the run asked for it (1 in older logs).
        #[serde(default = "one")]
        count: u64,
    },
    /// A secret environment variable was handed to a step's run (as a
    /// placeholder). The host cannot see whether the step reads its
    /// environment, so this records what it was given, once per run.
    SecretEnv {
        /// The variable's name.
        name: String,
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
    /// The writer found the log holding records but its anchor missing or
    /// not matching the key: records may have been cut from the end before
    /// this one. Written in the chain, so `verify` keeps saying so.
    AnchorLost {
        /// What the writer found instead of an anchor it could trust.
        why: String,
    },
    /// The first line of a pruned log: it stands for the last record
    /// removed (its `seq` and `hash`), so the retained records still chain
    /// from it. `mac` proves the host's key wrote it.
    Checkpoint {
        /// Records before this time were removed (milliseconds since the
        /// Unix epoch).
        pruned_before_ms: u64,
        /// HMAC over this line without `mac`.
        mac: String,
    },
}

fn one() -> u64 {
    1
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
    /// HMAC-SHA256, under the audit key, over `prev` and this entry's
    /// content (for a checkpoint: the removed record's hash, copied).
    pub hash: String,
}

/// Why the log could not be written, read or trusted.
#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {message}")]
pub struct AuditError {
    /// The audit log file.
    pub path: PathBuf,
    /// What went wrong; for a broken chain, the line and why.
    pub message: String,
    /// For a broken chain, which kind of tampering it shows.
    pub found: Option<Tamper>,
}

/// The key the chain's HMACs are made with: derived from the master key by
/// the store layer and handed down, so this layer never sees the master
/// key. Never printed.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl AuditKey {
    /// A key from 32 bytes (the store derives them from the master key).
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(…)")
    }
}

/// Where audit records go. Sync on purpose: records are appended inside
/// wasmtime host calls and on the egress path.
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
