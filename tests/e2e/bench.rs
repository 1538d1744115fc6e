//! `stephost-bench`: every part measured in one run, the report written
//! into the benchmarks document without touching the rest of it; and the
//! shipped `stephost` binary no longer carries it.

use crate::support::{guest, repo};

/// The `stephost-bench` binary, without the developer's `STEPHOST_*`
/// variables (as [`crate::support::stephost_command`]).
fn suite(args: &[&str]) -> std::process::Output {
    let data = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_stephost-bench"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STEPHOST_") {
            command.env_remove(name);
        }
    }
    command.args(args).env("STEPHOST_DATA", data.path()).current_dir(repo()).output().unwrap()
}

#[test]
fn bench_suite_measures_every_part_and_rewrites_only_its_own_section() {
    let steps = guest("echo").parent().unwrap().to_path_buf();
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("BENCHMARKS.md");
    std::fs::write(&doc, "# Benchmarks\n\nHand-written history stays.\n").unwrap();
    let args = [
        "--quick",
        "--no-languages",
        "--steps",
        steps.to_str().unwrap(),
        "--wasmtime",
        "/nonexistent/wasmtime",
        "--write",
        doc.to_str().unwrap(),
    ];
    for _ in 0..2 {
        let out = suite(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let written = std::fs::read_to_string(&doc).unwrap();
    assert!(written.starts_with("# Benchmarks\n\nHand-written history stays.\n"), "{written}");
    assert_eq!(written.matches("stephost-bench: start").count(), 1, "the section was replaced, not added");
    let rows = |prefix: &str| -> Vec<Vec<String>> {
        written
            .lines()
            .filter(|line| line.starts_with(&format!("| {prefix}")))
            .map(|line| line.trim_matches('|').split(" | ").map(|c| c.trim().to_string()).collect())
            .collect()
    };
    for name in [
        "bare wasmtime",
        "stephost: trivial Rust step",
        "Node.js",
        "stephost: 5-step workflow passing 10 KiB on as JSON text",
        "stephost: 5-step workflow passing 10 KiB, each step parsing it",
        "p99 of the batches",
        "Rust",
        "direct reqwest",
        "the step through bare wasmtime-wasi-http",
        "the step through the proxy",
        "the same, each request also written to an audit log file",
    ] {
        let found = rows(name);
        assert!(!found.is_empty(), "no row for {name}:\n{written}");
        for row in &found {
            assert!(!row.iter().any(|cell| cell.starts_with("0.0 µs") || cell == "0 MiB"), "{row:?}");
        }
    }
    let per_run = rows("stephost: trivial Rust step")[0].clone();
    let runs_per_s: f64 = per_run[3].parse().unwrap();
    assert!(runs_per_s > 0.0, "{per_run:?}");
    let scaling: Vec<_> = rows("1 |").into_iter().chain(rows("10 |")).collect();
    assert_eq!(scaling.len(), 2, "levels 1 and 10 in quick mode:\n{written}");
    assert_eq!(rows("10 |")[0][4], "10", "ten runs were waiting at once");
    assert!(written.contains("| trivial step median ≤ 25 µs |"), "{written}");
    for target in [
        "| 5-step workflow passing 10 KiB ≥ 3× faster than issue 17's 1.86 ms (passed on as JSON text) |",
        "| 5-step workflow passing 10 KiB ≥ 3× faster than issue 17's 1.86 ms (each step parsing it) |",
        "| egress: stephost's share ≤ 5 µs over the bare floor (p50) |",
        "| egress: stephost's share ≤ 5 µs over the bare floor (p99) |",
    ] {
        assert!(written.contains(target), "no target row {target}:\n{written}");
    }
    assert!(written.contains("`wasmtime run` peer skipped"), "{written}");
}

#[test]
fn bench_suite_names_an_unknown_part_and_missing_steps() {
    let out = suite(&["--only", "everything"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--only everything: no such part (parts: baseline, step,"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");

    let empty = tempfile::tempdir().unwrap();
    let out = suite(&["--steps", empty.path().to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("echo.wasm is missing: build the bench steps first"), "{stderr}");
}

#[test]
fn stephost_bench_measures_a_step_and_points_at_stephost_bench_for_the_suite() {
    let out = crate::support::stephost_command().args(["bench", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("`stephost-bench` binary"), "{help}");
    assert!(!help.contains("suite"), "{help}");

    let data = tempfile::tempdir().unwrap();
    let out = crate::support::stephost_command()
        .args(["bench", "suite"])
        .env("STEPHOST_DATA", data.path())
        .current_dir(data.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("run `stephost-bench`"), "{stderr}");

    let echo = guest("echo");
    let out = crate::support::stephost_command()
        .args(["bench", echo.to_str().unwrap(), "--runs", "5"])
        .env("STEPHOST_DATA", data.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("5 runs of "), "{out:?}");
}
