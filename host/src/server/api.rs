//! The management API under `/v1`: steps, workflows, runs, nodes.

use super::{ApiError, AppState};
use crate::store::views::{
    Queued, ReplayList, ReplayRequest, RunList, StepList, VersionList, VersionView, WorkflowList,
    WorkflowView,
};
use crate::store::{Run, RunStatus, RunSummary, StepRecord, StoreError};
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
        .route("/workflows/{name}/versions", get(list_versions))
        .route("/workflows/{name}/runs", post(manual_run))
        .route("/workflows/{name}/replay-failed", post(replay_failed))
        .route("/runs", get(list_runs))
        .route("/runs/{id}", get(get_run))
        .route("/runs/{id}/replay", post(replay_run))
        .route("/events", get(super::events::stream))
        .route("/nodes", get(super::nodes::list))
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn not_found(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, message.into())
}

/// The uploaded file: the raw body, or of a `multipart/form-data` body the
/// first file part (or the part named `file`); and the name the upload
/// gives it: `?name=`, else the file part's file name without `.wasm`.
async fn upload_body(
    state: &Arc<AppState>,
    request: axum::extract::Request,
) -> Result<(Bytes, Option<String>), ApiError> {
    let named = request.uri().query().and_then(|query| {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "name")
            .map(|(_, v)| v.into_owned())
    });
    let named = named.map(|name| step_name(&name)).transpose()?;
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
        let body =
            Bytes::from_request(request, state).await.map_err(|e| refused(e.status(), e.body_text()))?;
        return Ok((body, named));
    }
    let mut form = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|e| refused(e.status(), e.body_text()))?;
    while let Some(field) = form.next_field().await.map_err(|e| refused(e.status(), e.body_text()))? {
        if field.file_name().is_some() || field.name() == Some("file") {
            let stem = field.file_name().map(file_stem).filter(|stem| !stem.is_empty());
            let named = match named {
                Some(name) => Some(name),
                None => stem.map(|stem| step_name(&stem)).transpose()?,
            };
            let body = field.bytes().await.map_err(|e| refused(e.status(), e.body_text()))?;
            return Ok((body, named));
        }
    }
    Err(bad_request("the multipart upload has no file part (send the .wasm as `file`)"))
}

/// Longest step name, in characters.
const MAX_STEP_NAME: usize = 128;

/// A step's name as given, checked: 1 to 128 characters, none of them a
/// control character (names are shown in lists and on the page).
fn step_name(name: &str) -> Result<String, ApiError> {
    let count = name.chars().count();
    if count == 0 || count > MAX_STEP_NAME || name.chars().any(char::is_control) {
        return Err(bad_request(format!(
            "a step name is 1 to {MAX_STEP_NAME} characters without control characters; {count} given, or a control character"
        )));
    }
    Ok(name.to_string())
}

/// A browser's file name as a step name: its last path part, `.wasm` cut.
fn file_stem(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or_default();
    base.strip_suffix(".wasm").unwrap_or(base).to_string()
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
    let (body, name) = upload_body(&state, request).await?;
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
    state.store().put_step(&id, &body, name.as_deref()).await?;
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
        last_runs: state
            .store()
            .list_runs(Some(&record.name), None, LAST_RUNS)
            .await?
            .iter()
            .map(RunSummary::from)
            .collect(),
        cors: workflow.service.cors.clone(),
    })
}

/// How many of a workflow's newest runs its view shows.
const LAST_RUNS: u64 = 5;

/// `GET /v1/workflows/{name}/versions`: every live version, newest first.
async fn list_versions(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<VersionList>, ApiError> {
    let versions = state.store().workflow_versions(&name).await?;
    if versions.is_empty() {
        return Err(not_found(format!("no workflow {name}")));
    }
    let versions = versions
        .into_iter()
        .map(|v| VersionView { version: v.version, created_ms: v.created_ms, definition: v.definition })
        .collect();
    Ok(Json(VersionList { versions }))
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
    before: Option<String>,
}

/// Runs a page holds by default, and at most.
const DEFAULT_PAGE: u64 = 100;
const MAX_PAGE: u64 = 1000;

/// A `limit` parameter within 1 to [`MAX_PAGE`] (default [`DEFAULT_PAGE`]).
fn page_limit(limit: Option<u64>) -> Result<u64, ApiError> {
    match limit.unwrap_or(DEFAULT_PAGE) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        other => Err(bad_request(format!("limit: {other} is not between 1 and {MAX_PAGE}"))),
    }
}

/// `GET /v1/runs`: a page of runs, newest first; `next` is the `before`
/// of the page after it.
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
    let limit = page_limit(filter.limit)?;
    // One more than asked: whether a next page exists, without an empty last one.
    let mut runs = state
        .store()
        .runs_page(filter.workflow.as_deref(), status, filter.before.as_deref(), limit + 1)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(why) => bad_request(format!("before: {why}")),
            other => other.into(),
        })?;
    let more = runs.len() as u64 > limit;
    runs.truncate(limit as usize);
    let next = more.then(|| runs.last().map(|run| run.id.clone())).flatten();
    Ok(Json(RunList { runs: runs.iter().map(RunSummary::from).collect(), next }))
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
/// of the run's workflow. With `{"from_step": "NAME"}` the steps before
/// NAME are not run: their stored results from run `id` are reused.
async fn replay_run(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Queued>), ApiError> {
    let request: ReplayRequest = match body.iter().all(u8::is_ascii_whitespace) {
        true => ReplayRequest::default(),
        false => serde_json::from_slice(&body).map_err(|e| {
            bad_request(format!("the replay request is not {{\"from_step\": \"NAME\"}}: {e}"))
        })?,
    };
    let run = state.store().run(&id).await?.ok_or_else(|| not_found(format!("no run {id}")))?;
    let record = state
        .store()
        .workflow(&run.workflow)
        .await?
        .ok_or_else(|| not_found(format!("workflow {} was deleted", run.workflow)))?;
    let seed = match &request.from_step {
        Some(step) => reused_steps(&*state.workflow(&record)?, record.version, &run, step)?,
        None => Vec::new(),
    };
    let replay = super::intake::Replay { of: id.clone(), seed };
    let queued = super::intake::enqueue_replay(&state, &record, run.event, replay).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { run: queued, version: record.version, replay_of: Some(id) })))
}

/// The outcomes of `run`'s steps before `from_step` in `workflow` (its
/// newest version), each marked reused from `run`; a one-line 400 if
/// `from_step` is not a step of it, if those steps are not the run's by
/// name and in order, or if the run has no successful result for one.
fn reused_steps(
    workflow: &Workflow,
    version: u64,
    run: &Run,
    from_step: &str,
) -> Result<Vec<crate::runtime::outcome::StepOutcome>, ApiError> {
    let names: Vec<&str> = workflow.steps.iter().map(|s| s.name.as_str()).collect();
    let Some(at) = names.iter().position(|name| *name == from_step) else {
        return Err(bad_request(format!(
            "from_step: `{from_step}` is not a step of {} version {version} (its steps: {})",
            run.workflow,
            names.join(", ")
        )));
    };
    let stored: &[crate::runtime::outcome::StepOutcome] =
        run.outcome.as_ref().map_or(&[], |outcome| outcome.steps.as_slice());
    let before = &names[..at];
    let ran: Vec<&str> = stored.iter().take(at).map(|s| s.step.as_str()).collect();
    if ran.iter().zip(before).any(|(ran, wanted)| ran != wanted) {
        return Err(bad_request(format!(
            "from_step: the steps before `{from_step}` are now {}, but run {} ran {}: its results do not fit",
            before.join(", "),
            run.id,
            ran.join(", ")
        )));
    }
    let mut reused = Vec::with_capacity(at);
    for (index, name) in before.iter().enumerate() {
        let usable = stored.get(index).filter(|step| step.result.is_ok() && step.exit.is_none());
        let Some(step) = usable else {
            return Err(bad_request(format!(
                "from_step: run {} has no successful result for step `{name}` to reuse",
                run.id
            )));
        };
        let mut step = step.clone();
        step.reused_from = Some(run.id.clone());
        reused.push(step);
    }
    Ok(reused)
}

#[derive(serde::Deserialize)]
struct ReplayFailed {
    limit: Option<u64>,
}

/// `POST /v1/workflows/{name}/replay-failed[?limit=N]`: each failed run of
/// the workflow (newest first, at most `limit`) replayed whole against its
/// newest version, queued in one go.
async fn replay_failed(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    options: Result<Query<ReplayFailed>, axum::extract::rejection::QueryRejection>,
) -> Result<(StatusCode, Json<ReplayList>), ApiError> {
    let Query(options) = options.map_err(|e| bad_request(query_problem(&e.body_text())))?;
    let limit = page_limit(options.limit)?;
    let record =
        state.store().workflow(&name).await?.ok_or_else(|| not_found(format!("no workflow {name}")))?;
    let failed = state.store().list_runs(Some(&name), Some(RunStatus::Failed), limit).await?;
    // Handed to the committer together: one transaction for all.
    let queued = futures::future::join_all(failed.into_iter().map(|run| {
        let (state, record) = (&state, &record);
        async move {
            let replay = super::intake::Replay { of: run.id.clone(), seed: Vec::new() };
            let queued = super::intake::enqueue_replay(state, record, run.event, replay).await?;
            Ok::<_, ApiError>(Queued { run: queued, version: record.version, replay_of: Some(run.id) })
        }
    }))
    .await;
    let total = queued.len();
    let (replays, refused): (Vec<_>, Vec<_>) = queued.into_iter().partition(Result::is_ok);
    if let Some(Err(ApiError(status, why))) = refused.into_iter().next() {
        return Err(ApiError(
            status,
            format!("{} of {total} replays queued; the others: {why}", replays.len()),
        ));
    }
    let replays = replays.into_iter().filter_map(Result::ok).collect();
    Ok((StatusCode::ACCEPTED, Json(ReplayList { replays })))
}
