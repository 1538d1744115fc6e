//! The management API under `/v1`: steps, workflows, runs.

use super::{ApiError, AppState};
use crate::store::views::{Queued, RunList, StepList, WorkflowView};
use crate::store::{Run, RunStatus, RunSummary, StepRecord};
use crate::workflow::Workflow;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::sync::Arc;

pub(super) fn routes(state: Arc<AppState>) -> axum::Router<Arc<AppState>> {
    let upload_limit = state.config.max_upload_bytes;
    axum::Router::new()
        .route("/steps", post(upload_step).get(list_steps).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/steps/{id}", get(get_step).delete(delete_step))
        .route("/workflows/{name}", get(get_workflow).put(deploy_workflow).delete(delete_workflow))
        .route("/workflows/{name}/runs", post(manual_run))
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/replay", post(replay_run))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, message.into())
}

/// The uploaded file: the raw body, or of a `multipart/form-data` body the
/// first file part (or the part named `file`).
async fn upload_body(state: &Arc<AppState>, request: axum::extract::Request) -> Result<Bytes, ApiError> {
    use axum::extract::FromRequest;
    let is_multipart = request
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let refused = |status: StatusCode, text: String| match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError(
            status,
            format!("the upload is over the {} MiB limit", state.config.max_upload_bytes >> 20),
        ),
        _ => bad_request(format!("cannot read the upload: {text}")),
    };
    if !is_multipart {
        return Bytes::from_request(request, state).await.map_err(|e| refused(e.status(), e.body_text()));
    }
    let mut form = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|e| refused(e.status(), e.body_text()))?;
    while let Some(field) = form.next_field().await.map_err(|e| refused(e.status(), e.body_text()))? {
        if field.file_name().is_some() || field.name() == Some("file") {
            return field.bytes().await.map_err(|e| refused(e.status(), e.body_text()));
        }
    }
    Err(bad_request("the multipart upload has no file part (send the .wasm as `file`)"))
}

/// `POST /v1/steps`: the `.wasm` as the raw body or as a multipart file.
/// Validated like `stephost inspect`, stored by content hash and
/// precompiled.
async fn upload_step(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<StepRecord>), ApiError> {
    let body = upload_body(&state, request).await?;
    let dir = state.steps_dir();
    crate::base::files::create_private_dir(&dir)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let upload = tempfile::Builder::new()
        .suffix(".wasm")
        .tempfile_in(&dir)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    std::fs::write(upload.path(), &body)
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let runtime = state.runtime.clone();
    let path = upload.path().to_path_buf();
    let loaded = tokio::task::spawn_blocking(move || {
        let loaded = runtime.load(&path);
        runtime.forget_path(&path);
        loaded
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let step = loaded.map_err(|e| {
        // The temp file's name means nothing to the uploader.
        bad_request(e.to_string().replace(&upload.path().display().to_string(), "the upload"))
    })?;
    let target = dir.join(format!("{}.wasm", step.hash));
    upload.persist(&target).map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    state.store().put_step(&step.hash, body.len() as u64).await?;
    let stored = state.store().step(&step.hash).await?;
    Ok((
        StatusCode::CREATED,
        Json(stored.ok_or_else(|| not_found(format!("step {} was deleted", step.hash)))?),
    ))
}

async fn list_steps(State(state): State<Arc<AppState>>) -> Result<Json<StepList>, ApiError> {
    Ok(Json(StepList { steps: state.store().list_steps().await? }))
}

async fn get_step(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<StepRecord>, ApiError> {
    let step = state.store().step(&id).await?.ok_or_else(|| not_found(format!("no step {id}")))?;
    Ok(Json(step))
}

async fn delete_step(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store().delete_step(&id).await? {
        return Err(not_found(format!("no step {id}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/workflows/{name}`: the workflow file (TOML), steps named by
/// uploaded id (`step = "<id>"`). Every step must load; a new version is
/// kept, and the endpoint stays.
async fn deploy_workflow(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<WorkflowView>, ApiError> {
    if !crate::base::names::is_valid_name(&name) {
        return Err(bad_request(format!("workflow name `{name}` must be letters, digits and underscores")));
    }
    let workflow = parse(&state, &name, &body)?;
    for step in &workflow.steps {
        state.runtime.load(&step.component).map_err(|e| {
            bad_request(format!("step `{}`: uploaded step not found or invalid: {e}", step.name))
        })?;
    }
    let record = state.store().put_workflow(&name, &body).await?;
    let next = workflow.service.schedule.as_ref().and_then(|s| s.next_after(state.config.clock.now_ms()));
    state.store().set_schedule(&name, next).await?;
    state.schedules_changed.notify_one();
    Ok(Json(describe(&state, &record, &workflow).await?))
}

/// A workflow version as the API shows it.
async fn describe(
    state: &AppState,
    record: &crate::store::WorkflowRecord,
    workflow: &Workflow,
) -> Result<WorkflowView, ApiError> {
    let schedule = workflow.service.schedule.as_ref();
    let next_run = match schedule {
        Some(_) => state.store().schedule(&record.name).await?.map(crate::workflow::schedule::rfc3339),
        None => None,
    };
    Ok(WorkflowView {
        name: record.name.clone(),
        version: record.version,
        endpoint: format!("/e/{}", record.endpoint),
        respond: workflow.service.respond,
        retries: workflow.service.retries,
        schedule: schedule.map(|s| s.describe()),
        next_run,
        definition: record.definition.clone(),
    })
}

/// Parses a deployed workflow's definition.
pub(super) fn parse(state: &AppState, name: &str, definition: &str) -> Result<Workflow, ApiError> {
    let mut workflow =
        Workflow::parse_with_steps(definition, std::path::Path::new(name), Some(&state.steps_dir()))
            .map_err(|e| bad_request(e.to_string()))?;
    workflow.name = name.to_string();
    Ok(workflow)
}

async fn get_workflow(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<WorkflowView>, ApiError> {
    let record =
        state.store().workflow(&name).await?.ok_or_else(|| not_found(format!("no workflow {name}")))?;
    let parsed = state.workflow(&record)?;
    Ok(Json(describe(&state, &record, &parsed).await?))
}

async fn delete_workflow(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.store().delete_workflow(&name).await? {
        return Err(not_found(format!("no workflow {name}")));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/workflows/{name}/runs`: a manual run with the body as event.
async fn manual_run(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let event: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body).map_err(|e| bad_request(format!("the event is not valid JSON: {e}")))?
    };
    let record =
        state.store().workflow(&name).await?.ok_or_else(|| not_found(format!("no workflow {name}")))?;
    let id = super::intake::enqueue(&state, &record, event, None).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { run: id, version: record.version, replay_of: None })))
}

#[derive(serde::Deserialize)]
struct RunFilter {
    workflow: Option<String>,
    status: Option<String>,
    limit: Option<u64>,
}

async fn list_runs(
    State(state): State<Arc<AppState>>,
    Query(filter): Query<RunFilter>,
) -> Result<Json<RunList>, ApiError> {
    let status = filter
        .status
        .as_deref()
        .map(str::parse::<RunStatus>)
        .transpose()
        .map_err(|e| bad_request(e.to_string()))?;
    let runs =
        state.store().list_runs(filter.workflow.as_deref(), status, filter.limit.unwrap_or(100)).await?;
    Ok(Json(RunList { runs: runs.iter().map(RunSummary::from).collect() }))
}

async fn get_run(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Result<Json<Run>, ApiError> {
    let run = state.store().run(&id).await?.ok_or_else(|| not_found(format!("no run {id}")))?;
    Ok(Json(run))
}

/// `POST /v1/runs/{id}/replay`: the same event, against the newest version
/// of the run's workflow.
async fn replay_run(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let run = state.store().run(&id).await?.ok_or_else(|| not_found(format!("no run {id}")))?;
    let record = state
        .store()
        .workflow(&run.workflow)
        .await?
        .ok_or_else(|| not_found(format!("workflow {} was deleted", run.workflow)))?;
    let replay = super::intake::enqueue(&state, &record, run.event, None).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { run: replay, version: record.version, replay_of: Some(id) })))
}
