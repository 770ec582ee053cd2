//! The shared wasmtime engine, its epoch clock and the on-disk cache of compiled components.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; call deadlines are checked at this granularity.
pub(crate) const TICK: Duration = Duration::from_millis(2);

/// Ticks without a running call after which the clock sleeps (10 ms). Under 100 calls a
/// second a call pays one wake-up and at most this many ticks; a longer wait made a gateway
/// with sparse calls pay up to 500 ticks per call.
const IDLE_TICKS: u32 = 5;

/// The engine every plugin runs on, its epoch clock, and its instance slots.
pub(crate) struct Runtime {
    pub(crate) engine: Engine,
    pub(crate) clock: Arc<Clock>,
    /// The instances the engine can hold at once, all plugins together.
    pub(crate) slots: Arc<Slots>,
    /// How many plugins share the engine.
    pub(crate) plugins: usize,
}

/// What one slot of the engine holds: a component instance and up to this many core
/// instances, memories and tables. Most plugins' instances fit in one; a Python one (14 core
/// instances) takes two.
const CORE_INSTANCES_PER_SLOT: u32 = 8;
const MEMORIES_PER_SLOT: u32 = 2;
const TABLES_PER_SLOT: u32 = 8;

impl Runtime {
    /// The slots one instance of `component` takes: its core instances (`core_instances`, read
    /// from its bytes), memories and tables against what a slot holds. An error if it needs
    /// more than the engine has.
    pub(crate) fn slots_for(
        &self,
        component: &Component,
        core_instances: u32,
    ) -> Result<u32, String> {
        // A component that instantiates modules it imports cannot say; plugins do not.
        let (memories, tables) = component
            .resources_required()
            .map_or((MEMORIES_PER_SLOT, TABLES_PER_SLOT), |r| {
                (r.num_memories, r.num_tables)
            });
        let slots = [
            core_instances.div_ceil(CORE_INSTANCES_PER_SLOT),
            memories.div_ceil(MEMORIES_PER_SLOT),
            tables.div_ceil(TABLES_PER_SLOT),
            1,
        ]
        .into_iter()
        .max()
        .expect("not empty");
        if slots as usize > self.slots.count {
            return Err(format!(
                "one instance of it needs {core_instances} core instances, {memories} memories and {tables} tables, more than the plugins' engine holds ({} slots of {CORE_INSTANCES_PER_SLOT}, {MEMORIES_PER_SLOT} and {TABLES_PER_SLOT})",
                self.slots.count
            ));
        }
        Ok(slots)
    }
}

/// The engine's instance slots: every live instance, running a call or warm, holds one, so
/// that a call beyond them waits for one to come free instead of failing.
pub(crate) struct Slots {
    free: Arc<Semaphore>,
    /// Calls waiting for a slot.
    waiting: AtomicUsize,
    /// How many slots there are.
    pub(crate) count: usize,
}

/// Counts a call as waiting for a slot while it lives (also when the call is dropped).
struct Waiting<'s>(&'s AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Slots {
    /// `n` slots for a new instance, waiting up to `patience` for them to come free; `None` if
    /// they did not.
    pub(crate) async fn take(&self, n: u32, patience: Duration) -> Option<OwnedSemaphorePermit> {
        if let Ok(slots) = self.free.clone().try_acquire_many_owned(n) {
            return Some(slots);
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        let slots = tokio::time::timeout(patience, self.free.clone().acquire_many_owned(n)).await;
        Some(slots.ok()?.expect("the slots are never closed"))
    }

    /// Whether a call waits for a slot: an instance that finishes its call then gives its slot
    /// up rather than stay warm, whichever plugin the waiting call is for.
    pub(crate) fn wanted(&self) -> bool {
        self.waiting.load(Ordering::Relaxed) > 0
    }
}

/// The epoch clock of one engine: a thread that advances the epoch every [`TICK`] while plugin
/// code runs (the deadline callback needs it to stop a call), and sleeps once none has run for
/// 10 ms, so that an idle gateway is not woken 500 times a second.
pub(crate) struct Clock {
    /// Calls (and instantiations) running now.
    running: AtomicUsize,
    /// Whether the thread is asleep, or about to be.
    asleep: AtomicBool,
    thread: OnceLock<std::thread::Thread>,
}

/// Keeps the clock ticking while it lives: held for each call and instantiation.
pub(crate) struct Running<'c>(&'c Clock);

impl Clock {
    /// Marks plugin code as running until the guard drops, waking the clock if it sleeps.
    pub(crate) fn running(&self) -> Running<'_> {
        // Sequentially consistent with the thread's `asleep` store and `running` load: either
        // this sees it asleep and wakes it, or it sees this call and does not sleep.
        self.running.fetch_add(1, Ordering::SeqCst);
        if self.asleep.load(Ordering::SeqCst) {
            if let Some(thread) = self.thread.get() {
                thread.unpark();
            }
        }
        Running(self)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Clock {
    fn drop(&mut self) {
        // Wakes the thread so that it finds the clock gone and ends.
        if let Some(thread) = self.thread.get() {
            thread.unpark();
        }
    }
}

/// Instances the engine is sized for: the calls that can run at once, all plugins together.
const INSTANCES: usize = 256;
/// The fewest instances the engine settles for where the address space is short.
const MIN_INSTANCES: usize = 4;

/// Builds the engine every plugin runs on and starts its clock. `max_memory` is the largest
/// per-instance memory limit of any configured plugin: the pooling allocator reserves slots of
/// that size. `plugins` is how many plugins share the engine.
///
/// The pool reserves address space (not memory) for [`INSTANCES`] instances up front, about
/// 8 GiB each. Where a limit on the process's address space (`ulimit -v`, or a tool such as
/// valgrind) refuses that, the engine is built for half as many, down to [`MIN_INSTANCES`],
/// and says so: calls beyond wait for a free instance.
pub(crate) fn runtime(max_memory: usize, plugins: usize) -> wasmtime::Result<Runtime> {
    let mut instances = INSTANCES;
    let engine = loop {
        match engine(max_memory, instances) {
            Ok(engine) => break engine,
            Err(e) if instances > MIN_INSTANCES => {
                tracing::debug!(instances, error = %e, "the WebAssembly engine cannot reserve its instance pool; trying a smaller one");
                instances /= 2;
            }
            Err(e) => {
                return Err(e.context(format!(
                    "it reserves about 8 GiB of address space (not memory) per plugin instance, for at least {MIN_INSTANCES} instances: is the process's address space limited (`ulimit -v`)?"
                )))
            }
        }
    };
    if instances < INSTANCES {
        tracing::warn!(
            instances,
            "the process's address space is limited: plugins run at most {instances} calls at once (of {INSTANCES}), and further calls wait for a free instance"
        );
    }
    let clock = Arc::new(Clock {
        running: AtomicUsize::new(0),
        asleep: AtomicBool::new(false),
        thread: OnceLock::new(),
    });
    let (weak_engine, weak_clock) = (engine.weak(), Arc::downgrade(&clock));
    // The thread ends once the engine or the clock is gone.
    let thread = std::thread::Builder::new()
        // At most 15 bytes: Linux cuts a thread's name there.
        .name("joinery-epoch".into())
        .spawn(move || tick(weak_engine, weak_clock))?;
    let _ = clock.thread.set(thread.thread().clone());
    Ok(Runtime {
        engine,
        clock,
        slots: Arc::new(Slots {
            free: Arc::new(Semaphore::new(instances)),
            waiting: AtomicUsize::new(0),
            count: instances,
        }),
        plugins: plugins.max(1),
    })
}

/// An engine whose pooling allocator holds `instances` component instances.
fn engine(max_memory: usize, instances: usize) -> wasmtime::Result<Engine> {
    let n = instances as u32;
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(n)
        .total_core_instances(CORE_INSTANCES_PER_SLOT * n)
        .total_memories(MEMORIES_PER_SLOT * n)
        .total_tables(TABLES_PER_SLOT * n)
        .max_memory_size(max_memory)
        .max_component_instance_size(4 << 20)
        .max_core_instance_size(4 << 20);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .max_wasm_stack(512 << 10)
        .async_stack_size(2 << 20);
    Engine::new(&config)
}

/// The clock thread: advances the epoch every tick, and sleeps after [`IDLE_TICKS`] without
/// running plugin code until [`Clock::running`] wakes it.
fn tick(engine: wasmtime::EngineWeak, clock: Weak<Clock>) {
    let mut idle = 0;
    loop {
        std::thread::sleep(TICK);
        let (Some(strong), Some(engine)) = (clock.upgrade(), engine.upgrade()) else {
            return;
        };
        engine.increment_epoch();
        drop(engine);
        if strong.running.load(Ordering::SeqCst) > 0 {
            idle = 0;
            continue;
        }
        idle += 1;
        if idle < IDLE_TICKS {
            continue;
        }
        strong.asleep.store(true, Ordering::SeqCst);
        let sleep = strong.running.load(Ordering::SeqCst) == 0;
        // Not held while asleep: the clock must stay free to go (its drop wakes this thread).
        drop(strong);
        if sleep {
            std::thread::park();
        }
        match clock.upgrade() {
            Some(strong) => strong.asleep.store(false, Ordering::SeqCst),
            None => return,
        }
        idle = 0;
    }
}

/// Compiled components on disk, keyed by the component's sha256 and the engine's
/// compatibility hash, so that a restart does not recompile.
#[derive(Debug, Clone)]
pub(crate) struct ComponentCache {
    dir: Option<PathBuf>,
}

impl ComponentCache {
    /// A cache in `dir`; `None` disables it.
    pub(crate) fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// Loads the component in `bytes`, from the cache when a valid entry exists.
    /// Returns whether it came from the cache.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        bytes: &[u8],
    ) -> wasmtime::Result<(Arc<Component>, bool)> {
        let Some(file) = self.entry(engine, bytes) else {
            return Ok((Arc::new(Component::new(engine, bytes)?), false));
        };
        if let Some(component) = read_entry(engine, &file) {
            return Ok((Arc::new(component), true));
        }
        let component = Component::new(engine, bytes)?;
        if let Err(e) = write_entry(&file, &component.serialize()?) {
            tracing::warn!(file = %file.display(), error = %e, "cannot write the compiled plugin cache");
        }
        Ok((Arc::new(component), false))
    }

    fn entry(&self, engine: &Engine, bytes: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let mut engine_hash = std::hash::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let mut key = Sha256::new();
        key.update(bytes);
        key.update(engine_hash.finish().to_le_bytes());
        key.update(env!("CARGO_PKG_VERSION"));
        Some(dir.join(format!("{}.cwasm", hex::encode(key.finalize()))))
    }
}

/// An entry is a sha256 over its key (the file name) and the compiled form, followed by the
/// compiled form: a truncated or altered file, or one moved under another key, fails the check
/// and is recompiled instead of being loaded.
fn read_entry(engine: &Engine, file: &Path) -> Option<Component> {
    let data = std::fs::read(file).ok()?;
    if data.len() < 32 || digest(file, &data[32..]).as_slice() != &data[..32] {
        tracing::warn!(file = %file.display(), "ignoring a corrupt compiled plugin cache entry");
        return None;
    }
    deserialize(engine, &data[32..])
}

#[allow(unsafe_code)]
fn deserialize(engine: &Engine, compiled: &[u8]) -> Option<Component> {
    // SAFETY: the bytes were produced by `Component::serialize` of an engine with the same
    // compatibility hash (part of the file name) and are checked against their sha256 above;
    // wasmtime itself refuses a compiled form made by another engine configuration.
    unsafe { Component::deserialize(engine, compiled) }.ok()
}

fn digest(file: &Path, compiled: &[u8]) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(
        file.file_name()
            .map(|n| n.as_encoded_bytes())
            .unwrap_or_default(),
    );
    hash.update([0]);
    hash.update(compiled);
    hash.finalize().into()
}

fn write_entry(file: &Path, compiled: &[u8]) -> std::io::Result<()> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let dir = file.parent().expect("cache entries live in a directory");
    std::fs::create_dir_all(dir)?;
    let mut data = digest(file, compiled).to_vec();
    data.extend_from_slice(compiled);
    // Write a file of its own, then rename, so that a concurrent reader never sees half a
    // file and concurrent writers (threads or processes) never share one.
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = file.file_name().unwrap_or_default().to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
    let written = std::fs::write(&tmp, &data).and_then(|()| std::fs::rename(&tmp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
