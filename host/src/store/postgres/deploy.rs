//! Uploaded components and deployed workflows on PostgreSQL. Components
//! keep their bytes too, so a node that did not receive an upload can fetch
//! the component and compile it itself; nodes deploying the same workflow
//! at once take turns for its next version.

use super::queue::CHANNEL;
use super::{Postgres, step_record};
use crate::store::service::{LIVE_DEFINITIONS, fill_used_by, inline_context, open_inline_secret, step_ids};
use crate::store::{Deployments, InlineSecret, Schedules, StepRecord, Steps, StoreError, WorkflowRecord};
use async_trait::async_trait;

/// The columns [`workflow_row`] reads, in order.
const WORKFLOW_FIELDS: &str = "name, version, definition, endpoint, created_ms";

/// A `workflows` row ([`WORKFLOW_FIELDS`]) as a record.
fn workflow_row(r: &tokio_postgres::Row) -> WorkflowRecord {
    WorkflowRecord {
        name: r.get(0),
        version: r.get::<_, i64>(1) as u64,
        definition: r.get(2),
        endpoint: r.get(3),
        created_ms: r.get::<_, i64>(4) as u64,
    }
}

impl Postgres {
    /// The newest version of every live workflow: name and definition.
    async fn live_definitions(&self) -> Result<Vec<(String, String)>, StoreError> {
        let client = self.client().await?;
        let rows = client.query(LIVE_DEFINITIONS, &[]).await.map_err(self.db())?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Step `id`, or every step (`None`), newest first, with their users.
    async fn steps_where(&self, id: Option<&str>) -> Result<Vec<StepRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, size, uploaded_ms, name FROM steps WHERE $1::text IS NULL OR id = $1
                 ORDER BY uploaded_ms DESC, id",
                &[&id],
            )
            .await
            .map_err(self.db())?;
        drop(client);
        let mut steps: Vec<StepRecord> = rows.iter().map(step_record).collect();
        if !steps.is_empty() {
            fill_used_by(&mut steps, &self.live_definitions().await?);
        }
        Ok(steps)
    }

    /// The newest version matching `condition` (`$1` its one value).
    async fn workflow_where(
        &self,
        condition: &str,
        value: &str,
    ) -> Result<Option<WorkflowRecord>, StoreError> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {WORKFLOW_FIELDS} FROM workflows WHERE {condition} ORDER BY version DESC LIMIT 1"
        );
        let select = self.prepared(&client, &sql).await?;
        let row = client.query_opt(&select, &[&value]).await.map_err(self.db())?;
        Ok(row.as_ref().map(workflow_row))
    }
}

#[async_trait]
impl Deployments for Postgres {
    async fn put_workflow(
        &self,
        name: &str,
        definition: &str,
        secrets: &[InlineSecret],
    ) -> Result<WorkflowRecord, StoreError> {
        let mut client = self.client().await?;
        let db = self.db();
        let tx = client.transaction().await.map_err(&db)?;
        // Nodes deploying this workflow at once take turns: n+1, then n+2.
        tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('stephost workflow ' || $1, 0))", &[&name])
            .await
            .map_err(&db)?;
        let live = tx
            .query_opt(
                "SELECT endpoint FROM workflows WHERE name = $1 AND NOT deleted ORDER BY version DESC LIMIT 1",
                &[&name],
            )
            .await
            .map_err(&db)?;
        // Versions count on across a delete: runs keep pointing at theirs.
        let highest: Option<i64> = tx
            .query_one("SELECT MAX(version) FROM workflows WHERE name = $1", &[&name])
            .await
            .map_err(&db)?
            .get(0);
        let version = highest.map_or(1, |v| v as u64 + 1);
        let endpoint = live.map_or_else(crate::base::ids::unguessable_hex, |r| r.get(0));
        let created_ms = self.clock.now_ms();
        tx.execute(
            "INSERT INTO workflows (name, version, definition, endpoint, created_ms) VALUES ($1, $2, $3, $4, $5)",
            &[&name, &(version as i64), &definition, &endpoint, &created_ms],
        )
        .await
        .map_err(&db)?;
        for (position, secret) in secrets.iter().enumerate() {
            let sealed = self
                .key
                .seal(secret.value.as_bytes(), &inline_context(name, version, &secret.step, &secret.field));
            tx.execute(
                "INSERT INTO workflow_secrets (name, version, step, field, position, sealed) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&name, &(version as i64), &secret.step, &secret.field, &(position as i32), &sealed],
            )
            .await
            .map_err(&db)?;
        }
        tx.commit().await.map_err(&db)?;
        Ok(WorkflowRecord {
            name: name.into(),
            version,
            definition: definition.into(),
            endpoint,
            created_ms: created_ms as u64,
        })
    }

    async fn workflow_secrets(&self, name: &str, version: u64) -> Result<Vec<InlineSecret>, StoreError> {
        let client = self.client().await?;
        let select = self
            .prepared(
                &client,
                "SELECT step, field, sealed FROM workflow_secrets WHERE name = $1 AND version = $2 ORDER BY position",
            )
            .await?;
        let rows = client.query(&select, &[&name, &(version as i64)]).await.map_err(self.db())?;
        rows.iter()
            .map(|r| open_inline_secret(&self.key, name, version, (r.get(0), r.get(1), r.get(2))))
            .collect()
    }

    async fn workflows_using_step(&self, id: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .live_definitions()
            .await?
            .into_iter()
            .filter(|(_, definition)| step_ids(definition).iter().any(|s| s.eq_ignore_ascii_case(id)))
            .map(|(name, _)| name)
            .collect())
    }

    async fn workflow_versions(&self, name: &str) -> Result<Vec<WorkflowRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {WORKFLOW_FIELDS} FROM workflows WHERE name = $1 AND NOT deleted ORDER BY version DESC"
                ),
                &[&name],
            )
            .await
            .map_err(self.db())?;
        Ok(rows.iter().map(workflow_row).collect())
    }

    async fn workflow(&self, name: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        self.workflow_where("name = $1 AND NOT deleted", name).await
    }

    async fn workflows(&self) -> Result<Vec<WorkflowRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {WORKFLOW_FIELDS} FROM workflows w
                     WHERE NOT deleted AND version = (SELECT MAX(version) FROM workflows v WHERE v.name = w.name)
                     ORDER BY name"
                ),
                &[],
            )
            .await
            .map_err(self.db())?;
        Ok(rows.iter().map(workflow_row).collect())
    }

    async fn workflow_by_endpoint(&self, endpoint: &str) -> Result<Option<WorkflowRecord>, StoreError> {
        self.workflow_where("endpoint = $1 AND NOT deleted", endpoint).await
    }

    async fn workflow_version(&self, name: &str, version: u64) -> Result<Option<WorkflowRecord>, StoreError> {
        let client = self.client().await?;
        let select = self
            .prepared(
                &client,
                &format!("SELECT {WORKFLOW_FIELDS} FROM workflows WHERE name = $1 AND version = $2"),
            )
            .await?;
        let row = client.query_opt(&select, &[&name, &(version as i64)]).await.map_err(self.db())?;
        Ok(row.as_ref().map(workflow_row))
    }

    async fn delete_workflow(&self, name: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let deleted = client
            .execute("UPDATE workflows SET deleted = TRUE WHERE name = $1 AND NOT deleted", &[&name])
            .await
            .map_err(self.db())?;
        drop(client);
        self.set_schedule(name, None).await?;
        Ok(deleted > 0)
    }
}

#[async_trait]
impl Steps for Postgres {
    async fn put_step(&self, id: &str, bytes: &[u8], name: Option<&str>) -> Result<(), StoreError> {
        let client = self.client().await?;
        // A re-upload need not send the bytes again: it only names the step.
        let known = client
            .execute("UPDATE steps SET name = COALESCE($2, name) WHERE id = $1", &[&id, &name])
            .await
            .map_err(self.db())?;
        if known > 0 {
            return Ok(());
        }
        client
            .execute(
                "INSERT INTO steps (id, size, uploaded_ms, bytes, name) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET name = COALESCE(EXCLUDED.name, steps.name)",
                &[&id, &(bytes.len() as i64), &self.clock.now_ms(), &bytes, &name],
            )
            .await
            .map_err(self.db())?;
        Ok(())
    }

    async fn step_bytes(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let client = self.client().await?;
        let row =
            client.query_opt("SELECT bytes FROM steps WHERE id = $1", &[&id]).await.map_err(self.db())?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn list_steps(&self) -> Result<Vec<StepRecord>, StoreError> {
        self.steps_where(None).await
    }

    async fn step(&self, id: &str) -> Result<Option<StepRecord>, StoreError> {
        Ok(self.steps_where(Some(id)).await?.pop())
    }

    /// Forgets the step, bytes and all, and tells the other nodes to drop
    /// their copy; `false` if there was none.
    async fn delete_step(&self, id: &str) -> Result<bool, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "WITH gone AS (DELETE FROM steps WHERE id = $1 RETURNING id)
                     SELECT pg_notify('{CHANNEL}', 'step-deleted:' || id) FROM gone"
                ),
                &[&id],
            )
            .await
            .map_err(self.db())?;
        Ok(!rows.is_empty())
    }
}
