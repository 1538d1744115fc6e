//! `importlib.metadata` in Python steps: the packages bundled from
//! `requirements.txt` (and the bundled `requests`) have their metadata, as
//! SDKs that read their own version while loading expect.

use crate::languages::{log_text, run_py, runtime};
use crate::support::{StandIn, repo};
use serde_json::json;

/// The version `requirements.txt` pins `package` to.
fn pinned(requirements: &str, package: &str) -> String {
    let text = std::fs::read_to_string(repo().join(requirements)).unwrap();
    let line = text.lines().find_map(|l| l.trim().strip_prefix(&format!("{package}=="))).unwrap();
    line.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn importlib_metadata_knows_the_bundled_packages_and_their_versions() {
    let slack = StandIn::start(&["slack.com", "attacker.example"]).await;
    let runtime = runtime(&slack);
    let outcome = run_py(&runtime, "batteries/batteries", json!({}), &[]).await;
    let value = outcome.result.as_ref().unwrap_or_else(|e| panic!("{e}: {}", log_text(&outcome)));
    let six = pinned("tests/fixtures/python/batteries/requirements.txt", "six");
    assert_eq!(
        value["metadata"],
        json!({
            "six": six,
            "requests": "2.32.3",
            "six_name": "six",
            "distributions": ["requests", "six", "tzdata"],
            "entry_points": "EntryPoints",
            "missing": "PackageNotFoundError",
        })
    );
}
