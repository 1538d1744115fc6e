//! The API the inspector page reads (issue 16): runs paged newest first by
//! `before`, a workflow's versions and last runs, steps by name with the
//! workflows using them, replay from a step (earlier results reused, not
//! run again), replay of every failed run, and the live event stream.

use crate::server::Server;
use crate::support::{Deadline, PlainServer, guest};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Ids of a JSON list of runs (or replays' `field`), in order.
fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array().unwrap().iter().map(|r| r[field].as_str().unwrap().to_string()).collect()
}

/// Uploads the probe; its id.
async fn upload_probe(server: &Server) -> String {
    let (status, step) = server.upload(std::fs::read(guest("probe")).unwrap()).await;
    assert_eq!(status, 201, "{step}");
    step["id"].as_str().unwrap().to_string()
}

/// Deploys `definition` as `workflow`; the answer.
async fn deploy(server: &Server, workflow: &str, definition: String) -> Value {
    let (status, deployed) = server.api(Method::PUT, &format!("/v1/workflows/{workflow}"), definition).await;
    assert_eq!(status, 200, "{deployed}");
    deployed
}

/// A manual run of `workflow` with `event`; its id.
async fn start(server: &Server, workflow: &str, event: &Value) -> String {
    let (status, queued) =
        server.api(Method::POST, &format!("/v1/workflows/{workflow}/runs"), event.to_string()).await;
    assert_eq!(status, 202, "{queued}");
    queued["run"].as_str().unwrap().to_string()
}

/// A probe step of a workflow definition: `env` (TOML inline table) and
/// the stand-in it may reach.
fn probe_step(name: &str, probe: &str, env: &str, stand_in: &PlainServer) -> String {
    format!(
        "[[steps]]\nname = \"{name}\"\nstep = \"{probe}\"\nenv = {env}\nallowed_hosts = [\"http://{}\"]\n",
        stand_in.addr
    )
}

/// An event making each probe step call `{env:HIT}`, log, then fail if its
/// `BREAK` is `yes`.
fn breaking_event() -> Value {
    json!({ "actions": [
        { "do": "http", "url": "{env:HIT}" },
        { "do": "stdout", "text": "step of version {env:VERSION}" },
        { "do": "fail", "if_env": "BREAK", "equals": "yes", "message": "this version breaks" },
    ] })
}

/// `POST /v1/runs/{run}/replay` with `body`.
async fn replay_run(server: &Server, run: &str, body: Value) -> (u16, Value) {
    server.api(Method::POST, &format!("/v1/runs/{run}/replay"), body.to_string()).await
}

/// How many requests the stand-in got for `path`.
fn hits(stand_in: &PlainServer, path: &str) -> usize {
    stand_in.requests().iter().filter(|r| r.path == path).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_are_paged_newest_first_each_exactly_once_and_bad_pages_are_one_line_400s() {
    let server = Server::start().await;
    let probe = upload_probe(&server).await;
    for workflow in ["paged", "other"] {
        deploy(&server, workflow, format!("[[steps]]\nname = \"p\"\nstep = \"{probe}\"\n")).await;
    }
    let mut started = Vec::new();
    for i in 0..25 {
        started.push(start(&server, "paged", &json!({ "i": i })).await);
        if i % 8 == 0 {
            start(&server, "other", &json!({})).await;
        }
    }
    let newest_first: Vec<String> = started.iter().rev().cloned().collect();

    let mut seen = Vec::new();
    let mut pages = 0;
    let mut path = "/v1/runs?workflow=paged&limit=10".to_string();
    loop {
        let (status, page) = server.api(Method::GET, &path, "").await;
        assert_eq!(status, 200, "{page}");
        pages += 1;
        let page_ids = ids(&page["runs"], "id");
        assert!(page_ids.len() <= 10);
        seen.extend(page_ids.clone());
        match page["next"].as_str() {
            Some(next) => {
                assert_eq!(Some(next), page_ids.last().map(String::as_str), "next is the page's last run");
                path = format!("/v1/runs?workflow=paged&limit=10&before={next}");
            }
            None => break,
        }
        assert!(pages < 10, "pages never end: {page}");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, newest_first, "every run once, newest first");

    // Unfiltered: the other workflow's runs are in between.
    let (_, all) = server.api(Method::GET, "/v1/runs?limit=1000", "").await;
    assert_eq!(all["runs"].as_array().unwrap().len(), 29);
    assert!(all["next"].is_null(), "{}", all["next"]);
    let (_, exact) = server.api(Method::GET, "/v1/runs?workflow=paged&limit=25", "").await;
    assert!(exact["next"].is_null(), "a page holding the last run is the last page");

    for (query, named) in [
        ("before=nope", "before"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=-1", "limit"),
        ("status=bogus", "bogus"),
    ] {
        let (status, body) = server.api(Method::GET, &format!("/v1/runs?{query}"), "").await;
        assert_eq!(status, 400, "{query}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(named) && !error.contains('\n'), "{query}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_shows_its_versions_newest_first_and_its_last_five_runs() {
    let server = Server::start().await;
    let probe = upload_probe(&server).await;
    let plain = format!("[[steps]]\nname = \"p\"\nstep = \"{probe}\"\n");
    deploy(&server, "flow", plain.clone()).await;
    deploy(&server, "flow", plain.clone()).await;
    let secret = format!("{plain}secret_env = {{ KEY = \"versions-never-show-this\" }}\n");
    deploy(&server, "flow", secret).await;

    let (status, listed) = server.api(Method::GET, "/v1/workflows/flow/versions", "").await;
    assert_eq!(status, 200, "{listed}");
    let versions: Vec<u64> =
        listed["versions"].as_array().unwrap().iter().map(|v| v["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, [3, 2, 1]);
    assert!(listed["versions"][2]["created_ms"].as_u64().unwrap() > 0);
    assert!(listed["versions"][1]["definition"].as_str().unwrap().contains(&probe), "{listed}");
    assert!(!listed.to_string().contains("versions-never-show-this"), "{listed}");
    assert!(listed["versions"][0]["definition"].as_str().unwrap().contains(stephost::store::MASK));

    let (_, fresh) = server.api(Method::GET, "/v1/workflows/flow", "").await;
    assert_eq!(fresh["last_runs"], json!([]), "{fresh}");
    assert_eq!(fresh["cors"], json!([]), "off by default");
    let mut started = Vec::new();
    for i in 0..7 {
        started.push(start(&server, "flow", &json!({ "i": i })).await);
    }
    let newest_five: Vec<String> = started.iter().rev().take(5).cloned().collect();
    let (_, shown) = server.api(Method::GET, "/v1/workflows/flow", "").await;
    assert_eq!(ids(&shown["last_runs"], "id"), newest_five, "{shown}");
    assert_eq!(shown["last_runs"][0]["workflow"], "flow");
    let (_, all) = server.api(Method::GET, "/v1/workflows", "").await;
    assert_eq!(ids(&all["workflows"][0]["last_runs"], "id"), newest_five);

    assert_eq!(server.api(Method::DELETE, "/v1/workflows/flow", "").await.0, 204);
    let (status, gone) = server.api(Method::GET, "/v1/workflows/flow/versions", "").await;
    assert_eq!(status, 404, "{gone}");
    assert!(gone["error"].as_str().unwrap().contains("no workflow flow"), "{gone}");
}

/// A multipart upload of `file` under the file name `file_name`.
async fn upload_multipart(server: &Server, file_name: &str, file: &[u8]) -> (u16, Value) {
    let response = server.upload_multipart("file", file_name, file).await;
    (response.status().as_u16(), response.json().await.unwrap())
}

/// The CLI against the server; its stdout (it must succeed).
async fn cli(server: &Server, args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.extend(["--server", &server.base, "--token", &server.token]);
    let out = crate::support::stephost_async(server.data(), &args, None).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_carry_their_names_and_the_workflows_that_use_them() {
    let server = Server::start().await;
    let hello = std::fs::read(guest("hello")).unwrap();
    let (status, named) = server.api(Method::POST, "/v1/steps?name=greeter", hello.clone()).await;
    assert_eq!((status, named["name"].as_str()), (201, Some("greeter")), "{named}");
    let (status, transform) =
        upload_multipart(&server, "build/transform.wasm", &std::fs::read(guest("transform")).unwrap()).await;
    assert_eq!((status, transform["name"].as_str()), (201, Some("transform")), "{transform}");
    let (_, unnamed) = server.upload(hello.clone()).await;
    assert_eq!(unnamed["name"], "greeter", "an upload without a name keeps the step's");
    let (status, bad) = server.api(Method::POST, "/v1/steps?name=a%0Ab", hello.clone()).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"].as_str().unwrap().contains("step name"), "{bad}");

    let (hello_id, transform_id) = (named["id"].as_str().unwrap(), transform["id"].as_str().unwrap());
    let step = |name: &str, id: &str| format!("[[steps]]\nname = \"{name}\"\nstep = \"{id}\"\n");
    deploy(&server, "one", step("hello", hello_id)).await;
    deploy(&server, "two", format!("{}{}", step("hello", hello_id), step("transform", transform_id))).await;
    let used_by = |listed: &Value, id: &str| {
        let step = listed["steps"].as_array().unwrap().iter().find(|s| s["id"] == id).unwrap().clone();
        step["used_by"].clone()
    };
    let (_, listed) = server.api(Method::GET, "/v1/steps", "").await;
    assert_eq!(used_by(&listed, hello_id), json!(["one", "two"]), "{listed}");
    assert_eq!(used_by(&listed, transform_id), json!(["two"]));
    let (_, one) = server.api(Method::GET, &format!("/v1/steps/{transform_id}"), "").await;
    assert_eq!(one["used_by"], json!(["two"]), "{one}");

    // Only the newest version of a live workflow counts.
    deploy(&server, "two", step("hello", hello_id)).await;
    assert_eq!(server.api(Method::DELETE, "/v1/workflows/one", "").await.0, 204);
    let (_, listed) = server.api(Method::GET, "/v1/steps", "").await;
    assert_eq!(used_by(&listed, hello_id), json!(["two"]), "{listed}");
    assert_eq!(used_by(&listed, transform_id), json!([]));

    // The CLI names an upload by its file's stem and lists names and users.
    let probe = guest("probe").display().to_string();
    let uploaded = cli(&server, &["steps", "upload", &probe, "--json"]).await;
    let uploaded: Value = serde_json::from_str(&uploaded).unwrap();
    assert_eq!(uploaded["name"], "probe", "{uploaded}");
    let table = cli(&server, &["steps", "list"]).await;
    let lines: Vec<Vec<&str>> = table.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(lines[0], ["NAME", "ID", "SIZE", "USED", "BY"], "{table}");
    let row = |name: &str| lines.iter().find(|l| l[0] == name).cloned().unwrap_or_default();
    assert_eq!(row("greeter")[1], hello_id, "{table}");
    assert_eq!(row("greeter").last(), Some(&"two"), "{table}");
    assert_eq!(row("transform").last(), Some(&"-"), "{table}");
    assert_eq!(row("probe")[1], uploaded["id"].as_str().unwrap(), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_from_a_step_reuses_the_results_before_it_and_runs_the_rest_on_the_newest_version() {
    let server = Server::start().await;
    let stand_in = PlainServer::start().await;
    let probe = upload_probe(&server).await;
    let first_env = format!("{{ HIT = \"{}\", VERSION = \"1\" }}", stand_in.url("/first"));
    let second_env = |version: u32, breaks: &str, retries: &str| {
        let env = format!(
            "{{ HIT = \"{}\", VERSION = \"{version}\", BREAK = \"{breaks}\" }}",
            stand_in.url("/second")
        );
        format!(
            "{retries}\n{}{}",
            probe_step("first", &probe, &first_env, &stand_in),
            probe_step("second", &probe, &env, &stand_in)
        )
    };
    deploy(&server, "pipeline", second_env(1, "yes", "")).await;
    let original = start(&server, "pipeline", &breaking_event()).await;
    let failed = server.finished(&original).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    let (_, listed) = server.api(Method::GET, "/v1/runs?workflow=pipeline", "").await;
    assert_eq!(listed["runs"][0]["failed_step"], "second", "{listed}");
    assert!(listed["runs"][0]["replay_of"].is_null());
    assert_eq!((hits(&stand_in, "/first"), hits(&stand_in, "/second")), (1, 1));

    // Still broken, retried once: each attempt reuses `first`, never runs it.
    deploy(&server, "pipeline", second_env(2, "yes", "retries = 1\nretry_backoff_secs = 0.1")).await;
    let (status, queued) = replay_run(&server, &original, json!({ "from_step": "second" })).await;
    assert_eq!(status, 202, "{queued}");
    assert_eq!(
        (queued["version"].as_u64(), queued["replay_of"].as_str()),
        (Some(2), Some(original.as_str()))
    );
    let retried = server.finished(queued["run"].as_str().unwrap()).await;
    assert_eq!(
        (retried["status"].as_str(), retried["attempt"].as_u64()),
        (Some("failed"), Some(2)),
        "{retried}"
    );
    assert_eq!(retried["outcome"]["steps"][0]["reused_from"], original.as_str(), "{retried}");
    assert_eq!((hits(&stand_in, "/first"), hits(&stand_in, "/second")), (1, 3), "first never ran again");

    // Fixed: from the failed step, against the newest version.
    deploy(&server, "pipeline", second_env(3, "no", "")).await;
    let (status, queued) = replay_run(&server, &original, json!({ "from_step": "second" })).await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["run"].as_str().unwrap();
    let replayed = server.finished(id).await;
    assert_eq!((replayed["status"].as_str(), replayed["version"].as_u64()), (Some("succeeded"), Some(3)));
    assert_eq!(replayed["replay_of"], original.as_str(), "{replayed}");
    assert_eq!((hits(&stand_in, "/first"), hits(&stand_in, "/second")), (1, 4), "only `second` ran");
    let (before, after) = (&failed["outcome"]["steps"][0], &replayed["outcome"]["steps"]);
    let reused = &after[0];
    assert_eq!(reused["reused_from"], original.as_str());
    assert_eq!(reused["run_id"], original.as_str(), "the step ran in the original run");
    for field in ["result", "exports", "logs", "egress", "duration_ms"] {
        assert_eq!(reused[field], before[field], "{field} is the stored one");
    }
    let second = &after[1];
    assert!(second.get("reused_from").is_none(), "{second}");
    assert_eq!(second["run_id"], id);
    let seen = &second["result"]["return_value"];
    assert_eq!(seen["env"]["VERSION"], "3", "the newest version's step ran");
    assert_eq!(seen["steps"]["first"]["$return_value"], before["result"]["return_value"], "{seen}");
    assert_eq!(seen["http"][0]["status"], 200);
    let (_, summary) = server.api(Method::GET, "/v1/runs?workflow=pipeline&limit=1", "").await;
    assert_eq!(
        (summary["runs"][0]["id"].as_str(), summary["runs"][0]["replay_of"].as_str()),
        (Some(id), Some(original.as_str()))
    );

    // A replay of the replay reuses what that run stored: still no new call.
    let (status, again) = replay_run(&server, id, json!({ "from_step": "second" })).await;
    assert_eq!(status, 202, "{again}");
    let again = server.finished(again["run"].as_str().unwrap()).await;
    assert_eq!(
        (again["status"].as_str(), again["outcome"]["steps"][0]["reused_from"].as_str()),
        (Some("succeeded"), Some(id))
    );
    assert_eq!(hits(&stand_in, "/first"), 1);

    // The three refusals, and a body that is not a replay request.
    let replay_with = |body: Value| replay_run(&server, &original, body);
    let refused = |status: u16, body: &Value, wanted: &str| {
        assert_eq!(status, 400, "{body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.contains(wanted) && !error.contains('\n'), "{error}");
    };
    let (status, body) = replay_with(json!({ "from_step": "nope" })).await;
    refused(status, &body, "`nope` is not a step of pipeline version 3");
    let third = probe_step("third", &probe, "{ HIT = \"x\" }", &stand_in);
    deploy(&server, "pipeline", format!("{}{third}", second_env(4, "no", ""))).await;
    let (status, body) = replay_with(json!({ "from_step": "third" })).await;
    refused(status, &body, "no successful result for step `second`");
    let renamed = format!(
        "{}{}",
        probe_step("zeroth", &probe, &first_env, &stand_in),
        probe_step("second", &probe, "{ HIT = \"x\" }", &stand_in)
    );
    deploy(&server, "pipeline", renamed).await;
    let (status, body) = replay_with(json!({ "from_step": "second" })).await;
    refused(status, &body, "the steps before `second` are now zeroth");
    let (status, body) = replay_with(json!({ "from": "second" })).await;
    refused(status, &body, "unknown field");
    let runs_before = server.runs("pipeline").await.len();
    assert_eq!(runs_before, 4, "no refused replay was queued");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_failed_replays_each_failed_run_once_against_the_newest_version() {
    let server = Server::start().await;
    let stand_in = PlainServer::start().await;
    let probe = upload_probe(&server).await;
    let env = |breaks: &str| format!("{{ HIT = \"{}\", BREAK = \"{breaks}\" }}", stand_in.url("/hit"));
    deploy(&server, "flaky", probe_step("only", &probe, &env("yes"), &stand_in)).await;
    let mut failed = HashSet::new();
    for _ in 0..3 {
        failed.insert(start(&server, "flaky", &breaking_event()).await);
    }
    let fine = start(&server, "flaky", &json!({ "actions": [] })).await;
    for id in failed.iter().chain([&fine]) {
        server.finished(id).await;
    }
    deploy(&server, "flaky", probe_step("only", &probe, &env("no"), &stand_in)).await;

    let (status, answer) = server.api(Method::POST, "/v1/workflows/flaky/replay-failed", "").await;
    assert_eq!(status, 202, "{answer}");
    let replays = answer["replays"].as_array().unwrap();
    let replayed: HashSet<String> = ids(&answer["replays"], "replay_of").into_iter().collect();
    assert_eq!((replays.len(), &replayed), (3, &failed), "{answer}");
    for replay in replays {
        assert_eq!(replay["version"], 2);
        let run = server.finished(replay["run"].as_str().unwrap()).await;
        assert_eq!((run["status"].as_str(), &run["replay_of"]), (Some("succeeded"), &replay["replay_of"]));
    }

    let (status, body) = server.api(Method::POST, "/v1/workflows/nope/replay-failed", "").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = server.api(Method::POST, "/v1/workflows/flaky/replay-failed?limit=0", "").await;
    assert_eq!(status, 400, "{body}");
    let (status, one) = server.api(Method::POST, "/v1/workflows/flaky/replay-failed?limit=1", "").await;
    assert_eq!((status, one["replays"].as_array().unwrap().len()), (202, 1), "{one}");

    let text = cli(&server, &["workflow", "replay-failed", "flaky"]).await;
    assert_eq!(text.lines().filter(|l| l.starts_with("queued run ")).count(), 3, "{text}");
}

/// Reads `event: run` records from an event stream until every status in
/// `wanted` was seen for `run` (in any order: the committer announces
/// `queued` and a worker already awake may claim the run first); the
/// statuses of `run`, in the order they came.
async fn statuses_of(
    stream: &mut (impl futures::Stream<Item = reqwest::Result<axum::body::Bytes>> + Unpin),
    run: &str,
    wanted: &[&str],
) -> Vec<String> {
    use futures::StreamExt;
    let deadline = Deadline::new("the run's events on the stream");
    let mut buffer = String::new();
    let mut statuses = Vec::new();
    loop {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(1), stream.next()).await;
        deadline.check();
        let Ok(chunk) = chunk else { continue };
        buffer.push_str(&String::from_utf8_lossy(&chunk.expect("the stream is open").unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let record: String = buffer.drain(..end + 2).collect();
            if !record.lines().any(|l| l == "event: run") {
                continue;
            }
            let data = record.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            let summary: Value = serde_json::from_str(data).unwrap();
            if summary["id"] == run {
                statuses.push(summary["status"].as_str().unwrap().to_string());
                if wanted.iter().all(|w| statuses.iter().any(|s| s == w)) {
                    return statuses;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_shows_a_run_from_queued_to_succeeded() {
    let server = Server::start().await;
    let probe = upload_probe(&server).await;
    deploy(
        &server,
        "live",
        format!("[[steps]]\nname = \"a\"\nstep = \"{probe}\"\n[[steps]]\nname = \"b\"\nstep = \"{probe}\"\n"),
    )
    .await;
    let refused = server.http.get(server.url("/v1/events")).send().await.unwrap();
    assert_eq!(refused.status(), 401, "the stream needs the token");

    let response = server.http.get(server.url("/v1/events")).bearer_auth(&server.token).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let kind = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/event-stream"), "{kind}");
    let mut stream = Box::pin(response.bytes_stream());
    let id = start(&server, "live", &json!({})).await;
    let statuses = statuses_of(&mut stream, &id, &["queued", "running", "succeeded"]).await;
    // Queued once, started and a step further (only the newest progress is
    // sent), finished once; the worker's own events in that order.
    let count = |wanted: &str| statuses.iter().filter(|s| *s == wanted).count();
    assert_eq!((count("queued"), count("succeeded")), (1, 1), "{statuses:?}");
    assert!(
        statuses.iter().all(|s| ["queued", "running", "succeeded"].contains(&s.as_str())),
        "{statuses:?}"
    );
    let worker: Vec<&String> = statuses.iter().filter(|s| *s != "queued").collect();
    assert_eq!(worker.last().map(|s| s.as_str()), Some("succeeded"), "{statuses:?}");

    // A reader that went away: the server goes on, and a new one hears the next run.
    drop(stream);
    let response = server.http.get(server.url("/v1/events")).bearer_auth(&server.token).send().await.unwrap();
    let mut stream = Box::pin(response.bytes_stream());
    let next = start(&server, "live", &json!({})).await;
    let statuses = statuses_of(&mut stream, &next, &["queued", "succeeded"]).await;
    assert!(statuses.contains(&"succeeded".to_string()), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_event_stream_ends_when_the_server_stops_and_does_not_hold_it_up() {
    use futures::StreamExt;
    let data = tempfile::tempdir().unwrap();
    let config = stephost::server::ServeConfig::new(data.path().to_path_buf());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (state, token) = crate::server::open_state(config, crate::support::runtime(), address).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(stephost::server::serve_until(state, listener, async {
        let _ = stopped.await;
    }));
    let response = reqwest::Client::new()
        .get(format!("http://{address}/v1/events"))
        .bearer_auth(token.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = Box::pin(response.bytes_stream());
    stop.send(()).unwrap();
    let deadline = Deadline::new("the stream to end at shutdown");
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(1), stream.next()).await {
            Ok(None) | Ok(Some(Err(_))) => break,
            Ok(Some(Ok(_))) | Err(_) => deadline.check(),
        }
    }
    let served = loop {
        if serving.is_finished() {
            break serving.await.unwrap();
        }
        deadline.check();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    served.unwrap();
}
