//! The shared wasmtime engine, its epoch clock and the on-disk cache of compiled components.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances; call deadlines are checked at this granularity.
pub(crate) const TICK: Duration = Duration::from_millis(2);

/// Builds the engine every plugin runs on. `max_memory` is the largest per-instance memory
/// limit of any configured plugin: the pooling allocator reserves slots of that size.
pub(crate) fn engine(max_memory: usize) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(256)
        .total_core_instances(2048)
        .total_memories(512)
        .total_tables(2048)
        .max_memory_size(max_memory)
        .max_component_instance_size(4 << 20)
        .max_core_instance_size(4 << 20);
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .max_wasm_stack(512 << 10)
        .async_stack_size(2 << 20);
    let engine = Engine::new(&config)?;
    let weak = engine.weak();
    // The clock thread ends once the engine is gone.
    std::thread::Builder::new()
        .name("joinery-plugin-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => return,
            }
        })?;
    Ok(engine)
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
