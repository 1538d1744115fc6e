//! How every row of the suite is timed: per-run latencies on one task,
//! and runs/s with one thread per core, so each row is measured the same way.

use anyhow::Result;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Per-run times, sorted.
#[derive(Debug, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Sorts `samples` (at least one).
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        if samples.is_empty() {
            samples.push(Duration::ZERO);
        }
        Self(samples)
    }

    /// Every sample, sorted.
    pub fn into_vec(self) -> Vec<Duration> {
        self.0
    }

    pub fn median(&self) -> Duration {
        self.quantile(0.5)
    }

    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    fn quantile(&self, q: f64) -> Duration {
        self.0[((self.0.len() as f64 - 1.0) * q).round() as usize]
    }
}

/// Times `runs` sequential calls of `run` after `warmup` untimed ones; the
/// samples and the sequential runs/s.
pub async fn latencies<F, Fut>(warmup: u32, runs: u32, mut run: F) -> Result<(Samples, f64)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<()>>,
{
    for _ in 0..warmup {
        run().await?;
    }
    let mut samples = Vec::with_capacity(runs as usize);
    let started = Instant::now();
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        run().await?;
        samples.push(t.elapsed());
    }
    let per_second = samples.len() as f64 / started.elapsed().as_secs_f64();
    Ok((Samples::new(samples), per_second))
}

/// Runs/s with `threads` OS threads, each on its own single-threaded tokio
/// runtime calling `run` back to back for `duration` (all cores busy
/// without cross-thread wake-ups).
pub fn throughput<F, Fut>(threads: usize, duration: Duration, run: F) -> Result<f64>
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>>,
{
    let run = Arc::new(run);
    let barrier = Arc::new(std::sync::Barrier::new(threads));
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (run, barrier) = (run.clone(), barrier.clone());
            std::thread::spawn(move || -> Result<(u64, Duration)> {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                // Every thread reaches the barrier, even one that failed.
                barrier.wait();
                rt?.block_on(async {
                    let started = Instant::now();
                    let mut count = 0u64;
                    while started.elapsed() < duration {
                        run().await?;
                        count += 1;
                    }
                    Ok((count, started.elapsed()))
                })
            })
        })
        .collect();
    let mut total = 0.0;
    for worker in workers {
        let (count, took) = worker.join().map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))??;
        total += count as f64 / took.as_secs_f64();
    }
    Ok(total)
}

/// The number of cores to keep busy.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
