//! PostgreSQL is served by several nodes at once: what the [`Cluster`]
//! seam says about it. The reaper is here; the listener, replies across
//! nodes and the node registry come with the server wiring.

use super::Postgres;
use crate::store::{Cluster, StoreError};
use async_trait::async_trait;

#[async_trait]
impl Cluster for Postgres {
    fn is_shared(&self) -> bool {
        true
    }

    async fn requeue_expired(&self) -> Result<usize, StoreError> {
        self.requeue_expired_runs().await
    }
}
