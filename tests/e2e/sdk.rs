//! Step crates build with both toolchains users reach for.

use crate::support::{repo, runtime};
use std::process::Command;
use stephost::{StepConfig, StepInput};

#[tokio::test]
async fn a_step_crate_builds_with_cargo_component_and_runs() {
    let target = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cargo-component");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["component", "build", "--release"])
        .current_dir(repo().join("examples/steps/hello"))
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("running cargo");
    assert!(
        output.status.success(),
        "cargo component build failed (scripts/test.sh installs cargo-component): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let built = target.join("wasm32-wasip1/release/hello.wasm");

    let runtime = runtime();
    let step = runtime.load(&built).expect("the cargo-component build is a step component");
    let input = StepInput {
        step_name: "hello".into(),
        event: r#"{"via":"cargo-component"}"#.into(),
        ..Default::default()
    };
    let outcome = runtime.run(&step, input, &StepConfig::default()).await;
    assert_eq!(outcome.result.unwrap(), serde_json::json!({ "via": "cargo-component" }));
}
