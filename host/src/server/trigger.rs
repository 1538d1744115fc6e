//! HTTP triggers: any method on `/e/{endpoint}` (and any path below it)
//! becomes an event in Pipedream's shape, committed as a queued run before
//! the answer goes out. A workflow with `respond = true` answers with the
//! response a step set with `flow.respond`, waiting up to the run's
//! timeout.

use super::{ApiError, AppState, Reply};
use crate::store::views::{ApiErrorBody, Queued};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot::error::RecvError;
use tokio::time::error::Elapsed;

pub(super) fn routes(state: Arc<AppState>) -> axum::Router<Arc<AppState>> {
    let limit = state.config.max_event_bytes;
    axum::Router::new()
        .route("/e/{endpoint}", any(trigger))
        .route("/e/{endpoint}/{*rest}", any(trigger))
        .layer(DefaultBodyLimit::max(limit))
}

async fn trigger(
    State(state): State<Arc<AppState>>,
    Path(params): Path<Vec<(String, String)>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = state.config.max_event_bytes >> 10;
            let message = format!("the event body is over the {limit} KiB limit");
            return ApiError(StatusCode::PAYLOAD_TOO_LARGE, message).into_response();
        }
        Err(rejection) => {
            let message = format!("cannot read the event body: {}", rejection.body_text());
            return ApiError(StatusCode::BAD_REQUEST, message).into_response();
        }
    };
    let endpoint = params.iter().find(|(k, _)| k == "endpoint").map(|(_, v)| v.clone()).unwrap_or_default();
    let workflow = match state.store().workflow_by_endpoint(&endpoint).await {
        Ok(Some(workflow)) => workflow,
        Ok(None) => {
            return ApiError(StatusCode::NOT_FOUND, "no workflow at this endpoint".into()).into_response();
        }
        Err(e) => return ApiError::from(e).into_response(),
    };
    let parsed = match state.workflow(&workflow) {
        Ok(parsed) => parsed,
        Err(e) => return e.into_response(),
    };
    let cors = &parsed.service.cors;
    // A browser's preflight and a HEAD (link checkers, uptime probes) ask
    // about the endpoint; neither is an event, so neither starts a run.
    if method == Method::OPTIONS {
        return super::cors::preflight(cors, &headers);
    }
    if method == Method::HEAD {
        return super::cors::grant(cors, &headers, StatusCode::OK.into_response());
    }
    let event = event_of(&method, &uri, &headers, &body, client);
    let answer = accept(&state, &workflow, &parsed, event).await;
    super::cors::grant(cors, &headers, answer)
}

/// Queues the run and answers: at once, or (a `respond` workflow) with
/// the run's response.
async fn accept(
    state: &Arc<AppState>,
    workflow: &crate::store::WorkflowRecord,
    parsed: &crate::workflow::Workflow,
    event: Value,
) -> Response {
    let (waiter, reply) = match parsed.service.respond {
        true => {
            let (waiter, reply) = tokio::sync::oneshot::channel();
            (Some(waiter), Some(reply))
        }
        false => (None, None),
    };
    match super::intake::enqueue(state, workflow, event, waiter).await {
        Ok(id) => match reply {
            None => {
                let queued = Queued { run: id, version: workflow.version, replay_of: None };
                (StatusCode::OK, Json(queued)).into_response()
            }
            Some(reply) => await_response(state, &id, reply, parsed.timeout()).await,
        },
        Err(e @ ApiError(StatusCode::TOO_MANY_REQUESTS, _)) => {
            let mut response = e.into_response();
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            response
        }
        Err(e) => e.into_response(),
    }
}

/// Waits for the run's `flow.respond` up to `timeout` and answers with it,
/// or with a one-line error saying why there is none.
async fn await_response(
    state: &AppState,
    run: &str,
    reply: tokio::sync::oneshot::Receiver<Reply>,
    timeout: Duration,
) -> Response {
    let error = |status: StatusCode, message: String| {
        let body = ApiErrorBody { error: message, run: Some(run.to_string()) };
        (status, [("x-stephost-run", run.to_string())], Json(body)).into_response()
    };
    match wait_for_reply(state, run, reply, timeout).await {
        Ok(Ok(Reply::Respond(response))) => {
            let mut answer = Response::new(axum::body::Body::from(response.body));
            *answer.status_mut() = StatusCode::from_u16(response.status).unwrap_or(StatusCode::OK);
            for (name, value) in &response.headers {
                let (Ok(name), Ok(value)) = (
                    axum::http::HeaderName::try_from(name.as_str()),
                    axum::http::HeaderValue::try_from(value.as_str()),
                ) else {
                    continue;
                };
                if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
                    answer.headers_mut().append(name, value);
                }
            }
            answer.headers_mut().insert("x-stephost-run", axum::http::HeaderValue::from_str(run).unwrap());
            answer
        }
        Ok(Ok(Reply::Ended(status))) => error(
            StatusCode::BAD_GATEWAY,
            format!("the workflow run {status} without calling flow.respond (see run {run})"),
        ),
        Ok(Err(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the server stopped before run {run} responded; it stays queued"),
        ),
        Err(_) => {
            state.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(run);
            error(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "no flow.respond within the run's timeout of {}; run {run} goes on",
                    humantime::format_duration(timeout)
                ),
            )
        }
    }
}

/// How often a trigger waiting on a shared store looks for its run's
/// reply itself, in case the signal that it is there was lost.
const REPLY_POLL: Duration = Duration::from_secs(1);

/// The run's reply, from this process's worker or (on a shared store) from
/// another node's through the store; `Err` once `timeout` passed.
async fn wait_for_reply(
    state: &AppState,
    run: &str,
    mut reply: tokio::sync::oneshot::Receiver<Reply>,
    timeout: Duration,
) -> Result<Result<Reply, RecvError>, Elapsed> {
    let deadline = tokio::time::Instant::now() + timeout;
    if !state.store.is_shared() {
        return tokio::time::timeout_at(deadline, reply).await;
    }
    loop {
        let look = deadline.min(tokio::time::Instant::now() + REPLY_POLL);
        match tokio::time::timeout_at(look, &mut reply).await {
            Ok(got) => return Ok(got),
            Err(elapsed) if look >= deadline => return Err(elapsed),
            Err(_) => match state.store.take_reply(run).await {
                Ok(Some(got)) => {
                    state.waiting.lock().unwrap_or_else(|p| p.into_inner()).remove(run);
                    return Ok(Ok(got));
                }
                Ok(None) => {}
                Err(e) => eprintln!("stephost: run {run}: looking for its reply: {e}"),
            },
        }
    }
}

/// Form-encoded fields (a query string or a form body) as Pipedream gives
/// them: a key given once is a string, a key given again keeps every value
/// in order (`x=1&x=2` is `["1","2"]`).
fn form_fields(encoded: &[u8]) -> Map<String, Value> {
    let mut fields = Map::new();
    for (key, value) in url::form_urlencoded::parse(encoded) {
        let value = Value::String(value.into_owned());
        match fields.get_mut(key.as_ref()) {
            None => {
                fields.insert(key.into_owned(), value);
            }
            Some(Value::Array(values)) => values.push(value),
            Some(first) => *first = Value::Array(vec![first.take(), value]),
        }
    }
    fields
}

/// The event of an HTTP trigger: method, path, query, headers (lowercased),
/// body (JSON and form parsed, other text as is, binary as base64),
/// client_ip, url.
fn event_of(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8], client: SocketAddr) -> Value {
    let query = uri.query().map(|q| form_fields(q.as_bytes())).unwrap_or_default();
    let header_map: Map<String, Value> = headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                Value::String(String::from_utf8_lossy(v.as_bytes()).into_owned()),
            )
        })
        .collect();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let parsed_body = if body.is_empty() {
        Value::Null
    } else if content_type.starts_with("application/json") {
        serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        Value::Object(form_fields(body))
    } else {
        match std::str::from_utf8(body) {
            Ok(text) => Value::String(text.to_string()),
            Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(body) }),
        }
    };
    let host = headers.get("host").and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": query,
        "headers": header_map,
        "body": parsed_body,
        "client_ip": client.ip().to_string(),
        "url": format!("http://{host}{}", uri.path_and_query().map_or("/", |pq| pq.as_str())),
    })
}
