//! The one shared wasmtime `Engine`: component model, async, pooling
//! allocator, epoch interruption, copy-on-write memory images; and the
//! ticker thread that advances its epoch so long-running guests yield.

use crate::runtime::function_cache::FunctionCache;
use crate::runtime::limits::Limits;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances. A running guest yields to the executor at
/// every tick, which is what lets a wall-clock timeout stop a busy loop.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// How much of a finished instance's memory (and tables) stays resident
/// for the next instance in its slot: all of a typical Rust step. The cost:
/// up to this much RSS per slot ever used, i.e. per run at once at the
/// busiest moment plus [`WARM_SLOTS`].
const KEEP_RESIDENT_BYTES: usize = 4 << 20;

/// Unused slots kept warm (their pages resident) beyond those in use.
const WARM_SLOTS: u32 = 16;

/// Builds the engine, sized for `max_concurrent_runs` instances at once;
/// with `function_cache`, compiled functions are kept there and reused by
/// every later compilation (of this process and the next).
pub fn build_engine(max_concurrent_runs: u32, function_cache: Option<PathBuf>) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    if let Some(dir) = function_cache {
        config.enable_incremental_compilation(Arc::new(FunctionCache::new(dir)))?;
    }
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.memory_init_cow(true);

    let runs = max_concurrent_runs.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(runs)
        // A Rust step has ~4 core instances, a JS or Python one more.
        .total_core_instances(runs.saturating_mul(8))
        .total_memories(runs.saturating_mul(2))
        .total_tables(runs.saturating_mul(8))
        .total_stacks(runs)
        .max_memories_per_module(1)
        .max_tables_per_module(4)
        .max_memory_size(Limits::MAX_MEMORY_BYTES)
        .max_component_instance_size(4 << 20)
        .max_core_instance_size(4 << 20)
        // Reset a finished instance's memory and tables by rewriting the
        // pages it dirtied (found with the PAGEMAP_SCAN ioctl) instead of
        // `madvise`-ing them away: no page faults when the slot is reused,
        // and no TLB-shootdown interrupts to every other core on each run.
        .pagemap_scan(wasmtime::Enabled::Auto)
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        // Kept-resident pages stay with their slot while it is unused; the
        // slots in use over time are the most runs at once plus this many.
        .max_unused_warm_slots(WARM_SLOTS);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: &Engine) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let engine = engine.weak();
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("stephost-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawning the epoch ticker thread");
        Self { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vendored wasmtime calls `new_epoch` from every epoch check
    /// through a trampoline that preserves every register (vendor/README.md,
    /// patch 8). With a deadline that is always reached, every loop
    /// iteration goes through it: the callback runs once an iteration, and
    /// the loop's twelve live values must come out as plain arithmetic says.
    #[tokio::test]
    async fn epoch_checks_keep_every_live_value_across_the_deadline_call() {
        use wasmtime::{Instance, Module, Store, UpdateDeadline};
        let engine = build_engine(1, None).unwrap();
        let locals: String = (0..12).map(|k| format!("(local $l{k} i64)")).collect();
        let body: String = (0..12)
            .map(|k| {
                format!(
                    "(local.set $l{k} (i64.add (i64.add (local.get $l{k}) (local.get $l{})) (i64.const {})))",
                    (k + 11) % 12,
                    k + 1
                )
            })
            .collect();
        let sum: String = (1..12).map(|k| format!("(local.get $l{k}) i64.xor ")).collect();
        let wat = format!(
            "(module (func (export \"spin\") (param $n i32) (result i64) {locals} \
               (loop $again {body} \
                 (local.set $n (i32.sub (local.get $n) (i32.const 1))) \
                 (br_if $again (local.get $n))) \
               (local.get $l0) {sum}))"
        );
        let module = Module::new(&engine, &wat).unwrap();
        let artifact = module.serialize().unwrap();
        assert!(
            artifact.windows(36).any(|w| w == b"wasmtime_patchable_builtin_new_epoch"),
            "the epoch checks do not call new_epoch through the register-preserving trampoline"
        );
        let mut store = Store::new(&engine, 0u64);
        store.set_epoch_deadline(0);
        store.epoch_deadline_callback(|mut ctx| {
            *ctx.data_mut() += 1;
            Ok(UpdateDeadline::Continue(0))
        });
        let instance = Instance::new_async(&mut store, &module, &[]).await.unwrap();
        let spin = instance.get_typed_func::<i32, i64>(&mut store, "spin").unwrap();
        let iterations = 5_000;
        let got = spin.call_async(&mut store, iterations).await.unwrap();
        let mut l = [0i64; 12];
        for _ in 0..iterations {
            for k in 0..12 {
                l[k] = l[k].wrapping_add(l[(k + 11) % 12]).wrapping_add(k as i64 + 1);
            }
        }
        let expected = l[1..].iter().fold(l[0], |acc, v| acc ^ v);
        assert_eq!(got, expected);
        assert!(*store.data() >= iterations as u64, "the deadline was reached {} times", store.data());
    }

    /// A dynamically linked library's shape (componentize-py's libpython):
    /// a long active segment of functions into an imported table at an
    /// imported global's offset, which the vendored wasmtime applies in one
    /// libcall (vendor/README.md). Each slot must hold its own function,
    /// and the slots around the segment stay empty.
    #[tokio::test]
    async fn a_long_segment_fills_an_imported_table_at_a_dynamic_offset() {
        use wasmtime::{Global, GlobalType, Instance, Module, Mutability, Store, Val, ValType};
        let engine = build_engine(1, None).unwrap();
        let count = 40;
        // Slot 20 of the segment is a function the library imports (from
        // the main module), the others its own.
        let imported_at = 20;
        let funcs: String =
            (0..count).map(|i| format!("(func $f{i} (result i32) i32.const {i})\n")).collect();
        let names: String = (0..count)
            .map(|i| if i == imported_at { " $seven".to_string() } else { format!(" $f{i}") })
            .collect();
        let library = format!(
            "(module (import \"env\" \"table\" (table 100 funcref)) \
             (import \"env\" \"base\" (global $base i32)) \
             (import \"env\" \"seven\" (func $seven (result i32))) {funcs} \
             (elem (global.get $base) func{names}))"
        );
        let main = "(module (table (export \"table\") 100 funcref) (type $t (func (result i32))) \
            (func (export \"seven\") (result i32) i32.const 7) \
            (func (export \"call\") (param i32) (result i32) local.get 0 call_indirect (type $t)))";
        let mut store = Store::new(&engine, ());
        store.set_epoch_deadline(u64::MAX / 2);
        let main = Instance::new_async(&mut store, &Module::new(&engine, main).unwrap(), &[]).await.unwrap();
        let table = main.get_table(&mut store, "table").unwrap();
        let seven = main.get_func(&mut store, "seven").unwrap();
        let library = Module::new(&engine, &library).unwrap();
        let at = |store: &mut Store<()>, base: i32| {
            Global::new(store, GlobalType::new(ValType::I32, Mutability::Const), Val::I32(base)).unwrap()
        };
        let base = at(&mut store, 50);
        Instance::new_async(&mut store, &library, &[table.into(), base.into(), seven.into()]).await.unwrap();
        let call = main.get_typed_func::<i32, i32>(&mut store, "call").unwrap();
        for i in 0..count {
            let expected = if i == imported_at { 7 } else { i };
            assert_eq!(call.call_async(&mut store, 50 + i).await.unwrap(), expected, "slot {}", 50 + i);
        }
        for empty in [0, 49, 50 + count] {
            assert!(call.call_async(&mut store, empty).await.is_err(), "slot {empty} holds a function");
        }

        // A segment running past the table's end fails the instantiation
        // and writes nothing (slots 70..99 of 100 are in bounds).
        let past_the_end = at(&mut store, 70);
        let error =
            Instance::new_async(&mut store, &library, &[table.into(), past_the_end.into(), seven.into()])
                .await
                .unwrap_err();
        assert!(format!("{error:?}").contains("out of bounds table access"), "{error:?}");
        for untouched in [90, 99] {
            assert!(call.call_async(&mut store, untouched).await.is_err(), "slot {untouched} was written");
        }
    }
}
