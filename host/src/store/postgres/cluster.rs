//! PostgreSQL is served by several nodes at once: what the [`Cluster`]
//! seam says about it. Signals come from the listener (`listen.rs`); a
//! run's answer for a trigger waiting on another node is a `run_replies`
//! row plus a notification; nodes register and beat in `nodes`, and the
//! reaper requeues dead nodes' runs and forgets nodes long silent.

use super::Postgres;
use super::queue::CHANNEL;
use crate::runtime::outcome::HttpResponse;
use crate::store::{Cluster, NodeInfo, NodeView, RunReply, Signal, StoreError};
use async_trait::async_trait;
use tokio::sync::broadcast;

/// A node whose last heartbeat is older than this many of its leases is
/// deleted by the reaper (it is unlisted after two already).
const FORGET_AFTER_LEASES: i64 = 10;

/// A millisecond count as PostgreSQL's BIGINT, saturating.
fn bigint(ms: u64) -> i64 {
    ms.min(i64::MAX as u64) as i64
}

impl Postgres {
    /// Deletes the nodes whose heartbeat is older than
    /// [`FORGET_AFTER_LEASES`] of their leases; how many.
    async fn forget_silent_nodes(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM nodes WHERE heartbeat_ms < $1 - $2 * lease_ms",
                &[&self.clock.now_ms(), &FORGET_AFTER_LEASES],
            )
            .await
            .map_err(self.db())
    }
}

/// A `run_replies` row (status, headers as JSON text, body, ended) as the
/// answer it stores.
fn reply_row(row: &tokio_postgres::Row) -> Result<RunReply, StoreError> {
    let damaged = |what: &str| StoreError::Invalid(format!("a stored run reply: {what}"));
    if let Some(ended) = row.get::<_, Option<&str>>(3) {
        return Ok(RunReply::Ended(ended.parse()?));
    }
    let status = row.get::<_, Option<i32>>(0).ok_or_else(|| damaged("neither a status nor an end"))?;
    let status = u16::try_from(status).map_err(|_| damaged("a status out of range"))?;
    let headers = row.get::<_, Option<&str>>(1).unwrap_or("[]");
    let headers: Vec<(String, String)> =
        serde_json::from_str(headers).map_err(|e| damaged(&format!("headers: {e}")))?;
    let body = row.get::<_, Option<Vec<u8>>>(2).unwrap_or_default();
    Ok(RunReply::Respond(HttpResponse { status, headers, body }))
}

#[async_trait]
impl Cluster for Postgres {
    fn is_shared(&self) -> bool {
        true
    }

    fn signals(&self) -> Option<broadcast::Receiver<Signal>> {
        Some(self.signals.subscribe())
    }

    /// Stores the answer unless one is stored already (the first wins, as
    /// with the in-process oneshot), and notifies `reply:<run>` in the same
    /// statement, so the waiting node hears of it only once it can take it.
    async fn put_reply(&self, run: &str, reply: &RunReply) -> Result<(), StoreError> {
        let (status, headers, body, ended) = match reply {
            RunReply::Respond(response) => {
                let headers = serde_json::to_string(&response.headers)
                    .map_err(|e| StoreError::Invalid(format!("a run reply's headers: {e}")))?;
                (Some(i32::from(response.status)), Some(headers), Some(response.body.as_slice()), None)
            }
            RunReply::Ended(status) => (None, None, None, Some(status.as_str())),
        };
        let client = self.client().await?;
        client
            .query(
                &format!(
                    "WITH put AS (
                         INSERT INTO run_replies (run, status, headers, body, ended, created_ms)
                         VALUES ($1, $2, $3::text::jsonb, $4, $5, $6)
                         ON CONFLICT (run) DO NOTHING RETURNING run)
                     SELECT pg_notify('{CHANNEL}', 'reply:' || run) FROM put"
                ),
                &[&run, &status, &headers, &body, &ended, &self.clock.now_ms()],
            )
            .await
            .map_err(self.db())?;
        Ok(())
    }

    /// Takes the answer out: of several takers, one gets it.
    async fn take_reply(&self, run: &str) -> Result<Option<RunReply>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "DELETE FROM run_replies WHERE run = $1 RETURNING status, headers::text, body, ended",
                &[&run],
            )
            .await
            .map_err(self.db())?;
        row.as_ref().map(reply_row).transpose()
    }

    /// Registers the node, or registers it again (same id, a restart):
    /// started and last seen now.
    async fn register_node(&self, node: &NodeInfo) -> Result<(), StoreError> {
        let pid = i32::try_from(node.pid)
            .map_err(|_| StoreError::Invalid(format!("node {}: pid {} out of range", node.id, node.pid)))?;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO nodes (id, host, pid, listen, version, lease_ms, started_ms, heartbeat_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                 ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,
                     listen = EXCLUDED.listen, version = EXCLUDED.version, lease_ms = EXCLUDED.lease_ms,
                     started_ms = EXCLUDED.started_ms, heartbeat_ms = EXCLUDED.heartbeat_ms",
                &[
                    &node.id,
                    &node.host,
                    &pid,
                    &node.listen,
                    &node.version,
                    &bigint(node.lease_ms),
                    &self.clock.now_ms(),
                ],
            )
            .await
            .map_err(self.db())?;
        Ok(())
    }

    /// Marks the node seen now. A node the reaper already forgot (silent
    /// for ten leases) is [`StoreError::NotFound`]: it should register again.
    async fn node_heartbeat(&self, id: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        let updated = client
            .execute("UPDATE nodes SET heartbeat_ms = $1 WHERE id = $2", &[&self.clock.now_ms(), &id])
            .await
            .map_err(self.db())?;
        if updated == 0 {
            return Err(StoreError::NotFound(format!("node {id} is not registered")));
        }
        Ok(())
    }

    async fn remove_node(&self, id: &str) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.execute("DELETE FROM nodes WHERE id = $1", &[&id]).await.map_err(self.db())?;
        Ok(())
    }

    /// The nodes heard from within two of their leases, oldest first, each
    /// with the runs it holds a lease on, by id.
    async fn nodes(&self) -> Result<Option<Vec<NodeView>>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT n.id, n.host, n.pid, n.listen, n.version, n.lease_ms, n.started_ms, n.heartbeat_ms,
                        COALESCE(array_agg(r.id ORDER BY r.id) FILTER (WHERE r.id IS NOT NULL), '{}')
                 FROM nodes n LEFT JOIN runs r ON r.status = 'running' AND r.lease_owner = n.id
                 WHERE n.heartbeat_ms > $1 - 2 * n.lease_ms
                 GROUP BY n.id ORDER BY n.started_ms, n.id",
                &[&self.clock.now_ms()],
            )
            .await
            .map_err(self.db())?;
        let nodes = rows
            .iter()
            .map(|r| NodeView {
                info: NodeInfo {
                    id: r.get(0),
                    host: r.get(1),
                    pid: r.get::<_, i32>(2) as u32,
                    listen: r.get(3),
                    version: r.get(4),
                    lease_ms: r.get::<_, i64>(5).max(0) as u64,
                },
                started_ms: r.get(6),
                heartbeat_ms: r.get(7),
                running: r.get(8),
            })
            .collect();
        Ok(Some(nodes))
    }

    /// Requeues the runs whose lease expired (waking the other nodes for
    /// them) and forgets nodes silent for ten of their leases.
    async fn requeue_expired(&self) -> Result<usize, StoreError> {
        let requeued = self.requeue_expired_runs().await?;
        self.forget_silent_nodes().await?;
        Ok(requeued)
    }
}
