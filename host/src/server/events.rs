//! `GET /v1/events`: a server-sent event stream of the runs this process
//! queues, starts, moves a step further or finishes, so the inspector page
//! shows runs live without polling each one. Each is `event: run` with the
//! run's summary as `data`; a `: keep-alive` comment every 15 s keeps
//! proxies from closing a quiet stream.
//!
//! Fed by a broadcast channel: a reader that falls behind skips what it
//! missed (the page refreshes its lists anyway) and never holds up a
//! worker. On a shared store, runs other nodes handle are not streamed.

use super::AppState;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};

/// Run events a reader may fall behind by before it skips the oldest.
pub(super) const CAPACITY: usize = 1024;

/// How often a quiet stream gets a comment.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The stream of one reader, from now on; it ends when the reader goes
/// away (its connection is dropped with it) or the server stops.
pub(super) async fn stream(
    State(state): State<Arc<AppState>>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let runs = state.events.subscribe();
    let closing = state.closing.subscribe();
    let events = futures::stream::unfold((runs, closing), |(mut runs, mut closing)| async move {
        let event = next_run(&mut runs, &mut closing).await?;
        Some((Ok(event), (runs, closing)))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE).text("keep-alive"))
}

/// The next run as an event, skipping what was missed; `None` once the
/// server stops.
async fn next_run(
    runs: &mut broadcast::Receiver<crate::store::RunSummary>,
    closing: &mut watch::Receiver<bool>,
) -> Option<Event> {
    loop {
        tokio::select! {
            received = runs.recv() => match received {
                Ok(run) => match Event::default().event("run").json_data(&run) {
                    Ok(event) => return Some(event),
                    Err(e) => eprintln!("stephost: an event for run {}: {e}", run.id),
                },
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return None,
            },
            _ = closing.wait_for(|closing| *closing) => return None,
        }
    }
}
