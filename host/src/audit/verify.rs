//! Checking a log: every line's HMAC, the order and continuity of the
//! sequence numbers, each line's link to the one before, and the end
//! against the anchor. A finding names its kind.

use super::chain::{Anchor, Files, GENESIS, entry_is_authentic, legacy_hash};
use super::log::read_lines;
use super::{AuditEntry, AuditError, AuditEvent, AuditKey};
use std::path::Path;

/// Which kind of tampering a broken log shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tamper {
    /// A line's content, or the anchor, does not match its HMAC; or a line
    /// was replaced by one from another chain.
    Edit,
    /// Records are missing from the head or the middle.
    Removal,
    /// Records are out of order or repeated.
    Reorder,
    /// Records are missing from the end: the log ends before its anchor.
    Truncation,
    /// The log predates keyed chains: plain SHA-256, no anchor. It cannot
    /// be checked against the key; the next write moves it aside.
    Unkeyed,
    /// The anchor is missing, so a cut at the end cannot be seen.
    MissingAnchor,
    /// A writer found the anchor missing or wrong and said so in the chain:
    /// records may have been cut from the end before that point.
    AnchorLost,
}

impl std::fmt::Display for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tamper::Edit => "edit",
            Tamper::Removal => "removal",
            Tamper::Reorder => "reorder",
            Tamper::Truncation => "truncation",
            Tamper::Unkeyed => "unkeyed",
            Tamper::MissingAnchor => "missing anchor",
            Tamper::AnchorLost => "anchor lost",
        })
    }
}

/// Reads every entry; a line that does not parse is an error naming it.
pub fn read_entries(path: &Path) -> Result<Vec<AuditEntry>, AuditError> {
    parse_lines(&read_lines(&Files::of(path))?, path)
}

/// The entries of `lines`, in order; a line that does not parse is an
/// error naming it (`what`: where the lines came from).
pub fn parse_lines(lines: &[String], what: &Path) -> Result<Vec<AuditEntry>, AuditError> {
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| AuditError {
                path: what.to_path_buf(),
                message: format!("hash chain broken at line {}: not an audit entry: {e}", i + 1),
                found: Some(Tamper::Edit),
            })
        })
        .collect()
}

/// Checks the chain under a shared lock (so no append is half seen):
/// `Ok(n)` with the number of records (a checkpoint not counted), or the
/// first problem, its kind in `found`.
pub fn verify(path: &Path, key: &AuditKey) -> Result<usize, AuditError> {
    let files = Files::of(path);
    if !files.log.exists() && !files.anchor.exists() {
        return Ok(0);
    }
    let _lock = files.lock(false)?;
    verify_locked(&files, key)
}

/// [`verify`] for a caller that holds the lock.
pub(super) fn verify_locked(files: &Files, key: &AuditKey) -> Result<usize, AuditError> {
    let lines = read_lines(files)?;
    let anchor = match Anchor::read(files) {
        Ok(anchor) => anchor,
        Err(e) => {
            // A line that does not parse is named first, as it always was.
            parse_lines(&lines, &files.log)?;
            return Err(found(&files.log, Tamper::Edit, e.message));
        }
    };
    verify_lines(&lines, anchor.as_ref(), key, &files.log, &files.anchor.display().to_string()).map_err(
        |mut e| {
            if e.found == Some(Tamper::Unkeyed) {
                let aside = files.log.with_extension("unkeyed.jsonl");
                e.message = format!(
                    "{}; the next command that writes to it moves it to {} and starts a keyed chain",
                    e.message,
                    aside.display()
                );
            }
            e
        },
    )
}

/// Checks `lines`, in their stored order, against `anchor` (the keyed last
/// `seq` and `hash` their writer kept): every line's HMAC, the order and
/// continuity of the sequence numbers, each line's link to the one before,
/// and the end. `Ok(n)` with the number of records (a checkpoint not
/// counted), or the first problem, its kind in `found`. `what` names the
/// lines and `anchor_name` the anchor in messages, so any store of lines
/// (a file, a database table) is checked the same way.
pub fn verify_lines(
    lines: &[String],
    anchor: Option<&Anchor>,
    key: &AuditKey,
    what: &Path,
    anchor_name: &str,
) -> Result<usize, AuditError> {
    let entries = parse_lines(lines, what)?;
    let broken = |kind: Tamper, i: usize, message: String| {
        found(what, kind, format!("hash chain broken at line {} (seq {}): {message}", i + 1, entries[i].seq))
    };
    if anchor.is_none()
        && let Some(first) = entries.first()
        && first.hash == legacy_hash(first)
    {
        return Err(found(
            what,
            Tamper::Unkeyed,
            "the log predates keyed chains (plain SHA-256, no anchor), so it cannot be checked against the key"
                .into(),
        ));
    }
    if let Some(anchor) = anchor
        && !anchor.is_authentic(key)
    {
        return Err(found(
            what,
            Tamper::Edit,
            format!(
                "the anchor {anchor_name} does not match the key: it was edited, or the master key is not the \
                 one that wrote the log"
            ),
        ));
    }
    for (i, entry) in entries.iter().enumerate() {
        // The HMAC covers the record; the line must be exactly that record,
        // with nothing added beside it.
        if serde_json::to_string(entry).ok().as_deref() != Some(lines[i].as_str()) {
            return Err(broken(
                Tamper::Edit,
                i,
                "the line holds text beside its record: the line was edited".into(),
            ));
        }
        if !entry_is_authentic(key, entry) {
            return Err(broken(
                Tamper::Edit,
                i,
                "its content does not match its HMAC: the line was edited (or written without the key)"
                    .into(),
            ));
        }
        if i > 0 && matches!(entry.event, AuditEvent::Checkpoint { .. }) {
            return Err(broken(Tamper::Reorder, i, "a checkpoint can only be the first line".into()));
        }
    }
    let lost = entries.iter().enumerate().find_map(|(i, e)| match &e.event {
        AuditEvent::AnchorLost { why } => Some((i, why)),
        _ => None,
    });
    if let Some((i, why)) = lost {
        return Err(broken(
            Tamper::AnchorLost,
            i,
            format!("a writer found that {why}: records may have been cut from the end before it"),
        ));
    }
    for i in 1..entries.len() {
        if entries[i].seq <= entries[i - 1].seq {
            let message =
                format!("it comes after seq {}: lines were reordered or repeated", entries[i - 1].seq);
            return Err(broken(Tamper::Reorder, i, message));
        }
    }
    let checkpoint = entries.first().is_some_and(|e| matches!(e.event, AuditEvent::Checkpoint { .. }));
    if let Some(first) = entries.first()
        && !checkpoint
        && first.seq != 0
    {
        return Err(broken(
            Tamper::Removal,
            0,
            format!("the log starts at seq {}: lines were removed", first.seq),
        ));
    }
    for i in 1..entries.len() {
        if entries[i].seq != entries[i - 1].seq + 1 {
            let message = format!(
                "seq {} to {} are missing: lines were removed",
                entries[i - 1].seq + 1,
                entries[i].seq - 1
            );
            return Err(broken(Tamper::Removal, i, message));
        }
    }
    let mut prev = GENESIS.to_string();
    for (i, entry) in entries.iter().enumerate() {
        if !(i == 0 && checkpoint) && entry.prev != prev {
            return Err(broken(
                Tamper::Edit,
                i,
                "it does not chain to the line before: a line was replaced by one from another chain".into(),
            ));
        }
        prev = entry.hash.clone();
    }
    match (anchor, entries.last()) {
        (Some(anchor), None) => {
            let message =
                format!("the log is empty but its anchor says it reached seq {}: it was cut", anchor.seq);
            return Err(found(what, Tamper::Truncation, format!("hash chain broken at the end: {message}")));
        }
        (Some(anchor), Some(last)) if last.seq < anchor.seq => {
            let message = format!(
                "the log ends at seq {} but its anchor says seq {}: {} cut from the end",
                last.seq,
                anchor.seq,
                match anchor.seq - last.seq {
                    1 => "1 record was".to_string(),
                    n => format!("{n} records were"),
                }
            );
            return Err(found(what, Tamper::Truncation, format!("hash chain broken at the end: {message}")));
        }
        (Some(anchor), Some(last)) if last.seq == anchor.seq && last.hash != anchor.hash => {
            return Err(broken(
                Tamper::Edit,
                entries.len() - 1,
                "it is not the last record its anchor names: it was replaced".into(),
            ));
        }
        (None, Some(_)) => {
            let message = format!("the anchor {anchor_name} is missing, so a cut at the end cannot be seen");
            return Err(found(what, Tamper::MissingAnchor, message));
        }
        _ => {}
    }
    Ok(entries.len() - usize::from(checkpoint))
}

fn found(what: &Path, kind: Tamper, message: String) -> AuditError {
    AuditError { path: what.to_path_buf(), message, found: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditLog;
    use crate::audit::chain::legacy_hash;
    use std::path::PathBuf;

    fn key() -> AuditKey {
        AuditKey::new([3; 32])
    }

    fn given(name: &str) -> AuditEvent {
        AuditEvent::SecretEnv { name: name.into() }
    }

    fn log_with(n: usize) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, key()).unwrap();
        for i in 0..n {
            log.append("run1", "step", given(&format!("V{i}"))).unwrap();
        }
        (dir, path)
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).unwrap().lines().map(String::from).collect()
    }

    fn write(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.join("\n") + "\n").unwrap();
    }

    fn found(path: &Path) -> (Option<Tamper>, String) {
        let error = verify(path, &key()).unwrap_err();
        (error.found, error.message)
    }

    #[test]
    fn an_intact_log_verifies_and_reopening_continues_the_chain() {
        let (_dir, path) = log_with(3);
        AuditLog::open(&path, key()).unwrap().append("run2", "s", given("again")).unwrap();
        assert_eq!(verify(&path, &key()).unwrap(), 4);
    }

    #[test]
    fn two_writers_on_one_file_keep_one_chain() {
        let (_dir, path) = log_with(1);
        let (a, b) = (AuditLog::open(&path, key()).unwrap(), AuditLog::open(&path, key()).unwrap());
        for i in 0..5 {
            a.append("a", "s", given(&format!("A{i}"))).unwrap();
            b.append("b", "s", given(&format!("B{i}"))).unwrap();
        }
        assert_eq!(verify(&path, &key()).unwrap(), 11);
    }

    #[test]
    fn another_key_does_not_verify_the_log() {
        let (_dir, path) = log_with(2);
        let error = verify(&path, &AuditKey::new([4; 32])).unwrap_err();
        assert_eq!(error.found, Some(Tamper::Edit), "{}", error.message);
    }

    #[test]
    fn a_line_spliced_in_from_another_chain_under_the_same_key_is_caught() {
        // Every line authentic, the sequence whole, the anchor matching:
        // only each line's link to the one before can tell.
        let (_a, path) = log_with(4);
        let other = tempfile::tempdir().unwrap();
        let other = other.path().join("audit.jsonl");
        let log = AuditLog::open(&other, key()).unwrap();
        for i in 0..4 {
            log.append("run2", "step", given(&format!("V{i}"))).unwrap();
        }
        let mut spliced = lines(&path);
        spliced[1] = lines(&other)[1].clone();
        write(&path, &spliced);
        let (kind, message) = found(&path);
        assert_eq!(kind, Some(Tamper::Edit), "{message}");
        assert!(message.contains("line 2") && message.contains("does not chain"), "{message}");
    }

    #[test]
    fn a_cut_tail_stays_visible_after_the_next_write() {
        let (_dir, path) = log_with(5);
        let mut cut = lines(&path);
        cut.truncate(2);
        write(&path, &cut);
        assert_eq!(found(&path).0, Some(Tamper::Truncation));
        AuditLog::open(&path, key()).unwrap().append("run2", "s", given("after")).unwrap();
        let (kind, message) = found(&path);
        assert_eq!(kind, Some(Tamper::Removal), "{message}");
        assert!(message.contains("seq 2 to 4 are missing"), "{message}");
    }

    #[test]
    fn a_writer_notices_a_cut_tail_or_a_deleted_anchor_between_its_own_appends() {
        // The same open log throughout: what it remembers of its last
        // append must not hide what happened to the files since.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&path, key()).unwrap();
        for i in 0..5 {
            log.append("run1", "step", given(&format!("V{i}"))).unwrap();
        }
        let mut cut = lines(&path);
        cut.truncate(2);
        write(&path, &cut);
        log.append("run1", "step", given("after the cut")).unwrap();
        let (kind, message) = found(&path);
        assert_eq!(kind, Some(Tamper::Removal), "{message}");

        let (_dir, path) = log_with(0);
        let log = AuditLog::open(&path, key()).unwrap();
        log.append("run1", "step", given("first")).unwrap();
        std::fs::remove_file(path.with_extension("anchor")).unwrap();
        log.append("run1", "step", given("after the anchor went")).unwrap();
        let (kind, message) = found(&path);
        assert_eq!(kind, Some(Tamper::AnchorLost), "{message}");
    }

    #[test]
    fn the_anchor_is_rewritten_in_place_and_longer_text_left_in_it_is_cut() {
        use std::os::unix::fs::MetadataExt;
        let (dir, path) = log_with(1);
        let anchor = dir.path().join("audit.anchor");
        let inode = std::fs::metadata(&anchor).unwrap().ino();
        let log = AuditLog::open(&path, key()).unwrap();
        log.append("run1", "step", given("second")).unwrap();
        // Not a new file renamed over it: ext4 flushes those to disk at once.
        assert_eq!(std::fs::metadata(&anchor).unwrap().ino(), inode);
        assert_eq!(verify(&path, &key()).unwrap(), 2);

        std::fs::write(&anchor, "x".repeat(3000)).unwrap();
        log.append("run1", "step", given("after garbage")).unwrap();
        assert_eq!(std::fs::metadata(&anchor).unwrap().len(), 512);
        assert_eq!(found(&path).0, Some(Tamper::AnchorLost), "the garbage was noticed");
        log.append("run1", "step", given("and after that")).unwrap();
        assert_eq!(found(&path).0, Some(Tamper::AnchorLost), "and stays on record");
        let last: AuditEntry = serde_json::from_str(lines(&path).last().unwrap()).unwrap();
        assert_eq!(Anchor::read(&crate::audit::chain::Files::of(&path)).unwrap().unwrap().seq, last.seq);
    }

    #[test]
    fn a_cut_tail_with_its_anchor_deleted_or_forged_stays_visible_after_the_next_write() {
        for anchor in ["deleted", "forged", "garbage"] {
            let (dir, path) = log_with(5);
            let mut cut = lines(&path);
            cut.truncate(2);
            write(&path, &cut);
            let anchor_file = dir.path().join("audit.anchor");
            match anchor {
                "deleted" => std::fs::remove_file(&anchor_file).unwrap(),
                "forged" => {
                    let last: AuditEntry = serde_json::from_str(&cut[1]).unwrap();
                    let forged = Anchor::new(&AuditKey::new([9; 32]), last.seq, last.hash);
                    std::fs::write(&anchor_file, serde_json::to_string(&forged).unwrap()).unwrap();
                }
                _ => std::fs::write(&anchor_file, "not an anchor").unwrap(),
            }
            AuditLog::open(&path, key()).unwrap().append("run2", "s", given("after")).unwrap();
            let (kind, message) = found(&path);
            assert_eq!(kind, Some(Tamper::AnchorLost), "{anchor}: {message}");
        }
    }

    #[test]
    fn a_keyed_log_is_never_moved_aside_as_an_old_one() {
        let (dir, path) = log_with(3);
        // Anchor gone and a plain-SHA-256 line added at the end, as if the
        // log predated keyed chains: the next write must not start afresh.
        let mut forged = read_entries(&path).unwrap().pop().unwrap();
        forged.seq += 1;
        forged.prev = forged.hash.clone();
        forged.hash = legacy_hash(&forged);
        let mut all = lines(&path);
        all.push(serde_json::to_string(&forged).unwrap());
        write(&path, &all);
        std::fs::remove_file(dir.path().join("audit.anchor")).unwrap();
        AuditLog::open(&path, key()).unwrap().append("run2", "s", given("after")).unwrap();
        assert!(!dir.path().join("audit.unkeyed.jsonl").exists(), "the keyed log was moved aside");
        assert_eq!(lines(&path)[..4], all[..], "the keyed records stay where verify reads them");
        assert!(verify(&path, &key()).is_err());
    }

    #[test]
    fn text_added_beside_a_record_on_its_line_is_caught() {
        let (_dir, path) = log_with(2);
        let mut all = lines(&path);
        all[0] = all[0].replacen('{', "{\"note\":\"added\",", 1);
        write(&path, &all);
        let (kind, message) = found(&path);
        assert_eq!(kind, Some(Tamper::Edit), "{message}");
    }

    #[test]
    fn a_log_from_before_keyed_chains_is_named_and_moved_aside_on_the_next_write() {
        let (dir, path) = log_with(3);
        // Rewrite it as the unkeyed version wrote it: plain SHA-256, no anchor.
        let mut prev = crate::audit::chain::GENESIS.to_string();
        let old: Vec<String> = read_entries(&path)
            .unwrap()
            .into_iter()
            .map(|mut entry| {
                entry.prev = prev.clone();
                entry.hash = legacy_hash(&entry);
                prev = entry.hash.clone();
                serde_json::to_string(&entry).unwrap()
            })
            .collect();
        write(&path, &old);
        std::fs::remove_file(dir.path().join("audit.anchor")).unwrap();
        let (kind, message) = found(&path);
        assert_eq!(kind, Some(Tamper::Unkeyed), "{message}");
        assert!(message.contains("predates keyed chains"), "{message}");
        AuditLog::open(&path, key()).unwrap().append("run2", "s", given("new")).unwrap();
        assert_eq!(verify(&path, &key()).unwrap(), 1);
        assert_eq!(lines(&dir.path().join("audit.unkeyed.jsonl")), old, "the old log is kept as it was");
    }

    #[test]
    fn pruning_keeps_the_newer_records_behind_a_checkpoint_that_verifies() {
        let (_dir, path) = log_with(3);
        // Wait for the clock to move on, so the cut falls between records.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let last = read_entries(&path).unwrap().last().unwrap().at_ms;
        while crate::base::clock::now_ms() as u64 <= last {
            assert!(std::time::Instant::now() < deadline, "the clock does not move");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let log = AuditLog::open(&path, key()).unwrap();
        let cut = crate::base::clock::now_ms() as u64;
        for i in 0..2 {
            log.append("run2", "s", given(&format!("N{i}"))).unwrap();
        }
        assert_eq!(log.prune(cut).unwrap(), crate::audit::Pruned { removed: 3, kept: 2 });
        let entries = read_entries(&path).unwrap();
        assert!(matches!(entries[0].event, AuditEvent::Checkpoint { .. }));
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), [2, 3, 4]);
        assert_eq!(verify(&path, &key()).unwrap(), 2);
        assert_eq!(log.prune(cut).unwrap().removed, 0, "nothing more to prune");
        log.append("run3", "s", given("later")).unwrap();
        assert_eq!(verify(&path, &key()).unwrap(), 3);
    }

    #[test]
    fn a_log_that_does_not_verify_is_not_pruned() {
        let (_dir, path) = log_with(3);
        let mut changed = lines(&path);
        changed.remove(1);
        write(&path, &changed);
        let error = AuditLog::open(&path, key()).unwrap().prune(u64::MAX).unwrap_err();
        assert!(error.message.starts_with("not pruned, it does not verify"), "{}", error.message);
        assert_eq!(lines(&path), changed);
    }
}
