//! stephost: a WebAssembly sandboxed host for workflow code steps.
//!
//! A step is a WASM component targeting the `stephost:step` world (see
//! `wit/step.wit`). The [`Runtime`] compiles it once (cached on disk),
//! runs it under per-run [`Limits`] in a fresh store, hands it the event,
//! earlier steps' results and connected accounts through WIT imports, and
//! routes every outbound HTTP request through the egress hook.

// Layers, lowest first. A module may use only the modules above it in this
// list (`layers` below checks every `crate::` path); see docs/ARCHITECTURE.md.

// Clock, identifiers, names, units, private directories.
pub mod base;

// Which destinations a step may reach and where a secret may appear.
pub mod policy;

// The vault of a run's real values, sealing and the one redaction engine.
pub mod secrets;

// The app catalog: each app's fields, hosts and secret placements.
pub mod catalog;

// The hash-chained audit log of requests and secret reads.
pub mod audit;

// A run's log lines, capped.
pub mod logs;

// The one way out of the sandbox: outbound HTTP through named stages.
pub mod egress;

// The engine, loading and caching components, limits and one run.
pub mod runtime;

// The data directory's database: steps, workflows, runs, accounts, env.
pub mod store;

// Workflow files, running them in order, accounts and OAuth refresh.
pub mod workflow;

// Building JavaScript and Python steps; new step projects.
pub mod build;

// `stephost serve`: the HTTP API, triggers, the queue and its workers.
pub mod server;

// What `stephost bench` and the `stephost-bench` suite measure with.
pub mod bench;

pub use catalog::{App, Catalog};
pub use egress::{EgressConfig, EgressRecord, HostPattern, HostPolicy};
pub use logs::{LogLine, LogStream};
pub use runtime::component::{ComponentReport, StepComponent};
pub use runtime::error::{LoadError, StepError};
pub use runtime::limits::Limits;
pub use runtime::outcome::{AccountFields, HttpResponse, StepInput, StepOutcome};
pub use runtime::return_value::ReturnValue;
pub use runtime::{AccountTest, Runtime, RuntimeConfig, StepConfig};
pub use workflow::WorkflowError;
pub use workflow::{Workflow, WorkflowOutcome, WorkflowStatus, WorkflowStep};

#[cfg(test)]
mod layers {
    //! Proves the layering of the list above: every `crate::` path (and
    //! `super::` path that climbs to the crate root) in a module's files
    //! names only modules listed before it. A lower layer that imports a
    //! higher one, and so any import circle between layers, fails here.

    use std::path::Path;

    /// The layers, lowest first: the same order as the `pub mod` list.
    const LAYERS: &[&str] = &[
        "base", "policy", "secrets", "catalog", "audit", "logs", "egress", "runtime", "store", "workflow",
        "build", "server", "bench",
    ];

    /// Every top-level module named by a `crate::` path in `source`,
    /// including each name of a grouped `use crate::{a::…, b}`.
    fn crate_paths(source: &str) -> Vec<String> {
        let mut names = Vec::new();
        let mut rest = source;
        while let Some(at) = rest.find("crate::") {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue; // e.g. `pub(crate)` never has `::`, but `mycrate::` would
            }
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    let name = item.trim().split("::").next().unwrap_or_default().trim();
                    if !name.is_empty() {
                        names.push(name.to_string());
                    }
                }
            } else {
                let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                names.push(name);
            }
        }
        names
    }

    /// The source files of a top-level module with how deep each sits
    /// (`runtime/mod.rs` is 0, `runtime/interfaces/auths.rs` is 2).
    fn module_files(src: &Path, module: &str) -> Vec<(std::path::PathBuf, usize)> {
        let single = src.join(format!("{module}.rs"));
        if single.exists() {
            return vec![(single, 0)];
        }
        let mut files = Vec::new();
        let mut stack = vec![src.join(module)];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("module directory") {
                let path = entry.expect("directory entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    let inner = path.strip_prefix(src.join(module)).expect("inside the module");
                    let mut depth = inner.components().count();
                    if path.file_name().is_some_and(|n| n == "mod.rs") {
                        depth -= 1;
                    }
                    files.push((path, depth));
                }
            }
        }
        files
    }

    #[test]
    fn every_module_uses_only_the_layers_below_it() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut wrong = Vec::new();
        for (rank, module) in LAYERS.iter().enumerate() {
            let files = module_files(&src, module);
            assert!(!files.is_empty(), "layer `{module}` has no source files");
            for (file, depth) in files {
                let source = std::fs::read_to_string(&file).expect("readable source");
                let mut used = crate_paths(&source);
                // `super::` from the module's root file (or `depth` times
                // deeper) is the crate root too.
                let to_root = "super::".repeat(depth + 1);
                used.extend(crate_paths(&source.replace(&to_root, "crate::")));
                for name in used {
                    let Some(target) = LAYERS.iter().position(|layer| *layer == name) else {
                        continue; // an item re-exported at the root, or a keyword
                    };
                    if target > rank {
                        wrong.push(format!("{} uses crate::{name}", file.display()));
                    }
                }
            }
        }
        wrong.sort();
        wrong.dedup();
        assert!(wrong.is_empty(), "a lower layer uses a higher one:\n{}", wrong.join("\n"));
    }

    #[test]
    fn every_library_module_is_in_a_layer() {
        let lib = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
        let declared: Vec<&str> = lib
            .lines()
            .filter_map(|line| line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod ")))
            .map(|rest| rest.trim_end_matches(';'))
            .filter(|name| !name.contains(' ') && *name != "layers")
            .collect();
        assert_eq!(declared, LAYERS, "lib.rs declares its modules in the order of LAYERS");
    }
}
