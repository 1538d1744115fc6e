//! The durable queue on PostgreSQL: runs accepted in one round trip,
//! claimed with `FOR UPDATE SKIP LOCKED` (nodes claiming at once never
//! take the same run, nor wait for each other), every later write guarded
//! by the lease as on SQLite, and schedules fired by compare-and-set on
//! their due time, so one node fires each tick. Wake-ups for other nodes
//! go out with `pg_notify` in the same transaction (delivered at commit).
//! Accepting an event waits for the disk; a worker's claims and later
//! writes do not (`Postgres::bookkeeping`), as on SQLite.

use super::Postgres;
use crate::store::runs::{Claimed, Lease, NewRun, Run, RunOutcome, RunStatus};
use crate::store::{RunLog, RunQueue, Schedules, StoreError, WorkflowRecord};
use async_trait::async_trait;
use serde_json::Value;
use std::time::Duration;

/// The columns [`run_row`] reads, in order.
const RUN_FIELDS: &str = "id, workflow, version, status, event, attempt, created_ms, started_ms, finished_ms, outcome, not_before_ms, replay_of, seed";

/// The same columns of the `runs` row `r`, for `UPDATE … FROM` statements.
const RUN_FIELDS_R: &str = "r.id, r.workflow, r.version, r.status, r.event, r.attempt, r.created_ms, r.started_ms, r.finished_ms, r.outcome, r.not_before_ms, r.replay_of, r.seed";

/// The channel every node listens on.
pub(super) const CHANNEL: &str = "stephost";

/// A `runs` row ([`RUN_FIELDS`]) as the typed run, as SQLite reads it: an
/// event or outcome no reader understands shows as none.
fn run_row(r: &tokio_postgres::Row) -> Result<Run, StoreError> {
    Ok(Run {
        id: r.get(0),
        workflow: r.get(1),
        version: Some(r.get::<_, i64>(2) as u64),
        status: r.get::<_, &str>(3).parse()?,
        event: serde_json::from_str(r.get::<_, &str>(4)).unwrap_or_default(),
        attempt: r.get::<_, i64>(5) as u64,
        created_ms: r.get::<_, i64>(6) as u64,
        started_ms: r.get::<_, Option<i64>>(7).map(|v| v as u64),
        finished_ms: r.get::<_, Option<i64>>(8).map(|v| v as u64),
        outcome: r.get::<_, Option<&str>>(9).and_then(|t| serde_json::from_str(t).ok()),
        retry_at_ms: Some(r.get::<_, i64>(10) as u64).filter(|&ms| ms > 0),
        replay_of: r.get(11),
        seed: crate::store::runs::parse_seed(r.get(12)),
    })
}

fn to_json(outcome: &RunOutcome) -> Result<String, StoreError> {
    serde_json::to_string(outcome).map_err(|e| StoreError::Invalid(format!("a run's outcome: {e}")))
}

/// `now + by` in ms, saturating.
fn until(now: i64, by: Duration) -> i64 {
    now.saturating_add(by.as_millis().min(i64::MAX as u128) as i64)
}

impl Postgres {
    /// Claims the run the `next` common table expression picks (`$1` now,
    /// `$4` an id if given) under a lease to `owner`: attempt + 1, counted
    /// at the claim.
    async fn claim_where(
        &self,
        next: &str,
        id: Option<&str>,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        let client = self.bookkeeping_client().await?;
        let now = self.clock.now_ms();
        let until = until(now, lease);
        let sql = format!(
            "WITH {next}
             UPDATE runs r SET status = 'running', started_ms = $1, attempt = r.attempt + 1,
                               lease_owner = $2, lease_until_ms = $3
             FROM next WHERE r.id = next.id RETURNING {RUN_FIELDS_R}"
        );
        let claim = self.prepared(&client, &sql).await?;
        let row = match id {
            Some(id) => client.query_opt(&claim, &[&now, &owner, &until, &id]).await,
            None => client.query_opt(&claim, &[&now, &owner, &until]).await,
        }
        .map_err(self.db())?;
        let Some(row) = row else { return Ok(None) };
        let run = run_row(&row)?;
        Ok(Some(Claimed {
            lease: Lease { run: run.id.clone(), owner: owner.to_string(), attempt: run.attempt },
            run,
        }))
    }

    /// Runs `set` (an `UPDATE runs SET …` with `$1`… for `values`) on the
    /// leased run if the lease is still held, sending `notify` with it if
    /// given; whether it was.
    async fn under_lease(
        &self,
        lease: &Lease,
        set: &str,
        values: &[&(dyn tokio_postgres::types::ToSql + Sync)],
        notify: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = values.len();
        let update = format!(
            "{set} WHERE id = ${} AND lease_owner = ${} AND attempt = ${} AND status = 'running' RETURNING id",
            n + 1,
            n + 2,
            n + 3
        );
        let sql = match notify {
            Some(payload) => {
                format!("WITH u AS ({update}) SELECT pg_notify('{CHANNEL}', '{payload}') FROM u")
            }
            None => update,
        };
        let attempt = lease.attempt as i64;
        let mut all = values.to_vec();
        all.extend([&lease.run as &(dyn tokio_postgres::types::ToSql + Sync), &lease.owner, &attempt]);
        let client = self.bookkeeping_client().await?;
        let update = self.prepared(&client, &sql).await?;
        let rows = client.query(&update, &all).await.map_err(self.db())?;
        Ok(!rows.is_empty())
    }
}

#[async_trait]
impl RunQueue for Postgres {
    async fn enqueue_runs(&self, runs: &[NewRun<'_>]) -> Result<(), StoreError> {
        if runs.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
        let workflows: Vec<&str> = runs.iter().map(|r| r.workflow.name.as_str()).collect();
        let versions: Vec<i64> = runs.iter().map(|r| r.workflow.version as i64).collect();
        let events: Vec<String> = runs.iter().map(|r| r.event.to_string()).collect();
        let replays: Vec<Option<&str>> = runs.iter().map(|r| r.replay_of).collect();
        let seeds = runs.iter().map(NewRun::seed_json).collect::<Result<Vec<_>, _>>()?;
        let client = self.client().await?;
        // One statement: one round trip, one transaction; the wake-up goes
        // out at its commit.
        let insert = self
            .prepared(
                &client,
                &format!(
                    "WITH new AS (
                         INSERT INTO runs (id, workflow, version, status, event, created_ms, replay_of, seed)
                         SELECT i, w, v, 'queued', e, $5, r, s
                         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $6::text[], $7::text[])
                              AS t(i, w, v, e, r, s)
                         RETURNING 1)
                     SELECT pg_notify('{CHANNEL}', 'work:' || (SELECT COUNT(*) FROM new))"
                ),
            )
            .await?;
        client
            .query(&insert, &[&ids, &workflows, &versions, &events, &self.clock.now_ms(), &replays, &seeds])
            .await
            .map_err(self.db())?;
        Ok(())
    }

    async fn queued_runs(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let count = self.prepared(&client, "SELECT COUNT(*) FROM runs WHERE status = 'queued'").await?;
        let row = client.query_one(&count, &[]).await.map_err(self.db())?;
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn next_retry_ms(&self) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        let next = self
            .prepared(
                &client,
                "SELECT MIN(not_before_ms) FROM runs WHERE status = 'queued' AND not_before_ms > 0",
            )
            .await?;
        let row = client.query_one(&next, &[]).await.map_err(self.db())?;
        Ok(row.get(0))
    }

    async fn claim_run(&self, owner: &str, lease: Duration) -> Result<Option<Claimed>, StoreError> {
        // The oldest due queued run and the oldest run whose lease expired,
        // each found through its partial index (one condition with OR would
        // scan the whole table each time), then the older of the two.
        self.claim_where(
            "queued AS (SELECT id, created_ms, seq FROM runs WHERE status = 'queued' AND not_before_ms <= $1
                        ORDER BY created_ms, seq LIMIT 1 FOR UPDATE SKIP LOCKED),
             expired AS (SELECT id, created_ms, seq FROM runs WHERE status = 'running' AND lease_until_ms < $1
                        ORDER BY created_ms, seq LIMIT 1 FOR UPDATE SKIP LOCKED),
             next AS (SELECT id FROM (SELECT * FROM queued UNION ALL SELECT * FROM expired) AS c
                      ORDER BY created_ms, seq LIMIT 1)",
            None,
            owner,
            lease,
        )
        .await
    }

    async fn claim_run_by_id(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<Claimed>, StoreError> {
        self.claim_where(
            "next AS (SELECT id FROM runs WHERE id = $4 AND (status = 'queued' OR (status = 'running' AND lease_until_ms < $1))
                      FOR UPDATE SKIP LOCKED)",
            Some(id),
            owner,
            lease,
        )
        .await
    }

    async fn heartbeat(&self, lease: &Lease, extend: Duration) -> Result<bool, StoreError> {
        let until = until(self.clock.now_ms(), extend);
        self.under_lease(lease, "UPDATE runs SET lease_until_ms = $1", &[&until], None).await
    }

    async fn save_progress(&self, lease: &Lease, outcome: &RunOutcome) -> Result<bool, StoreError> {
        let outcome = to_json(outcome)?;
        self.under_lease(lease, "UPDATE runs SET outcome = $1", &[&outcome], None).await
    }

    async fn finish_run(
        &self,
        lease: &Lease,
        status: RunStatus,
        outcome: &RunOutcome,
    ) -> Result<bool, StoreError> {
        let outcome = to_json(outcome)?;
        self.under_lease(
            lease,
            "UPDATE runs SET status = $1, finished_ms = $2, outcome = $3, not_before_ms = 0,
                             lease_owner = NULL, lease_until_ms = 0",
            &[&status.as_str(), &self.clock.now_ms(), &outcome],
            None,
        )
        .await
    }

    async fn retry_run(
        &self,
        lease: &Lease,
        outcome: &RunOutcome,
        not_before_ms: i64,
    ) -> Result<bool, StoreError> {
        let outcome = to_json(outcome)?;
        // A retry due already is claimable now: wake the nodes for it. One
        // due later is found by the workers' wait, capped by `next_retry_ms`.
        let due_now = not_before_ms <= self.clock.now_ms();
        self.under_lease(
            lease,
            "UPDATE runs SET status = 'queued', not_before_ms = $1, outcome = $2,
                             lease_owner = NULL, lease_until_ms = 0",
            &[&not_before_ms, &outcome],
            due_now.then_some("work:1"),
        )
        .await
    }

    async fn release_run(&self, lease: &Lease) -> Result<bool, StoreError> {
        self.under_lease(
            lease,
            "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until_ms = 0",
            &[],
            Some("work:1"),
        )
        .await
    }
}

impl Postgres {
    /// The reaper: runs whose lease expired (their node died, or stalled
    /// past its lease) go back to the queue, and other nodes are woken for
    /// them. Locked rows (a claim taking one over right now) are skipped.
    pub(super) async fn requeue_expired_runs(&self) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_one(
                &format!(
                    "WITH dead AS (SELECT id FROM runs WHERE status = 'running' AND lease_until_ms < $1
                                   FOR UPDATE SKIP LOCKED),
                          requeued AS (UPDATE runs r SET status = 'queued', lease_owner = NULL, lease_until_ms = 0
                                       FROM dead WHERE r.id = dead.id RETURNING r.id),
                          n AS (SELECT COUNT(*) AS n FROM requeued),
                          woken AS (SELECT pg_notify('{CHANNEL}', 'work:' || n) FROM n WHERE n > 0)
                     SELECT n, (SELECT COUNT(*) FROM woken) FROM n"
                ),
                &[&self.clock.now_ms()],
            )
            .await
            .map_err(self.db())?;
        Ok(row.get::<_, i64>(0) as usize)
    }
}

#[async_trait]
impl RunLog for Postgres {
    async fn run(&self, id: &str) -> Result<Option<Run>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(&format!("SELECT {RUN_FIELDS} FROM runs WHERE id = $1"), &[&id])
            .await
            .map_err(self.db())?;
        row.as_ref().map(run_row).transpose()
    }

    async fn runs_page(
        &self,
        workflow: Option<&str>,
        status: Option<RunStatus>,
        before: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Run>, StoreError> {
        let client = self.client().await?;
        let status = status.map(|s| s.as_str());
        let limit = limit.min(i64::MAX as u64) as i64;
        let before: Option<(i64, i64)> = match before {
            None => None,
            Some(id) => {
                let row = client
                    .query_opt("SELECT created_ms, seq FROM runs WHERE id = $1", &[&id])
                    .await
                    .map_err(self.db())?
                    .ok_or_else(|| StoreError::NotFound(format!("no run {id}")))?;
                Some((row.get(0), row.get(1)))
            }
        };
        // Only the filters given, so the planner reads the matching index
        // in order and stops at the limit.
        let mut values: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = Vec::new();
        let mut filters = Vec::new();
        if let Some(workflow) = &workflow {
            values.push(workflow);
            filters.push(format!("workflow = ${}", values.len()));
        }
        if let Some(status) = &status {
            values.push(status);
            filters.push(format!("status = ${}", values.len()));
        }
        if let Some((created_ms, seq)) = &before {
            values.extend([created_ms as &(dyn tokio_postgres::types::ToSql + Sync), seq]);
            filters.push(format!("(created_ms, seq) < (${}, ${})", values.len() - 1, values.len()));
        }
        values.push(&limit);
        let filters = match filters.is_empty() {
            true => String::new(),
            false => format!("WHERE {}", filters.join(" AND ")),
        };
        let sql = format!(
            "SELECT {RUN_FIELDS} FROM runs {filters} ORDER BY created_ms DESC, seq DESC LIMIT ${}",
            values.len()
        );
        let rows = client.query(&sql, &values).await.map_err(self.db())?;
        rows.iter().map(run_row).collect()
    }

    async fn workflows_with_runs(&self) -> Result<Vec<String>, StoreError> {
        let client = self.client().await?;
        let rows = client.query("SELECT DISTINCT workflow FROM runs", &[]).await.map_err(self.db())?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn prune_runs(
        &self,
        workflow: &str,
        keep_runs: Option<u64>,
        older_than_ms: Option<i64>,
    ) -> Result<usize, StoreError> {
        let client = self.client().await?;
        let mut pruned = 0;
        if let Some(keep) = keep_runs {
            let keep = keep.min(i64::MAX as u64) as i64;
            pruned += client
                .execute(
                    "DELETE FROM runs WHERE workflow = $1 AND status NOT IN ('queued', 'running') AND id NOT IN
                     (SELECT id FROM runs WHERE workflow = $1 AND status NOT IN ('queued', 'running')
                      ORDER BY created_ms DESC, seq DESC LIMIT $2)",
                    &[&workflow, &keep],
                )
                .await
                .map_err(self.db())?;
        }
        if let Some(before) = older_than_ms {
            pruned += client
                .execute(
                    "DELETE FROM runs WHERE workflow = $1 AND status NOT IN ('queued', 'running') AND created_ms < $2",
                    &[&workflow, &before],
                )
                .await
                .map_err(self.db())?;
        }
        Ok(pruned as usize)
    }
}

#[async_trait]
impl Schedules for Postgres {
    async fn set_schedule(&self, workflow: &str, next_ms: Option<i64>) -> Result<(), StoreError> {
        let client = self.client().await?;
        let sql = match next_ms {
            Some(_) => format!(
                "WITH s AS (INSERT INTO schedules (workflow, next_ms) VALUES ($1, $2)
                            ON CONFLICT (workflow) DO UPDATE SET next_ms = EXCLUDED.next_ms)
                 SELECT pg_notify('{CHANNEL}', 'schedules')"
            ),
            None => format!(
                "WITH s AS (DELETE FROM schedules WHERE workflow = $1 AND $2::bigint IS NULL)
                 SELECT pg_notify('{CHANNEL}', 'schedules')"
            ),
        };
        client.query(&sql, &[&workflow, &next_ms]).await.map_err(self.db())?;
        Ok(())
    }

    async fn schedule(&self, workflow: &str) -> Result<Option<i64>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT next_ms FROM schedules WHERE workflow = $1", &[&workflow])
            .await
            .map_err(self.db())?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn schedules(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query("SELECT workflow, next_ms FROM schedules ORDER BY next_ms", &[])
            .await
            .map_err(self.db())?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn fire_schedule(
        &self,
        workflow: &WorkflowRecord,
        due_ms: i64,
        event: &Value,
        next_ms: Option<i64>,
    ) -> Result<Option<String>, StoreError> {
        let mut client = self.client().await?;
        let db = self.db();
        let tx = client.transaction().await.map_err(&db)?;
        // Under READ COMMITTED a second node's statement waits on the row
        // lock, then re-checks `next_ms = due` against the committed row:
        // it matches nothing, and that node fires nothing.
        let moved = match next_ms {
            Some(next) => {
                tx.execute(
                    "UPDATE schedules SET next_ms = $1 WHERE workflow = $2 AND next_ms = $3",
                    &[&next, &workflow.name, &due_ms],
                )
                .await
            }
            None => {
                tx.execute(
                    "DELETE FROM schedules WHERE workflow = $1 AND next_ms = $2",
                    &[&workflow.name, &due_ms],
                )
                .await
            }
        }
        .map_err(&db)?;
        if moved != 1 {
            tx.rollback().await.map_err(&db)?;
            return Ok(None);
        }
        let id = crate::base::ids::new_run_id();
        tx.execute(
            &format!(
                "WITH new AS (INSERT INTO runs (id, workflow, version, status, event, created_ms)
                              VALUES ($1, $2, $3, 'queued', $4, $5))
                 SELECT pg_notify('{CHANNEL}', 'work:1')"
            ),
            &[&id, &workflow.name, &(workflow.version as i64), &event.to_string(), &self.clock.now_ms()],
        )
        .await
        .map_err(&db)?;
        tx.commit().await.map_err(&db)?;
        Ok(Some(id))
    }
}
