//! The chain's arithmetic and the files beside the log: the HMAC of a line,
//! sealing a new line onto the chain, the legacy SHA-256 of unkeyed logs,
//! the keyed anchor, and the lock. Everything but the files works on lines,
//! so any store of lines (the JSONL file, a database table) keeps the same
//! chain.

use super::{AuditEntry, AuditError, AuditEvent, AuditKey};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The `prev` of the first line: a store starting a chain begins there.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The files of one log: the log itself, its anchor, and its lock.
#[derive(Debug, Clone)]
pub(super) struct Files {
    pub(super) log: PathBuf,
    pub(super) anchor: PathBuf,
    pub(super) lock: PathBuf,
}

impl Files {
    pub(super) fn of(log: &Path) -> Self {
        let with = |ext: &str| log.with_extension(ext);
        Self { log: log.to_path_buf(), anchor: with("anchor"), lock: with("lock") }
    }

    pub(super) fn fail(&self, message: impl Into<String>) -> AuditError {
        AuditError { path: self.log.clone(), message: message.into(), found: None }
    }

    /// Takes the log's lock: exclusive to append or prune, shared to
    /// verify. Held until the returned file is dropped.
    pub(super) fn lock(&self, exclusive: bool) -> Result<File, AuditError> {
        let file = private(OpenOptions::new().create(true).truncate(false).write(true), &self.lock)
            .map_err(|e| self.fail(format!("lock {}: {e}", self.lock.display())))?;
        let locked = if exclusive { file.lock() } else { file.lock_shared() };
        locked.map_err(|e| self.fail(format!("lock {}: {e}", self.lock.display())))?;
        Ok(file)
    }
}

/// Opens `path` with `options`, created owner-only.
pub(super) fn private(options: &mut OpenOptions, path: &Path) -> std::io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options.open(path)
}

fn hmac(key: &AuditKey, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(&key.0).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// The entry as JSON without `field` (its own MAC).
fn content_without(entry: &AuditEntry, field: &str) -> String {
    let mut content = serde_json::to_value(entry).expect("audit entries serialize");
    if let Value::Object(map) = &mut content {
        map.remove(field);
    }
    content.to_string()
}

/// HMAC over `prev` and the entry's content (everything but `hash`).
pub(super) fn entry_mac(key: &AuditKey, entry: &AuditEntry) -> String {
    hmac(key, &[b"entry\n", entry.prev.as_bytes(), content_without(entry, "hash").as_bytes()])
}

/// A checkpoint's own MAC: over the line without `mac`.
pub(super) fn checkpoint_mac(key: &AuditKey, entry: &AuditEntry) -> String {
    hmac(key, &[b"checkpoint\n", content_without(entry, "mac").as_bytes()])
}

/// A new record sealed onto the chain after `prev` (the hash of the record
/// at `seq - 1`, or [`GENESIS`]): the entry, and its line as it is stored
/// (no newline). The one place a record gets its HMAC, whatever stores it.
pub fn seal_entry(
    key: &AuditKey,
    seq: u64,
    prev: String,
    run: &str,
    step: &str,
    event: AuditEvent,
    at_ms: u64,
) -> (AuditEntry, String) {
    let mut entry = AuditEntry {
        seq,
        at_ms,
        run: run.to_string(),
        step: step.to_string(),
        event,
        prev,
        hash: String::new(),
    };
    entry.hash = entry_mac(key, &entry);
    let line = serde_json::to_string(&entry).expect("audit entries serialize");
    (entry, line)
}

/// Whether the entry's `hash` is right: its HMAC, or for a checkpoint its
/// own `mac`.
pub(super) fn entry_is_authentic(key: &AuditKey, entry: &AuditEntry) -> bool {
    match &entry.event {
        AuditEvent::Checkpoint { mac, .. } => *mac == checkpoint_mac(key, entry),
        _ => entry.hash == entry_mac(key, entry),
    }
}

/// The plain SHA-256 that logs from before keyed chains carry.
pub(super) fn legacy_hash(entry: &AuditEntry) -> String {
    let mut hasher = Sha256::new();
    hasher.update(entry.prev.as_bytes());
    hasher.update(content_without(entry, "hash").as_bytes());
    hex::encode(hasher.finalize())
}

/// The anchor file's size: its JSON padded with spaces. Written whole at
/// offset 0 in one write no larger than a disk sector, it is replaced all or
/// nothing, as a temporary file renamed over it would be; but a rename over
/// a file makes ext4 write the new file to disk at once (`auto_da_alloc`),
/// which cost ~300 µs of every audited request on a VM's disk.
pub(super) const ANCHOR_BYTES: usize = 512;

/// The last record's `seq` and `hash`, kept beside the lines by their
/// writer in the same step as the record, and keyed: lines that end before
/// it were cut, and without the key it cannot be moved back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anchor {
    /// The last record's sequence number.
    pub seq: u64,
    /// The last record's hash.
    pub hash: String,
    /// HMAC over `seq` and `hash`.
    pub mac: String,
}

impl Anchor {
    /// The keyed anchor for the record `seq` whose hash is `hash`.
    pub fn new(key: &AuditKey, seq: u64, hash: String) -> Self {
        let mac = Self::mac_of(key, seq, &hash);
        Self { seq, hash, mac }
    }

    fn mac_of(key: &AuditKey, seq: u64, hash: &str) -> String {
        hmac(key, &[b"anchor\n", seq.to_string().as_bytes(), b"\n", hash.as_bytes()])
    }

    /// Whether the anchor was made with `key` (not edited, not forged).
    pub fn is_authentic(&self, key: &AuditKey) -> bool {
        self.mac == Self::mac_of(key, self.seq, &self.hash)
    }

    /// The anchor, `None` if there is none; an unreadable one is an error.
    pub(super) fn read(files: &Files) -> Result<Option<Self>, AuditError> {
        match std::fs::read_to_string(&files.anchor) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| files.fail(format!("anchor {}: not an anchor: {e}", files.anchor.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(files.fail(format!("anchor {}: {e}", files.anchor.display()))),
        }
    }

    /// The anchor file, opened (created owner-only) for [`Anchor::write`];
    /// longer text someone else left in it, which would follow what is
    /// written, is cut to [`ANCHOR_BYTES`].
    pub(super) fn open(files: &Files) -> Result<File, AuditError> {
        let fail = |e: std::io::Error| files.fail(format!("anchor {}: {e}", files.anchor.display()));
        let file = private(OpenOptions::new().create(true).truncate(false).write(true), &files.anchor)
            .map_err(fail)?;
        if file.metadata().map_err(fail)?.len() > ANCHOR_BYTES as u64 {
            file.set_len(ANCHOR_BYTES as u64).map_err(fail)?;
        }
        Ok(file)
    }

    /// Replaces the anchor in `file` (the anchor, from [`Anchor::open`]) at
    /// once: one write of [`ANCHOR_BYTES`] at its start, never truncated
    /// first.
    pub(super) fn write(&self, file: &File, files: &Files) -> Result<(), AuditError> {
        let fail = |e: std::io::Error| files.fail(format!("anchor {}: {e}", files.anchor.display()));
        let mut text = serde_json::to_string(self).expect("anchors serialize");
        if text.len() > ANCHOR_BYTES {
            return Err(files.fail(format!("anchor {}: over {ANCHOR_BYTES} bytes", files.anchor.display())));
        }
        text.extend(std::iter::repeat_n(' ', ANCHOR_BYTES - text.len()));
        write_at_start(file, text.as_bytes()).map_err(fail)
    }
}

/// Writes `bytes` at offset 0 of `file` (one `pwrite` on Unix).
fn write_at_start(file: &File, bytes: &[u8]) -> std::io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::FileExt::write_all_at(file, bytes, 0);
    #[cfg(not(unix))]
    {
        use std::io::Write;
        let mut file = file;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(bytes)
    }
}

/// The file's last line, read from its end; `None` for an empty file.
pub(super) fn last_line(file: &mut File) -> std::io::Result<Option<String>> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut chunk = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(chunk);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        let text = tail.strip_suffix(b"\n").unwrap_or(&tail);
        match text.iter().rposition(|b| *b == b'\n') {
            Some(at) => return Ok(Some(String::from_utf8_lossy(&text[at + 1..]).into_owned())),
            None if start == 0 => {
                return Ok((!text.is_empty()).then(|| String::from_utf8_lossy(text).into_owned()));
            }
            None => chunk *= 4,
        }
    }
}
