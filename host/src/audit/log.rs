//! The writer: appends under an exclusive file lock, continuing the chain
//! from what is on disk (never from what this process last wrote), updates
//! the anchor under the same lock, and prunes old records behind a keyed
//! checkpoint.

use super::chain::{
    Anchor, Files, GENESIS, checkpoint_mac, entry_is_authentic, entry_mac, last_line, legacy_hash, private,
};
use super::{AuditEntry, AuditError, AuditEvent, AuditKey};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An open audit log. Appends are serialized within the process by a mutex
/// and across processes by an exclusive lock on `<log>.lock`; each append
/// re-reads the tail under the lock, so any number of writers keep one
/// chain.
#[derive(Debug)]
pub struct AuditLog {
    files: Files,
    key: AuditKey,
    in_process: Mutex<()>,
}

/// What `prune` removed and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Pruned {
    /// Records removed (a previous checkpoint not counted).
    pub removed: usize,
    /// Records kept.
    pub kept: usize,
}

impl AuditLog {
    /// Opens (or creates, owner-only) the log at `path`, chained with `key`.
    pub fn open(path: &Path, key: AuditKey) -> Result<Self, AuditError> {
        let files = Files::of(path);
        if let Some(dir) = path.parent() {
            crate::base::files::create_private_dir(dir).map_err(|e| files.fail(e.to_string()))?;
        }
        private(OpenOptions::new().create(true).append(true), path).map_err(|e| files.fail(e.to_string()))?;
        Ok(Self { files, key, in_process: Mutex::new(()) })
    }

    /// Appends one event. Failures are returned, never hidden.
    pub fn append(&self, run: &str, step: &str, event: AuditEvent) -> Result<(), AuditError> {
        let _in_process = self.in_process.lock().unwrap_or_else(|p| p.into_inner());
        let _lock = self.files.lock(true)?;
        let (seq, prev) = self.continue_from()?;
        let mut entry = AuditEntry {
            seq,
            at_ms: crate::base::clock::now_ms() as u64,
            run: run.to_string(),
            step: step.to_string(),
            event,
            prev,
            hash: String::new(),
        };
        entry.hash = entry_mac(&self.key, &entry);
        let mut line = serde_json::to_string(&entry).expect("audit entries serialize");
        line.push('\n');
        let fail = |e: std::io::Error| self.files.fail(e.to_string());
        let mut file =
            private(OpenOptions::new().create(true).append(true), &self.files.log).map_err(fail)?;
        file.write_all(line.as_bytes()).map_err(fail)?;
        Anchor::new(&self.key, entry.seq, entry.hash).write(&self.files)
    }

    /// Where the next record goes (its `seq` and `prev`), read under the
    /// lock: from the last line, or from the anchor when the anchor is
    /// ahead (the tail was cut or replaced: the next record then shows the
    /// gap instead of covering it). A log from before keyed chains is moved
    /// aside to `<log>.unkeyed.jsonl` and a keyed chain starts.
    fn continue_from(&self) -> Result<(u64, String), AuditError> {
        let anchor = Anchor::read(&self.files).ok().flatten();
        let tail = match File::open(&self.files.log) {
            Ok(mut file) => last_line(&mut file).map_err(|e| self.files.fail(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(self.files.fail(e.to_string())),
        };
        let tail = match tail.map(|line| serde_json::from_str::<AuditEntry>(&line)) {
            Some(Ok(entry)) => Some(entry),
            Some(Err(e)) if anchor.is_none() => {
                return Err(self.files.fail(format!("the last line is not an audit entry: {e}")));
            }
            Some(Err(_)) | None => None,
        };
        if anchor.is_none()
            && let Some(last) = &tail
            && last.hash == legacy_hash(last)
            && !entry_is_authentic(&self.key, last)
        {
            self.move_unkeyed_aside()?;
            return Ok((0, GENESIS.to_string()));
        }
        let anchor = anchor.filter(|a| a.is_authentic(&self.key));
        Ok(match (tail, anchor) {
            (Some(last), Some(anchor)) if last.seq > anchor.seq => (last.seq + 1, last.hash),
            (_, Some(anchor)) => (anchor.seq + 1, anchor.hash),
            (Some(last), None) => (last.seq + 1, last.hash),
            (None, None) => (0, GENESIS.to_string()),
        })
    }

    fn move_unkeyed_aside(&self) -> Result<(), AuditError> {
        let mut aside = self.files.log.with_extension("unkeyed.jsonl");
        if aside.exists() {
            aside = self.files.log.with_extension(format!("unkeyed.{}.jsonl", crate::base::clock::now_ms()));
        }
        std::fs::rename(&self.files.log, &aside).map_err(|e| self.files.fail(e.to_string()))
    }

    /// Removes the records written before `before_ms`. The first retained
    /// line becomes a keyed checkpoint standing for the last removed record,
    /// and the anchor is untouched, so `verify` still checks what remains.
    /// A log that does not verify is not pruned: pruning would hide it.
    pub fn prune(&self, before_ms: u64) -> Result<Pruned, AuditError> {
        let _in_process = self.in_process.lock().unwrap_or_else(|p| p.into_inner());
        let _lock = self.files.lock(true)?;
        super::verify::verify_locked(&self.files, &self.key).map_err(|mut e| {
            e.message = format!("not pruned, it does not verify: {}", e.message);
            e
        })?;
        let lines = read_lines(&self.files)?;
        let entries: Vec<AuditEntry> =
            lines.iter().map(|l| serde_json::from_str(l).expect("verified lines parse")).collect();
        let is_record = |e: &AuditEntry| !matches!(e.event, AuditEvent::Checkpoint { .. });
        let cut = entries.iter().position(|e| e.at_ms >= before_ms).unwrap_or(entries.len());
        let kept = entries[cut..].iter().filter(|e| is_record(e)).count();
        let removed = entries[..cut].iter().filter(|e| is_record(e)).count();
        if cut == 0 || removed == 0 {
            return Ok(Pruned { removed: 0, kept });
        }
        let last = &entries[cut - 1];
        let mut checkpoint = AuditEntry {
            seq: last.seq,
            at_ms: last.at_ms,
            run: "-".into(),
            step: "-".into(),
            event: AuditEvent::Checkpoint { pruned_before_ms: before_ms, mac: String::new() },
            prev: last.prev.clone(),
            hash: last.hash.clone(),
        };
        let mac = checkpoint_mac(&self.key, &checkpoint);
        checkpoint.event = AuditEvent::Checkpoint { pruned_before_ms: before_ms, mac };
        let mut text = serde_json::to_string(&checkpoint).expect("audit entries serialize");
        text.push('\n');
        for line in &lines[cut..] {
            text.push_str(line);
            text.push('\n');
        }
        let fail = |e: std::io::Error| self.files.fail(e.to_string());
        let temporary: PathBuf = self.files.log.with_extension("jsonl.pruning");
        let mut file =
            private(OpenOptions::new().create(true).truncate(true).write(true), &temporary).map_err(fail)?;
        file.write_all(text.as_bytes()).map_err(fail)?;
        file.sync_all().map_err(fail)?;
        std::fs::rename(&temporary, &self.files.log).map_err(fail)?;
        Ok(Pruned { removed, kept })
    }

    /// The file the log appends to.
    pub fn path(&self) -> &Path {
        &self.files.log
    }
}

/// The log's lines, an absent log none.
pub(super) fn read_lines(files: &Files) -> Result<Vec<String>, AuditError> {
    let file = match File::open(&files.log) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(files.fail(e.to_string())),
    };
    BufReader::new(file).lines().collect::<Result<_, _>>().map_err(|e| files.fail(e.to_string()))
}
