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

use crate::base::files::create_private_dir;
use std::borrow::Cow;
use std::io::Write;
use std::path::PathBuf;
use wasmtime::CacheStore;

/// A directory of compiled functions, one file per cache key.
#[derive(Debug)]
pub struct FunctionCache {
    dir: PathBuf,
}

impl FunctionCache {
    /// A cache in `dir` (created on first write, owner-only).
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
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
        temp.write_all(&value).is_ok() && temp.persist(&file).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn entries(dir: &std::path::Path) -> usize {
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
        let first = entries(&functions);
        assert!(first >= 100, "every function kept: {first}");
        wasmtime::Module::new(&engine, module(true)).unwrap();
        let added = entries(&functions) - first;
        // The changed function and a few more (Cranelift's keys of some
        // functions differ from one compilation to the next), not the module.
        assert!(
            added >= 1 && added * 4 < first,
            "{added} new entries after {first}: the rest came from the cache"
        );
    }
}
