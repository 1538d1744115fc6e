//! Giving freed heap memory back to the system during and after a burst of
//! allocation (compiling a component).

use std::sync::mpsc;
use std::time::Duration;

/// Returns the heap's free pages to the system. Compiling a JS or Python
/// step allocates hundreds of MiB across the compiler's threads and frees
/// most of it, but glibc keeps each thread's freed memory for reuse: a
/// server that compiled one upload would hold that memory for good
/// (measured: 374 MiB resident after compiling a 13 MB JS step, 152 MiB
/// after this). A no-op where the allocator is not glibc's.
pub fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it
    // takes the allocator's locks and may be called from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs `work`, giving freed memory back every `period` while it runs and
/// once after. While a component compiles, each function's working memory
/// is freed as the next is allocated elsewhere; trimmed only at the end, a
/// JS step's compile peaked ~45–65 MiB higher (measured: 218 vs 265 MiB
/// for the Python step, 165 vs 230 MiB for the JS one).
pub fn giving_back_while<T>(period: Duration, work: impl FnOnce() -> T) -> T {
    let (stop, stopped) = mpsc::channel::<()>();
    let trimmer = std::thread::Builder::new().name("stephost-trim".into()).spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(period) {
            give_back_freed();
        }
    });
    let result = work();
    drop(stop);
    if let Ok(trimmer) = trimmer {
        let _ = trimmer.join();
    }
    give_back_freed();
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_runs_once_and_its_result_comes_back_when_it_outlasts_the_period() {
        let mut runs = 0;
        let result = giving_back_while(Duration::from_millis(1), || {
            runs += 1;
            // Longer than the period: the trimmer runs alongside.
            std::thread::sleep(Duration::from_millis(5));
            "done"
        });
        assert_eq!((runs, result), (1, "done"));
    }
}
