//! The server's wiring for several nodes, without HTTP: step files fetched
//! from a shared store (against a real PostgreSQL when
//! `STEPHOST_TEST_DATABASE_URL` names one, else "skipped", except under
//! CI), a deleted step's signal, and `/v1/nodes` of a lone server.

use super::*;
use crate::runtime::RuntimeConfig;
use crate::store::Signal;
use axum::extract::State;
use sha2::{Digest, Sha256};

/// A shared store on a new database of its own; `None` (after saying
/// "skipped") without a server to make it in.
async fn fresh_postgres() -> Option<Arc<dyn Backend>> {
    let db = crate::store::TestDatabase::fresh().await?;
    let key = crate::store::crypto::MasterKey::from_bytes(&[7; 32]);
    let clock = Arc::new(crate::base::clock::SystemClock);
    Some(Arc::new(crate::store::Postgres::connect(&db.url, key, clock).await.unwrap()))
}

/// A server state on `store` with its data directory in `dir`.
fn state_on(dir: &std::path::Path, store: Arc<dyn Backend>) -> Arc<AppState> {
    let runtime = Arc::new(Runtime::new(RuntimeConfig::default()).unwrap());
    AppState::with_backend(ServeConfig::new(dir.to_path_buf()), runtime, store, [0; 32])
}

/// A deployed workflow of one uploaded step, `id`.
fn workflow_of(state: &AppState, id: &str) -> Workflow {
    let definition = format!("[[steps]]\nname = \"only\"\nstep = \"{id}\"\n");
    api::parse(state, "probe", &definition).map_err(|e| e.1).unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

#[tokio::test]
async fn a_step_uploaded_on_another_node_is_fetched_from_the_shared_store() {
    let Some(store) = fresh_postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let bytes = b"\0asm another node's upload".to_vec();
    let id = sha256_hex(&bytes);
    store.put_step(&id, &bytes, None).await.unwrap();
    let state = state_on(dir.path(), store);
    let workflow = workflow_of(&state, &id);

    state.ensure_step_files(&workflow).await.unwrap();

    assert_eq!(std::fs::read(state.steps_dir().join(format!("{id}.wasm"))).unwrap(), bytes);
}

#[tokio::test]
async fn step_bytes_that_are_not_the_step_s_are_refused() {
    let Some(store) = fresh_postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let id = sha256_hex(b"\0asm what was uploaded");
    store.put_step(&id, b"\0asm something else", None).await.unwrap();
    let state = state_on(dir.path(), store);
    let workflow = workflow_of(&state, &id);

    let refused = state.ensure_step_files(&workflow).await.unwrap_err().to_string();

    assert!(refused.contains(&format!("step {id}")) && refused.contains("not the step's id"), "{refused}");
    let left: Vec<_> = std::fs::read_dir(state.steps_dir()).map(|d| d.collect()).unwrap_or_default();
    assert!(left.is_empty(), "nothing is written: {left:?}");
}

#[tokio::test]
async fn a_step_the_shared_store_does_not_have_is_not_made_up() {
    let Some(store) = fresh_postgres().await else { return };
    let dir = tempfile::tempdir().unwrap();
    let state = state_on(dir.path(), store);
    let id = sha256_hex(b"never uploaded");
    let workflow = workflow_of(&state, &id);

    let refused = state.ensure_step_files(&workflow).await.unwrap_err().to_string();

    assert!(refused.contains(&format!("step {id} is not in the store")), "{refused}");
}

#[tokio::test]
async fn a_step_deleted_on_another_node_leaves_this_node_s_disk() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_on(dir.path(), Arc::new(Sqlite::open(dir.path()).unwrap()));
    std::fs::create_dir_all(state.steps_dir()).unwrap();
    let id = sha256_hex(b"deleted elsewhere");
    let file = state.steps_dir().join(format!("{id}.wasm"));
    std::fs::write(&file, b"bytes").unwrap();
    // Not a step id: never a path to remove.
    let outside = dir.path().join("keep.wasm");
    std::fs::write(&outside, b"bytes").unwrap();

    signals::handle(&state, Signal::StepDeleted("../keep".into())).await;
    signals::handle(&state, Signal::StepDeleted(id.to_ascii_uppercase())).await;

    assert!(!file.exists(), "the deleted step's file is gone");
    assert!(outside.exists(), "a signal that names no step id removes nothing");
}

#[tokio::test]
async fn a_lone_server_lists_itself_as_the_only_node_with_its_runs() {
    let dir = tempfile::tempdir().unwrap();
    let state = state_on(dir.path(), Arc::new(Sqlite::open(dir.path()).unwrap()));
    let _ = state.listen.set("127.0.0.1:8787".parse().unwrap());
    for run in ["run_b", "run_a"] {
        let lease = Lease { run: run.into(), owner: state.owner.clone(), attempt: 1 };
        state.leases.lock().unwrap().insert(lease);
    }

    let axum::Json(list) = nodes::list(State(state.clone())).await.map_err(|e| e.1).unwrap();

    assert_eq!(list.nodes.len(), 1);
    let node = &list.nodes[0];
    assert_eq!(node.info.id, state.owner);
    assert_eq!(node.info.pid, std::process::id());
    assert_eq!(node.info.listen, "127.0.0.1:8787");
    assert_eq!(node.info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(node.info.lease_ms, state.config.lease.as_millis() as u64);
    assert!(!node.info.host.is_empty());
    assert_eq!(node.running, ["run_a", "run_b"]);
    assert!(node.started_ms <= node.heartbeat_ms);
}
