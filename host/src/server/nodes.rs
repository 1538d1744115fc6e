//! The nodes serving one store: this node's heartbeat in the shared
//! registry (with the reaper of dead nodes' runs riding on it), and
//! `GET /v1/nodes`.

use super::{ApiError, AppState};
use crate::store::views::NodeList;
use crate::store::{NodeView, StoreError};
use axum::Json;
use axum::extract::State;
use std::sync::Arc;

/// Every third of the lease: says this node lives, then requeues the runs
/// whose lease expired (their node died). Errors are logged and the next
/// beat tries again: a database that is away for a moment must not end the
/// node.
pub(super) async fn keep_alive(state: Arc<AppState>) {
    let mut beat = tokio::time::interval((state.config.lease / 3).max(std::time::Duration::from_millis(10)));
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        beat.tick().await;
        match state.store.node_heartbeat(&state.owner).await {
            Ok(()) => {}
            // Silent for so long that the reaper forgot it (a stalled
            // process, a long network split): it is back, so it says so.
            Err(StoreError::NotFound(_)) => {
                if let Err(e) = state.store.register_node(&state.node_info()).await {
                    eprintln!("stephost: registering this node again: {e}");
                }
            }
            Err(e) => eprintln!("stephost: node heartbeat: {e}"),
        }
        if let Err(e) = state.store.requeue_expired().await {
            eprintln!("stephost: requeueing runs of dead nodes: {e}");
        }
    }
}

/// `GET /v1/nodes`: the live nodes of a shared store; on a store only this
/// process serves, this process.
pub(super) async fn list(State(state): State<Arc<AppState>>) -> Result<Json<NodeList>, ApiError> {
    let nodes = match state.store.nodes().await? {
        Some(nodes) => nodes,
        None => vec![this_node(&state)],
    };
    Ok(Json(NodeList { nodes }))
}

/// This process as a node: alive now, running what its workers hold.
fn this_node(state: &AppState) -> NodeView {
    let mut running: Vec<String> = state
        .leases
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .map(|lease| lease.run.clone())
        .collect();
    running.sort();
    NodeView {
        info: state.node_info(),
        started_ms: state.started_ms,
        heartbeat_ms: crate::base::clock::now_ms(),
        running,
    }
}
