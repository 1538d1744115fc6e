//! The management API under `/v1`: steps, workflows, runs, nodes.

use super::{ApiError, AppState};
use crate::store::views::{Queued, RunList, StepList, WorkflowList, WorkflowView};
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
        .route("/workflows", get(list_workflows))
        .route("/workflows/{name}", get(get_workflow).put(deploy_workflow).delete(delete_workflow))
        .route("/workflows/{name}/runs", post(manual_run))
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/replay", post(replay_run))
        .route("/nodes", get(super::nodes::list))
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
/// Validated like `stephost inspect`: compiled (at most `max_compiles` at
/// once, each within `compile_timeout`) and checked against the step world
/// before anything is stored; then stored by content hash with its
/// compiled code.
async fn upload_step(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<StepRecord>), ApiError> {
    let internal = |e: &dyn std::fmt::Display| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string());
    let body = upload_body(&state, request).await?;
    let limit = state.config.compile_timeout;
    let permit = state.compiles.clone().acquire_owned().await.map_err(|e| internal(&e))?;
    let started = std::time::Instant::now();
    let runtime = state.runtime.clone();
    let bytes = body.clone();
    // The permit goes with the compilation: one abandoned at the time
    // limit still counts until it ends, and its result is dropped.
    let compiling = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        runtime.check_upload(std::path::Path::new("the upload"), &bytes)
    });
    let too_slow = || {
        ApiError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the upload took longer than the server's compile limit of {} to compile; refused",
                crate::base::units::human_duration(limit)
            ),
        )
    };
    let checked = match tokio::time::timeout(limit, compiling).await {
        Err(_) => return Err(too_slow()),
        Ok(joined) => joined.map_err(|e| internal(&e))?,
    };
    // Checked after the fact too: the limit holds however the wait ended.
    if started.elapsed() > limit {
        return Err(too_slow());
    }
    let checked = checked.map_err(|e| bad_request(e.to_string()))?;
    let dir = state.steps_dir();
    crate::base::files::create_private_dir(&dir).map_err(|e| internal(&e))?;
    let upload = tempfile::Builder::new().suffix(".wasm").tempfile_in(&dir).map_err(|e| internal(&e))?;
    std::fs::write(upload.path(), &body).map_err(|e| internal(&e))?;
    let id = checked.hash.clone();
    upload.persist(dir.join(format!("{id}.wasm"))).map_err(|e| internal(&e))?;
    let runtime = state.runtime.clone();
    tokio::task::spawn_blocking(move || runtime.keep_upload(checked))
        .await
        .map_err(|e| internal(&e))?
        .map_err(|e| internal(&e))?;
    state.store().put_step(&id, &body).await?;
    let stored = state.store().step(&id).await?;
    Ok((StatusCode::CREATED, Json(stored.ok_or_else(|| not_found(format!("step {id} was deleted")))?)))
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

#[derive(serde::Deserialize)]
struct DeleteStep {
    #[serde(default)]
    force: bool,
}

/// `DELETE /v1/steps/{id}[?force=true]`: refused (409, naming them) while
/// the newest version of a live workflow uses the step, unless forced.
/// The step's file and compiled code go with its record, so it cannot be
/// deployed again without a new upload.
async fn delete_step(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(options): Query<DeleteStep>,
) -> Result<StatusCode, ApiError> {
    if !is_step_id(&id) {
        return Err(not_found(format!("no step {id}")));
    }
    let id = id.to_ascii_lowercase();
    if state.store().step(&id).await?.is_none() {
        return Err(not_found(format!("no step {id}")));
    }
    let users = state.store().workflows_using_step(&id).await?;
    if !users.is_empty() && !options.force {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!(
                "step {id} is used by workflow {}; deploy them without it first, or delete with ?force=true",
                users.join(", ")
            ),
        ));
    }
    if !state.store().delete_step(&id).await? {
        return Err(not_found(format!("no step {id}")));
    }
    let file = state.steps_dir().join(format!("{id}.wasm"));
    match std::fs::remove_file(&file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(ApiError(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("step {id}: its record is gone but its file stays: {e}"),
            ));
        }
    }
    state.runtime.forget_step(&file, &id);
    Ok(StatusCode::NO_CONTENT)
}

/// An uploaded step's id: SHA-256 in hex.
pub(super) fn is_step_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `PUT /v1/workflows/{name}`: the workflow file (TOML), steps named by
/// uploaded id (`step = "<id>"`; `component = "PATH"` is refused without
/// touching the disk). Every step must be uploaded and load; a new version
/// is kept, its inline secrets sealed and masked in what is shown, and the
/// endpoint stays.
async fn deploy_workflow(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: String,
) -> Result<Json<WorkflowView>, ApiError> {
    if !crate::base::names::is_valid_name(&name) {
        return Err(bad_request(format!("workflow name `{name}` must be letters, digits and underscores")));
    }
    let workflow = parse(&state, &name, &body)?;
    let catalog = state.runtime.catalog();
    for step in &workflow.steps {
        let in_step = |e: &dyn std::fmt::Display| bad_request(format!("step `{}`: {e}", step.name));
        for (app, fields) in &step.auths {
            let known = catalog.require(app).map_err(|e| in_step(&e))?;
            for (key, _) in fields {
                known.require_field(key).map_err(|e| in_step(&e))?;
            }
        }
        // The store says which steps exist: a deleted one's id is refused
        // whatever the disk holds.
        let id = step.component.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if state.store().step(&id).await?.is_none() {
            return Err(in_step(&format_args!(
                "no uploaded step {id} (unknown, or deleted: upload it again)"
            )));
        }
        // On a shared store the upload may have reached another node.
        state.ensure_step_file(&step.component).await.map_err(|e| in_step(&e))?;
        state.runtime.load(&step.component).map_err(|e| in_step(&format_args!("uploaded step {id}: {e}")))?;
    }
    // Inline secrets are stored sealed, the definition with them masked.
    let (masked, secrets) = crate::workflow::mask_secrets(&body, catalog).map_err(bad_request)?;
    let record = state.store().put_workflow(&name, &masked, &secrets).await?;
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

/// `GET /v1/workflows`: what is deployed, newest version of each.
async fn list_workflows(State(state): State<Arc<AppState>>) -> Result<Json<WorkflowList>, ApiError> {
    let mut workflows = Vec::new();
    for record in state.store().workflows().await? {
        let parsed = state.workflow(&record)?;
        workflows.push(describe(&state, &record, &parsed).await?);
    }
    Ok(Json(WorkflowList { workflows }))
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
    filter: Result<Query<RunFilter>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RunList>, ApiError> {
    // `?limit=-1` and the like: one line naming the parameter, as JSON.
    let Query(filter) = filter.map_err(|e| bad_request(query_problem(&e.body_text())))?;
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

/// A query string serde refused, as one line: `limit: invalid digit found
/// in string` rather than axum's "Failed to deserialize query string: …".
fn query_problem(text: &str) -> String {
    let why = text.trim_start_matches("Failed to deserialize query string: ").replace('\n', " ");
    format!("bad query parameter: {why}")
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
