//! What a build is doing, on stderr: one line per phase (checking,
//! installing, bundling, componentizing, compiling) with the time it took,
//! so a long first build never sits silent. At a terminal the line counts
//! the seconds while its phase runs.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Reports a build's phases; quiet ones report nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Progress {
    quiet: bool,
}

impl Progress {
    /// Phases shown on stderr.
    pub fn to_stderr() -> Self {
        Self { quiet: false }
    }

    /// Nothing shown (a build inside another command's output).
    pub fn quiet() -> Self {
        Self { quiet: true }
    }

    /// Starts `what` (e.g. "bundling with esbuild"); [`Phase::done`] ends
    /// it with its time shown. Dropped without it (the phase failed), its
    /// line is only ended, for the error that follows.
    pub fn phase(&self, what: impl Into<String>) -> Phase {
        let what = what.into();
        if self.quiet {
            return Phase { what, started: Instant::now(), shown: false, done: false, ticker: None };
        }
        let mut stderr = std::io::stderr().lock();
        let ticker = if stderr.is_terminal() {
            let _ = write!(stderr, "stephost: {what}…");
            let _ = stderr.flush();
            Some(Ticker::start(what.clone()))
        } else {
            let _ = writeln!(stderr, "stephost: {what}…");
            None
        };
        Phase { what, started: Instant::now(), shown: true, done: false, ticker }
    }
}

/// A phase under way.
#[derive(Debug)]
pub struct Phase {
    what: String,
    started: Instant,
    shown: bool,
    done: bool,
    ticker: Option<Ticker>,
}

impl Phase {
    /// Ends the phase, showing its time.
    pub fn done(mut self) {
        self.done = true;
    }

    /// Ends the phase with `result`: its time shown if it succeeded.
    pub fn finish<T, E>(self, result: Result<T, E>) -> Result<T, E> {
        if result.is_ok() {
            self.done();
        }
        result
    }
}

impl Drop for Phase {
    fn drop(&mut self) {
        if !self.shown {
            return;
        }
        let seconds = self.started.elapsed().as_secs_f64();
        let at_terminal = self.ticker.take().is_some();
        match (self.done, at_terminal) {
            (true, true) => eprintln!("\rstephost: {}… {seconds:.1} s   ", self.what),
            (true, false) => eprintln!("stephost: {} took {seconds:.1} s", self.what),
            (false, true) => eprintln!(),
            (false, false) => {}
        }
    }
}

/// At a terminal: rewrites the phase's line with its running time.
#[derive(Debug)]
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(what: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("stephost-progress".into())
            .spawn(move || {
                let mut shown = 0;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let seconds = started.elapsed().as_secs();
                    if seconds > shown && !flag.load(Ordering::Relaxed) {
                        shown = seconds;
                        eprint!("\rstephost: {what}… {seconds} s");
                    }
                }
            })
            .ok();
        Self { stop, thread }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
