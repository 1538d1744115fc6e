//! What a deploy keeps and what it refuses: inline secrets sealed in the
//! database and masked in every answer, steps only by uploaded id (never a
//! path on the server's disk), uploads checked before any compiled code is
//! stored and within a compile limit, and steps in use kept from deletion.

use crate::server::Server;
use crate::support::{GOOD_TOKEN, PlainServer, StandIn, files_under, guest, runtime_with};
use reqwest::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

const ENV_SECRET: &str = "env-inline-secret-4242";

/// Every answer's text, to look for secrets in.
fn text(answers: &[&Value]) -> String {
    answers.iter().map(|a| a.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_secrets_are_sealed_at_rest_masked_in_answers_and_still_reach_their_hosts() {
    let slack = StandIn::start(&["slack.com"]).await;
    let own = PlainServer::start().await;
    let egress = slack.egress();
    let server = Server::start_custom(|_| runtime_with(egress, None), |_| {}).await;
    let (status, probe) = server.upload(std::fs::read(guest("probe")).unwrap()).await;
    assert_eq!(status, 201, "{probe}");
    let definition = format!(
        "[[steps]]\nname = \"probe\"\nstep = {}\nallowed_hosts = [\"http://127.0.0.1:{}\"]\n\
         secret_env = {{ API_KEY = \"{ENV_SECRET}\" }}\n\
         [steps.auths.slack]\noauth_access_token = \"{GOOD_TOKEN}\"\noauth_uid = \"U1\"\n",
        probe["id"],
        own.addr.port()
    );

    // A refused definition does not echo its secrets either.
    for broken in [
        format!("{definition}timeout = 3\n"),
        definition.replace("secret_env = {", "secret_env = \"{ENV_SECRET}\" #"),
    ] {
        let (status, refused) = server.api(Method::PUT, "/v1/workflows/leak", broken).await;
        assert_eq!(status, 400, "{refused}");
        assert!(
            !refused.to_string().contains(ENV_SECRET) && !refused.to_string().contains(GOOD_TOKEN),
            "{refused}"
        );
    }

    let (status, deployed) = server.api(Method::PUT, "/v1/workflows/post", definition).await;
    assert_eq!(status, 200, "{deployed}");
    let shown = deployed["definition"].as_str().unwrap();
    assert!(shown.contains("••••••••") && shown.contains("U1"), "masked, plain fields kept: {shown}");
    let event = json!({ "actions": [
        { "do": "http", "url": "https://slack.com/api/auth.test",
          "headers": { "authorization": "Bearer {auth:slack.oauth_access_token}" } },
        { "do": "http", "url": own.url("/own"), "headers": { "x-api-key": "{env:API_KEY}" } },
    ]});
    let (status, queued) = server.api(Method::POST, "/v1/workflows/post/runs", event.to_string()).await;
    assert_eq!(status, 202, "{queued}");
    let run = server.finished(queued["run"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");

    // The worker had the real values: the app's host got the token, the
    // step's own host the secret variable.
    let to_slack = slack.requests();
    assert_eq!(to_slack[0].header("authorization"), Some(format!("Bearer {GOOD_TOKEN}").as_str()));
    assert_eq!(own.requests()[0].header("x-api-key"), Some(ENV_SECRET));

    let (_, got) = server.api(Method::GET, "/v1/workflows/post", "").await;
    let (_, listed) = server.api(Method::GET, "/v1/runs?workflow=post", "").await;
    let all = text(&[&deployed, &got, &run, &listed]);
    for secret in [GOOD_TOKEN, ENV_SECRET] {
        assert!(!all.contains(secret), "{secret} in an API answer");
    }
    // The database and its WAL, while the server has them open (on
    // PostgreSQL the store's own tests look at what the server stored).
    if !crate::support::on_postgres() {
        let database = files_under(server.data());
        assert!(database.iter().any(|f| f.ends_with("stephost.db-wal")), "{database:?}");
    }
    crate::support::assert_not_stored(server.data(), &[GOOD_TOKEN, ENV_SECRET]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_naming_a_path_is_refused_alike_whether_the_path_exists_or_not() {
    let server = Server::start().await;
    let answer = |path: &Path| {
        let path = path.display().to_string();
        let definition = format!("[[steps]]\nname = \"a\"\ncomponent = {path:?}\n");
        let server = &server;
        async move {
            let (status, refused) = server.api(Method::PUT, "/v1/workflows/paths", definition).await;
            let error = refused["error"].as_str().unwrap().to_string();
            assert!(!error.contains(&path), "the path is echoed: {error}");
            (status, error)
        }
    };
    let existing = answer(&guest("hello")).await;
    let missing = answer(&server.data().join("no/such/step.wasm")).await;
    assert_eq!(existing.0, 400);
    assert!(existing.1.contains("a server does not read") && !existing.1.contains('\n'), "{}", existing.1);
    assert_eq!(existing, missing, "the answer says nothing about the path");
    let (status, _) = server.api(Method::GET, "/v1/workflows/paths", "").await;
    assert_eq!(status, 404, "nothing was deployed");
}

/// A server whose runtime caches compiled code in `<data>/components`,
/// as `stephost serve` does.
async fn caching_server(configure: impl FnOnce(&mut stephost::server::ServeConfig)) -> Server {
    Server::start_custom(|data| runtime_with(Default::default(), Some(data.join("components"))), configure)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_upload_leaves_the_data_directory_as_it_was() {
    let server = caching_server(|_| {}).await;
    let (status, _) = server.upload(std::fs::read(guest("hello")).unwrap()).await;
    assert_eq!(status, 201);
    let before = files_under(server.data());
    assert!(before.iter().any(|f| f.extension().is_some_and(|e| e == "cwasm")), "{before:?}");
    let core = wat::parse_str("(module)").unwrap();
    for bad in [std::fs::read(guest("command")).unwrap(), core] {
        let (status, refused) = server.upload(bad).await;
        assert_eq!(status, 400, "{refused}");
    }
    // Compiled functions are the compiler's own cache (keyed by each
    // function's code, bounded in size), not the refused component.
    let kept = |f: &std::path::PathBuf| {
        let f = f.to_string_lossy();
        !f.contains("stephost.db") && !f.contains("/components/functions/")
    };
    let mut after = files_under(server.data());
    after.retain(kept);
    let mut expected = before;
    expected.retain(kept);
    after.sort();
    expected.sort();
    assert_eq!(after, expected, "no compiled code or file was left by a refused upload");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_the_compile_limit_is_refused_in_one_line() {
    let server = caching_server(|config| config.compile_timeout = Duration::from_nanos(1)).await;
    let (status, refused) = server.upload(std::fs::read(guest("hello")).unwrap()).await;
    assert_eq!(status, 422, "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("compile limit") && !error.contains('\n'), "{error}");
    let (_, listed) = server.api(Method::GET, "/v1/steps", "").await;
    assert_eq!(listed["steps"], json!([]));
    let left: Vec<_> = files_under(server.data())
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "wasm" || e == "cwasm"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    // The abandoned compile still writes the compiler's function cache:
    // the data directory is removed only after it ends.
    tokio::time::timeout(Duration::from_secs(300), server.state.compiles_ended())
        .await
        .expect("the abandoned compile ended within 5 minutes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_in_use_is_deleted_only_when_forced_and_a_deleted_step_cannot_be_deployed() {
    let server = caching_server(|_| {}).await;
    let (_, hello) = server.upload(std::fs::read(guest("hello")).unwrap()).await;
    let (_, unused) = server.upload(std::fs::read(guest("transform")).unwrap()).await;
    let id = hello["id"].as_str().unwrap().to_string();
    let definition = format!("[[steps]]\nname = \"hello\"\nstep = \"{id}\"\n");
    for workflow in ["first", "second"] {
        let (status, deployed) =
            server.api(Method::PUT, &format!("/v1/workflows/{workflow}"), definition.clone()).await;
        assert_eq!(status, 200, "{deployed}");
    }

    let (status, refused) = server.api(Method::DELETE, &format!("/v1/steps/{id}"), "").await;
    assert_eq!(status, 409, "{refused}");
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("first, second") && error.contains("force=true"), "{error}");
    assert!(server.data().join(format!("steps/{id}.wasm")).is_file(), "a refused delete keeps the file");

    let (status, _) =
        server.api(Method::DELETE, &format!("/v1/steps/{}", unused["id"].as_str().unwrap()), "").await;
    assert_eq!(status, 204, "a step no workflow uses goes without force");

    let (status, _) = server.api(Method::DELETE, &format!("/v1/steps/{id}?force=true"), "").await;
    assert_eq!(status, 204);
    let left: Vec<_> =
        files_under(server.data()).into_iter().filter(|f| f.to_string_lossy().contains(&id)).collect();
    assert!(left.is_empty(), "the step's file and compiled code are gone: {left:?}");
    // The store, not the disk, says which steps exist: a copy of the file
    // put back by hand does not make the deleted step deployable.
    let (status, refused) = server.api(Method::PUT, "/v1/workflows/third", definition.clone()).await;
    assert_eq!(status, 400, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains(&format!("no uploaded step {id}")), "{refused}");
    std::fs::copy(guest("hello"), server.data().join(format!("steps/{id}.wasm"))).unwrap();
    let (status, refused) = server.api(Method::PUT, "/v1/workflows/third", definition).await;
    assert_eq!(status, 400, "{refused}");
    let (status, _) = server.api(Method::DELETE, &format!("/v1/steps/{id}"), "").await;
    assert_eq!(status, 404, "deleted once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_the_compile_limit_from_its_flags() {
    use tokio::io::AsyncBufReadExt;
    let data = tempfile::tempdir().unwrap();
    let mut child = crate::support::stephost_tokio_command()
        .arg("--data")
        .arg(data.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--max-compiles", "1", "--compile-timeout", "1ns"])
        .env("STEPHOST_API_TOKEN", "flag-test-token")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let started = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("stephost serving on ") {
                return Some(url.to_string());
            }
        }
        None
    };
    let base = tokio::time::timeout(Duration::from_secs(120), started)
        .await
        .expect("the server starts within two minutes")
        .expect("the server starts");
    let answer = reqwest::Client::new()
        .post(format!("{base}/v1/steps"))
        .bearer_auth("flag-test-token")
        .body(std::fs::read(guest("hello")).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 422);
    let refused: Value = answer.json().await.unwrap();
    assert!(refused["error"].as_str().unwrap().contains("compile limit"), "{refused}");
    child.kill().await.unwrap();
}
