//! The PostgreSQL store against a real server: each test makes its own
//! database through the admin URL in `STEPHOST_TEST_DATABASE_URL`
//! (`scripts/lib/postgres.sh` starts a throwaway server and sets it).
//! Without it a test says "skipped" and passes, except under `CI`, where it
//! fails: CI never skips these silently.

use super::schema::MIGRATIONS;
use super::*;
use crate::base::clock::{ManualClock, SystemClock};
use crate::catalog::Catalog;
use crate::runtime::outcome::HttpResponse;
use crate::store::OAuthState;
use crate::store::runs::{NewRun, Run, RunOutcome, RunStatus, WorkflowStatus};
use crate::store::{
    Cluster, Deployments, InlineSecret, NodeInfo, RunLog, RunQueue, RunReply, Schedules, Settings, Signal,
    Steps, WorkflowRecord,
};
use tokio_postgres::Client;

/// The admin URL tests make databases through.
const ADMIN_URL: &str = "STEPHOST_TEST_DATABASE_URL";

/// A database of its own for one test.
pub(crate) struct TestDatabase {
    /// Its URL (the admin URL with this database's name).
    pub(crate) url: String,
}

impl TestDatabase {
    /// A new, empty database; `None` (after saying "skipped") without a
    /// server to make it in.
    pub(crate) async fn fresh() -> Option<Self> {
        let admin = match std::env::var(ADMIN_URL) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false");
                assert!(!ci, "{ADMIN_URL} is not set under CI: start PostgreSQL (scripts/lib/postgres.sh)");
                eprintln!("skipped: no {ADMIN_URL}");
                return None;
            }
        };
        let name = format!("stephost_{}", &crate::base::ids::unguessable_hex()[..16]);
        let admin_client = raw_client(&admin).await;
        admin_client.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
        let mut url = url::Url::parse(&admin).unwrap();
        url.set_path(&name);
        Some(Self { url: url.to_string() })
    }

    /// A connection of its own, to look at what the store wrote.
    async fn client(&self) -> Client {
        raw_client(&self.url).await
    }
}

/// A plain connection to `url`, driven on a task of its own.
async fn raw_client(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes(&[byte; 32])
}

async fn connect(db: &TestDatabase, byte: u8) -> Result<Postgres, StoreError> {
    Postgres::connect(&db.url, key(byte), Arc::new(SystemClock)).await
}

/// The schema's migrations as recorded: (version, applied_ms).
async fn applied(client: &Client) -> Vec<(i32, i64)> {
    let rows = client.query("SELECT version, applied_ms FROM schema_migrations ORDER BY version", &[]).await;
    rows.unwrap().iter().map(|r| (r.get(0), r.get(1))).collect()
}

async fn key_check(client: &Client) -> Vec<Vec<u8>> {
    let rows = client.query("SELECT value FROM meta WHERE key = 'key_check'", &[]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn a_fresh_database_is_migrated_to_the_latest_schema() {
    let Some(db) = TestDatabase::fresh().await else { return };
    connect(&db, 7).await.unwrap();
    let client = db.client().await;
    let versions: Vec<i32> = applied(&client).await.into_iter().map(|(v, _)| v).collect();
    assert_eq!(versions, (1..=MIGRATIONS.len() as i32).collect::<Vec<_>>());
    let tables: Vec<String> = client
        .query(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in [
        "account_fields",
        "account_oauth",
        "accounts",
        "audit",
        "audit_head",
        "env",
        "meta",
        "nodes",
        "run_replies",
        "runs",
        "schedules",
        "schema_migrations",
        "steps",
        "workflow_secrets",
        "workflows",
    ] {
        assert!(tables.iter().any(|t| t == table), "no table {table} in {tables:?}");
    }
    let head = client.query_one("SELECT seq, hash FROM audit_head", &[]).await.unwrap();
    assert_eq!((head.get::<_, i64>(0), head.get::<_, String>(1)), (-1, "<GENESIS>".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_connecting_at_once_to_a_fresh_database_make_one_schema() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let url = Arc::new(db.url.clone());
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { Postgres::connect(&url, key(7), Arc::new(SystemClock)).await })
        })
        .collect();
    for node in nodes {
        let store = node.await.unwrap().unwrap_or_else(|e| panic!("a node starting at once failed: {e}"));
        store.meta("key_check").await.unwrap().expect("a key check");
    }
    let client = db.client().await;
    assert_eq!(applied(&client).await.len(), MIGRATIONS.len(), "each migration recorded once");
    assert_eq!(key_check(&client).await.len(), 1);
}

#[tokio::test]
async fn connecting_again_changes_nothing() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let clock = Arc::new(ManualClock::new(1_000));
    Postgres::connect(&db.url, key(7), clock.clone()).await.unwrap();
    let client = db.client().await;
    let (migrations, check) = (applied(&client).await, key_check(&client).await);
    assert_eq!(migrations.iter().map(|(_, at)| *at).collect::<Vec<_>>(), vec![1_000; MIGRATIONS.len()]);
    clock.set(2_000);
    Postgres::connect(&db.url, key(7), clock).await.unwrap();
    assert_eq!(applied(&client).await, migrations, "migrations ran again");
    assert_eq!(key_check(&client).await, check, "the key check was sealed again");
}

#[tokio::test]
async fn a_node_with_another_master_key_is_refused() {
    let Some(db) = TestDatabase::fresh().await else { return };
    connect(&db, 7).await.unwrap();
    let err = connect(&db, 8).await.unwrap_err().to_string();
    assert!(err.contains("wrong master key"), "{err}");
    assert!(err.contains("database postgres://postgres@127.0.0.1:"), "{err}");
    assert!(!err.contains('\n'), "not one line: {err}");
    // The first key still opens it, and the refused node changed nothing.
    connect(&db, 7).await.unwrap();
}

#[tokio::test]
async fn the_key_check_holds_neither_the_key_nor_a_clear_value() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let secret = [0x5a_u8; 32];
    Postgres::connect(&db.url, MasterKey::from_bytes(&secret), Arc::new(SystemClock)).await.unwrap();
    let stored = key_check(&db.client().await).await.remove(0);
    let contains = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(!contains(&secret[..8]), "the key's bytes are stored");
    assert!(!contains(&hex::encode(secret).as_bytes()[..16]), "the key's hex is stored");
    assert!(!contains(b"master key check") && !contains(b"key check"), "a clear value is stored");
    // It is the sealed check, not something else: it opens under the key only.
    assert_eq!(
        MasterKey::from_bytes(&secret).open(&stored, "key check").unwrap(),
        b"stephost master key check"
    );
    assert!(key(7).open(&stored, "key check").is_err());
}

#[tokio::test]
async fn a_database_of_a_newer_stephost_is_refused_unchanged() {
    let Some(db) = TestDatabase::fresh().await else { return };
    connect(&db, 7).await.unwrap();
    let client = db.client().await;
    let newer = MIGRATIONS.len() as i32 + 1;
    client.execute("INSERT INTO schema_migrations VALUES ($1, 0)", &[&newer]).await.unwrap();
    let err = connect(&db, 7).await.unwrap_err().to_string();
    assert!(err.contains(&format!("schema version {newer} is newer than this stephost")), "{err}");
    assert!(!err.contains('\n'), "not one line: {err}");
    assert_eq!(applied(&client).await.len(), MIGRATIONS.len() + 1);
}

#[tokio::test]
async fn errors_never_show_the_password_of_the_url() {
    // Nothing listens on port 1: connecting fails, naming the database.
    let err = Postgres::connect("postgres://ops:pa55-w0rd@127.0.0.1:1/jobs", key(7), Arc::new(SystemClock))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("database postgres://ops@127.0.0.1:1/jobs: "), "{err}");
    assert!(!err.contains("pa55-w0rd"), "{err}");
    // Nor when the URL itself is bad.
    let err =
        Postgres::connect("postgres://ops:pa55-w0rd@127.0.0.1:port/jobs", key(7), Arc::new(SystemClock))
            .await
            .unwrap_err()
            .to_string();
    assert!(err.contains("not a PostgreSQL URL"), "{err}");
    assert!(!err.contains("pa55-w0rd"), "{err}");
}

#[tokio::test]
async fn a_url_asking_for_tls_is_refused_in_one_line() {
    let err = Postgres::connect(
        "postgres://ops:pa55-w0rd@127.0.0.1:1/jobs?sslmode=require",
        key(7),
        Arc::new(SystemClock),
    )
    .await
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "database postgres://ops@127.0.0.1:1/jobs: sslmode=require: TLS to PostgreSQL is not supported yet"
    );
}

#[tokio::test]
async fn only_a_workers_bookkeeping_commits_without_waiting_for_the_disk() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let store = connect(&db, 1).await.unwrap();
    // Where each connection's setting comes from: `client` is a setting
    // the connection asked for; anything else is the server's own.
    let source = "SELECT setting, source FROM pg_settings WHERE name = 'synchronous_commit'";
    let client = store.client().await.unwrap();
    let main: (String, String) = client.query_one(source, &[]).await.map(|r| (r.get(0), r.get(1))).unwrap();
    assert_ne!(
        main.1, "client",
        "accepting events, deploys and settings wait for the server's disk: {main:?}"
    );
    let bookkeeping = store.bookkeeping_client().await.unwrap();
    let unsynced: (String, String) =
        bookkeeping.query_one(source, &[]).await.map(|r| (r.get(0), r.get(1))).unwrap();
    assert_eq!(unsynced, ("off".to_string(), "client".to_string()));
}

#[tokio::test]
async fn settings_are_kept_and_init_meta_keeps_the_first_value() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let store = connect(&db, 7).await.unwrap();
    assert_eq!(store.meta("api_token_sha256").await.unwrap(), None);
    store.set_meta("api_token_sha256", b"first").await.unwrap();
    store.set_meta("api_token_sha256", b"second").await.unwrap();
    assert_eq!(store.meta("api_token_sha256").await.unwrap().as_deref(), Some(&b"second"[..]));
    assert_eq!(store.init_meta("token", b"mine").await.unwrap(), b"mine");
    let other = connect(&db, 7).await.unwrap();
    assert_eq!(other.init_meta("token", b"theirs").await.unwrap(), b"mine", "the first value wins");
    assert_eq!(store.meta("token").await.unwrap().as_deref(), Some(&b"mine"[..]));
}

#[tokio::test]
async fn component_bytes_are_stored_once_for_every_node() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let clock = Arc::new(ManualClock::new(5_000));
    let one = Postgres::connect(&db.url, key(7), clock.clone()).await.unwrap();
    let two = connect(&db, 7).await.unwrap();
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    one.put_step("abc", &bytes, None).await.unwrap();
    assert_eq!(two.step_bytes("abc").await.unwrap().as_deref(), Some(&bytes[..]));
    let record = two.step("abc").await.unwrap().unwrap();
    assert_eq!((record.size, record.uploaded_ms), (70_000, 5_000));
    // A second upload keeps the first (time and bytes).
    clock.set(9_000);
    one.put_step("abc", b"other", None).await.unwrap();
    assert_eq!(two.step_bytes("abc").await.unwrap().unwrap().len(), 70_000);
    one.put_step("def", b"small", None).await.unwrap();
    let ids: Vec<String> = two.list_steps().await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["def", "abc"], "newest first");
    assert!(two.delete_step("abc").await.unwrap());
    assert!(!one.delete_step("abc").await.unwrap());
    assert_eq!(one.step_bytes("abc").await.unwrap(), None);
    assert!(one.step("abc").await.unwrap().is_none());
}

/// A workflow version to queue runs of (runs do not need its row).
fn workflow(name: &str) -> WorkflowRecord {
    WorkflowRecord {
        name: name.into(),
        version: 3,
        definition: String::new(),
        endpoint: "e".into(),
        created_ms: 0,
    }
}

fn outcome(status: WorkflowStatus, attempt: u64) -> RunOutcome {
    RunOutcome { status, attempt, duration_ms: Some(1.5), steps: vec![] }
}

const LEASE: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_claimers_over_200_queued_runs_claim_each_exactly_once() {
    let Some(db) = TestDatabase::fresh().await else { return };
    // Two nodes (two pools), four workers each.
    let nodes = [Arc::new(connect(&db, 7).await.unwrap()), Arc::new(connect(&db, 7).await.unwrap())];
    let flow = workflow("many");
    let event = serde_json::json!({ "n": 1 });
    let ids: Vec<String> = (0..200).map(|_| crate::base::ids::new_run_id()).collect();
    let batch: Vec<NewRun> = ids.iter().map(|id| NewRun::new(id.clone(), &flow, &event)).collect();
    nodes[0].enqueue_runs(&batch).await.unwrap();
    assert_eq!(nodes[1].queued_runs().await.unwrap(), 200);
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let store = nodes[w % 2].clone();
            tokio::spawn(async move {
                let owner = format!("serve:{w}:test");
                let mut claimed = Vec::new();
                while let Some(c) = store.claim_run(&owner, LEASE).await.unwrap() {
                    claimed.push((c.run.id, c.run.attempt));
                }
                claimed
            })
        })
        .collect();
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await.unwrap());
    }
    assert!(all.iter().all(|(_, attempt)| *attempt == 1), "a run was claimed twice: {all:?}");
    let mut claimed: Vec<String> = all.into_iter().map(|(id, _)| id).collect();
    claimed.sort();
    let mut expected = ids.clone();
    expected.sort();
    assert_eq!(claimed, expected, "each run claimed exactly once");
    assert_eq!(nodes[0].queued_runs().await.unwrap(), 0);
    assert_eq!(nodes[0].list_runs(None, Some(RunStatus::Running), 1_000).await.unwrap().len(), 200);
}

#[tokio::test]
async fn an_expired_lease_is_reclaimed_with_attempt_2_and_the_stale_holder_is_refused() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let clock = Arc::new(ManualClock::new(10_000));
    let one = connect(&db, 7).await.unwrap().with_clock(clock.clone());
    let two = connect(&db, 7).await.unwrap().with_clock(clock.clone());
    let flow = workflow("lease");
    let id = crate::base::ids::new_run_id();
    one.enqueue_runs(&[NewRun::new(id.clone(), &flow, &serde_json::json!({}))]).await.unwrap();
    // The same owner name on both: the attempt tells the holders apart.
    let stale = one.claim_run("serve:1:a", LEASE).await.unwrap().unwrap();
    assert_eq!(stale.run.attempt, 1);
    assert!(two.claim_run("serve:1:a", LEASE).await.unwrap().is_none(), "held under a live lease");
    assert!(one.heartbeat(&stale.lease, LEASE).await.unwrap());
    clock.set(10_000 + 2 * LEASE.as_millis() as i64);
    let fresh = two.claim_run("serve:1:a", LEASE).await.unwrap().expect("the expired lease is taken over");
    assert_eq!((fresh.run.id.as_str(), fresh.run.attempt), (id.as_str(), 2));
    let done = outcome(WorkflowStatus::Succeeded, 1);
    assert!(!one.finish_run(&stale.lease, RunStatus::Succeeded, &done).await.unwrap(), "stale finish");
    assert!(!one.heartbeat(&stale.lease, LEASE).await.unwrap(), "stale heartbeat");
    assert!(!one.save_progress(&stale.lease, &done).await.unwrap(), "stale progress");
    assert!(!one.release_run(&stale.lease).await.unwrap(), "stale release");
    assert_eq!(one.run(&id).await.unwrap().unwrap().status, RunStatus::Running);
    assert!(
        two.finish_run(&fresh.lease, RunStatus::Succeeded, &outcome(WorkflowStatus::Succeeded, 2))
            .await
            .unwrap()
    );
    let run = one.run(&id).await.unwrap().unwrap();
    assert_eq!((run.status, run.attempt, run.outcome.unwrap().attempt), (RunStatus::Succeeded, 2, 2));
}

#[tokio::test]
async fn the_reaper_requeues_only_expired_leases_and_the_run_counts_its_next_attempt() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let clock = Arc::new(ManualClock::new(10_000));
    let store = connect(&db, 7).await.unwrap().with_clock(clock.clone());
    let flow = workflow("reap");
    let event = serde_json::json!({});
    let ids: Vec<String> = (0..2).map(|_| crate::base::ids::new_run_id()).collect();
    let batch: Vec<NewRun> = ids.iter().map(|id| NewRun::new(id.clone(), &flow, &event)).collect();
    store.enqueue_runs(&batch).await.unwrap();
    let dead = store.claim_run("serve:dead", Duration::from_secs(5)).await.unwrap().unwrap();
    let alive = store.claim_run("serve:alive", Duration::from_secs(60)).await.unwrap().unwrap();
    assert_eq!(store.requeue_expired().await.unwrap(), 0, "no lease has expired");
    clock.set(20_000);
    assert_eq!(store.requeue_expired().await.unwrap(), 1);
    let run = store.run(&dead.run.id).await.unwrap().unwrap();
    assert_eq!((run.status, run.attempt), (RunStatus::Queued, 1));
    assert_eq!(store.run(&alive.run.id).await.unwrap().unwrap().status, RunStatus::Running);
    let again = store.claim_run("serve:other", LEASE).await.unwrap().unwrap();
    assert_eq!((again.run.id, again.run.attempt), (dead.run.id.clone(), 2));
    assert!(!store.release_run(&dead.lease).await.unwrap(), "the dead holder lost it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 3)]
async fn three_nodes_firing_the_same_schedule_tick_queue_one_run() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Arc::new(connect(&db, 7).await.unwrap()));
    }
    nodes[0].set_schedule("tick", Some(60_000)).await.unwrap();
    let fires: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            tokio::spawn(async move {
                let event = serde_json::json!({ "timestamp": 60_000 });
                node.fire_schedule(&workflow("tick"), 60_000, &event, Some(120_000)).await.unwrap()
            })
        })
        .collect();
    let mut fired = Vec::new();
    for fire in fires {
        fired.extend(fire.await.unwrap());
    }
    assert_eq!(fired.len(), 1, "one node fires the tick: {fired:?}");
    assert_eq!(nodes[1].queued_runs().await.unwrap(), 1);
    assert_eq!(nodes[2].schedule("tick").await.unwrap(), Some(120_000));
    assert_eq!(nodes[2].run(&fired[0]).await.unwrap().unwrap().event["timestamp"], 60_000);
    // The last tick removes the schedule, once.
    let event = serde_json::json!({});
    assert!(nodes[0].fire_schedule(&workflow("tick"), 120_000, &event, None).await.unwrap().is_some());
    assert_eq!(nodes[1].fire_schedule(&workflow("tick"), 120_000, &event, None).await.unwrap(), None);
    assert_eq!(nodes[1].schedules().await.unwrap(), vec![]);
    assert_eq!(nodes[1].queued_runs().await.unwrap(), 2);
}

#[tokio::test]
async fn a_run_s_round_trip_has_the_shape_sqlite_gives_it() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let clock = Arc::new(ManualClock::new(1_000));
    let pg = connect(&db, 7).await.unwrap().with_clock(clock.clone());
    let dir = tempfile::tempdir().unwrap();
    let sqlite =
        crate::store::Sqlite::new(crate::store::Store::open(dir.path()).unwrap().with_clock(clock.clone()))
            .unwrap();
    let stores: [&dyn RunStore; 2] = [&sqlite, &pg];
    let flow = workflow("shape");
    // Key order and nesting must come back as sent.
    let events =
        [serde_json::json!({ "z": 1, "a": { "y": [1, "two", null] } }), serde_json::json!({ "n": 2 })];
    let ids: Vec<String> = (0..2).map(|_| crate::base::ids::new_run_id()).collect();
    let batch: Vec<NewRun> =
        ids.iter().zip(&events).map(|(id, event)| NewRun::new(id.clone(), &flow, event)).collect();
    let mut shapes: Vec<Vec<serde_json::Value>> = vec![vec![]; 2];
    let json = |run: &Run| serde_json::to_value(run).unwrap();
    for (store, shape) in stores.iter().zip(&mut shapes) {
        // Two batches, so "newest first" has no tie (SQLite's order of
        // runs created in the same millisecond is its own).
        clock.set(1_000);
        store.enqueue_runs(&batch[..1]).await.unwrap();
        clock.set(1_500);
        store.enqueue_runs(&batch[1..]).await.unwrap();
        clock.set(2_000);
        let first = store.claim_run("serve:1:x", LEASE).await.unwrap().unwrap();
        shape.push(json(&first.run));
        let progress = RunOutcome::running(1, &[]);
        assert!(store.save_progress(&first.lease, &progress).await.unwrap());
        shape.push(json(&store.run(&ids[0]).await.unwrap().unwrap()));
        clock.set(3_000);
        let failed = outcome(WorkflowStatus::Failed { step: "s".into(), error: "boom".into() }, 1);
        assert!(store.finish_run(&first.lease, RunStatus::Failed, &failed).await.unwrap());
        let second = store.claim_run("serve:1:x", LEASE).await.unwrap().unwrap();
        assert!(store.retry_run(&second.lease, &failed, 9_000).await.unwrap());
        assert_eq!(store.next_retry_ms().await.unwrap(), Some(9_000));
        assert!(store.claim_run("serve:1:x", LEASE).await.unwrap().is_none(), "the retry is not due");
        shape.extend(store.list_runs(Some("shape"), None, 10).await.unwrap().iter().map(json));
        shape.extend(store.list_runs(None, Some(RunStatus::Failed), 10).await.unwrap().iter().map(json));
        assert_eq!(store.workflows_with_runs().await.unwrap(), ["shape"]);
        assert_eq!(
            store.prune_runs("shape", Some(0), None).await.unwrap(),
            1,
            "the failed run, not the queued"
        );
    }
    assert_eq!(shapes[1], shapes[0], "PostgreSQL's runs differ from SQLite's");
    assert_eq!(shapes[0][0]["status"], "running");
    assert_eq!(shapes[0][0]["event"], events[0]);
    assert_eq!(
        serde_json::to_string(&shapes[1][0]["event"]).unwrap(),
        serde_json::to_string(&events[0]).unwrap(),
        "key order kept"
    );
}

#[tokio::test]
async fn uploads_keep_their_bytes_and_deleting_one_tells_the_other_nodes() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let store = connect(&db, 7).await.unwrap();
    let (listener, mut heard) = listen(&db.url).await;
    store.put_step("abc", b"wasm", None).await.unwrap();
    assert_eq!(store.step_bytes("abc").await.unwrap().as_deref(), Some(&b"wasm"[..]));
    assert!(store.delete_step("abc").await.unwrap());
    assert!(!store.delete_step("abc").await.unwrap());
    assert_eq!(store.step_bytes("abc").await.unwrap(), None);
    // Notifications arrive in commit order: ours comes after the delete's.
    listener.batch_execute("NOTIFY stephost, 'end'").await.unwrap();
    assert_eq!(heard_until_end(&mut heard).await, ["step-deleted:abc"], "once, for the one delete");
}

#[tokio::test]
async fn accepted_runs_released_runs_and_fired_ticks_wake_the_other_nodes() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let clock = Arc::new(ManualClock::new(10_000));
    let store = connect(&db, 7).await.unwrap().with_clock(clock.clone());
    let (listener, mut heard) = listen(&db.url).await;
    let flow = workflow("wake");
    let event = serde_json::json!({});
    let ids: Vec<String> = (0..3).map(|_| crate::base::ids::new_run_id()).collect();
    let batch: Vec<NewRun> = ids.iter().map(|id| NewRun::new(id.clone(), &flow, &event)).collect();
    store.enqueue_runs(&batch).await.unwrap();
    let claimed = store.claim_run("serve:1:x", Duration::from_secs(1)).await.unwrap().unwrap();
    assert!(store.release_run(&claimed.lease).await.unwrap());
    store.set_schedule("wake", Some(5)).await.unwrap();
    assert!(store.fire_schedule(&flow, 5, &event, Some(6)).await.unwrap().is_some());
    let claimed = store.claim_run("serve:1:x", Duration::from_secs(1)).await.unwrap().unwrap();
    assert!(store.heartbeat(&claimed.lease, Duration::from_secs(1)).await.unwrap());
    clock.set(20_000);
    assert_eq!(store.requeue_expired().await.unwrap(), 1);
    listener.batch_execute("NOTIFY stephost, 'end'").await.unwrap();
    assert_eq!(heard_until_end(&mut heard).await, ["work:3", "work:1", "schedules", "work:1", "work:1"]);
}

/// A connection listening on the `stephost` channel, and what it hears.
async fn listen(url: &str) -> (Client, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let (client, mut connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    let (send, heard) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let Ok(tokio_postgres::AsyncMessage::Notification(n)) = message {
                let _ = send.send(n.payload().to_string());
            }
        }
    });
    client.batch_execute("LISTEN stephost").await.unwrap();
    (client, heard)
}

/// Every payload heard before `end`.
async fn heard_until_end(heard: &mut tokio::sync::mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut payloads = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let payload = tokio::time::timeout_at(deadline, heard.recv()).await.expect("no `end` within 60 s");
        match payload.expect("the listener stopped") {
            end if end == "end" => return payloads,
            other => payloads.push(other),
        }
    }
}

/// The run methods both stores share, for comparing them.
trait RunStore: RunQueue + RunLog {}
impl<T: RunQueue + RunLog> RunStore for T {}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_deploying_one_workflow_at_once_get_consecutive_versions_and_one_endpoint() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let mut nodes = Vec::new();
    for _ in 0..4 {
        nodes.push(Arc::new(connect(&db, 7).await.unwrap()));
    }
    let deploys: Vec<_> = (0..8)
        .map(|i| {
            let node = nodes[i % 4].clone();
            tokio::spawn(
                async move { node.put_workflow("hook", &format!("definition {i}"), &[]).await.unwrap() },
            )
        })
        .collect();
    let mut records = Vec::new();
    for deploy in deploys {
        records.push(deploy.await.unwrap());
    }
    let mut versions: Vec<u64> = records.iter().map(|r| r.version).collect();
    versions.sort();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>());
    let newest = nodes[0].workflow("hook").await.unwrap().unwrap();
    assert_eq!(newest.version, 8);
    assert!(records.iter().all(|r| r.endpoint == newest.endpoint), "one endpoint for every version");
    assert_eq!(nodes[1].workflow_by_endpoint(&newest.endpoint).await.unwrap().unwrap().version, 8);
    // A delete removes the schedule; a redeploy counts on, under a new endpoint.
    nodes[0].set_schedule("hook", Some(5)).await.unwrap();
    assert!(nodes[2].delete_workflow("hook").await.unwrap());
    assert!(!nodes[2].delete_workflow("hook").await.unwrap());
    assert_eq!(nodes[0].schedule("hook").await.unwrap(), None);
    assert!(nodes[0].workflow("hook").await.unwrap().is_none());
    assert_eq!(nodes[0].workflow_version("hook", 3).await.unwrap().unwrap().version, 3, "kept for runs");
    let again = nodes[3].put_workflow("hook", "definition", &[]).await.unwrap();
    assert_eq!(again.version, 9);
    assert_ne!(again.endpoint, newest.endpoint);
}

#[tokio::test]
async fn inline_secrets_are_sealed_in_the_database_and_opened_in_order() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let store = connect(&db, 7).await.unwrap();
    let secrets = vec![
        InlineSecret { step: "post".into(), field: "secret_env.Z".into(), value: "zz-clear-secret".into() },
        InlineSecret {
            step: "post".into(),
            field: "auths.slack.token".into(),
            value: "xoxb-clear-secret".into(),
        },
    ];
    let definition = "[[steps]]\nname = \"post\"\nstep = \"ABCD\"\n";
    let record = store.put_workflow("w", definition, &secrets).await.unwrap();
    assert_eq!(store.workflow_secrets("w", record.version).await.unwrap(), secrets);
    assert_eq!(store.workflows_using_step("abcd").await.unwrap(), ["w"]);
    assert!(store.workflows_using_step("other").await.unwrap().is_empty());
    let client = db.client().await;
    for row in client.query("SELECT sealed FROM workflow_secrets", &[]).await.unwrap() {
        let sealed: Vec<u8> = row.get(0);
        assert!(!sealed.windows(12).any(|w| w == b"clear-secret"), "a secret is stored in clear");
    }
    // Bound to its version: moved to another, it does not open.
    client.execute("UPDATE workflow_secrets SET version = 2", &[]).await.unwrap();
    client.execute("UPDATE workflows SET version = 2", &[]).await.unwrap();
    assert!(store.workflow_secrets("w", 2).await.is_err());
}

#[tokio::test]
async fn accounts_and_env_read_back_as_on_sqlite_with_secrets_sealed_in_the_database() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let pg = connect(&db, 7).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let sqlite = crate::store::Sqlite::open(dir.path()).unwrap();
    let stores: [&dyn crate::store::Backend; 2] = [&sqlite, &pg];
    let catalog = Catalog::builtin();
    let fields = vec![
        ("oauth_access_token".to_string(), "xoxb-clear-secret".to_string()),
        ("oauth_uid".into(), "U1".into()),
    ];
    let oauth = OAuthState {
        token_url: "https://example.test/token".into(),
        client_id: "id".into(),
        client_secret: Some("cs-clear-secret".into()),
        refresh_token: Some("rt-clear-secret".into()),
        expires_ms: Some(77),
    };
    let mut seen = Vec::new();
    for store in stores {
        store.connect_account(&catalog, "slack", "work", &fields).await.unwrap();
        store.set_oauth("slack", "work", &oauth).await.unwrap();
        store.update_tokens("slack", "work", "xoxb-new-clear-secret", None, Some(99)).await.unwrap();
        store.set_env("TOKEN", "env-clear-secret", true, None).await.unwrap();
        store.set_env("MODE", "global", false, None).await.unwrap();
        store.set_env("MODE", "mine", false, Some("w")).await.unwrap();
        let bad =
            store.connect_account(&catalog, "slack", "work", &fields[1..]).await.unwrap_err().to_string();
        let listed: Vec<_> = store
            .list_accounts()
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.app, a.name, a.fields, a.expires_ms, a.status))
            .collect();
        let envs: Vec<_> = store
            .list_env()
            .await
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.workflow, e.secret, e.shown))
            .collect();
        let fields: Vec<_> = store
            .account_fields("slack", "work")
            .await
            .unwrap()
            .into_iter()
            .map(|f| (f.key, f.secret, f.value))
            .collect();
        let refresh = store.oauth("slack", "work").await.unwrap().unwrap().refresh_token;
        seen.push(format!(
            "{bad}|{listed:?}|{envs:?}|{fields:?}|{refresh:?}|{:?}|{:?}",
            store.env_for(Some("w")).await.unwrap(),
            store.remove_account("slack", "gone").await.unwrap_err().to_string()
        ));
    }
    assert_eq!(seen[1], seen[0], "PostgreSQL answers differently from SQLite");
    assert!(seen[0].contains("xoxb-new-clear-secret") && seen[0].contains("rt-clear-secret"), "{}", seen[0]);
    let client = db.client().await;
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    for sql in [
        "SELECT COALESCE(sealed, ''::bytea) FROM account_fields",
        "SELECT COALESCE(client_secret, ''::bytea) || COALESCE(refresh_token, ''::bytea) FROM account_oauth",
        "SELECT COALESCE(sealed, ''::bytea) || convert_to(COALESCE(plain, ''), 'UTF8') FROM env",
    ] {
        blobs.extend(client.query(sql, &[]).await.unwrap().iter().map(|r| r.get::<_, Vec<u8>>(0)));
    }
    let plain: Vec<String> = client
        .query("SELECT COALESCE(plain, '') FROM account_fields", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(plain.iter().all(|p| !p.contains("clear-secret")), "{plain:?}");
    assert!(
        !blobs.iter().any(|b| b.windows(12).any(|w| w == b"clear-secret")),
        "a secret is stored in clear"
    );
}

/// The next signal `signals` receives, within 60 s.
async fn next_signal(signals: &mut tokio::sync::broadcast::Receiver<Signal>) -> Signal {
    tokio::time::timeout(Duration::from_secs(60), signals.recv())
        .await
        .expect("no signal within 60 s")
        .expect("the signals ended")
}

/// Every signal received before `step-deleted:end`, which `client` sends
/// last: notifications arrive in commit order, so nothing sent before it is
/// missing.
async fn signals_until_end(
    client: &Client,
    signals: &mut tokio::sync::broadcast::Receiver<Signal>,
) -> Vec<Signal> {
    client.batch_execute("NOTIFY stephost, 'step-deleted:end'").await.unwrap();
    let mut heard = Vec::new();
    loop {
        match next_signal(signals).await {
            Signal::StepDeleted(id) if id == "end" => return heard,
            other => heard.push(other),
        }
    }
}

#[test]
fn payloads_become_signals_and_anything_else_is_ignored() {
    use super::listen::parse;
    assert_eq!(parse("work:12"), Some(Signal::Work(12)));
    assert_eq!(parse("schedules"), Some(Signal::Schedules));
    assert_eq!(parse("reply:r-1:x"), Some(Signal::Reply("r-1:x".into())));
    assert_eq!(parse("step-deleted:abc"), Some(Signal::StepDeleted("abc".into())));
    for noise in ["end", "work:", "work:-1", "work:many", "reply:", "step-deleted:", "schedules:1", ""] {
        assert_eq!(parse(noise), None, "{noise:?}");
    }
}

#[tokio::test]
async fn writes_on_one_node_reach_the_signals_of_another() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let clock = Arc::new(ManualClock::new(10_000));
    let listener = connect(&db, 7).await.unwrap();
    let writer = connect(&db, 7).await.unwrap().with_clock(clock.clone());
    let mut signals = listener.signals().expect("a shared store has signals");
    let flow = workflow("wake");
    let event = serde_json::json!({});
    let ids: Vec<String> = (0..2).map(|_| crate::base::ids::new_run_id()).collect();
    let batch: Vec<NewRun> = ids.iter().map(|id| NewRun::new(id.clone(), &flow, &event)).collect();
    writer.enqueue_runs(&batch).await.unwrap();
    writer.set_schedule("wake", Some(50_000)).await.unwrap();
    let claimed = writer.claim_run("serve:b:1", LEASE).await.unwrap().unwrap();
    let failed = outcome(WorkflowStatus::Failed { step: "s".into(), error: "boom".into() }, 1);
    // A retry due now is work at once; one due later is not.
    assert!(writer.retry_run(&claimed.lease, &failed, 10_000).await.unwrap());
    let claimed = writer.claim_run("serve:b:1", LEASE).await.unwrap().unwrap();
    assert!(writer.retry_run(&claimed.lease, &failed, 99_000).await.unwrap());
    writer.put_reply(&ids[1], &RunReply::Ended(RunStatus::Failed)).await.unwrap();
    writer.put_step("abc", b"wasm", None).await.unwrap();
    assert!(writer.delete_step("abc").await.unwrap());
    let client = db.client().await;
    assert_eq!(
        signals_until_end(&client, &mut signals).await,
        [
            Signal::Work(2),
            Signal::Schedules,
            Signal::Work(1),
            Signal::Reply(ids[1].clone()),
            Signal::StepDeleted("abc".into()),
        ]
    );
}

#[tokio::test]
async fn a_lost_listening_connection_comes_back_and_says_resync() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let listener = connect(&db, 7).await.unwrap();
    let writer = connect(&db, 7).await.unwrap();
    let mut signals = listener.signals().unwrap();
    let client = db.client().await;
    let killed = client
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = 'stephost-listen'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(killed.len(), 2, "one listening connection per store");
    assert_eq!(next_signal(&mut signals).await, Signal::Resync);
    // Listening again: a write after the Resync is heard.
    writer.set_schedule("back", Some(1)).await.unwrap();
    assert_eq!(signals_until_end(&client, &mut signals).await, [Signal::Schedules]);
}

#[tokio::test]
async fn a_dropped_store_stops_listening() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let store = connect(&db, 7).await.unwrap();
    let mut signals = store.signals().unwrap();
    drop(store);
    let ended = tokio::time::timeout(Duration::from_secs(60), signals.recv()).await.expect("still listening");
    assert!(matches!(ended, Err(tokio::sync::broadcast::error::RecvError::Closed)), "{ended:?}");
    let client = db.client().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let listening: i64 = client
            .query_one(
                "SELECT COUNT(*) FROM pg_stat_activity
                 WHERE datname = current_database() AND application_name = 'stephost-listen'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if listening == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the listening connection outlived its store");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_reply_is_taken_once_byte_for_byte_and_the_first_one_wins() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let waiter = connect(&db, 7).await.unwrap();
    let worker = connect(&db, 7).await.unwrap();
    let mut signals = waiter.signals().unwrap();
    let flow = workflow("respond");
    let event = serde_json::json!({});
    let ids: Vec<String> = (0..2).map(|_| crate::base::ids::new_run_id()).collect();
    let batch: Vec<NewRun> = ids.iter().map(|id| NewRun::new(id.clone(), &flow, &event)).collect();
    worker.enqueue_runs(&batch).await.unwrap();
    let response = HttpResponse {
        status: 201,
        headers: vec![
            ("x-answer".into(), "42".into()),
            ("set-cookie".into(), "b=2".into()),
            ("set-cookie".into(), "a=1".into()),
            ("content-type".into(), "text/plain; charset=\"é\"".into()),
        ],
        body: (0..=255u8).rev().chain([0, 0xff, 0xfe]).collect(),
    };
    worker.put_reply(&ids[0], &RunReply::Respond(response.clone())).await.unwrap();
    let late = HttpResponse { status: 500, headers: vec![], body: b"late".to_vec() };
    waiter.put_reply(&ids[0], &RunReply::Respond(late)).await.unwrap();
    worker.put_reply(&ids[1], &RunReply::Ended(RunStatus::Exited)).await.unwrap();
    let client = db.client().await;
    assert_eq!(
        signals_until_end(&client, &mut signals).await,
        [Signal::Work(2), Signal::Reply(ids[0].clone()), Signal::Reply(ids[1].clone())],
        "one signal per stored reply"
    );
    match waiter.take_reply(&ids[0]).await.unwrap() {
        Some(RunReply::Respond(got)) => assert_eq!(got, response, "the first reply, exactly"),
        other => panic!("{other:?}"),
    }
    assert!(waiter.take_reply(&ids[0]).await.unwrap().is_none(), "taken twice");
    assert!(matches!(worker.take_reply(&ids[1]).await.unwrap(), Some(RunReply::Ended(RunStatus::Exited))));
    assert!(waiter.take_reply(&ids[1]).await.unwrap().is_none(), "taken twice");
    assert!(waiter.take_reply("no-such-run").await.unwrap().is_none());
}

fn node(id: &str, lease_ms: u64) -> NodeInfo {
    NodeInfo {
        id: id.into(),
        host: "box".into(),
        pid: 4_194_304,
        listen: "127.0.0.1:8080".into(),
        version: "0.1.0".into(),
        lease_ms,
    }
}

/// The ids of the live nodes, oldest first.
async fn live(store: &Postgres) -> Vec<String> {
    store.nodes().await.unwrap().expect("a shared store lists nodes").into_iter().map(|n| n.info.id).collect()
}

#[tokio::test]
async fn nodes_are_listed_while_they_beat_and_forgotten_by_the_reaper() {
    let Some(db) = TestDatabase::fresh().await else { return };
    let clock = Arc::new(ManualClock::new(100_000));
    let store = connect(&db, 7).await.unwrap().with_clock(clock.clone());
    store.register_node(&node("serve:1:short", 1_000)).await.unwrap();
    clock.set(100_500);
    store.register_node(&node("serve:2:long", 10_000)).await.unwrap();
    // The runs each node holds a lease on are its `running`, sorted.
    let flow = workflow("held");
    let event = serde_json::json!({});
    let ids: Vec<String> = (0..3).map(|_| crate::base::ids::new_run_id()).collect();
    let batch: Vec<NewRun> = ids.iter().map(|id| NewRun::new(id.clone(), &flow, &event)).collect();
    store.enqueue_runs(&batch).await.unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(store.claim_run("serve:1:short", LEASE).await.unwrap().unwrap());
    }
    let other = store.claim_run("serve:2:long", LEASE).await.unwrap().unwrap();
    clock.set(101_000);
    store.node_heartbeat("serve:1:short").await.unwrap();
    let nodes = store.nodes().await.unwrap().unwrap();
    let mut running: Vec<String> = held.iter().map(|c| c.run.id.clone()).collect();
    running.sort();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0].info, node("serve:1:short", 1_000));
    assert_eq!((nodes[0].started_ms, nodes[0].heartbeat_ms), (100_000, 101_000));
    assert_eq!(nodes[0].running, running);
    assert_eq!(
        (nodes[1].info.id.as_str(), nodes[1].started_ms, nodes[1].heartbeat_ms),
        ("serve:2:long", 100_500, 100_500)
    );
    assert_eq!(nodes[1].running, vec![other.run.id]);
    // Unlisted once its heartbeat is two leases old.
    clock.set(102_999);
    assert_eq!(live(&store).await, ["serve:1:short", "serve:2:long"]);
    clock.set(103_000);
    assert_eq!(live(&store).await, ["serve:2:long"]);
    // Kept until ten leases, then the reaper forgets it.
    let rows = |client: Client| async move {
        let rows = client.query("SELECT id FROM nodes ORDER BY id", &[]).await.unwrap();
        rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>()
    };
    clock.set(111_000);
    store.requeue_expired().await.unwrap();
    assert_eq!(rows(db.client().await).await, ["serve:1:short", "serve:2:long"]);
    clock.set(111_001);
    store.requeue_expired().await.unwrap();
    assert_eq!(rows(db.client().await).await, ["serve:2:long"]);
    let err = store.node_heartbeat("serve:1:short").await.unwrap_err().to_string();
    assert_eq!(err, "node serve:1:short is not registered");
    // Registering again starts it anew; a clean shutdown removes it.
    store.register_node(&node("serve:1:short", 1_000)).await.unwrap();
    let nodes = store.nodes().await.unwrap().unwrap();
    assert_eq!(
        nodes.iter().map(|n| (n.info.id.as_str(), n.started_ms)).collect::<Vec<_>>(),
        [("serve:2:long", 100_500), ("serve:1:short", 111_001)]
    );
    store.remove_node("serve:2:long").await.unwrap();
    store.remove_node("serve:1:short").await.unwrap();
    assert!(live(&store).await.is_empty());
}
