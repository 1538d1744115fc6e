//! The audit chain in the shared database: one chain however many nodes
//! append, in table `audit` (a row per line) with its keyed anchor in the
//! one row of `audit_head`. An append locks that row (`FOR UPDATE`), so the
//! nodes take turns and each continues the chain from what is stored.
//!
//! Appends come from wasmtime host calls and the egress path, which are
//! sync: [`PgAudit`] hands each record to a thread of its own (its own
//! current-thread runtime and connection) and blocks for the answer, as the
//! file log blocks on its lock. The thread writes every record waiting
//! (up to [`BATCH`]) in one transaction, so a busy node pays one round of
//! the lock per batch, not per request.

use super::{db_error, parse_url};
use crate::audit::{
    Anchor, AuditEntry, AuditError, AuditEvent, AuditKey, AuditSink, GENESIS, Pruned, Tamper, parse_lines,
    prune_lines, seal_entry, verify_lines,
};
use crate::store::StoreError;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use tokio::sync::mpsc;
use tokio_postgres::{Client, Config, IsolationLevel, NoTls, Transaction};

/// Records written in one transaction at most.
const BATCH: usize = 256;

/// The anchor as messages name it.
const ANCHOR: &str = "(row audit_head)";

/// The head row, locked: appends and prunes take turns on it.
const LOCK_HEAD: &str = "SELECT seq, hash, mac FROM audit_head WHERE id = 1 FOR UPDATE";

/// The audit chain in a PostgreSQL database, shared by every node that
/// opens it with the same key. Dropping it stops its thread.
pub struct PgAudit {
    jobs: Option<mpsc::UnboundedSender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// The database as messages name it: its URL without the password.
    name: String,
}

/// Where the writer thread answers one request.
type Reply<T> = std_mpsc::SyncSender<Result<T, AuditError>>;

/// What the writer thread is asked to do.
enum Job {
    /// Boxed: an event is large beside the other jobs.
    Append(Box<Record>, Reply<()>),
    Verify(Reply<usize>),
    Entries(Reply<Vec<AuditEntry>>),
    Prune(u64, Reply<Pruned>),
}

/// One event to append.
struct Record {
    run: String,
    step: String,
    event: AuditEvent,
}

impl std::fmt::Debug for PgAudit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgAudit({})", self.name)
    }
}

impl PgAudit {
    /// Connects to the database at `url` (its schema made by
    /// [`Postgres::connect`](super::Postgres::connect) before) on a thread
    /// of its own, chaining with `key`. Errors name the database by its URL
    /// without the password.
    pub fn open(url: &str, key: AuditKey) -> Result<PgAudit, StoreError> {
        let (config, name) = parse_url(url)?;
        let (jobs, queue) = mpsc::unbounded_channel();
        let (ready, connected) = std_mpsc::sync_channel(1);
        let writer = Writer { config, key, name: name.clone(), client: None };
        let thread = std::thread::Builder::new()
            .name("stephost-audit".into())
            .spawn(move || writer.run(queue, ready))
            .map_err(|e| StoreError::Database {
                path: name.clone().into(),
                message: format!("audit thread: {e}"),
            })?;
        let audit = PgAudit { jobs: Some(jobs), thread: Some(thread), name };
        match connected.recv() {
            Ok(Ok(())) => Ok(audit),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(StoreError::Database {
                path: audit.name.clone().into(),
                message: "the audit thread stopped before it connected".into(),
            }),
        }
    }

    /// Checks the whole chain against its anchor, as
    /// [`audit::verify`](crate::audit::verify) checks a file: `Ok(n)` with
    /// the number of records, or the first problem, its kind in `found`.
    pub fn verify(&self) -> Result<usize, AuditError> {
        self.ask(Job::Verify)
    }

    /// Every entry, in chain order.
    pub fn entries(&self) -> Result<Vec<AuditEntry>, AuditError> {
        self.ask(Job::Entries)
    }

    /// Removes the records written before `before_ms` behind a keyed
    /// checkpoint, as [`AuditLog::prune`](crate::audit::AuditLog::prune)
    /// does; appends wait meanwhile. A chain that does not verify is not
    /// pruned: pruning would hide it.
    pub fn prune(&self, before_ms: u64) -> Result<Pruned, AuditError> {
        self.ask(|reply| Job::Prune(before_ms, reply))
    }

    /// Hands a job to the thread and waits for its answer (a std channel:
    /// callers may be inside a tokio runtime, where tokio's blocking
    /// receive panics).
    fn ask<T>(&self, job: impl FnOnce(Reply<T>) -> Job) -> Result<T, AuditError> {
        let (reply, answer) = std_mpsc::sync_channel(1);
        let stopped = || fail(&self.name, "the audit writer thread stopped".into());
        self.jobs.as_ref().ok_or_else(stopped)?.send(job(reply)).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }
}

impl AuditSink for PgAudit {
    fn append(&self, run: &str, step: &str, event: AuditEvent) -> Result<(), AuditError> {
        let record = Record { run: run.to_string(), step: step.to_string(), event };
        self.ask(|reply| Job::Append(Box::new(record), reply))
    }
}

impl Drop for PgAudit {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has answered what was sent.
        self.jobs.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The thread's side: one connection, reopened when it breaks.
struct Writer {
    config: Config,
    key: AuditKey,
    name: String,
    client: Option<Client>,
}

/// The stored chain: the lines in `seq` order, each row's `seq`, and the
/// anchor (`None` before the first record or when the head row is gone).
struct Chain {
    seqs: Vec<i64>,
    lines: Vec<String>,
    anchor: Option<Anchor>,
}

impl Writer {
    fn run(
        mut self,
        mut queue: mpsc::UnboundedReceiver<Job>,
        ready: std_mpsc::SyncSender<Result<(), StoreError>>,
    ) {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(e) => {
                let message = format!("audit thread runtime: {e}");
                let _ = ready.send(Err(StoreError::Database { path: self.name.clone().into(), message }));
                return;
            }
        };
        runtime.block_on(async move {
            let connected = self.client().await.map(|_| ());
            let failed = connected.is_err();
            let _ = ready.send(connected);
            if failed {
                return;
            }
            let mut waiting = VecDeque::new();
            loop {
                if waiting.is_empty() {
                    match queue.recv().await {
                        Some(job) => waiting.push_back(job),
                        None => return,
                    }
                }
                while let Ok(job) = queue.try_recv() {
                    waiting.push_back(job);
                }
                match waiting.pop_front().expect("one job at least") {
                    Job::Append(record, reply) => {
                        let mut batch = vec![(*record, reply)];
                        while batch.len() < BATCH
                            && let Some(Job::Append(..)) = waiting.front()
                        {
                            let Some(Job::Append(record, reply)) = waiting.pop_front() else {
                                unreachable!()
                            };
                            batch.push((*record, reply));
                        }
                        self.append(batch).await;
                    }
                    Job::Verify(reply) => {
                        let _ = reply.send(self.verify().await);
                    }
                    Job::Entries(reply) => {
                        let _ = reply.send(self.entries().await);
                    }
                    Job::Prune(before_ms, reply) => {
                        let _ = reply.send(self.prune(before_ms).await);
                    }
                }
            }
        });
    }

    /// The connection, (re)opened if there is none or it broke.
    async fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = None;
            let (client, connection) =
                self.config.connect(NoTls).await.map_err(|e| db_error(&self.name, e))?;
            // Its end shows as a closed client, reopened on the next job.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.client = Some(client);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }

    /// Writes a batch in one transaction and answers each of its callers.
    async fn append(&mut self, batch: Vec<(Record, Reply<()>)>) {
        let (records, replies): (Vec<Record>, Vec<Reply<()>>) = batch.into_iter().unzip();
        let written = self.append_batch(records).await;
        for reply in replies {
            let _ = reply.send(match &written {
                Ok(()) => Ok(()),
                Err(e) => {
                    Err(AuditError { path: e.path.clone(), message: e.message.clone(), found: e.found })
                }
            });
        }
    }

    /// Locks the head, continues the chain from what is stored, inserts the
    /// records and moves the keyed anchor to the last, all or nothing.
    async fn append_batch(&mut self, records: Vec<Record>) -> Result<(), AuditError> {
        let (key, name) = (self.key.clone(), self.name.clone());
        let db = |e| audit_db_error(&name, e);
        let client = self.client().await.map_err(|e| fail(&name, e.to_string()))?;
        let tx = client.transaction().await.map_err(db)?;
        let head = lock_head(&tx, &name).await?;
        let tail =
            tx.query_opt("SELECT seq, line FROM audit ORDER BY seq DESC LIMIT 1", &[]).await.map_err(db)?;
        let tail = tail.map(|row| (row.get::<_, i64>(0), row.get::<_, String>(1)));
        let (mut seq, mut prev, lost) = continue_from(&key, head, tail);
        let at_ms = crate::base::clock::now_ms();
        let (mut seqs, mut lines) = (Vec::new(), Vec::new());
        let lost = lost.map(|why| Record {
            run: "-".into(),
            step: "-".into(),
            event: AuditEvent::AnchorLost { why },
        });
        for record in lost.into_iter().chain(records) {
            let (entry, line) =
                seal_entry(&key, seq, prev, &record.run, &record.step, record.event, at_ms as u64);
            seqs.push(seq as i64);
            lines.push(line);
            (seq, prev) = (seq + 1, entry.hash);
        }
        let ats = vec![at_ms; seqs.len()];
        tx.execute(
            "INSERT INTO audit (seq, at_ms, line) SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::TEXT[])",
            &[&seqs, &ats, &lines],
        )
        .await
        .map_err(db)?;
        let anchor = Anchor::new(&key, seq - 1, prev);
        tx.execute(
            "UPDATE audit_head SET seq = $1, hash = $2, mac = $3 WHERE id = 1",
            &[&(anchor.seq as i64), &anchor.hash, &anchor.mac],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// The chain as one snapshot sees it, checked.
    async fn verify(&mut self) -> Result<usize, AuditError> {
        let chain = self.snapshot().await?;
        check(&chain, &self.key, &self.name)
    }

    async fn entries(&mut self) -> Result<Vec<AuditEntry>, AuditError> {
        let chain = self.snapshot().await?;
        parse_lines(&chain.lines, Path::new(&self.name))
    }

    /// The chain read in one read-only snapshot, so no append is half seen.
    async fn snapshot(&mut self) -> Result<Chain, AuditError> {
        let name = self.name.clone();
        let db = |e| audit_db_error(&name, e);
        let client = self.client().await.map_err(|e| fail(&name, e.to_string()))?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(db)?;
        let head =
            tx.query_opt("SELECT seq, hash, mac FROM audit_head WHERE id = 1", &[]).await.map_err(db)?;
        let chain = read_chain(&tx, head.and_then(|row| stored_anchor(&row)), &name).await?;
        tx.commit().await.map_err(db)?;
        Ok(chain)
    }

    /// Verifies under the head's lock, then deletes the records before the
    /// cut and writes the checkpoint over the last of them, in one
    /// transaction. The anchor is untouched.
    async fn prune(&mut self, before_ms: u64) -> Result<Pruned, AuditError> {
        let (key, name) = (self.key.clone(), self.name.clone());
        let db = |e| audit_db_error(&name, e);
        let client = self.client().await.map_err(|e| fail(&name, e.to_string()))?;
        let tx = client.transaction().await.map_err(db)?;
        let anchor = lock_head(&tx, &name).await?;
        let chain = read_chain(&tx, anchor, &name).await?;
        check(&chain, &key, &name).map_err(|mut e| {
            e.message = format!("not pruned, it does not verify: {}", e.message);
            e
        })?;
        let (pruned, cut) = prune_lines(&chain.lines, before_ms, &key, Path::new(&name))?;
        if let Some(cut) = cut {
            let seq = cut.seq as i64;
            tx.execute("DELETE FROM audit WHERE seq < $1", &[&seq]).await.map_err(db)?;
            tx.execute("UPDATE audit SET line = $2 WHERE seq = $1", &[&seq, &cut.checkpoint])
                .await
                .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(pruned)
    }
}

/// Locks the head row and reads the anchor in it; a head row that was
/// deleted is put back first (as before any record), so the lock still
/// holds every node to one chain.
async fn lock_head(tx: &Transaction<'_>, name: &str) -> Result<Option<Anchor>, AuditError> {
    let db = |e| audit_db_error(name, e);
    let mut head = tx.query_opt(LOCK_HEAD, &[]).await.map_err(db)?;
    if head.is_none() {
        tx.execute(
            "INSERT INTO audit_head (id, seq, hash, mac) VALUES (1, -1, '<GENESIS>', '') ON CONFLICT (id) DO NOTHING",
            &[],
        )
        .await
        .map_err(db)?;
        head = tx.query_opt(LOCK_HEAD, &[]).await.map_err(db)?;
    }
    Ok(head.and_then(|row| stored_anchor(&row)))
}

/// The anchor in a head row; `None` for the row as the schema made it
/// (`seq` -1: no record written yet).
fn stored_anchor(row: &tokio_postgres::Row) -> Option<Anchor> {
    let seq: i64 = row.get(0);
    u64::try_from(seq).ok().map(|seq| Anchor { seq, hash: row.get(1), mac: row.get(2) })
}

async fn read_chain(tx: &Transaction<'_>, anchor: Option<Anchor>, name: &str) -> Result<Chain, AuditError> {
    let rows = tx
        .query("SELECT seq, line FROM audit ORDER BY seq", &[])
        .await
        .map_err(|e| audit_db_error(name, e))?;
    let (seqs, lines) = rows.iter().map(|row| (row.get::<_, i64>(0), row.get::<_, String>(1))).unzip();
    Ok(Chain { seqs, lines, anchor })
}

/// Verifies the stored chain: each row holds the record of its own `seq`
/// (so a prune deletes what it means to), then the lines as any store's.
fn check(chain: &Chain, key: &AuditKey, name: &str) -> Result<usize, AuditError> {
    for (i, (seq, line)) in chain.seqs.iter().zip(&chain.lines).enumerate() {
        if let Ok(entry) = serde_json::from_str::<AuditEntry>(line)
            && entry.seq as i64 != *seq
        {
            let message = format!(
                "hash chain broken at line {} (seq {}): the row holds the record of seq {}: the row was edited",
                i + 1,
                seq,
                entry.seq
            );
            return Err(AuditError { path: PathBuf::from(name), message, found: Some(Tamper::Edit) });
        }
    }
    verify_lines(&chain.lines, chain.anchor.as_ref(), key, Path::new(name), ANCHOR)
}

/// Where the next record goes (`seq`, `prev`), from the head and the last
/// row, the same way the file log continues from its anchor and last line:
/// from the anchor when it is ahead (a cut tail then shows as a gap), else
/// from the last row. Rows stored with no anchor the key trusts are
/// continued with an `AnchorLost` record first (the third value says why),
/// never silently re-anchored.
fn continue_from(
    key: &AuditKey,
    head: Option<Anchor>,
    tail: Option<(i64, String)>,
) -> (u64, String, Option<String>) {
    let trusted = head.as_ref().filter(|anchor| anchor.is_authentic(key));
    let tail = tail.map(|(seq, line)| {
        let hash =
            serde_json::from_str::<AuditEntry>(&line).map(|e| e.hash).unwrap_or_else(|_| GENESIS.into());
        (seq.max(0) as u64, hash)
    });
    let lost = match (&head, trusted) {
        (_, Some(_)) => None,
        _ if tail.is_none() => None,
        (Some(_), None) => Some(format!("the anchor {ANCHOR} does not match the key")),
        (None, None) => Some(format!("the anchor {ANCHOR} was missing")),
    };
    let (seq, prev) = match (tail, trusted) {
        (Some((seq, hash)), Some(anchor)) if seq > anchor.seq => (seq + 1, hash),
        (_, Some(anchor)) => (anchor.seq + 1, anchor.hash.clone()),
        (Some((seq, hash)), None) => (seq + 1, hash),
        (None, None) => (0, GENESIS.to_string()),
    };
    (seq, prev, lost)
}

fn fail(name: &str, message: String) -> AuditError {
    AuditError { path: PathBuf::from(name), message, found: None }
}

/// A query's error as the audit layer's, naming the database.
fn audit_db_error(name: &str, error: tokio_postgres::Error) -> AuditError {
    match db_error(name, error) {
        StoreError::Database { message, .. } => fail(name, message),
        other => fail(name, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    //! Against the session's PostgreSQL (`STEPHOST_TEST_DATABASE_URL`), a
    //! database of their own each; skipped without it, except under `CI`.

    use super::*;
    use crate::audit::EgressRecord;
    use crate::base::clock::SystemClock;
    use crate::store::Postgres;
    use crate::store::crypto::MasterKey;
    use std::sync::{Arc, Barrier};

    const MASTER: [u8; 32] = [7; 32];

    /// A fresh database with the schema made, and a connection to tamper
    /// with it; `None` (after saying "skipped") without a server.
    struct Db {
        url: String,
        runtime: tokio::runtime::Runtime,
        client: Client,
    }

    impl Db {
        fn fresh() -> Option<Self> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let url = runtime.block_on(crate::store::postgres::tests::TestDatabase::fresh())?.url;
            let client = runtime.block_on(async {
                let master = MasterKey::from_bytes(&MASTER);
                Postgres::connect(&url, master, Arc::new(SystemClock)).await.unwrap();
                let (client, connection) = tokio_postgres::connect(&url, NoTls).await.unwrap();
                tokio::spawn(connection);
                client
            });
            Some(Self { url, runtime, client })
        }

        fn audit(&self) -> PgAudit {
            PgAudit::open(&self.url, key()).unwrap()
        }

        fn sql(&self, statement: &str) -> u64 {
            self.runtime.block_on(self.client.execute(statement, &[])).unwrap()
        }

        fn seqs(&self) -> Vec<i64> {
            let rows = self.runtime.block_on(self.client.query("SELECT seq FROM audit ORDER BY seq", &[]));
            rows.unwrap().iter().map(|r| r.get(0)).collect()
        }

        /// Every text the chain's tables hold.
        fn dump(&self) -> String {
            let query = "SELECT line FROM audit UNION ALL SELECT hash || ' ' || mac FROM audit_head";
            let rows = self.runtime.block_on(self.client.query(query, &[])).unwrap();
            rows.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>().join("\n")
        }
    }

    fn key() -> AuditKey {
        MasterKey::from_bytes(&MASTER).audit_key()
    }

    fn given(name: &str) -> AuditEvent {
        AuditEvent::SecretEnv { name: name.into() }
    }

    fn append_n(audit: &PgAudit, n: usize) {
        for i in 0..n {
            audit.append("run1", "step", given(&format!("V{i}"))).unwrap();
        }
    }

    #[test]
    fn two_nodes_appending_from_many_threads_make_one_chain() {
        let Some(db) = Db::fresh() else { return };
        let nodes = [Arc::new(db.audit()), Arc::new(db.audit())];
        let start = Arc::new(Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let (node, start) = (nodes[t % 2].clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    for i in 0..40 {
                        node.append(&format!("run{t}"), "s", given(&format!("T{t}N{i}"))).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(nodes[0].verify().unwrap(), 320);
        assert_eq!(nodes[1].verify().unwrap(), 320);
        assert_eq!(db.seqs(), (0..320).collect::<Vec<i64>>(), "no gaps, no repeats");
        let entries = nodes[1].entries().unwrap();
        assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), (0..320).collect::<Vec<u64>>());
        assert_eq!(entries.iter().filter(|e| e.run == "run7").count(), 40, "every record of every thread");
    }

    #[test]
    fn an_edited_row_is_found() {
        let Some(db) = Db::fresh() else { return };
        let audit = db.audit();
        append_n(&audit, 5);
        assert_eq!(audit.verify().unwrap(), 5);
        assert_eq!(db.sql("UPDATE audit SET line = replace(line, '\"V2\"', '\"V9\"') WHERE seq = 2"), 1);
        let error = audit.verify().unwrap_err();
        assert_eq!(error.found, Some(Tamper::Edit), "{}", error.message);
        assert!(error.message.contains("(seq 2)"), "{}", error.message);
        assert!(audit.prune(u64::MAX).unwrap_err().message.starts_with("not pruned"));
    }

    #[test]
    fn a_deleted_row_is_found_in_the_middle_and_at_the_end() {
        let Some(db) = Db::fresh() else { return };
        let audit = db.audit();
        append_n(&audit, 5);
        assert_eq!(db.sql("DELETE FROM audit WHERE seq = 4"), 1);
        let error = audit.verify().unwrap_err();
        assert_eq!(error.found, Some(Tamper::Truncation), "{}", error.message);
        // The next record continues after the anchor: the cut stays visible.
        audit.append("run2", "s", given("after")).unwrap();
        assert_eq!(db.seqs(), [0, 1, 2, 3, 5]);
        assert_eq!(audit.verify().unwrap_err().found, Some(Tamper::Removal));
        assert_eq!(db.sql("DELETE FROM audit WHERE seq = 5"), 1);
        assert_eq!(db.sql("DELETE FROM audit WHERE seq = 1"), 1);
        let error = audit.verify().unwrap_err();
        assert_eq!(error.found, Some(Tamper::Removal), "{}", error.message);
        assert!(error.message.contains("seq 1 to 1 are missing"), "{}", error.message);
    }

    #[test]
    fn a_reset_head_is_recorded_in_the_chain() {
        let Some(db) = Db::fresh() else { return };
        let audit = db.audit();
        append_n(&audit, 3);
        assert_eq!(db.sql("DELETE FROM audit WHERE seq = 2"), 1);
        assert_eq!(db.sql("UPDATE audit_head SET seq = -1, hash = '<GENESIS>', mac = ''"), 1);
        audit.append("run2", "s", given("after")).unwrap();
        let error = audit.verify().unwrap_err();
        assert_eq!(error.found, Some(Tamper::AnchorLost), "{}", error.message);
    }

    #[test]
    fn pruning_keeps_the_newer_records_verifying() {
        let Some(db) = Db::fresh() else { return };
        let audit = db.audit();
        append_n(&audit, 3);
        // Wait for the clock to move on, so the cut falls between records.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let last = audit.entries().unwrap().last().unwrap().at_ms;
        while crate::base::clock::now_ms() as u64 <= last {
            assert!(std::time::Instant::now() < deadline, "the clock does not move");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let cut = crate::base::clock::now_ms() as u64;
        append_n(&audit, 2);
        assert_eq!(audit.prune(cut).unwrap(), Pruned { removed: 3, kept: 2 });
        assert_eq!(db.seqs(), [2, 3, 4], "the checkpoint stands in the last removed record's row");
        assert!(matches!(audit.entries().unwrap()[0].event, AuditEvent::Checkpoint { .. }));
        assert_eq!(audit.verify().unwrap(), 2);
        assert_eq!(audit.prune(cut).unwrap().removed, 0, "nothing more to prune");
        audit.append("run3", "s", given("later")).unwrap();
        assert_eq!(audit.verify().unwrap(), 3);
        assert_eq!(db.sql("DELETE FROM audit WHERE seq = 2"), 1);
        assert_eq!(
            audit.verify().unwrap_err().found,
            Some(Tamper::Removal),
            "the checkpoint's row is needed"
        );
    }

    #[test]
    fn audit_rows_hold_no_secret_value() {
        let Some(db) = Db::fresh() else { return };
        let audit = db.audit();
        let record = EgressRecord {
            method: "POST".into(),
            scheme: "https".into(),
            host: "slack.com".into(),
            port: 443,
            path: "/api/chat.postMessage?token=***".into(),
            secrets: vec!["slack.oauth_access_token".into()],
            allowed: true,
            status: Some(200),
            ..EgressRecord::default()
        };
        audit.append("run1", "post", AuditEvent::Request(record)).unwrap();
        let dump = db.dump();
        assert!(dump.contains("slack.oauth_access_token"), "the secret's name is on record: {dump}");
        let audit_key_hex = hex::encode(MasterKey::from_bytes(&MASTER).derive_key("audit log"));
        for secret in [hex::encode(MASTER), audit_key_hex] {
            assert!(!dump.contains(&secret), "key material in the audit tables");
        }
        assert_eq!(audit.verify().unwrap(), 1);
    }

    #[test]
    fn errors_name_the_database_without_its_password() {
        let Some(db) = Db::fresh() else { return };
        let mut url = url::Url::parse(&db.url).unwrap();
        url.set_password(Some("pw-not-for-logs")).unwrap();
        url.set_path("stephost_no_such_database");
        let error = PgAudit::open(url.as_str(), key()).unwrap_err().to_string();
        assert!(error.contains("stephost_no_such_database"), "{error}");
        assert!(!error.contains("pw-not-for-logs"), "the password is in: {error}");
    }
}
