//! Compiled components on disk, keyed by the component's content hash and
//! the engine's compatibility hash, so the next process skips compilation
//! (seconds for JS and Python steps) and a wasmtime upgrade or a different
//! engine configuration never loads a stale artifact.

use crate::error::LoadError;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
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
        Self { dir, engine_key: format!("{:016x}", hasher.finish()) }
    }

    /// The compiled component for `bytes` (whose SHA-256 is `hash`): from
    /// disk if present and loadable, else compiled and stored.
    pub fn load(
        &self,
        engine: &Engine,
        path: &Path,
        bytes: &[u8],
        hash: &str,
    ) -> Result<(Component, CacheSource), LoadError> {
        let cached = self.dir.as_ref().map(|dir| dir.join(format!("{hash}-{}.cwasm", self.engine_key)));
        if let Some(bytes) = cached.as_ref().and_then(|file| std::fs::read(file).ok()) {
            // Read into memory rather than mapping the file: a cache file
            // truncated or replaced by anyone while mapped would SIGBUS the
            // whole host.
            // SAFETY: the bytes were written by `Component::serialize` of an
            // engine with the same compatibility hash, into the user's own
            // data directory (created owner-only). A corrupt or foreign file
            // fails validation here and is recompiled below.
            if let Ok(component) = unsafe { Component::deserialize(engine, &bytes) } {
                return Ok((component, CacheSource::Disk));
            }
        }
        let component = Component::new(engine, bytes).map_err(|e| LoadError::Invalid {
            path: path.to_path_buf(),
            message: first_line(&format!("{e:#}")),
        })?;
        if let Some(file) = cached {
            self.store(&component, &file)?;
        }
        Ok((component, CacheSource::Compiled))
    }

    fn store(&self, component: &Component, file: &Path) -> Result<(), LoadError> {
        let fail = |message: String| LoadError::Cache { path: file.to_path_buf(), message };
        let serialized = component.serialize().map_err(|e| fail(e.to_string()))?;
        let dir = file.parent().expect("cache files live in a directory");
        create_private_dir(dir).map_err(|e| fail(format!("cannot create the directory: {e}")))?;
        let mut temp = tempfile::NamedTempFile::new_in(dir).map_err(|e| fail(e.to_string()))?;
        temp.write_all(&serialized).map_err(|e| fail(e.to_string()))?;
        temp.persist(file).map_err(|e| fail(e.to_string()))?;
        Ok(())
    }
}

/// Creates `dir` and its parents, owner-only on Unix.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

pub(crate) fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or_default().to_string()
}
