//! One owner per data directory: a second `stephost serve` is refused, CLI
//! commands work beside the server without touching its runs, and only a
//! dead server's runs are queued again on the next start.

use crate::server::{Remote, spawn_server};
use crate::support::{Deadline, Gate, gate_event, gated_workflow};
use serde_json::Value;

/// Starts a manual run of `workflow`; its id.
pub(crate) async fn start_run(remote: &Remote, workflow: &str, event: &Value) -> String {
    let response = remote.manual_run(workflow, event).await;
    assert_eq!(response.status(), 202);
    response.json::<Value>().await.unwrap()["run"].as_str().unwrap().to_string()
}

/// Polls the run until it has finished.
pub(crate) async fn finished(remote: &Remote, run: &str) -> Value {
    let deadline = Deadline::new("the run to finish");
    loop {
        let record = remote.get(&format!("/v1/runs/{run}")).await;
        if !matches!(record["status"].as_str(), Some("queued" | "running")) {
            return record;
        }
        deadline.check();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_same_data_directory_is_refused_naming_the_first() {
    let data = tempfile::tempdir().unwrap();
    let (first, base) = spawn_server(data.path(), "1").await;
    let pid = first.id().unwrap();

    let second = crate::support::stephost_tokio_command()
        .arg("--data")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // A second server that started would serve until killed: fail, not hang.
    let second = tokio::time::timeout(std::time::Duration::from_secs(120), second.wait_with_output())
        .await
        .expect("the second serve exits at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(&format!("pid {pid}")), "names the holder: {stderr}");
    assert!(stderr.contains(&format!("listening on {base}")), "says where it listens: {stderr}");
    assert!(
        second.stdout.is_empty(),
        "nothing printed, no token: {}",
        String::from_utf8_lossy(&second.stdout)
    );

    // The first keeps serving.
    let runs = Remote::new(&base, "crash-test-token").get("/v1/runs").await;
    assert!(runs["runs"].is_array(), "{runs}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_beside_a_server_never_run_its_run_again() {
    let data = tempfile::tempdir().unwrap();
    let gate = Gate::start().await;
    // Two workers: a run put back in the queue would be taken again at once.
    let (_server, base) = spawn_server(data.path(), "2").await;
    let remote = Remote::new(&base, "crash-test-token");
    let step = remote.upload("probe").await;
    assert_eq!(remote.deploy("held", gated_workflow(&step, &gate)).await["version"], 1);
    assert_eq!(remote.deploy("other", gated_workflow(&step, &gate)).await["version"], 1);
    let run = start_run(&remote, "held", &gate_event(&gate)).await;
    gate.wait_for(1, "the server's run to reach the gate").await;

    // Local commands that open the store and the API on the same directory.
    let triggered =
        crate::support::stephost_async(data.path(), &["trigger", "other", "--event-json", "{}"], None).await;
    assert!(triggered.status.success(), "{}", String::from_utf8_lossy(&triggered.stderr));
    let listed = crate::support::stephost_async(data.path(), &["runs", "list"], None).await;
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&run), "runs list shows the server's run");

    let record = remote.get(&format!("/v1/runs/{run}")).await;
    assert_eq!(
        (record["status"].as_str(), record["attempt"].as_u64()),
        (Some("running"), Some(1)),
        "{record}"
    );
    gate.release();
    let record = finished(&remote, &run).await;
    assert_eq!(
        (record["status"].as_str(), record["attempt"].as_u64()),
        (Some("succeeded"), Some(1)),
        "{record}"
    );
    assert_eq!(gate.requests(), 1, "the server's step ran exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_serve_finishes_the_run_of_a_killed_server() {
    let data = tempfile::tempdir().unwrap();
    let gate = Gate::start().await;
    let (mut killed, base) = spawn_server(data.path(), "1").await;
    let remote = Remote::new(&base, "crash-test-token");
    let step = remote.upload("probe").await;
    assert_eq!(remote.deploy("held", gated_workflow(&step, &gate)).await["version"], 1);
    let run = start_run(&remote, "held", &gate_event(&gate)).await;
    gate.wait_for(1, "the first server's run to reach the gate").await;
    killed.start_kill().unwrap(); // SIGKILL: no shutdown, no release of the lease
    killed.wait().await.unwrap();

    let (_server, base) = spawn_server(data.path(), "1").await;
    let remote = Remote::new(&base, "crash-test-token");
    // Queued again on start, not left to its lease (still live) expiring;
    // on a shared database no start may assume that (another node may hold
    // the run), so there the run waits for its lease to expire.
    if !crate::support::on_postgres() {
        let record = remote.get(&format!("/v1/runs/{run}")).await;
        assert!(
            record["status"] == "queued" || record["attempt"] == 2,
            "the dead server's run is queued again at start: {record}"
        );
    }
    gate.wait_for(2, "the run's second attempt to reach the gate").await;
    gate.release();
    let record = finished(&remote, &run).await;
    assert_eq!(
        (record["status"].as_str(), record["attempt"].as_u64()),
        (Some("succeeded"), Some(2)),
        "{record}"
    );
}
