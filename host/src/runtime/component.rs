//! Loading a file as a step component: check what it is, compile it (or
//! take it from the cache), link it against the step world once, and
//! describe it for `stephost inspect`.

use crate::base::units::first_line;
use crate::runtime::bindings::StepPre;
use crate::runtime::cache::{CacheSource, ComponentCache};
use crate::runtime::error::LoadError;
use crate::runtime::state::StepState;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};

/// A component ready to run: compiled, linked, and checked against the
/// step world. Its `StepPre` (an `InstancePre`) is reused for every run.
pub struct StepComponent {
    /// The file it was loaded from.
    pub path: PathBuf,
    /// SHA-256 of the file, hex: its identity in caches and records.
    pub hash: String,
    /// Where the compiled code came from.
    pub source: CacheSource,
    pub(crate) pre: StepPre<StepState>,
}

/// What a component imports and exports, and whether it fits the step world.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComponentReport {
    /// The file inspected.
    pub path: PathBuf,
    /// SHA-256 of the file, hex.
    pub hash: String,
    /// Size of the file, in bytes.
    pub size_bytes: usize,
    /// Import names to what they are; JSON `{"name": "kind", …}`.
    #[serde(serialize_with = "crate::base::wire::pairs_as_object::serialize")]
    pub imports: Vec<(String, String)>,
    /// Export names to what they are; JSON `{"name": "kind", …}`.
    #[serde(serialize_with = "crate::base::wire::pairs_as_object::serialize")]
    pub exports: Vec<(String, String)>,
    /// `None` if it fits; else the one-line reason it does not.
    pub misfit: Option<String>,
}

/// What the first bytes say a file is.
enum Kind {
    Component,
    CoreModule,
    UnknownVersion,
    NotWasm,
}

fn kind_of(bytes: &[u8]) -> Kind {
    // Binary format header: `\0asm` then a 4-byte version/layer field:
    // 01 00 00 00 for a core module, 0d 00 01 00 for a component.
    match bytes {
        [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, ..] => Kind::CoreModule,
        [0x00, 0x61, 0x73, 0x6d, _, _, 0x01, 0x00, ..] => Kind::Component,
        [0x00, 0x61, 0x73, 0x6d, ..] => Kind::UnknownVersion,
        _ => Kind::NotWasm,
    }
}

/// Reads a file and checks it is a component (not garbage, not a core module).
pub(crate) fn read_component(path: &Path) -> Result<(Vec<u8>, String), LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Read { path: path.to_path_buf(), source })?;
    let hash = check_component(path, &bytes)?;
    Ok((bytes, hash))
}

/// Checks `bytes` (named `path` in errors) are a component; their SHA-256.
pub(crate) fn check_component(path: &Path, bytes: &[u8]) -> Result<String, LoadError> {
    let path_buf = || path.to_path_buf();
    match kind_of(bytes) {
        Kind::Component => {}
        Kind::CoreModule => return Err(LoadError::CoreModule { path: path_buf() }),
        Kind::NotWasm => return Err(LoadError::NotWasm { path: path_buf() }),
        Kind::UnknownVersion => {
            return Err(LoadError::Invalid {
                path: path_buf(),
                message: "unknown WebAssembly binary version".into(),
            });
        }
    }
    Ok(hex::encode(Sha256::digest(bytes)))
}

/// Compiles (or loads from cache) and links a component against the step
/// world: a missing import or a missing/mistyped `run` is a `WrongWorld`.
pub(crate) fn load(
    engine: &Engine,
    linker: &Linker<StepState>,
    cache: &ComponentCache,
    path: &Path,
    bytes: &[u8],
    hash: String,
) -> Result<StepComponent, LoadError> {
    let (step, component) = compile_unstored(engine, linker, cache, path, bytes, hash)?;
    if step.source == CacheSource::Compiled {
        cache.store_compiled(&step.hash, &component)?;
    }
    Ok(step)
}

/// [`load`] without writing the compiled code to the disk cache: the
/// component, checked against the step world, and its compiled code for
/// [`ComponentCache::store_compiled`] once the caller keeps it.
pub(crate) fn compile_unstored(
    engine: &Engine,
    linker: &Linker<StepState>,
    cache: &ComponentCache,
    path: &Path,
    bytes: &[u8],
    hash: String,
) -> Result<(StepComponent, Component), LoadError> {
    let (component, source) = cache.compile(engine, path, bytes, &hash)?;
    let pre = link(engine, linker, &component)
        .map_err(|reason| LoadError::WrongWorld { path: path.to_path_buf(), reason })?;
    Ok((StepComponent { path: path.to_path_buf(), hash, source, pre }, component))
}

/// The component of content `hash` from the disk cache, linked, without
/// reading `path`; `None` if the cache has none that fits.
pub(crate) fn load_cached(
    engine: &Engine,
    linker: &Linker<StepState>,
    cache: &ComponentCache,
    path: &Path,
    hash: &str,
) -> Option<StepComponent> {
    let component = cache.load_compiled(engine, hash)?;
    let pre = link(engine, linker, &component).ok()?;
    Some(StepComponent { path: path.to_path_buf(), hash: hash.to_string(), source: CacheSource::Disk, pre })
}

fn link(
    engine: &Engine,
    linker: &Linker<StepState>,
    component: &Component,
) -> Result<StepPre<StepState>, String> {
    let instance_pre = linker.instantiate_pre(component).map_err(|e| {
        let message = first_line(&format!("{e:#}"));
        match missing_import(&message) {
            Some(name) => format!("it imports `{name}`, which the host does not provide"),
            None => message,
        }
    })?;
    StepPre::new(instance_pre).map_err(|_| {
        let exports: Vec<String> =
            component.component_type().exports(engine).map(|(name, _)| name.to_string()).collect();
        format!(
            "it has no `run: func() -> result<string, string>` export (it exports: {})",
            if exports.is_empty() { "nothing".to_string() } else { exports.join(", ") }
        )
    })
}

/// Pulls the import name out of wasmtime's "component imports instance
/// `x`, but a matching implementation was not found" message.
fn missing_import(message: &str) -> Option<&str> {
    if !message.contains("matching implementation was not found") {
        return None;
    }
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

/// Describes a component without running it.
pub(crate) fn inspect(
    engine: &Engine,
    linker: &Linker<StepState>,
    cache: &ComponentCache,
    path: &Path,
) -> Result<ComponentReport, LoadError> {
    let (bytes, hash) = read_component(path)?;
    let (component, source) = cache.compile(engine, path, &bytes, &hash)?;
    let ty = component.component_type();
    let imports = ty.imports(engine).map(|(name, item)| (name.to_string(), describe(&item.ty))).collect();
    let exports = ty.exports(engine).map(|(name, item)| (name.to_string(), describe(&item.ty))).collect();
    let misfit = link(engine, linker, &component).err();
    // Only a component that fits is worth its compiled code on disk.
    if misfit.is_none() && source == CacheSource::Compiled {
        cache.store_compiled(&hash, &component)?;
    }
    Ok(ComponentReport { path: path.to_path_buf(), hash, size_bytes: bytes.len(), imports, exports, misfit })
}

fn describe(item: &ComponentItem) -> String {
    match item {
        ComponentItem::ComponentFunc(_) => "function",
        ComponentItem::CoreFunc(_) => "core function",
        ComponentItem::Module(_) => "core module",
        ComponentItem::Component(_) => "component",
        ComponentItem::ComponentInstance(_) => "interface",
        ComponentItem::Type(_) => "type",
        ComponentItem::Resource(_) => "resource",
    }
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_tells_core_modules_from_components() {
        assert!(matches!(kind_of(b"\0asm\x01\0\0\0"), Kind::CoreModule));
        assert!(matches!(kind_of(b"\0asm\x0d\0\x01\0"), Kind::Component));
        assert!(matches!(kind_of(b"hello world"), Kind::NotWasm));
        assert!(matches!(kind_of(b""), Kind::NotWasm));
    }

    #[test]
    fn missing_import_name_is_extracted() {
        let message = "component imports instance `acme:evil/thing`, but a matching implementation was not found in the linker";
        assert_eq!(missing_import(message), Some("acme:evil/thing"));
        assert_eq!(missing_import("something else"), None);
    }
}
