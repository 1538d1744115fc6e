//! `wasi:random/random.get-random-bytes`, filled in one piece.
//!
//! wasmtime-wasi 48 fills the bytes one at a time through a boxed
//! generator: CPython asks for ~2.5 KB on every start (its hash seed and
//! `random`'s state), which cost ~4% of a Python step's run. This
//! definition shadows it with a bulk fill from the same kind of generator
//! (`rand`'s thread-local ChaCha, reseeded from the OS).

use crate::runtime::state::StepState;
use rand::Rng;
use wasmtime::component::Linker;

/// The interface as wasmtime-wasi 48 defines it (the name must match to
/// shadow it; guests importing any 0.2.x version are linked to it).
const RANDOM_INTERFACE: &str = "wasi:random/random@0.2.12";

/// The most a guest may ask for at once: wasmtime-wasi's own limit.
const MAX_RANDOM_BYTES: u64 = 64 << 20;

/// Replaces wasmtime-wasi's `get-random-bytes` in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<StepState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let linked = linker
        .instance(RANDOM_INTERFACE)?
        .func_wrap("get-random-bytes", |_store: wasmtime::StoreContextMut<'_, StepState>, (len,): (u64,)| {
            Ok((random_bytes(len)?,))
        });
    linker.allow_shadowing(false);
    linked
}

/// `len` cryptographically secure random bytes.
fn random_bytes(len: u64) -> wasmtime::Result<Vec<u8>> {
    if len > MAX_RANDOM_BYTES {
        wasmtime::bail!("requested len {len} exceeds limit {MAX_RANDOM_BYTES}");
    }
    let mut bytes = vec![0; len as usize];
    rand::rng().fill_bytes(&mut bytes);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_filled_to_the_length_asked_and_differ_between_calls() {
        let (a, b) = (random_bytes(4096).unwrap(), random_bytes(4096).unwrap());
        assert_eq!(a.len(), 4096);
        assert_ne!(a, b);
        assert!(a.iter().filter(|&&byte| byte == 0).count() < 64, "not left zeroed");
        assert!(random_bytes(MAX_RANDOM_BYTES + 1).unwrap_err().to_string().contains("exceeds limit"));
    }
}
