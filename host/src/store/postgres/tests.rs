//! The PostgreSQL store against a real server: each test makes its own
//! database through the admin URL in `STEPHOST_TEST_DATABASE_URL`
//! (`scripts/lib/postgres.sh` starts a throwaway server and sets it).
//! Without it a test says "skipped" and passes, except under `CI`, where it
//! fails: CI never skips these silently.

use super::schema::MIGRATIONS;
use super::*;
use crate::base::clock::{ManualClock, SystemClock};
use crate::store::Settings;
use tokio_postgres::Client;

/// The admin URL tests make databases through.
const ADMIN_URL: &str = "STEPHOST_TEST_DATABASE_URL";

/// A database of its own for one test.
struct TestDatabase {
    /// Its URL (the admin URL with this database's name).
    url: String,
}

impl TestDatabase {
    /// A new, empty database; `None` (after saying "skipped") without a
    /// server to make it in.
    async fn fresh() -> Option<Self> {
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
    one.put_step("abc", &bytes).await.unwrap();
    assert_eq!(two.step_bytes("abc").await.unwrap().as_deref(), Some(&bytes[..]));
    let record = two.step("abc").await.unwrap().unwrap();
    assert_eq!((record.size, record.uploaded_ms), (70_000, 5_000));
    // A second upload keeps the first (time and bytes).
    clock.set(9_000);
    one.put_step("abc", b"other").await.unwrap();
    assert_eq!(two.step_bytes("abc").await.unwrap().unwrap().len(), 70_000);
    one.put_step("def", b"small").await.unwrap();
    let ids: Vec<String> = two.list_steps().await.unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["def", "abc"], "newest first");
    assert!(two.delete_step("abc").await.unwrap());
    assert!(!one.delete_step("abc").await.unwrap());
    assert_eq!(one.step_bytes("abc").await.unwrap(), None);
    assert!(one.step("abc").await.unwrap().is_none());
}
