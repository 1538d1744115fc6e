//! Several `stephost serve` processes on one PostgreSQL database: uploads,
//! deploys and triggers on any node, runs on whichever node is free, a
//! killed node's runs finished by the others, one schedule firing once per
//! tick, `flow.respond` across nodes, and one audit chain (a node with
//! another master key: `database_cli.rs`).
//! Each test makes its own database on the test server
//! (`STEPHOST_TEST_DATABASE_URL`, started by `scripts/test.sh`).

use crate::owner::{finished, start_run};
use crate::server::Remote;
use crate::support::{
    Deadline, Gate, NODE_TOKEN, PlainServer, TestDatabase, gate_event, gated_workflow, spawn_node,
};
use futures::StreamExt;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashSet};

/// Every run of `workflow` as `node` lists it, once none is queued or
/// running and there are at least `count`.
async fn settled_runs(node: &Remote, workflow: &str, count: usize) -> Vec<Value> {
    let deadline = Deadline::new("every run to finish");
    loop {
        let listed = node.get(&format!("/v1/runs?workflow={workflow}&limit=1000")).await;
        let runs = listed["runs"].as_array().cloned().unwrap_or_default();
        let busy = runs.iter().any(|r| matches!(r["status"].as_str(), Some("queued" | "running")));
        if runs.len() >= count && !busy {
            return runs;
        }
        deadline.check();
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The live nodes as `node` lists them.
async fn nodes(node: &Remote) -> Vec<Value> {
    node.get("/v1/nodes").await["nodes"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_share_uploads_deploys_and_run_every_accepted_trigger_exactly_once() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let hits = PlainServer::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut children = Vec::new();
    let mut bases = Vec::new();
    for dir in &dirs {
        let (child, base) = spawn_node(dir.path(), &db.url, 2, "30s", &[]).await;
        children.push(child);
        bases.push(base);
    }
    let remotes: Vec<Remote> = bases.iter().map(|b| Remote::new(b, NODE_TOKEN)).collect();

    // Uploaded on the first node, deployed on the second: the bytes come
    // from the database, the third node has never seen the file.
    let step = remotes[0].upload("probe").await;
    let definition =
        format!("[[steps]]\nname = \"probe\"\nstep = {step}\nallowed_hosts = [\"http://{}\"]\n", hits.addr);
    let deployed = remotes[1].deploy("spread", definition).await;
    assert_eq!(deployed["version"], 1, "{deployed}");
    let endpoint = deployed["endpoint"].as_str().unwrap().to_string();

    const TRIGGERS: usize = 300;
    let http = reqwest::Client::new();
    let accepted: Vec<(usize, String)> = futures::stream::iter(0..TRIGGERS)
        .map(|i| {
            let url = format!("{}{endpoint}", bases[i % 3]);
            let body = json!({ "actions": [{ "do": "http", "url": hits.url(&format!("/hit?n={i}")) }] });
            let http = http.clone();
            async move {
                let response = http.post(url).json(&body).send().await.unwrap();
                assert_eq!(response.status(), 200, "trigger {i} accepted");
                let run = response.json::<Value>().await.unwrap()["run"].as_str().unwrap().to_string();
                (i, run)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(accepted.len(), TRIGGERS);

    let runs = settled_runs(&remotes[2], "spread", TRIGGERS).await;
    assert_eq!(runs.len(), TRIGGERS, "one run per accepted trigger");
    let by_id: BTreeMap<&str, &Value> = runs.iter().map(|r| (r["id"].as_str().unwrap(), r)).collect();
    for (i, run) in &accepted {
        let record = by_id.get(run.as_str()).unwrap_or_else(|| panic!("trigger {i}'s run {run} is stored"));
        assert_eq!(record["status"], "succeeded", "trigger {i}: {record}");
    }
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for request in hits.requests() {
        *counts.entry(request.path).or_default() += 1;
    }
    for i in 0..TRIGGERS {
        assert_eq!(counts.get(&format!("/hit?n={i}")), Some(&1), "trigger {i}'s step ran exactly once");
    }
    let listed = nodes(&remotes[0]).await;
    assert_eq!(listed.len(), 3, "{listed:?}");
    let listens: HashSet<String> =
        listed.iter().map(|n| format!("http://{}", n["listen"].as_str().unwrap())).collect();
    assert_eq!(listens, bases.iter().cloned().collect::<HashSet<_>>());

    // `stephost nodes` on the database, from a machine serving nothing.
    let elsewhere = tempfile::tempdir().unwrap();
    let listed = crate::support::stephost_tokio_command()
        .arg("--data")
        .arg(elsewhere.path())
        .args(["--database", &db.url, "nodes"])
        .env("STEPHOST_MASTER_KEY", crate::support::NODE_MASTER_KEY)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    assert_eq!(text.lines().count(), 3, "{text}");
    for base in &bases {
        let listen = base.trim_start_matches("http://");
        assert!(text.lines().any(|line| line.contains(listen) && line.contains("0 running")), "{text}");
    }

    // Three nodes' requests, one audit chain: every request on record once.
    let verified = crate::support::stephost_tokio_command()
        .arg("--data")
        .arg(elsewhere.path())
        .args(["--database", &db.url, "audit", "verify", "--json"])
        .env("STEPHOST_MASTER_KEY", crate::support::NODE_MASTER_KEY)
        .output()
        .await
        .unwrap();
    let verdict: Value = serde_json::from_slice(&verified.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&verified.stderr)));
    assert_eq!(
        (verdict["intact"].as_bool(), verdict["records"].as_u64()),
        (Some(true), Some(TRIGGERS as u64)),
        "{verdict}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_s_runs_are_finished_by_the_others_after_its_lease() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let gate = Gate::start().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // The first node alone takes the first two runs.
    let (mut first, first_base) = spawn_node(dirs[0].path(), &db.url, 2, "2s", &[]).await;
    let first_remote = Remote::new(&first_base, NODE_TOKEN);
    let step = first_remote.upload("probe").await;
    assert_eq!(first_remote.deploy("held", gated_workflow(&step, &gate)).await["version"], 1);
    let mut runs = Vec::new();
    for _ in 0..2 {
        runs.push(start_run(&first_remote, "held", &gate_event(&gate)).await);
    }
    gate.wait_for(2, "the first node's two runs to reach the gate").await;
    // Two more nodes, with room for their own runs and the dead node's. A
    // run's lease is its claimer's: theirs are long, so a loaded machine
    // missing a heartbeat cannot make a live node's run look dead.
    let (_second, second_base) = spawn_node(dirs[1].path(), &db.url, 4, "120s", &[]).await;
    let (_third, third_base) = spawn_node(dirs[2].path(), &db.url, 4, "120s", &[]).await;
    let second = Remote::new(&second_base, NODE_TOKEN);
    let third = Remote::new(&third_base, NODE_TOKEN);
    for remote in [&second, &third, &second, &third] {
        runs.push(start_run(remote, "held", &gate_event(&gate)).await);
    }
    gate.wait_for(6, "all six runs to reach the gate").await;
    let listed = nodes(&second).await;
    let held: Vec<String> = listed
        .iter()
        .find(|n| format!("http://{}", n["listen"].as_str().unwrap()) == first_base)
        .map(|n| n["running"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect())
        .unwrap_or_else(|| panic!("the first node is listed: {listed:?}"));
    assert_eq!(held.iter().collect::<HashSet<_>>(), runs[..2].iter().collect::<HashSet<_>>(), "{listed:?}");

    first.start_kill().unwrap(); // SIGKILL: no shutdown, no release, no goodbye
    first.wait().await.unwrap();
    gate.wait_for(8, "the dead node's runs to start again elsewhere").await;
    gate.release();
    for (i, run) in runs.iter().enumerate() {
        let record = finished(&second, run).await;
        let attempt = if i < 2 { 2 } else { 1 };
        assert_eq!(
            (record["status"].as_str(), record["attempt"].as_u64()),
            (Some("succeeded"), Some(attempt)),
            "run {i}: {record}"
        );
    }
    assert_eq!(gate.requests(), 8, "each run once, the dead node's twice");
    let deadline = Deadline::new("the dead node to leave the list");
    loop {
        let listed = nodes(&third).await;
        if listed.len() == 2 {
            assert!(listed.iter().all(|n| format!("http://{}", n["listen"].as_str().unwrap()) != first_base));
            break;
        }
        deadline.check();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_over_three_nodes_fires_once_per_tick() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut children = Vec::new();
    let mut remotes = Vec::new();
    for dir in &dirs {
        let (child, base) = spawn_node(dir.path(), &db.url, 1, "30s", &[]).await;
        children.push(child);
        remotes.push(Remote::new(&base, NODE_TOKEN));
    }
    let step = remotes[0].upload("hello").await;
    // Every two seconds, on all three nodes' schedulers at once.
    let definition =
        format!("[schedule]\nevery_minutes = 0.0333334\n\n[[steps]]\nname = \"hello\"\nstep = {step}\n");
    assert_eq!(remotes[2].deploy("ticking", definition).await["version"], 1);
    let runs = settled_runs(&remotes[1], "ticking", 4).await;
    let mut ticks = Vec::new();
    for run in &runs {
        let record = remotes[0].get(&format!("/v1/runs/{}", run["id"].as_str().unwrap())).await;
        let tick = &record["event"]["timestamp"];
        assert!(tick.is_u64(), "a timer event has its tick: {record}");
        ticks.push(tick.to_string());
    }
    let distinct: HashSet<&String> = ticks.iter().collect();
    assert_eq!(distinct.len(), ticks.len(), "each tick fired once across the nodes: {ticks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respond_works_when_the_trigger_and_the_run_are_on_different_nodes() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let (front_dir, back_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The front node takes triggers and runs nothing; the back node runs.
    let (_front, front) = spawn_node(front_dir.path(), &db.url, 0, "30s", &[]).await;
    let (_back, _) = spawn_node(back_dir.path(), &db.url, 2, "30s", &[]).await;
    let remote = Remote::new(&front, NODE_TOKEN);
    let step = remote.upload("probe").await;
    let deployed = remote
        .deploy("hook", format!("respond = true\n\n[[steps]]\nname = \"probe\"\nstep = {step}\n"))
        .await;
    let url = format!("{front}{}", deployed["endpoint"].as_str().unwrap());
    let http = reqwest::Client::new();
    let actions = json!({ "actions": [{ "do": "respond", "status": 201, "headers": { "x-answer": "42" }, "body": "made it" }] });
    let response = http.post(&url).json(&actions).send().await.unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-answer"], "42");
    assert_eq!(response.text().await.unwrap(), "made it");

    let failing = json!({ "actions": [{ "do": "fail", "message": "broken" }] });
    let response = http.post(&url).json(&failing).send().await.unwrap();
    assert_eq!(response.status(), 502);
    let error = response.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_string();
    assert!(error.contains("failed without calling flow.respond"), "{error}");
}
