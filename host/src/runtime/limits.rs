//! Per-run limits, and the store's memory limiter that enforces the memory
//! one across every linear memory and table of the step's instance.

use std::time::Duration;

/// What one run of a step may use. Every breach ends the step with a
/// [`crate::StepError`] naming the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Wall-clock time for instantiation and `run`, I/O waits included.
    pub timeout: Duration,
    /// Linear memory, summed over all of the instance's memories.
    pub memory_bytes: usize,
    /// Bytes of stdout + stderr kept; beyond it logs are truncated with a
    /// visible notice and the step goes on.
    pub log_bytes: usize,
    /// Size of the JSON return value, and of all exports together.
    pub output_bytes: usize,
}

impl Limits {
    /// The largest memory limit a step may ask for (the pooling allocator
    /// reserves slots of this size).
    pub const MAX_MEMORY_BYTES: usize = 4 << 30;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            memory_bytes: 256 << 20,
            log_bytes: 1 << 20,
            output_bytes: 1 << 20,
        }
    }
}

/// Store-level limiter: counts every memory's growth against one budget and
/// remembers a breach so the run can report it as a memory-limit error
/// rather than a bare trap.
pub(crate) struct MemoryLimiter {
    limit: usize,
    in_use: usize,
    pub(crate) exceeded: bool,
}

impl MemoryLimiter {
    pub(crate) fn new(limit: usize) -> Self {
        Self { limit, in_use: 0, exceeded: false }
    }
}

/// Tables are small and bounded by the pooling allocator; this caps
/// pathological `table.grow` loops all the same.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let after = self.in_use - current.min(self.in_use) + desired;
        if after > self.limit {
            self.exceeded = true;
            wasmtime::bail!("memory limit of {} bytes exceeded", self.limit);
        }
        self.in_use = after;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_is_counted_across_memories_and_breach_is_remembered() {
        let mut limiter = MemoryLimiter::new(100);
        assert!(limiter.memory_growing(0, 60, None).unwrap());
        assert!(limiter.memory_growing(0, 30, None).unwrap());
        assert!(!limiter.exceeded);
        assert!(limiter.memory_growing(30, 50, None).is_err());
        assert!(limiter.exceeded);
    }
}
