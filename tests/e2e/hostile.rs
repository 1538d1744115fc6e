//! Hostile steps: each attack ends that run with a clear error, and the
//! same host goes on running normal steps.

use crate::support::{load, runtime};
use serde_json::{Value, json};
use std::time::Duration;
use stephost::{Limits, LogStream, Runtime, StepConfig, StepError, StepInput, StepOutcome};

fn attack_input(attack: &str) -> StepInput {
    StepInput {
        step_name: "hostile".into(),
        event: json!({ "attack": attack }).to_string().into(),
        ..Default::default()
    }
}

fn limits(timeout_ms: u64, memory_mib: usize) -> StepConfig {
    StepConfig {
        limits: Limits {
            timeout: Duration::from_millis(timeout_ms),
            memory_bytes: memory_mib << 20,
            ..Limits::default()
        },
        ..StepConfig::default()
    }
}

async fn attack(runtime: &Runtime, attack: &str, config: &StepConfig) -> StepOutcome {
    let hostile = load(runtime, "hostile");
    runtime.run(&hostile, attack_input(attack), config).await
}

/// After an attack, the same runtime still runs a normal step correctly.
async fn host_still_runs_normal_steps(runtime: &Runtime) {
    let hello = load(runtime, "hello");
    let input = StepInput { step_name: "hello".into(), event: r#"{"ok":true}"#.into(), ..Default::default() };
    let outcome = runtime.run(&hello, input, &StepConfig::default()).await;
    assert_eq!(outcome.result.unwrap(), json!({ "ok": true }));
}

#[tokio::test]
async fn infinite_loop_is_stopped_at_the_timeout() {
    let runtime = runtime();
    let outcome = attack(&runtime, "loop", &limits(300, 64)).await;
    assert!(
        matches!(&outcome.result, Err(StepError::TimedOut { step, limit }) if step == "hostile" && *limit == Duration::from_millis(300)),
        "{:?}",
        outcome.result
    );
    assert_eq!(outcome.result.unwrap_err().to_string(), "step `hostile` timed out after 300 ms");
    host_still_runs_normal_steps(&runtime).await;
}

#[tokio::test]
async fn a_step_blocked_waiting_is_stopped_at_the_timeout() {
    let runtime = runtime();
    let outcome = attack(&runtime, "sleep", &limits(300, 64)).await;
    assert!(matches!(outcome.result, Err(StepError::TimedOut { .. })), "{:?}", outcome.result);
    host_still_runs_normal_steps(&runtime).await;
}

#[tokio::test]
async fn unbounded_memory_growth_hits_the_memory_limit() {
    let runtime = runtime();
    let outcome = attack(&runtime, "memory", &limits(30_000, 32)).await;
    assert_eq!(outcome.result.unwrap_err().to_string(), "step `hostile` exceeded its 32 MiB memory limit");
    host_still_runs_normal_steps(&runtime).await;
}

#[tokio::test]
async fn panic_becomes_a_trap_error_with_the_panic_message_and_backtrace() {
    let runtime = runtime();
    let outcome = attack(&runtime, "panic", &StepConfig::default()).await;
    let error = outcome.result.unwrap_err();
    assert_eq!(
        error.to_string(),
        "step `hostile` trapped: panicked: the hostile step panicked on purpose (wasm trap: wasm `unreachable` instruction executed)"
    );
    assert!(
        error.detail().unwrap().contains("hostile.wasm!"),
        "backtrace names the module: {:?}",
        error.detail()
    );
    host_still_runs_normal_steps(&runtime).await;
}

#[tokio::test]
async fn log_flood_is_truncated_with_a_visible_notice() {
    let runtime = runtime();
    let outcome = attack(&runtime, "log_flood", &StepConfig::default()).await;
    assert_eq!(outcome.result.as_ref().unwrap(), &json!("flooded"), "the step itself goes on");
    assert!(outcome.logs_truncated);
    let kept: usize =
        outcome.logs.iter().filter(|l| l.stream == LogStream::Stdout).map(|l| l.text.len() + 1).sum();
    assert_eq!(kept, 1 << 20, "exactly the 1 MiB limit is kept");
    let notice = outcome.logs.last().unwrap();
    assert_eq!(notice.stream, LogStream::Host);
    assert!(notice.text.contains("1 MiB log limit"), "{}", notice.text);
    host_still_runs_normal_steps(&runtime).await;
}

#[tokio::test]
async fn invalid_return_json_is_an_error() {
    let runtime = runtime();
    let outcome = attack(&runtime, "bad_json", &StepConfig::default()).await;
    let error = outcome.result.unwrap_err().to_string();
    assert!(error.starts_with("step `hostile` returned invalid JSON: "), "{error}");
    host_still_runs_normal_steps(&runtime).await;
}

#[tokio::test]
async fn oversized_return_value_and_exports_hit_the_output_limit() {
    let runtime = runtime();
    for (which, what) in [("big_return", "a return value"), ("big_export", "exports")] {
        let outcome = attack(&runtime, which, &StepConfig::default()).await;
        match &outcome.result {
            Err(StepError::OutputTooLarge { what: got, limit, .. }) => {
                assert_eq!((got.as_str(), *limit), (what, 1 << 20));
            }
            other => panic!("{which}: expected an output-limit error, got {other:?}"),
        }
        assert!(outcome.exports.is_empty());
    }
    host_still_runs_normal_steps(&runtime).await;
}

#[tokio::test]
async fn the_sandbox_grants_no_files_sockets_or_name_lookup() {
    let runtime = runtime();
    let outcome = attack(&runtime, "escape", &StepConfig::default()).await;
    let seen: Value = outcome.result.unwrap().into_value();
    for what in ["fs", "file", "tcp", "dns"] {
        assert!(seen[what].as_str().unwrap().starts_with("Err("), "{what} must fail: {}", seen[what]);
    }
}

#[tokio::test]
async fn a_runaway_step_does_not_hold_up_other_runs() {
    let runtime = runtime();
    let hostile = load(&runtime, "hostile");
    let hello = load(&runtime, "hello");
    let loop_ended = std::sync::atomic::AtomicBool::new(false);
    let looping = async {
        let outcome = runtime.run(&hostile, attack_input("loop"), &limits(5_000, 64)).await;
        loop_ended.store(true, std::sync::atomic::Ordering::SeqCst);
        outcome
    };
    let normal = async {
        let mut results = Vec::new();
        for i in 0..20 {
            let input = StepInput {
                step_name: "hello".into(),
                event: json!({ "i": i }).to_string().into(),
                ..Default::default()
            };
            results.push(runtime.run(&hello, input, &StepConfig::default()).await);
        }
        // On this single-threaded executor, the normal runs only got to run
        // because the looping guest yields: they all finished before it ended.
        assert!(!loop_ended.load(std::sync::atomic::Ordering::SeqCst));
        results
    };
    let (looped, normal) = tokio::join!(looping, normal);
    assert!(matches!(looped.result, Err(StepError::TimedOut { .. })));
    for (i, outcome) in normal.iter().enumerate() {
        assert_eq!(outcome.result.as_ref().unwrap(), &json!({ "i": i }));
    }
}

#[tokio::test]
async fn a_run_never_sees_what_an_earlier_run_left_in_memory() {
    // Runs one after another reuse one pooled slot, reset between runs:
    // every page the last run dirtied (here 256 scattered ones) must be
    // back to the module's image before the next run starts.
    let runtime = runtime();
    for run in 0..4 {
        let outcome = attack(&runtime, "scribble", &StepConfig::default()).await;
        let value = outcome.result.unwrap_or_else(|e| panic!("run {run}: {e}"));
        assert_eq!(value["marked"], 256, "run {run}: {value}");
        assert_eq!(value["left_by_an_earlier_run"], 0, "run {run} saw an earlier run's memory: {value}");
    }
}
