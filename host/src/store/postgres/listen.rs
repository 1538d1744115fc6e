//! The wake-ups other nodes send: one connection of its own (outside the
//! pool, which would recycle it) that `LISTEN`s on the channel every write
//! notifies, turning each payload into a [`Signal`]. When it is lost it
//! reconnects with backoff and sends [`Signal::Resync`], since anything sent
//! while it was away is gone.

use super::queue::CHANNEL;
use super::{db_error, db_message};
use crate::store::{Signal, StoreError};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio_postgres::tls::NoTlsStream;
use tokio_postgres::{AsyncMessage, Client, Connection, NoTls, Socket};

/// How many signals a slow receiver may fall behind before it sees
/// `Lagged` (and should act as on [`Signal::Resync`]).
pub(super) const CAPACITY: usize = 1024;

/// The first wait before reconnecting; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// The longest wait between two reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How the listening connection shows in `pg_stat_activity`, so an operator
/// (or a test) can tell it from the pool's.
pub(super) const APPLICATION_NAME: &str = "stephost-listen";

/// The listening task; dropping this ends it (and closes its connection).
#[derive(Debug)]
pub(super) struct Listener(tokio::task::AbortHandle);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A connection that has run `LISTEN`, not yet driven further.
pub(super) struct Listening {
    /// Kept alive: the connection ends when its client is dropped.
    _client: Client,
    connection: Connection<Socket, NoTlsStream>,
}

/// The listener's own connection settings: those of the pool, named, with
/// TCP keepalives so a silently dead peer is noticed too.
pub(super) fn config(pool: &tokio_postgres::Config) -> tokio_postgres::Config {
    let mut config = pool.clone();
    config
        .application_name(APPLICATION_NAME)
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(10))
        .keepalives_interval(Duration::from_secs(5))
        .keepalives_retries(3);
    config
}

/// Connects and listens. Errors name the database as `name` (no password).
pub(super) async fn open(
    config: &tokio_postgres::Config,
    name: &str,
    signals: &broadcast::Sender<Signal>,
) -> Result<Listening, StoreError> {
    let (client, mut connection) = config.connect(NoTls).await.map_err(|e| db_error(name, e))?;
    let sql = format!("LISTEN {CHANNEL}");
    let listened = {
        let listen = client.batch_execute(&sql);
        let drive = forward(&mut connection, signals);
        tokio::pin!(listen, drive);
        tokio::select! {
            listened = &mut listen => listened.map_err(|e| db_error(name, e)),
            lost = &mut drive => Err(lost_error(name, lost)),
        }
    };
    listened.map(|()| Listening { _client: client, connection })
}

/// Drives `first` and, each time the connection is lost, connects again
/// (waiting 0.1 s, doubling to 5 s) and sends [`Signal::Resync`] once it
/// listens again. Runs until aborted.
pub(super) fn spawn(
    first: Listening,
    config: tokio_postgres::Config,
    name: String,
    signals: broadcast::Sender<Signal>,
) -> Listener {
    let task = tokio::spawn(async move {
        let mut listening = first;
        loop {
            let lost = forward(&mut listening.connection, &signals).await;
            eprintln!("stephost: {}; reconnecting", lost_error(&name, lost));
            listening = reconnect(&config, &name, &signals).await;
            eprintln!("stephost: database {name}: listening again");
            // Receivers are optional: none listening is not an error.
            let _ = signals.send(Signal::Resync);
        }
    });
    Listener(task.abort_handle())
}

/// Connects and listens again, retrying with backoff until it does.
async fn reconnect(
    config: &tokio_postgres::Config,
    name: &str,
    signals: &broadcast::Sender<Signal>,
) -> Listening {
    let mut wait = FIRST_BACKOFF;
    loop {
        tokio::time::sleep(wait).await;
        match open(config, name, signals).await {
            Ok(listening) => return listening,
            Err(_) => wait = (wait * 2).min(MAX_BACKOFF),
        }
    }
}

/// Forwards the connection's notifications as signals until it ends; the
/// error it ended with, if any.
async fn forward(
    connection: &mut Connection<Socket, NoTlsStream>,
    signals: &broadcast::Sender<Signal>,
) -> Option<tokio_postgres::Error> {
    loop {
        match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            Some(Ok(AsyncMessage::Notification(note))) => {
                if let Some(signal) = parse(note.payload()) {
                    let _ = signals.send(signal);
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Some(e),
            None => return None,
        }
    }
}

/// One line saying the listening connection is gone, naming the database.
fn lost_error(name: &str, error: Option<tokio_postgres::Error>) -> StoreError {
    let why = error.map_or_else(|| "closed".to_string(), |e| db_message(&e));
    StoreError::Database { path: name.into(), message: format!("lost the listening connection: {why}") }
}

/// A payload as the writers send it (`work:3`, `schedules`, `reply:<run>`,
/// `step-deleted:<id>`); `None` for anything else, which is ignored.
pub(super) fn parse(payload: &str) -> Option<Signal> {
    if payload == "schedules" {
        return Some(Signal::Schedules);
    }
    let (kind, value) = payload.split_once(':')?;
    match kind {
        "work" => value.parse().ok().map(Signal::Work),
        "reply" if !value.is_empty() => Some(Signal::Reply(value.into())),
        "step-deleted" if !value.is_empty() => Some(Signal::StepDeleted(value.into())),
        _ => None,
    }
}
