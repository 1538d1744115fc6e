//! `stephost serve` beyond the basics: custom HTTP responses, timer
//! triggers on an injected clock, retries, retention, multipart uploads,
//! and a thousand triggers at once.

use crate::server::Server;
use serde_json::{Value, json};
use std::sync::Arc;
use stephost::base::clock::{Clock, ManualClock};
use stephost::workflow::schedule::{parse_rfc3339_ms, rfc3339};

/// An HTTP trigger of a probe workflow whose body asks for `actions`.
async fn trigger(server: &Server, endpoint: &Value, actions: Value) -> reqwest::Response {
    let url = server.url(endpoint.as_str().unwrap());
    server.http.post(url).json(&json!({ "actions": actions })).send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn respond_workflows_answer_with_the_steps_response_or_say_why_not() {
    let server = Server::start().await;
    let deployed = server.deploy_guest("hook", "probe", "respond = true", "").await;
    assert_eq!(deployed["respond"], true);
    let endpoint = &deployed["endpoint"];

    let respond = json!([{ "do": "respond", "status": 201, "headers": { "x-answer": "42" }, "body": "made it" },
                         { "do": "stdout", "text": "after the response" }]);
    let response = trigger(&server, endpoint, respond).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-answer"], "42");
    assert_eq!(response.headers()["content-type"], "text/plain");
    let run = response.headers()["x-stephost-run"].to_str().unwrap().to_string();
    assert_eq!(response.text().await.unwrap(), "made it");
    let stored = server.finished(&run).await;
    assert_eq!(stored["status"], "succeeded");
    assert_eq!(stored["outcome"]["steps"][0]["response"]["status"], 201);

    let silent = trigger(&server, endpoint, json!([{ "do": "stdout", "text": "no answer" }])).await;
    assert_eq!(silent.status(), 502);
    let error = silent.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_string();
    assert!(error.contains("succeeded without calling flow.respond"), "{error}");

    let failing = trigger(&server, endpoint, json!([{ "do": "fail", "message": "broken" }])).await;
    assert_eq!(failing.status(), 502);
    let error = failing.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_string();
    assert!(error.contains("failed without calling flow.respond"), "{error}");

    // Without `respond`, the trigger answers at once and the response is only stored.
    let plain = server.deploy_guest("plain", "probe", "", "").await;
    let response =
        trigger(&server, &plain["endpoint"], json!([{ "do": "respond", "status": 418, "body": "tea" }]))
            .await;
    assert_eq!(response.status(), 200);
    let run = response.json::<Value>().await.unwrap()["run"].as_str().unwrap().to_string();
    assert_eq!(server.finished(&run).await["outcome"]["steps"][0]["response"]["status"], 418);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_respond_trigger_gives_up_after_the_runs_timeout_and_the_run_stays() {
    // The workers are told to stop: the run is never taken, so the
    // trigger's wait runs out.
    let server = Server::start().await;
    server.state.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
    let deployed = server.deploy_guest("slowpoke", "probe", "respond = true", "timeout_secs = 0.2").await;
    let response = trigger(&server, &deployed["endpoint"], json!([])).await;
    assert_eq!(response.status(), 504);
    let body = response.json::<Value>().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("no flow.respond within the run's timeout of 200ms"),
        "{body}"
    );
    let (_, run) =
        server.api(reqwest::Method::GET, &format!("/v1/runs/{}", body["run"].as_str().unwrap()), "").await;
    assert_eq!(run["status"], "queued", "the event is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cron_schedules_fire_at_local_time_on_the_injected_clock() {
    let start = parse_rfc3339_ms("2026-03-28T12:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let server = Server::start_with(|config| config.clock = clock.clone()).await;
    let deployed = server
        .deploy_guest(
            "morning",
            "probe",
            "[schedule]\ncron = \"0 9 * * *\"\ntimezone = \"Europe/Berlin\"",
            "",
        )
        .await;
    // 9:00 in Berlin is 07:00Z once summer time starts on the 29th.
    assert_eq!(deployed["next_run"], "2026-03-29T07:00:00Z", "{deployed}");
    assert_eq!(deployed["schedule"], "cron `0 9 * * *` (Europe/Berlin)");

    clock.set(parse_rfc3339_ms("2026-03-29T07:00:00Z").unwrap());
    let run = wait_for_runs(&server, "morning", 1).await.remove(0);
    let run = server.finished(run["id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let event = &run["event"];
    assert_eq!(event["timestamp"], parse_rfc3339_ms("2026-03-29T07:00:00Z").unwrap() / 1000);
    assert_eq!(event["cron"], "0 9 * * *");
    assert_eq!(event["timezone_configured"]["hour"], 9);
    assert_eq!(event["timezone_configured"]["iso8601"]["timestamp"], "2026-03-29T09:00:00+02:00");
    assert_eq!(event["timezone_utc"]["hour"], 7);
    // The step saw the same event.
    assert_eq!(run["outcome"]["steps"][0]["result"]["return_value"]["event"], *event);
    let (_, shown) = server.api(reqwest::Method::GET, "/v1/workflows/morning", "").await;
    assert_eq!(shown["next_run"], "2026-03-30T07:00:00Z", "moved on after firing");
    assert_eq!(server.runs("morning").await.len(), 1, "fired once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_schedules_fire_every_n_minutes_and_collapse_missed_runs() {
    let start = parse_rfc3339_ms("2026-06-01T10:00:00Z").unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let server = Server::start_with(|config| config.clock = clock.clone()).await;
    let deployed = server.deploy_guest("tick", "probe", "[schedule]\nevery_minutes = 15", "").await;
    assert_eq!(deployed["next_run"], "2026-06-01T10:15:00Z");

    clock.set(start + 15 * 60_000);
    let runs = wait_for_runs(&server, "tick", 1).await;
    let first = server.finished(runs[0]["id"].as_str().unwrap()).await;
    assert_eq!(first["event"]["interval_seconds"], 900.0);
    assert_eq!(first["event"]["timestamp"], (start + 15 * 60_000) / 1000);
    assert_eq!(first["event"]["timezone"], "UTC");

    // The server "slept" through six intervals: one run, not six.
    clock.set(start + 110 * 60_000);
    let runs = wait_for_runs(&server, "tick", 2).await;
    let (_, shown) = server.api(reqwest::Method::GET, "/v1/workflows/tick", "").await;
    assert_eq!(shown["next_run"], rfc3339(start + 120 * 60_000));
    assert_eq!(runs.len(), 2);
    assert_eq!(
        server.finished(runs[0]["id"].as_str().unwrap()).await["event"]["timestamp"],
        (start + 30 * 60_000) / 1000
    );

    // A schedule shorter than the scheduler's longest sleep fires on time too.
    let now = clock.now_ms();
    let quick = server.deploy_guest("quick", "probe", "[schedule]\nevery_minutes = 0.5", "").await;
    assert_eq!(quick["next_run"], rfc3339(now + 30_000));
    clock.set(now + 30_000);
    wait_for_runs(&server, "quick", 1).await;
    clock.set(now + 60_000);
    wait_for_runs(&server, "quick", 2).await;

    // Deleting the workflow stops its schedule.
    server.api(reqwest::Method::DELETE, "/v1/workflows/tick", "").await;
    assert!(server.state.store().schedule("tick").await.unwrap().is_none());
}

/// Waits until `workflow` has at least `count` runs; returns them, newest first.
async fn wait_for_runs(server: &Server, workflow: &str, count: usize) -> Vec<Value> {
    let deadline = crate::support::Deadline::new("a workflow's runs");
    loop {
        let runs = server.runs(workflow).await;
        if runs.len() >= count {
            return runs;
        }
        deadline.check();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A loopback server whose `/state` answers `bad` `failures` times, then `good`.
async fn flaky_server(failures: usize) -> std::net::SocketAddr {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/state",
        axum::routing::get(move || {
            let calls = calls.clone();
            async move {
                match calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < failures {
                    true => "bad",
                    false => "good",
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_runs_are_retried_with_backoff_but_timeouts_are_not() {
    let server = Server::start().await;
    let flaky = flaky_server(2).await;
    server
        .deploy_guest(
            "flaky",
            "probe",
            "retries = 3\nretry_backoff_secs = 0.01",
            &format!("allowed_hosts = [\"http://{flaky}\"]"),
        )
        .await;
    let actions = json!([{ "do": "http", "url": format!("http://{flaky}/state"), "save": "state" },
                         { "do": "fail", "if_var": "state", "equals": "bad", "message": "still bad" }]);
    let (_, queued) = server
        .api(reqwest::Method::POST, "/v1/workflows/flaky/runs", json!({ "actions": actions }).to_string())
        .await;
    let run = server.finished(queued["run"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["attempt"], 3, "two failures, then success");
    assert_eq!(run["outcome"]["attempt"], 3);
    assert!(run["retry_at_ms"].is_null(), "a finished run has no retry pending: {run}");

    // Out of retries: the last failure stands.
    server.deploy_guest("doomed", "probe", "retries = 2\nretry_backoff_secs = 0.01", "").await;
    let (_, queued) = server
        .api(
            reqwest::Method::POST,
            "/v1/workflows/doomed/runs",
            json!({ "actions": [{ "do": "fail", "message": "always" }] }).to_string(),
        )
        .await;
    let run = server.finished(queued["run"].as_str().unwrap()).await;
    assert_eq!((run["status"].as_str(), run["attempt"].as_u64()), (Some("failed"), Some(3)), "{run}");

    // A timeout is not retried.
    server
        .deploy_guest("stuck", "hostile", "retries = 3\nretry_backoff_secs = 0.01", "timeout_secs = 0.2")
        .await;
    let (_, queued) =
        server.api(reqwest::Method::POST, "/v1/workflows/stuck/runs", r#"{"attack":"loop"}"#).await;
    let run = server.finished(queued["run"].as_str().unwrap()).await;
    assert_eq!((run["status"].as_str(), run["attempt"].as_u64()), (Some("failed"), Some(1)), "{run}");
    assert_eq!(run["outcome"]["steps"][0]["result"]["error"]["detail"]["kind"], "timed_out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_beyond_the_last_n_runs_and_after_d_days() {
    let clock = Arc::new(ManualClock::new(stephost::base::clock::now_ms()));
    let server = Server::start_with(|config| {
        config.clock = clock.clone();
        config.prune_every = std::time::Duration::from_millis(20);
    })
    .await;
    server.deploy_guest("kept", "hello", "[retention]\nkeep_runs = 2", "").await;
    server.deploy_guest("aged", "hello", "", "").await;
    let mut kept = Vec::new();
    for (workflow, n) in [("kept", 5), ("aged", 3)] {
        for i in 0..n {
            let (_, queued) = server
                .api(
                    reqwest::Method::POST,
                    &format!("/v1/workflows/{workflow}/runs"),
                    json!({ "i": i }).to_string(),
                )
                .await;
            let id = queued["run"].as_str().unwrap().to_string();
            server.finished(&id).await;
            kept.push((workflow, id));
        }
    }
    let newest_two: Vec<String> = kept[3..5].iter().rev().map(|(_, id)| id.clone()).collect();
    let deadline = crate::support::Deadline::new("retention to prune the oldest runs");
    loop {
        deadline.check();
        let ids: Vec<String> =
            server.runs("kept").await.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
        if ids.len() == 2 {
            assert_eq!(ids, newest_two, "the newest two stay");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(server.runs("aged").await.len(), 3, "under the server's defaults nothing goes yet");
    clock.set(stephost::base::clock::now_ms() + 31 * 86_400_000);
    let deadline = crate::support::Deadline::new("retention to prune runs older than 30 days");
    while !server.runs("aged").await.is_empty() {
        deadline.check();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_upload_as_multipart_form_data() {
    let server = Server::start().await;
    let wasm = std::fs::read(crate::support::guest("hello")).unwrap();
    let response = server.upload_multipart("step", "hello.wasm", &wasm).await;
    assert_eq!(response.status(), 201);
    let (_, raw) = server.upload(wasm.clone()).await;
    assert_eq!(response.json::<Value>().await.unwrap()["id"], raw["id"], "same content, same id");

    let response = server.upload_multipart("step", "hello.wasm", b"not wasm at all").await;
    assert_eq!(response.status(), 400);
    let error = response.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_string();
    assert!(error.contains("not a WebAssembly file"), "{error}");

    let no_file = b"--XYZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--XYZ--\r\n".to_vec();
    let response = server
        .http
        .post(server.url("/v1/steps"))
        .bearer_auth(&server.token)
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body(no_file)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.text().await.unwrap().contains("has no file part"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_and_trigger_bodies_over_the_limit_are_refused_with_413() {
    let server = Server::start_with(|config| config.max_upload_bytes = 1 << 20).await;
    let (status, body) = server.upload(vec![0u8; 2 << 20]).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"], "the upload is over the 1 MiB limit");
    // The next request must not go out on the connection the server closes.

    let deployed = server.deploy_guest("small", "hello", "", "").await;
    let url = server.url(deployed["endpoint"].as_str().unwrap());
    let big = server.http.post(&url).body(vec![b'x'; 600 << 10]).send().await.unwrap();
    assert_eq!(big.status(), 413, "over the 512 KiB default");
    assert_eq!(big.headers()["connection"], "close", "the unread body ends the connection");
    assert_eq!(big.json::<Value>().await.unwrap()["error"], "the event body is over the 512 KiB limit");
    let fits = server.http.post(&url).body(vec![b'x'; 500 << 10]).send().await.unwrap();
    assert_eq!(fits.status(), 200);
    assert_eq!(server.runs("small").await.len(), 1, "only the one that fit was stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_triggers_lose_nothing() {
    const TRIGGERS: usize = 1000;
    // Every run waits at the gate until the queue has refused a trigger:
    // the limit is reached whatever the machine's speed.
    let gate = crate::support::Gate::start().await;
    let server = Server::start_with(|config| config.max_queued = 200).await;
    let reach = format!("allowed_hosts = [\"http://{}\"]", gate.addr);
    let deployed = server.deploy_guest("load", "probe", "", &reach).await;
    let url = Arc::new(server.url(deployed["endpoint"].as_str().unwrap()));
    let http = reqwest::Client::new();
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TRIGGERS)
        .map(|i| {
            let (url, http, refused) = (url.clone(), http.clone(), refused.clone());
            let mut body = crate::support::gate_event(&gate);
            body["i"] = i.into();
            tokio::spawn(async move {
                let deadline = crate::support::Deadline::new("a trigger to be accepted");
                loop {
                    deadline.check();
                    let response = http.post(url.as_str()).json(&body).send().await.unwrap();
                    match response.status().as_u16() {
                        200 => return response.json::<Value>().await.unwrap()["run"].clone(),
                        429 => {
                            refused.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            // As a client should: back off as told, so
                            // hundreds of waiting clients do not swamp the
                            // server with refusals on a slow machine.
                            let after = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                            tokio::time::sleep(std::time::Duration::from_secs(after)).await;
                        }
                        other => panic!("trigger {i}: unexpected status {other}"),
                    }
                }
            })
        })
        .collect();
    let deadline = crate::support::Deadline::new("the queue limit to refuse a trigger");
    while refused.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        deadline.check();
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    gate.release();
    let mut accepted = Vec::new();
    for task in tasks {
        accepted.push(task.await.unwrap());
    }
    let mut seen = std::collections::BTreeSet::new();
    for run in &accepted {
        let run = server.finished(run.as_str().unwrap()).await;
        assert_eq!(run["status"], "succeeded", "{run}");
        seen.insert(run["event"]["body"]["i"].as_u64().unwrap());
    }
    assert_eq!(seen.len(), TRIGGERS, "every trigger's event ran exactly once");
    assert_eq!(server.runs("load").await.len(), TRIGGERS, "and no run twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_keys_keep_every_value_and_options_or_head_start_no_run() {
    let server = Server::start().await;
    let deployed = server.deploy_guest("forms", "probe", "", "").await;
    let url = server.url(deployed["endpoint"].as_str().unwrap());

    let response = server
        .http
        .post(format!("{url}?x=1&x=2&y=3&x=4"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=1&b=2&a=3")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let run = response.json::<Value>().await.unwrap()["run"].as_str().unwrap().to_string();
    let event = &server.finished(&run).await["event"];
    assert_eq!(event["query"], json!({ "x": ["1", "2", "4"], "y": "3" }), "{event}");
    assert_eq!(event["body"], json!({ "a": ["1", "3"], "b": "2" }), "{event}");

    // A preflight and a HEAD ask about the endpoint: no event, no run.
    let options = server.http.request(reqwest::Method::OPTIONS, &url).send().await.unwrap();
    assert_eq!(options.status(), 204);
    assert!(options.headers()["allow"].to_str().unwrap().contains("POST"));
    let head = server.http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    let missing = server.http.head(server.url("/e/nothing-here")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(server.runs("forms").await.len(), 1, "only the POST started a run");

    // Bad query parameters of the API: one line of JSON naming the problem.
    for (query, named) in [("limit=-1", "limit"), ("status=bogus", "bogus"), ("limit=many", "limit")] {
        let (status, body) = server.api(reqwest::Method::GET, &format!("/v1/runs?{query}"), "").await;
        let error = body["error"].as_str().unwrap_or_else(|| panic!("{query}: JSON error: {body}"));
        assert_eq!(status, 400, "{query}: {body}");
        assert!(error.contains(named) && !error.contains('\n'), "{query}: {error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_is_answered_only_for_the_origins_a_workflow_allows() {
    let server = Server::start().await;
    let open = server.deploy_guest("open", "probe", "cors = [\"https://app.example\"]", "").await;
    assert_eq!(open["cors"], json!(["https://app.example"]), "the view shows the setting");
    let closed = server.deploy_guest("closed", "probe", "", "").await;
    let preflight = |endpoint: &Value, origin: &'static str| {
        server
            .http
            .request(reqwest::Method::OPTIONS, server.url(endpoint.as_str().unwrap()))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let grant = |response: &reqwest::Response, name: &str| {
        response.headers().get(name).map(|v| v.to_str().unwrap().to_string())
    };

    let allowed = preflight(&open["endpoint"], "https://app.example").await.unwrap();
    assert_eq!(allowed.status(), 204);
    assert_eq!(grant(&allowed, "access-control-allow-origin").as_deref(), Some("https://app.example"));
    assert!(grant(&allowed, "access-control-allow-methods").unwrap().contains("POST"));
    assert_eq!(grant(&allowed, "access-control-allow-headers").as_deref(), Some("content-type"));
    // Another origin, and a workflow that says nothing: no grant (off by default).
    for (endpoint, origin) in
        [(&open["endpoint"], "https://evil.example"), (&closed["endpoint"], "https://app.example")]
    {
        let refused = preflight(endpoint, origin).await.unwrap();
        assert_eq!(refused.status(), 204);
        assert_eq!(grant(&refused, "access-control-allow-origin"), None, "{origin} to {endpoint}");
    }

    // The event itself: a page on the allowed origin may read the answer.
    let post = |origin: &'static str| {
        server
            .http
            .post(server.url(open["endpoint"].as_str().unwrap()))
            .header("origin", origin)
            .json(&json!({}))
            .send()
    };
    let read = post("https://app.example").await.unwrap();
    assert_eq!(read.status(), 200);
    assert_eq!(grant(&read, "access-control-allow-origin").as_deref(), Some("https://app.example"));
    assert_eq!(grant(&read, "access-control-expose-headers").as_deref(), Some("x-stephost-run"));
    let unreadable = post("https://evil.example").await.unwrap();
    assert_eq!(unreadable.status(), 200);
    assert_eq!(grant(&unreadable, "access-control-allow-origin"), None);
    assert_eq!(server.runs("open").await.len(), 2, "preflights started no run");
    assert!(server.runs("closed").await.is_empty());

    // `*` grants every origin; a bad origin is refused at deploy in one line.
    let any = server.deploy_guest("any", "probe", "cors = [\"*\"]", "").await;
    let granted = preflight(&any["endpoint"], "https://whoever.example").await.unwrap();
    assert_eq!(grant(&granted, "access-control-allow-origin").as_deref(), Some("*"));
    let (_, step) = server.upload(std::fs::read(crate::support::guest("probe")).unwrap()).await;
    let definition = format!("cors = [\"app.example/\"]\n[[steps]]\nname = \"a\"\nstep = {}\n", step["id"]);
    let (status, body) = server.api(reqwest::Method::PUT, "/v1/workflows/bad", definition).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"].as_str().unwrap().contains("`app.example/` is not an origin"), "{body}");
}
