//! `stephost bench`: end-to-end time of a step, and the egress proxy's
//! overhead against a direct reqwest client on the same loopback server.

use anyhow::{Result, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use stephost::{HostPolicy, Runtime, StepComponent, StepConfig, StepInput};

/// Times `runs` sequential runs after a warm-up; returns a report.
pub async fn step(runtime: &Runtime, step: &StepComponent, input: &StepInput, runs: u32) -> Result<String> {
    let config = StepConfig::default();
    for _ in 0..100 {
        let outcome = runtime.run(step, input.clone(), &config).await;
        if let Err(error) = outcome.result {
            bail!("the step fails, nothing to measure: {error}");
        }
    }
    let mut samples = Vec::with_capacity(runs as usize);
    let started = Instant::now();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let _ = runtime.run(step, input.clone(), &config).await;
        samples.push(t.elapsed());
    }
    let total = started.elapsed();
    samples.sort();
    Ok(format!(
        "{} runs of {}: median {}, p99 {}, min {}, {:.0} runs/s on one task",
        samples.len(),
        step.path.display(),
        us(quantile(&samples, 0.5)),
        us(quantile(&samples, 0.99)),
        us(samples[0]),
        samples.len() as f64 / total.as_secs_f64()
    ))
}

/// The token the benchmark's server expects; sealed for the step.
const TOKEN: &str = "bench-secret-token-0123456789";

/// Per-request time of `per_batch` sequential GETs, median over `batches`:
/// direct reqwest versus the `fetch` step through the egress proxy with a
/// secret swapped into every request.
pub async fn egress(
    runtime: &Runtime,
    fetch: &StepComponent,
    batches: u32,
    per_batch: u32,
) -> Result<String> {
    let authorized = Arc::new(AtomicU64::new(0));
    let seen = authorized.clone();
    let app = axum::Router::new().route(
        "/",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let seen = seen.clone();
            async move {
                if headers.get("authorization").is_some_and(|v| v == format!("Bearer {TOKEN}").as_str()) {
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}/");

    let client = reqwest::Client::builder().no_proxy().build()?;
    let mut direct = Vec::new();
    for _ in 0..=batches {
        let t = Instant::now();
        for _ in 0..per_batch {
            client.get(&url).bearer_auth(TOKEN).send().await?.bytes().await?;
        }
        direct.push(t.elapsed() / per_batch);
    }

    let config = StepConfig {
        policy: Arc::new(HostPolicy::parse(&[format!("http://{addr}")])?),
        ..Default::default()
    };
    let input = StepInput {
        step_name: "fetch".into(),
        event: serde_json::json!({ "url": url, "times": per_batch }).to_string(),
        secret_env: vec![("TOKEN".into(), TOKEN.into())],
        ..Default::default()
    };
    let before = authorized.load(Ordering::Relaxed);
    let mut proxied = Vec::new();
    for _ in 0..=batches {
        let outcome = runtime.run(fetch, input.clone(), &config).await;
        if let Err(error) = outcome.result {
            bail!("the fetch step failed: {error}");
        }
        proxied.push(outcome.duration / per_batch);
    }
    let swapped = authorized.load(Ordering::Relaxed) - before;
    if swapped != u64::from((batches + 1) * per_batch) {
        bail!("only {swapped} proxied requests carried the swapped-in secret");
    }
    // The first batch of each warms connections up.
    let (direct, proxied) = (median(&mut direct[1..].to_vec()), median(&mut proxied[1..].to_vec()));
    let overhead = (proxied.as_secs_f64() / direct.as_secs_f64() - 1.0) * 100.0;
    Ok(format!(
        "{per_batch} sequential GETs to {url}, median of {batches} batches:\n  direct reqwest:                    {} per request\n  step through the proxy (secret swapped in): {} per request\n  overhead: {overhead:+.0}% ({} per request)",
        us(direct),
        us(proxied),
        us(proxied.saturating_sub(direct))
    ))
}

fn quantile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    quantile(samples, 0.5)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}
