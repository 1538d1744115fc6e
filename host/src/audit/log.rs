//! The writer: appends under an exclusive file lock, continuing the chain
//! from what is on disk (never from what this process last wrote), updates
//! the anchor under the same lock, and prunes old records behind a keyed
//! checkpoint.

use super::chain::{
    Anchor, Files, GENESIS, checkpoint_mac, entry_is_authentic, last_line, legacy_hash, private, seal_entry,
};
use super::{AuditEntry, AuditError, AuditEvent, AuditKey};
use crate::base::files::FileStamp;
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
    /// Serializes appends within the process, and holds where the last one
    /// left the chain.
    in_process: Mutex<Option<Continued>>,
}

/// Where this process's last append left the chain, with the stamps of the
/// log and its anchor just after it: while neither file has changed since
/// (no other writer appended, nothing was cut, replaced or pruned), the
/// next append continues from here instead of reading the anchor and the
/// log's tail back and parsing them (most of an append's cost). Any change
/// shows in a stamp (size, inode, times) and the files are read again.
#[derive(Debug)]
struct Continued {
    log: FileStamp,
    anchor: FileStamp,
    seq: u64,
    hash: String,
    /// The log and the anchor, still open: while the stamps match, the
    /// paths name these very files (an open file's inode is never reused),
    /// so the next append writes through them without opening either
    /// again (an open costs ~14 µs on a VM with costly system calls).
    log_file: File,
    anchor_file: File,
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
        Ok(Self { files, key, in_process: Mutex::new(None) })
    }

    /// Appends one event. Failures are returned, never hidden.
    pub fn append(&self, run: &str, step: &str, event: AuditEvent) -> Result<(), AuditError> {
        let mut last = self.in_process.lock().unwrap_or_else(|p| p.into_inner());
        let _lock = self.files.lock(true)?;
        let unchanged = last.take().filter(|last| {
            FileStamp::of(&self.files.log).is_some_and(|now| now == last.log)
                && FileStamp::of(&self.files.anchor).is_some_and(|now| now == last.anchor)
        });
        let (mut seq, mut prev, lost, open) = match unchanged {
            Some(last) => (last.seq + 1, last.hash, None, Some((last.log_file, last.anchor_file))),
            None => {
                let (seq, prev, lost) = self.continue_from()?;
                (seq, prev, lost, None)
            }
        };
        let fail = |e: std::io::Error| self.files.fail(e.to_string());
        let (mut log_file, anchor_file) = match open {
            Some(files) => files,
            None => (
                private(OpenOptions::new().create(true).append(true), &self.files.log).map_err(fail)?,
                Anchor::open(&self.files)?,
            ),
        };
        if let Some(why) = lost {
            let lost =
                self.write_entry(&mut log_file, seq, prev, "-", "-", AuditEvent::AnchorLost { why })?;
            (seq, prev) = (lost.seq + 1, lost.hash);
        }
        let entry = self.write_entry(&mut log_file, seq, prev, run, step, event)?;
        Anchor::new(&self.key, entry.seq, entry.hash.clone()).write(&anchor_file, &self.files)?;
        *last = match (FileStamp::of_file(&log_file), FileStamp::of_file(&anchor_file)) {
            (Some(log), Some(anchor)) => {
                Some(Continued { log, anchor, seq: entry.seq, hash: entry.hash, log_file, anchor_file })
            }
            _ => None,
        };
        Ok(())
    }

    /// Appends one keyed line to `file` (the log); the caller holds the lock.
    fn write_entry(
        &self,
        file: &mut File,
        seq: u64,
        prev: String,
        run: &str,
        step: &str,
        event: AuditEvent,
    ) -> Result<AuditEntry, AuditError> {
        let at_ms = crate::base::clock::now_ms() as u64;
        let (entry, mut line) = seal_entry(&self.key, seq, prev, run, step, event, at_ms);
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(|e| self.files.fail(e.to_string()))?;
        Ok(entry)
    }

    /// Where the next record goes (its `seq` and `prev`), read under the
    /// lock: from the last line, or from the anchor when the anchor is
    /// ahead (the tail was cut or replaced: the next record then shows the
    /// gap instead of covering it). A log from before keyed chains (no line
    /// under this key) is moved aside to `<log>.unkeyed.jsonl` and a keyed
    /// chain starts. A log with records but no anchor this key trusts is
    /// continued with an `AnchorLost` record first (the third value says
    /// why), never silently re-anchored.
    fn continue_from(&self) -> Result<(u64, String, Option<String>), AuditError> {
        let read = Anchor::read(&self.files);
        let anchor = read.as_ref().ok().cloned().flatten();
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
            && !self.holds_a_keyed_line()?
        {
            self.move_unkeyed_aside()?;
            return Ok((0, GENESIS.to_string(), None));
        }
        let trusted = anchor.clone().filter(|a| a.is_authentic(&self.key));
        let log_has_records = tail.is_some() || std::fs::metadata(&self.files.log).is_ok_and(|m| m.len() > 0);
        let lost = match (&read, &anchor, &trusted) {
            (_, _, Some(_)) => None,
            _ if !log_has_records => None,
            (Err(e), _, _) => Some(format!("the anchor could not be read: {}", e.message)),
            (Ok(_), Some(_), None) => Some("the anchor does not match the key".to_string()),
            (Ok(_), None, None) => Some("the anchor was missing".to_string()),
        };
        let (seq, prev) = match (tail, trusted) {
            (Some(last), Some(anchor)) if last.seq > anchor.seq => (last.seq + 1, last.hash),
            (_, Some(anchor)) => (anchor.seq + 1, anchor.hash),
            (Some(last), None) => (last.seq + 1, last.hash),
            (None, None) => (0, GENESIS.to_string()),
        };
        Ok((seq, prev, lost))
    }

    /// Whether any line of the log was written under this key: such a log
    /// is never moved aside as one from before keyed chains.
    fn holds_a_keyed_line(&self) -> Result<bool, AuditError> {
        Ok(read_lines(&self.files)?.iter().any(|line| {
            serde_json::from_str::<AuditEntry>(line).is_ok_and(|entry| entry_is_authentic(&self.key, &entry))
        }))
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
        let mut last = self.in_process.lock().unwrap_or_else(|p| p.into_inner());
        *last = None;
        let _lock = self.files.lock(true)?;
        super::verify::verify_locked(&self.files, &self.key).map_err(|mut e| {
            e.message = format!("not pruned, it does not verify: {}", e.message);
            e
        })?;
        let lines = read_lines(&self.files)?;
        let (pruned, cut) = prune_lines(&lines, before_ms, &self.key, &self.files.log)?;
        let Some(cut) = cut else { return Ok(pruned) };
        let mut text = cut.checkpoint;
        text.push('\n');
        for line in &lines[cut.first_kept..] {
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
        Ok(pruned)
    }

    /// The file the log appends to.
    pub fn path(&self) -> &Path {
        &self.files.log
    }
}

/// Where a prune cuts a chain's lines: those before `first_kept` go, and
/// `checkpoint`, standing for the last of them (record `seq`), takes their
/// place as the first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneCut {
    /// The index of the first line kept.
    pub first_kept: usize,
    /// The `seq` of the last record removed, which the checkpoint carries.
    pub seq: u64,
    /// The keyed checkpoint line (no newline).
    pub checkpoint: String,
}

/// What pruning the records written before `before_ms` from `lines` (which
/// verified) removes and keeps, and where it cuts: `None` when nothing is
/// removed. The store applies the cut (a file rewritten, rows deleted), so
/// every store prunes the same way and the rest still verifies.
pub fn prune_lines(
    lines: &[String],
    before_ms: u64,
    key: &AuditKey,
    what: &Path,
) -> Result<(Pruned, Option<PruneCut>), AuditError> {
    let entries = super::verify::parse_lines(lines, what)?;
    let is_record = |e: &AuditEntry| !matches!(e.event, AuditEvent::Checkpoint { .. });
    let cut = entries.iter().position(|e| e.at_ms >= before_ms).unwrap_or(entries.len());
    let kept = entries[cut..].iter().filter(|e| is_record(e)).count();
    let removed = entries[..cut].iter().filter(|e| is_record(e)).count();
    if cut == 0 || removed == 0 {
        return Ok((Pruned { removed: 0, kept }, None));
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
    let mac = checkpoint_mac(key, &checkpoint);
    checkpoint.event = AuditEvent::Checkpoint { pruned_before_ms: before_ms, mac };
    let line = serde_json::to_string(&checkpoint).expect("audit entries serialize");
    Ok((Pruned { removed, kept }, Some(PruneCut { first_kept: cut, seq: last.seq, checkpoint: line })))
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
