//! The inspector page in a real browser: an in-process server with real
//! runs of the `probe` guest (one logging and exporting markup, one
//! failing), then `tests/browser/inspector.mjs` drives Debian's Chromium
//! through playwright-core against it: sign-in, the runs list, a run's
//! steps with their logs below them, hostile output shown as text, the
//! CSP, replays. `scripts/test.sh` installs Chromium and playwright-core;
//! without them this test fails (it never passes by skipping).

use crate::server::Server;
use crate::support::{GOOD_TOKEN, StandIn, guest, repo, runtime_with};
use serde_json::{Value, json};

/// Where scripts/lib/browser.sh installs the driver.
fn playwright_core() -> std::path::PathBuf {
    repo().join("target/tools/browser/node_modules/playwright-core/package.json")
}

/// Fails the test in one line when node, Chromium or playwright-core is
/// missing.
fn require_browser_tools() {
    let node = std::process::Command::new("node").arg("--version").output();
    let missing = if !node.is_ok_and(|o| o.status.success()) {
        Some("node")
    } else if !std::path::Path::new("/usr/bin/chromium").is_file() {
        Some("Debian's chromium (/usr/bin/chromium)")
    } else if !playwright_core().is_file() {
        Some("playwright-core in target/tools/browser")
    } else {
        None
    };
    if let Some(what) = missing {
        panic!("the inspector's browser test needs {what}: run scripts/test.sh (it installs it)");
    }
}

/// Uploads a guest under its name; its id.
async fn upload_named(server: &Server, name: &str) -> String {
    let bytes = std::fs::read(guest(name)).unwrap();
    let (status, step) = server.api(reqwest::Method::POST, &format!("/v1/steps?name={name}"), bytes).await;
    assert_eq!(status, 201, "{step}");
    step["id"].as_str().unwrap().to_string()
}

/// A manual run of `workflow` with the probe's `actions`, waited for; its
/// id and status.
async fn run(server: &Server, workflow: &str, actions: Value) -> (String, String) {
    let (status, queued) = server
        .api(
            reqwest::Method::POST,
            &format!("/v1/workflows/{workflow}/runs"),
            json!({ "actions": actions }).to_string(),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    let id = queued["run"].as_str().unwrap().to_string();
    let finished = server.finished(&id).await;
    (id, finished["status"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspector_shows_runs_and_logs_replays_and_never_runs_step_output() {
    require_browser_tools();
    // Slack's host is a loopback stand-in: the probe's request to it
    // carries the account's real token, swapped in by the host.
    let slack = StandIn::start(&["slack.com"]).await;
    let egress = slack.egress();
    let server = Server::start_custom(|_| runtime_with(egress, None), |_| {}).await;
    let hello = upload_named(&server, "hello").await;
    let probe = upload_named(&server, "probe").await;
    let workflow = "inspected";
    let definition = format!(
        "[[steps]]\nname = \"hello\"\nstep = \"{hello}\"\n[[steps]]\nname = \"probe\"\nstep = \"{probe}\"\n\
         [steps.auths.slack]\noauth_access_token = \"{GOOD_TOKEN}\"\n"
    );
    let (status, deployed) =
        server.api(reqwest::Method::PUT, &format!("/v1/workflows/{workflow}"), definition).await;
    assert_eq!(status, 200, "{deployed}");

    let script = "<script>window.__pwned=1</script>";
    let img = "\"><img src=x onerror=\"window.__pwned=1\">";
    let (greeting, status) = run(
        &server,
        workflow,
        json!([{ "do": "stdout", "text": "hello from the probe" },
               { "do": "respond", "status": 201, "body": "made it" }]),
    )
    .await;
    assert_eq!(status, "succeeded");
    let (hostile, status) = run(
        &server,
        workflow,
        json!([{ "do": "stdout", "text": script },
               // One unbroken line far wider than any screen: it wraps.
               { "do": "stdout", "text": "w".repeat(3000) },
               { "do": "stderr", "text": img },
               { "do": "export", "name": "html", "value": img },
               { "do": "http", "url": "https://api.example.com/v1/things" },
               { "do": "http", "url": "https://slack.com/api/auth.test",
                 "headers": { "authorization": "Bearer {auth:slack.oauth_access_token}" } }]),
    )
    .await;
    assert_eq!(status, "succeeded");
    let swapped = slack.requests();
    assert_eq!(swapped[0].header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));
    let (exited, status) = run(&server, workflow, json!([{ "do": "exit", "reason": "nothing to do" }])).await;
    assert_eq!(status, "exited");
    let (failed, status) = run(
        &server,
        workflow,
        json!([{ "do": "stdout", "text": "about to fail" }, { "do": "fail", "message": "the probe was told to fail" }]),
    )
    .await;
    assert_eq!(status, "failed");

    let mut command = tokio::process::Command::new("node");
    command
        .arg(repo().join("tests/browser/inspector.mjs"))
        .env("STEPHOST_BASE_URL", &server.base)
        .env("STEPHOST_TOKEN", &server.token)
        .env("STEPHOST_WORKFLOW", workflow)
        .env("STEPHOST_RUNS", [&greeting, &hostile, &exited, &failed].map(String::as_str).join(","))
        .env("STEPHOST_HOSTILE_RUN", &hostile)
        .env("STEPHOST_FAILED_RUN", &failed)
        // So the page can be searched for it: it must never be there.
        .env("STEPHOST_SECRET", GOOD_TOKEN)
        .kill_on_drop(true);
    match std::env::var_os("STEPHOST_SCREENSHOT") {
        Some(path) => command.env("STEPHOST_SCREENSHOT", path),
        None => command.env_remove("STEPHOST_SCREENSHOT"),
    };
    let output = command.output().await.expect("running node tests/browser/inspector.mjs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the browser test failed:\n{stdout}\n{stderr}");
}

/// What the browser test checks of the headers, without a browser: the
/// page and each asset without a token, with the strict policy, their
/// content types and a cheap revalidation; the page holds no inline
/// script or style, and the vendored library compiles no code at run time
/// (so `script-src 'self'` without `'unsafe-eval'` holds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_and_its_assets_need_no_token_and_carry_the_strict_policy() {
    let server = Server::start().await;
    let policy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                  connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/preact-htm.js", "text/javascript; charset=utf-8"),
    ] {
        let response = server.http.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], content_type, "{path}");
        assert_eq!(headers["content-security-policy"], policy, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{path}");
        assert_eq!(headers["cache-control"], "no-cache", "{path}");
        let body = response.text().await.unwrap();
        if path == "/" {
            let lower = body.to_ascii_lowercase();
            assert!(!lower.contains("<style") && !lower.contains(" style="), "inline style in the page");
            for script in lower.split("<script").skip(1) {
                assert!(script.split('>').next().unwrap().contains(" src="), "inline script in the page");
            }
        } else if path.ends_with(".js") {
            assert!(
                !body.contains("eval(") && !body.contains("new Function"),
                "{path} compiles code at run time"
            );
            if path == "/ui/app.js" {
                for markup in [
                    "dangerouslySetInnerHTML",
                    ".innerHTML",
                    ".outerHTML",
                    "insertAdjacentHTML",
                    "document.write",
                ] {
                    assert!(!body.contains(markup), "the page writes markup with {markup}");
                }
            }
        }
        let again = server
            .http
            .get(server.url(path))
            .header("if-none-match", headers["etag"].clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path} revalidated");
        assert_eq!(again.headers()["content-security-policy"], policy, "{path} revalidated");
    }
    let missing = server.http.get(server.url("/ui/nothing.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-security-policy"], policy);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["error"], "no asset nothing.js");
}
