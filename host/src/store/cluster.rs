//! What several `stephost serve` nodes on one shared store need from it
//! beyond the data: wake-ups across processes, `flow.respond` answers that
//! cross nodes, the nodes themselves and the reaper of dead nodes' leases.
//! A store only one process serves (SQLite) keeps the defaults: nothing is
//! shared, so every call is a no-op and the server's in-process paths do it all.

use super::StoreError;
use super::runs::RunStatus;
use crate::runtime::outcome::HttpResponse;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

/// A wake-up another node sent through the shared store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// This many runs became claimable (queued, released or requeued).
    Work(u32),
    /// A schedule was set or removed: the scheduler looks again.
    Schedules,
    /// A run's answer for a waiting HTTP trigger is stored (its id).
    Reply(String),
    /// An uploaded step was deleted (its id): drop the local copy.
    StepDeleted(String),
    /// Signals may have been lost (the listener reconnected): do all of the above.
    Resync,
}

/// What a waiting HTTP trigger gets from its run, on this node or another.
#[derive(Debug)]
pub enum RunReply {
    /// A step called `flow.respond`.
    Respond(HttpResponse),
    /// The run ended (this status) without a response.
    Ended(RunStatus),
}

/// A serving node as it registers itself in the shared store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its lease owner id (`serve:<pid>:<random>`): the runs it holds name it.
    pub id: String,
    /// The machine's host name.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// The address it serves on.
    pub listen: String,
    /// The stephost version it runs.
    pub version: String,
    /// Its lease (ms): a node whose heartbeat is older than twice this is
    /// no longer listed as live.
    pub lease_ms: u64,
}

/// A live node as `/v1/nodes` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeView {
    /// What it registered.
    #[serde(flatten)]
    pub info: NodeInfo,
    /// When it registered, ms since the Unix epoch.
    pub started_ms: i64,
    /// Its last heartbeat, ms since the Unix epoch.
    pub heartbeat_ms: i64,
    /// The runs it holds a lease on, by id.
    pub running: Vec<String>,
}

/// Coordination between the processes serving one store. The defaults are
/// those of a store only this process serves.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Whether other processes serve this store at once (then no run left
    /// running can be assumed dead at start, and wake-ups come as signals).
    fn is_shared(&self) -> bool {
        false
    }
    /// Wake-ups from other nodes; `None` when no other node can send any.
    fn signals(&self) -> Option<broadcast::Receiver<Signal>> {
        None
    }
    /// Stores a run's answer for the node whose trigger waits for it (the
    /// first answer wins) and signals it.
    async fn put_reply(&self, _run: &str, _reply: &RunReply) -> Result<(), StoreError> {
        Ok(())
    }
    /// Takes a run's stored answer, if one is there.
    async fn take_reply(&self, _run: &str) -> Result<Option<RunReply>, StoreError> {
        Ok(None)
    }
    /// Registers this node as serving.
    async fn register_node(&self, _node: &NodeInfo) -> Result<(), StoreError> {
        Ok(())
    }
    /// Says this node is still alive.
    async fn node_heartbeat(&self, _id: &str) -> Result<(), StoreError> {
        Ok(())
    }
    /// Unregisters this node (a clean shutdown).
    async fn remove_node(&self, _id: &str) -> Result<(), StoreError> {
        Ok(())
    }
    /// The live nodes; `None` when this process is the only one.
    async fn nodes(&self) -> Result<Option<Vec<NodeView>>, StoreError> {
        Ok(None)
    }
    /// The reaper: puts runs whose lease expired (their node died) back in
    /// the queue; how many.
    async fn requeue_expired(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
}
