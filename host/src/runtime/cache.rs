//! Compiled components on disk, keyed by the component's content hash and
//! the engine's compatibility hash, so the next process skips compilation
//! (seconds for JS and Python steps) and a wasmtime upgrade or a different
//! engine configuration never loads a stale artifact.

use crate::base::files::{FileStamp, create_private_dir};
use crate::base::memory::giving_back_while;
use crate::base::units::first_line;
use crate::runtime::error::LoadError;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmtime::Engine;
use wasmtime::component::Component;

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSource {
    /// Compiled now (and written to the disk cache if there is one).
    Compiled,
    /// Read from the disk cache: no compilation.
    Disk,
    /// Already loaded in this process.
    Memory,
}

/// What the vendored wasmtime adds to its compiled artifacts
/// (vendor/README.md), which its version string does not tell apart:
/// changed whenever a patch changes what an artifact holds, so an artifact
/// of another layout is never loaded.
const VENDORED_FORMAT: &str = "stephost-vendor-2: table_function_segments, new_epoch_preserving_all";

/// How often freed memory is given back while a component compiles.
const TRIM_PERIOD: Duration = Duration::from_millis(100);

/// The on-disk cache of compiled components.
pub struct ComponentCache {
    dir: Option<PathBuf>,
    engine_key: String,
}

impl ComponentCache {
    /// A cache in `dir` (created on first write, owner-only), or none.
    pub fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        VENDORED_FORMAT.hash(&mut hasher);
        Self { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    fn compiled_file(&self, hash: &str) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| dir.join(format!("{hash}-{}.cwasm", self.engine_key)))
    }

    /// The compiled component of content `hash`, if the disk cache has one
    /// this engine can load.
    pub fn load_compiled(&self, engine: &Engine, hash: &str) -> Option<Component> {
        let file = self.compiled_file(hash)?;
        // Mapped, not read: only the pages a run touches are read, and the
        // initial memory images are mapped copy-on-write straight from the
        // file (tens of MB for JS and Python steps, 50 ms copied → a few).
        // SAFETY: the file was written by `Component::serialize` of an engine
        // with the same compatibility hash, into the user's own data
        // directory (owner-only), and is only ever replaced by an atomic
        // rename, which leaves an existing mapping intact. A corrupt or
        // foreign file fails validation here and is compiled again. Only a
        // process of the same user truncating the file in place could fault
        // the mapping, and such a process could equally attach to this one.
        unsafe { Component::deserialize_file(engine, &file) }.ok()
    }

    /// The compiled component for `bytes` (whose SHA-256 is `hash`): from
    /// disk if present and loadable, else compiled now. Nothing is written:
    /// the caller stores it ([`ComponentCache::store_compiled`]) only once
    /// it fits the step world, so a rejected component leaves no compiled
    /// code behind.
    pub fn compile(
        &self,
        engine: &Engine,
        path: &Path,
        bytes: &[u8],
        hash: &str,
    ) -> Result<(Component, CacheSource), LoadError> {
        if let Some(component) = self.load_compiled(engine, hash) {
            return Ok((component, CacheSource::Disk));
        }
        // The compiler's freed working memory goes back to the system as
        // it compiles, and all of it once it is done (whether it compiled or not).
        let compiled = giving_back_while(TRIM_PERIOD, || Component::new(engine, bytes));
        let component = compiled.map_err(|e| LoadError::Invalid {
            path: path.to_path_buf(),
            message: first_line(&format!("{e:#}")),
        })?;
        Ok((component, CacheSource::Compiled))
    }

    /// Writes a compiled component of content `hash` to the disk cache (if
    /// there is one).
    pub fn store_compiled(&self, hash: &str, component: &Component) -> Result<(), LoadError> {
        match self.compiled_file(hash) {
            Some(file) => self.store(component, &file),
            None => Ok(()),
        }
    }

    /// Removes the compiled component of content `hash` (a deleted step).
    pub fn forget_compiled(&self, hash: &str) {
        if let Some(file) = self.compiled_file(hash) {
            let _ = std::fs::remove_file(file);
        }
    }

    /// The content hash `path` had when it was last loaded, if the file is
    /// unchanged since (same device, inode, size, modification and change
    /// times): a restarted host then skips reading and hashing it.
    pub fn known_hash(&self, path: &Path, stamp: &FileStamp) -> Option<String> {
        let file = self.hash_file(path)?;
        let text = std::fs::read_to_string(file).ok()?;
        let (seen, hash) = text.split_once('\n')?;
        (seen == stamp.as_text() && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| hash.to_string())
    }

    /// Notes that `path` has content `hash`, read while it had stamp
    /// `before`. Nothing is noted if the file changed since (it may have
    /// been rewritten while it was read or compiled) or changed so recently
    /// that a rewrite within the clock's resolution could go unseen.
    /// Best effort: a failure only means hashing it again next time.
    pub fn remember_hash(&self, path: &Path, before: &FileStamp, hash: &str) {
        let (Some(file), Some(now)) = (self.hash_file(path), FileStamp::of(path)) else { return };
        if now != *before || now.is_recent() {
            return;
        }
        let Some(dir) = file.parent() else { return };
        if create_private_dir(dir).is_err() {
            return;
        }
        if let Ok(mut temp) = tempfile::NamedTempFile::new_in(dir)
            && temp.write_all(format!("{}\n{hash}", now.as_text()).as_bytes()).is_ok()
        {
            let _ = temp.persist(file);
        }
    }

    /// Forgets the noted hash of `path` (a temporary file about to go).
    pub fn forget_hash(&self, path: &Path) {
        if let Some(file) = self.hash_file(path) {
            let _ = std::fs::remove_file(file);
        }
    }

    /// Where the hash of the file at `path` (made absolute) is noted.
    fn hash_file(&self, path: &Path) -> Option<PathBuf> {
        use sha2::Digest;
        let absolute = std::path::absolute(path).ok()?;
        let key = sha2::Sha256::digest(absolute.as_os_str().as_encoded_bytes());
        Some(self.dir.as_ref()?.join("sources").join(hex::encode(&key[..16])))
    }

    fn store(&self, component: &Component, file: &Path) -> Result<(), LoadError> {
        let fail = |message: String| LoadError::Cache { path: file.to_path_buf(), message };
        let image = compiled_image(component);
        let dir = file.parent().expect("cache files live in a directory");
        create_private_dir(dir).map_err(|e| fail(format!("cannot create the directory: {e}")))?;
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail(e.to_string()))?;
        temp.write_all(image).map_err(|e| fail(e.to_string()))?;
        temp.persist(file).map_err(|e| fail(e.to_string()))?;
        Ok(())
    }
}

/// The bytes `Component::serialize` would return, without copying them: the
/// compiled image of a JS or Python step is 35–50 MB, and a copy of it was
/// the peak of a compile.
fn compiled_image(component: &Component) -> &[u8] {
    let range = component.image_range();
    // SAFETY: `image_range` is the component's whole compiled image, mapped
    // readable for as long as the component lives (the returned slice
    // borrows it), and never written after the component is published.
    unsafe { std::slice::from_raw_parts(range.start, range.end as usize - range.start as usize) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_written_to_the_cache_is_what_serialize_returns() {
        let engine = Engine::default();
        let component = Component::new(
            &engine,
            r#"(component
                (core module (func (export "f") (result i32) i32.const 7)
                    (memory 1) (data (i32.const 8) "a data segment")))"#,
        )
        .unwrap();
        let serialized = component.serialize().unwrap();
        assert!(!serialized.is_empty());
        assert_eq!(compiled_image(&component), &serialized[..]);
    }
}
