//! Identifiers: unguessable ones for what must stay secret, cheap ones for
//! what only names.

/// 32 hex digits from the OS random number generator: for what must not
/// be guessed (API tokens, trigger endpoints), unlike run IDs.
pub fn unguessable_hex() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    hex::encode(bytes)
}

/// A fresh run ID: 16 hex digits, unique within this process and random
/// across processes, without a system call per run. Run IDs name runs;
/// they are not secrets (every API route that takes one needs the token).
pub fn new_run_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static KEY: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let key = *KEY.get_or_init(|| {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the OS random number generator failed");
        u64::from_le_bytes(bytes)
    });
    // splitmix64's finalizer is a bijection: distinct counters give
    // distinct IDs.
    let mut z = key ^ COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}", z ^ (z >> 31))
}
