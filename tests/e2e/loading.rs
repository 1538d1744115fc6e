//! Loading components: what is rejected, with which one-line error, and
//! the compiled-component cache.

use crate::support::{guest, runtime, runtime_with};
use stephost::base::files::FileStamp;
use stephost::runtime::cache::{CacheSource, ComponentCache};
use stephost::{EgressConfig, StepConfig, StepInput};

fn load_error(bytes: &[u8], name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    let error = runtime().load(&path).err().expect("the load fails").to_string();
    assert!(!error.contains('\n'), "one line: {error}");
    error.replace(&dir.path().display().to_string(), "DIR")
}

#[test]
fn a_file_that_is_not_wasm_is_rejected() {
    assert_eq!(
        load_error(b"#!/bin/sh\necho hi\n", "x.wasm"),
        "DIR/x.wasm is not a WebAssembly file (it does not start with the `\\0asm` header)"
    );
}

#[test]
fn a_core_module_is_rejected_with_how_to_build_a_component() {
    let core = wat::parse_str("(module (func (export \"run\")))").unwrap();
    assert_eq!(
        load_error(&core, "core.wasm"),
        "DIR/core.wasm is a core module, not a component: build with --target wasm32-wasip2 or cargo component build"
    );
}

#[test]
fn a_truncated_component_is_rejected() {
    let bytes = std::fs::read(guest("hello")).unwrap();
    let error = load_error(&bytes[..bytes.len() / 2], "cut.wasm");
    assert!(error.starts_with("DIR/cut.wasm is not a valid component: "), "{error}");
}

#[test]
fn a_component_of_another_world_is_rejected_naming_its_exports() {
    let error = runtime().load(&guest("command")).err().unwrap().to_string();
    assert!(
        error.ends_with("does not fit the stephost:step world: it has no `run: func() -> result<string, string>` export (it exports: wasi:cli/run@0.2.0)"),
        "{error}"
    );
}

#[test]
fn a_component_needing_an_unknown_import_is_rejected_naming_it() {
    let component = wat::parse_str(
        r#"(component
            (import "acme:exfil/send" (instance (export "send" (func))))
        )"#,
    )
    .unwrap();
    let error = load_error(&component, "needy.wasm");
    assert_eq!(
        error,
        "DIR/needy.wasm does not fit the stephost:step world: it imports `acme:exfil/send`, which the host does not provide"
    );
}

#[test]
fn compiled_components_are_cached_on_disk_and_in_memory() {
    let cache = tempfile::tempdir().unwrap();
    let hello = guest("hello");

    let first = runtime_with(EgressConfig::default(), Some(cache.path().to_path_buf()));
    assert_eq!(first.load(&hello).unwrap().source, CacheSource::Compiled);
    assert_eq!(first.load(&hello).unwrap().source, CacheSource::Compiled, "same Arc from memory");
    let files: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(files.len(), 1, "one compiled artifact on disk");

    let restarted = runtime_with(EgressConfig::default(), Some(cache.path().to_path_buf()));
    assert_eq!(restarted.load(&hello).unwrap().source, CacheSource::Disk, "no compilation after restart");
    drop(restarted);

    std::fs::write(&files[0], b"corrupt").unwrap();
    let after_corruption = runtime_with(EgressConfig::default(), Some(cache.path().to_path_buf()));
    assert_eq!(
        after_corruption.load(&hello).unwrap().source,
        CacheSource::Compiled,
        "a corrupt cache entry is recompiled, not trusted"
    );
}

#[test]
fn a_restarted_host_skips_rehashing_an_unchanged_step_and_notices_any_change() {
    let cache = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let step = dir.path().join("step.wasm");
    let input =
        StepInput { step_name: "step".into(), event: r#"{"name":"Ada"}"#.into(), ..Default::default() };
    let run = |runtime: &stephost::Runtime| {
        let component = runtime.load(&step).unwrap();
        let outcome = tokio::runtime::Runtime::new().unwrap().block_on(runtime.run(
            &component,
            input.clone(),
            &StepConfig::default(),
        ));
        (component.source, outcome.exports.iter().map(|(name, _)| name.clone()).collect::<Vec<_>>())
    };
    let noted = || {
        let cache = ComponentCache::new(&wasmtime::Engine::default(), Some(cache.path().to_path_buf()));
        cache.known_hash(&step, &FileStamp::of(&step).unwrap())
    };
    let write = |bytes: &[u8], age_secs: u64| {
        std::fs::write(&step, bytes).unwrap();
        let modified = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
        std::fs::File::options().write(true).open(&step).unwrap().set_modified(modified).unwrap();
    };
    let hello = std::fs::read(guest("hello")).unwrap();
    let sha256 = |bytes: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(bytes))
    };

    write(&hello, 3600);
    let first = runtime_with(EgressConfig::default(), Some(cache.path().to_path_buf()));
    assert_eq!(run(&first), (CacheSource::Compiled, vec!["fields".to_string()]));
    assert_eq!(noted(), Some(sha256(&hello)), "the file's hash is noted with its stamp");
    let restarted = runtime_with(EgressConfig::default(), Some(cache.path().to_path_buf()));
    assert_eq!(run(&restarted), (CacheSource::Disk, vec!["fields".to_string()]), "unchanged: from the cache");

    let mut same_size = hello.clone();
    let middle = same_size.len() / 2;
    same_size[middle] ^= 0xff;
    write(&same_size, 3600);
    assert_eq!(noted(), None, "a same-size rewrite with an old mtime still changes the stamp");

    write(&std::fs::read(guest("echo")).unwrap(), 3600);
    let after_change = runtime_with(EgressConfig::default(), Some(cache.path().to_path_buf()));
    assert_eq!(run(&after_change), (CacheSource::Compiled, vec![]), "the new contents ran, not the old");

    write(&hello, 0);
    let fresh = runtime_with(EgressConfig::default(), Some(cache.path().to_path_buf()));
    assert_eq!(run(&fresh).1, vec!["fields".to_string()]);
    assert_eq!(noted(), None, "a file modified this instant is not noted (a rewrite could go unseen)");
}

#[test]
fn inspect_reports_imports_exports_and_fit() {
    let report = runtime().inspect(&guest("hello")).unwrap();
    assert!(report.misfit.is_none());
    let imports: Vec<&str> = report.imports.iter().map(|(n, _)| n.as_str()).collect();
    assert!(imports.contains(&"stephost:step/event@0.1.0"), "{imports:?}");
    assert_eq!(report.exports, vec![("run".to_string(), "function".to_string())]);

    let misfit = runtime().inspect(&guest("command")).unwrap().misfit.unwrap();
    assert!(misfit.contains("no `run"), "{misfit}");
}
