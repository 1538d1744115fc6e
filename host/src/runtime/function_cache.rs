//! Compiled functions on disk, for wasmtime's incremental compilation: a
//! JavaScript or Python step is the same StarlingMonkey or CPython engine
//! around a little user code, so a rebuilt step compiles only the functions
//! that changed (seconds become a fraction of one).
//!
//! Cranelift keys each function by a SHA-256 of everything that decides its
//! machine code (its IR, the target and the compiler's flags and version)
//! and checks a version marker on every hit, so an entry can only ever
//! stand for the code the compiler would produce. Entries are written once
//! (temp file, atomic rename) into the owner-only cache directory; a
//! corrupt one fails to decode and the function is compiled again.
//!
//! The cache is bounded: every compilation adds the functions it did not
//! find (a refused upload's too), so once the directory holds more than its
//! cap the entries least recently written are removed down to half of it.

use crate::base::files::create_private_dir;
use std::borrow::Cow;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;
use wasmtime::CacheStore;

/// How much compiled code the cache keeps by default: the functions of
/// both language engines (~250 MB) several times over.
pub const DEFAULT_CAP_BYTES: u64 = 1 << 30;

/// A directory of compiled functions, one file per cache key.
#[derive(Debug)]
pub struct FunctionCache {
    dir: PathBuf,
    cap: u64,
    /// Bytes in the directory, counted on the first insert of this process
    /// (runs that compile nothing never walk the directory).
    used: Mutex<Option<u64>>,
}

impl FunctionCache {
    /// A cache in `dir` (created on first write, owner-only) of at most
    /// [`DEFAULT_CAP_BYTES`].
    pub fn new(dir: PathBuf) -> Self {
        Self::with_cap(dir, DEFAULT_CAP_BYTES)
    }

    /// A cache in `dir` of at most `cap` bytes.
    pub fn with_cap(dir: PathBuf, cap: u64) -> Self {
        Self { dir, cap, used: Mutex::new(None) }
    }

    /// Counts `added` bytes in; past the cap, removes the oldest entries
    /// down to half of it.
    fn account(&self, added: u64) {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let total = used.get_or_insert_with(|| entries(&self.dir).iter().map(|(_, size, _)| size).sum());
        *total += added;
        if *total > self.cap {
            *total = trim(&self.dir, self.cap / 2);
        }
    }

    /// The file of `key`: fanned out over 256 directories by its first byte.
    fn file(&self, key: &[u8]) -> PathBuf {
        let name = hex::encode(key);
        let (shard, rest) = name.split_at(2.min(name.len()));
        self.dir.join(shard).join(if rest.is_empty() { "_" } else { rest })
    }
}

impl CacheStore for FunctionCache {
    fn get(&self, key: &[u8]) -> Option<Cow<'_, [u8]>> {
        std::fs::read(self.file(key)).ok().map(Cow::Owned)
    }

    fn insert(&self, key: &[u8], value: Vec<u8>) -> bool {
        let file = self.file(key);
        let Some(dir) = file.parent() else { return false };
        if create_private_dir(dir).is_err() {
            return false;
        }
        let Ok(mut temp) = tempfile::NamedTempFile::new_in(dir) else { return false };
        let stored = temp.write_all(&value).is_ok() && temp.persist(&file).is_ok();
        if stored {
            self.account(value.len() as u64);
        }
        stored
    }
}

/// Every entry below `dir`: path, size, when written.
fn entries(dir: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let Ok(shards) = std::fs::read_dir(dir) else { return Vec::new() };
    shards
        .flatten()
        .filter_map(|shard| std::fs::read_dir(shard.path()).ok())
        .flat_map(|files| files.flatten())
        .filter_map(|file| {
            let meta = file.metadata().ok()?;
            Some((file.path(), meta.len(), meta.modified().unwrap_or(SystemTime::UNIX_EPOCH)))
        })
        .collect()
}

/// Removes the oldest entries below `dir` until at most `keep` bytes are
/// left; returns the bytes left.
fn trim(dir: &Path, keep: u64) -> u64 {
    let mut all = entries(dir);
    all.sort_by_key(|(_, _, written)| std::cmp::Reverse(*written));
    let mut left = 0;
    for (path, size, _) in all {
        if left + size <= keep {
            left += size;
        } else {
            let _ = std::fs::remove_file(path);
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_its_cap_the_cache_keeps_the_newest_half() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::with_cap(dir.path().to_path_buf(), 1000);
        for key in 0u8..12 {
            assert!(cache.insert(&[key, 1], vec![0; 100]));
            // Distinct write times, oldest first.
            let file = cache.file(&[key, 1]);
            let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000 + u64::from(key));
            std::fs::File::options().write(true).open(&file).unwrap().set_modified(at).unwrap();
        }
        let total: u64 = entries(dir.path()).iter().map(|(_, size, _)| size).sum();
        assert!(total <= 1000, "bounded: {total} bytes");
        assert!(cache.get(&[11, 1]).is_some(), "the newest entry is kept");
        assert!(cache.get(&[0, 1]).is_none(), "the oldest entries went first");
    }

    #[test]
    fn an_entry_is_read_back_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FunctionCache::new(dir.path().join("functions"));
        assert!(cache.get(b"\x01\x02").is_none());
        assert!(cache.insert(b"\x01\x02", b"code".to_vec()));
        assert_eq!(cache.get(b"\x01\x02").as_deref(), Some(&b"code"[..]));
        assert!(cache.get(b"\x01\x03").is_none(), "another key");
    }

    /// A module of 100 functions; `changed` alters the body of one.
    fn module(changed: bool) -> String {
        let mut wat = String::from("(module");
        for i in 0..100 {
            let constant = if changed && i == 7 { 1_000_000 } else { i * 3 };
            wat.push_str(&format!(
                " (func (export \"f{i}\") (param i32) (result i32) local.get 0 i32.const {constant} i32.add i32.const {i} i32.mul)"
            ));
        }
        wat.push(')');
        wat
    }

    fn count_entries(dir: &std::path::Path) -> usize {
        std::fs::read_dir(dir)
            .map(|shards| {
                shards.flatten().map(|s| std::fs::read_dir(s.path()).map_or(0, |f| f.count())).sum()
            })
            .unwrap_or(0)
    }

    #[test]
    fn a_module_with_one_changed_function_compiles_only_that_function() {
        let dir = tempfile::tempdir().unwrap();
        let functions = dir.path().join("functions");
        let engine = crate::runtime::engine::build_engine(1, Some(functions.clone())).unwrap();
        wasmtime::Module::new(&engine, module(false)).unwrap();
        let first = count_entries(&functions);
        assert!(first >= 100, "every function kept: {first}");
        wasmtime::Module::new(&engine, module(true)).unwrap();
        let added = count_entries(&functions) - first;
        // The changed function and a few more (Cranelift's keys of some
        // functions differ from one compilation to the next), not the module.
        assert!(
            added >= 1 && added * 4 < first,
            "{added} new entries after {first}: the rest came from the cache"
        );
    }
}
