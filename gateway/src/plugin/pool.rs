//! Warm instances of one plugin, and the limits every call runs under.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::{Component, Linker, Resource};
use wasmtime::{Engine, Store, UpdateDeadline};

use super::engine::{Clock, Running, Runtime, Slots};
use super::host::{Grants, Headers, HostState};
use super::PluginError;

/// Warm instances kept per plugin, at most.
const MAX_IDLE: usize = 32;
/// Shards of a plugin's warm instances: each thread checks instances in and out of its own
/// shard first, so that an instance tends to stay on the core that last ran it (its store,
/// stack and linear memory still in that core's caches) instead of moving with every call.
const SHARDS: usize = 8;
/// Resource handles (WASI streams, lent headers, ...) an instance may hold at once; wasmtime's
/// default is 100 000. A plugin needs a few dozen, and a handle that leaks call after call
/// fails the instance early instead of growing it.
const MAX_HANDLES: usize = 4096;

/// The generated bindings of one world.
pub(crate) trait World: Sized + Send + 'static {
    /// The pre-linked component (`InstancePre` wrapped by the bindings).
    type Pre: Send + Sync;

    /// The interface the world exports, for messages (`policy`, `resolver`).
    const EXPORT: &'static str;

    /// Adds the world's imports to `linker`.
    fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()>;

    /// Wraps the pre-instantiated component.
    fn pre(pre: wasmtime::component::InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;

    /// Instantiates the pre-linked component in `store`.
    fn instantiate<'a>(
        pre: &'a Self::Pre,
        store: &'a mut Store<HostState>,
    ) -> impl Future<Output = wasmtime::Result<Self>> + Send + 'a;
}

/// Implements [`World`] for the generated bindings of one world: both worlds link and
/// instantiate the same way.
macro_rules! world {
    ($bindings:ident, $pre:ident, $export:literal) => {
        impl $crate::plugin::pool::World for $bindings {
            type Pre = $pre<$crate::plugin::host::HostState>;
            const EXPORT: &'static str = $export;

            fn add_to_linker(
                linker: &mut wasmtime::component::Linker<$crate::plugin::host::HostState>,
            ) -> wasmtime::Result<()> {
                $bindings::add_to_linker::<
                    _,
                    wasmtime::component::HasSelf<$crate::plugin::host::HostState>,
                >(linker, |s| s)
            }

            fn pre(
                pre: wasmtime::component::InstancePre<$crate::plugin::host::HostState>,
            ) -> wasmtime::Result<Self::Pre> {
                $pre::new(pre)
            }

            fn instantiate<'a>(
                pre: &'a Self::Pre,
                store: &'a mut wasmtime::Store<$crate::plugin::host::HostState>,
            ) -> impl std::future::Future<Output = wasmtime::Result<Self>> + Send + 'a {
                pre.instantiate_async(store)
            }
        }
    };
}
pub(crate) use world;

/// One plugin call: checks an instance out, runs one export on it under the time limit (in a
/// span when traced), and checks it back in — or discards it when the call failed. Evaluates
/// to the export's result or the [`PluginError`]. A macro, not a function taking a closure:
/// the call's future borrows the instance, and boxing it would cost every call.
macro_rules! call {
    ($pool:expr, $hook:literal, |$bindings:ident, $store:ident| $call:expr) => {{
        let pool = &$pool;
        let _running = pool.running();
        match pool.checkout().await {
            Err(e) => Err(pool.refused(e)),
            Ok(mut instance) => {
                let started = instance.started;
                let result = {
                    let $bindings = &instance.bindings;
                    let $store = &mut instance.store;
                    pool.limited($hook, started, $call).await
                };
                pool.checkin(instance, result, started)
            }
        }
    }};
}
pub(crate) use call;

/// Runs `call` (one export call on `store`) with `headers` lent to the plugin as a
/// `header-map` handle for its duration.
pub(crate) async fn lending<R>(
    store: &mut Store<HostState>,
    headers: Arc<reqwest::header::HeaderMap>,
    call: impl AsyncFnOnce(&mut Store<HostState>, Resource<Headers>) -> R,
) -> R {
    let lent = store.data_mut().lend(headers);
    let rep = lent.rep();
    let result = call(store, lent).await;
    store.data_mut().reclaim(rep);
    result
}

/// One instance and its store.
pub(crate) struct Instance<W> {
    pub(crate) store: Store<HostState>,
    pub(crate) bindings: W,
    /// When the current call started (its time limit counts from here).
    pub(crate) started: Instant,
    /// Its slot in the engine, given back when the instance is dropped.
    _slot: OwnedSemaphorePermit,
}

/// The instances of one plugin.
pub(crate) struct Pool<W: World> {
    pub(crate) name: String,
    timeout: Duration,
    engine: Engine,
    clock: Arc<Clock>,
    pre: W::Pre,
    grants: Arc<Grants>,
    /// The engine's instance slots, shared by all plugins.
    slots: Arc<Slots>,
    /// The slots one instance takes.
    weight: u32,
    idle: [Shard<W>; SHARDS],
    /// Instances in `idle`, all shards together.
    kept: AtomicUsize,
    /// The most instances `idle` keeps: the warm instances of all plugins together hold at
    /// most half the slots, so that they never keep a plugin from running.
    max_idle: usize,
    /// The largest memory any instance grew to (for `joinery plugin call`).
    peak_memory: AtomicUsize,
    /// Where calls are counted, once a gateway serves the plugin.
    metrics: std::sync::OnceLock<crate::metrics::PluginMetrics>,
}

/// Warm instances last used by the threads of one shard; aligned so that two shards never
/// share a cache line.
#[repr(align(128))]
struct Shard<W>(Mutex<Vec<Instance<W>>>);

impl<W> Default for Shard<W> {
    fn default() -> Self {
        Self(Mutex::new(Vec::new()))
    }
}

impl<W> Shard<W> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Instance<W>>> {
        self.0.lock().expect("the pool lock is never poisoned")
    }
}

/// The shard of the current thread.
fn own_shard() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

/// The async runtime's timer ran out while a call (or an instantiation) was suspended.
pub(crate) struct TimedOut;

/// Raised by the epoch callback when a call's time is up.
#[derive(Debug)]
struct OutOfTime;

impl std::fmt::Display for OutOfTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("time limit reached")
    }
}

impl std::error::Error for OutOfTime {}

impl<W: World> Pool<W> {
    /// Links `component` against the host and checks that it implements the world; each of its
    /// instances takes `weight` of the engine's slots.
    pub(crate) fn new(
        runtime: &Runtime,
        component: &Component,
        grants: Arc<Grants>,
        timeout: Duration,
        weight: u32,
    ) -> Result<Self, String> {
        let engine = &runtime.engine;
        let mut linker = Linker::<HostState>::new(engine);
        let linked = wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .and_then(|()| W::add_to_linker(&mut linker));
        linked.map_err(|e| format!("cannot prepare the host functions: {e:#}"))?;
        let pre = linker
            .instantiate_pre(component)
            .and_then(W::pre)
            .map_err(|e| super::explain_mismatch(engine, component, W::EXPORT, &e))?;
        Ok(Self {
            name: grants.name.clone(),
            timeout,
            engine: engine.clone(),
            clock: runtime.clock.clone(),
            pre,
            grants,
            slots: runtime.slots.clone(),
            weight,
            idle: Default::default(),
            kept: AtomicUsize::new(0),
            // None at all when the engine is that small (a few slots, many plugins): warm
            // instances of idle plugins would otherwise hold slots another plugin waits for.
            max_idle: (runtime.slots.count / (2 * runtime.plugins * weight as usize)).min(MAX_IDLE),
            peak_memory: Default::default(),
            metrics: Default::default(),
        })
    }

    /// Runs `call` (one export of a checked-out instance, started at `started`) under the
    /// plugin's time limit, in a `plugin` span when traces are exported.
    ///
    /// While the plugin runs, the epoch callback enforces the limit; the runtime's timer
    /// covers only the time it spends suspended (a host call, a yield), so it is armed only
    /// once the call first suspends: a call that finishes in one go, as most policy hooks
    /// do, never touches the timer wheel.
    pub(crate) async fn limited<R>(
        &self,
        hook: &'static str,
        started: Instant,
        call: impl Future<Output = wasmtime::Result<R>>,
    ) -> Result<wasmtime::Result<R>, TimedOut> {
        let span =
            crate::telemetry::traced(|| tracing::info_span!("plugin", plugin = %self.name, hook));
        let mut call = std::pin::pin!(call);
        let mut timer = std::pin::pin!(None::<tokio::time::Sleep>);
        let limited = std::future::poll_fn(move |cx| {
            if let Poll::Ready(result) = call.as_mut().poll(cx) {
                return Poll::Ready(Ok(result));
            }
            if timer.is_none() {
                let deadline = tokio::time::Instant::from_std(started + self.deadline());
                timer.set(Some(tokio::time::sleep_until(deadline)));
            }
            let timer = timer.as_mut().as_pin_mut().expect("armed above");
            timer.poll(cx).map(|()| Err(TimedOut))
        });
        tracing::Instrument::instrument(limited, span).await
    }

    /// How long the async runtime waits for a call: the plugin's timeout, plus a few epoch
    /// ticks for the epoch callback to trap first (its error is the clearer one).
    pub(crate) fn deadline(&self) -> Duration {
        self.timeout + super::engine::TICK * 4
    }

    /// A warm instance (the one this thread used last, if any), or a new one from the
    /// pre-linked component.
    pub(crate) async fn checkout(&self) -> Result<Instance<W>, PluginError> {
        let own = own_shard();
        let idle = (0..SHARDS).find_map(|k| self.idle[(own + k) % SHARDS].lock().pop());
        if idle.is_some() {
            self.kept.fetch_sub(1, Ordering::Relaxed);
        }
        let mut instance = match idle {
            Some(i) => i,
            None => self.fresh().await?,
        };
        instance.started = self.arm(&mut instance.store);
        Ok(instance)
    }

    /// Counts a call that got no instance, and passes its error on.
    pub(crate) fn refused(&self, error: PluginError) -> PluginError {
        if let Some(metrics) = self.metrics.get() {
            metrics.refused(match &error {
                PluginError::Busy(..) => "busy",
                PluginError::Timeout(..) => "timeout",
                PluginError::Failed(..) => "failed",
            });
        }
        error
    }

    /// Keeps the epoch clock ticking while the guard lives: plugin code runs under it.
    pub(crate) fn running(&self) -> Running<'_> {
        self.clock.running()
    }

    /// Creates `n` fresh instances (each under the call time limit) and keeps them warm, up to
    /// the pool's size; fails like a call if the plugin cannot be instantiated.
    pub(crate) async fn prewarm(&self, n: usize) -> Result<(), PluginError> {
        let _running = self.running();
        for _ in 0..n {
            let instance = self.fresh().await?;
            self.keep(instance);
        }
        Ok(())
    }

    /// Counts this plugin's calls in `metrics` from now on.
    pub(crate) fn observe(&self, metrics: &Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics.plugin(&self.name));
    }

    async fn fresh(&self) -> Result<Instance<W>, PluginError> {
        // When every slot holds an instance, this waits for one to come free (a call ends), as
        // long as a call may last.
        let slot = self.slots.take(self.weight, self.timeout).await;
        let slot = slot
            .ok_or_else(|| PluginError::Busy(self.name.clone(), self.timeout, self.slots.count))?;
        let mut store = Store::new(&self.engine, HostState::new(self.grants.clone()));
        store.limiter(|s| s);
        store.set_max_component_handles(MAX_HANDLES);
        store.epoch_deadline_callback(on_epoch);
        let started = self.arm(&mut store);
        let made = tokio::time::timeout(self.deadline(), W::instantiate(&self.pre, &mut store))
            .await
            .map_err(|_| TimedOut);
        if made.as_ref().is_ok_and(|r| r.is_err()) {
            // Growing while it starts (a runtime's set-up): name the setting to change.
            if let Some(needed) = store.data().refused_memory {
                let max = self.grants.max_memory();
                return Err(self.failed(super::memory_message(Some(needed as u64), max)));
            }
        }
        let bindings = self.classify(made, started, store.data().refused_memory)?;
        Ok(Instance {
            store,
            bindings,
            started,
            _slot: slot,
        })
    }

    /// Returns a healthy instance to the pool; a failed one is dropped with its store.
    pub(crate) fn checkin<R>(
        &self,
        instance: Instance<W>,
        result: Result<wasmtime::Result<R>, TimedOut>,
        started: Instant,
    ) -> Result<R, PluginError> {
        let value = self.classify(result, started, instance.store.data().refused_memory);
        if let Some(metrics) = self.metrics.get() {
            let result = match &value {
                Ok(_) => "ok",
                Err(PluginError::Timeout(..)) => "timeout",
                Err(_) => "failed",
            };
            metrics.call(result, started.elapsed());
        }
        let value = value?;
        self.peak_memory
            .fetch_max(instance.store.data().peak_memory, Ordering::Relaxed);
        self.keep(instance);
        Ok(value)
    }

    /// Keeps a healthy instance warm in this thread's shard, up to the pool's size, unless a
    /// call waits for its slot; a dropped one gives its slot back.
    fn keep(&self, instance: Instance<W>) {
        if self.slots.wanted() {
            return;
        }
        // Concurrent check-ins may pass the bound by a few: the bound leaves half the engine's
        // slots to running calls, far more than a few.
        if self.kept.fetch_add(1, Ordering::Relaxed) < self.max_idle {
            self.idle[own_shard()].lock().push(instance);
        } else {
            self.kept.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The largest linear memory an instance of the plugin has grown to, and the limit.
    pub(crate) fn memory(&self) -> (usize, usize) {
        let peak = self.peak_memory.load(Ordering::Relaxed);
        (peak, self.grants.max_memory())
    }

    /// A plugin error for an answer that broke the contract.
    pub(crate) fn failed(&self, message: String) -> PluginError {
        PluginError::Failed(self.name.clone(), message)
    }

    /// The outcome of a call (or of instantiation); `refused_memory` is the memory growth
    /// the store's limiter refused during it, if any.
    fn classify<R>(
        &self,
        result: Result<wasmtime::Result<R>, TimedOut>,
        started: Instant,
        refused_memory: Option<usize>,
    ) -> Result<R, PluginError> {
        let error = match result {
            Ok(Ok(v)) => return Ok(v),
            Err(_) => PluginError::Timeout(self.name.clone(), self.timeout),
            Ok(Err(e)) if e.downcast_ref::<OutOfTime>().is_some() => {
                PluginError::Timeout(self.name.clone(), self.timeout)
            }
            Ok(Err(_)) if let Some(wanted) = refused_memory => self.failed(format!(
                "it exceeded its memory limit: it asked for {:.1} MiB, its `max_memory` is {:.1} MiB",
                wanted as f64 / (1 << 20) as f64,
                self.grants.max_memory() as f64 / (1 << 20) as f64
            )),
            Ok(Err(e)) => self.failed(describe_trap(&e)),
        };
        tracing::warn!(plugin = %self.name, elapsed_us = started.elapsed().as_micros() as u64, error = %error, "plugin call failed; its instance is discarded");
        Err(error)
    }

    /// Sets the time limit of a call starting now (the callback reads it from the store; see
    /// [`Pool::fresh`]); returns the start.
    fn arm(&self, store: &mut Store<HostState>) -> Instant {
        let now = Instant::now();
        store.data_mut().deadline = now + self.timeout;
        store.set_epoch_deadline(1);
        now
    }
}

/// The epoch callback of every store, set once: it yields to the async runtime every tick (so
/// a looping plugin never holds a runtime thread) and traps once the call's time is up.
fn on_epoch(store: wasmtime::StoreContextMut<'_, HostState>) -> wasmtime::Result<UpdateDeadline> {
    if Instant::now() >= store.data().deadline {
        Err(OutOfTime.into())
    } else {
        Ok(UpdateDeadline::Yield(1))
    }
}

fn describe_trap(e: &wasmtime::Error) -> String {
    if let Some(exit) = e.downcast_ref::<wasmtime_wasi::I32Exit>() {
        // WASI preview 2's `exit` carries success or failure only: `exit(3)` arrives as 1.
        return format!(
            "it exited (status {}) instead of answering: a plugin must return from its hook",
            exit.0
        );
    }
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::StackOverflow) => "it overflowed its stack".into(),
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            "it trapped (a panic or abort in the plugin)".into()
        }
        Some(trap) => format!("it trapped: {trap}"),
        // Bindings that drop borrowed handles themselves (Rust, JavaScript, Python) never
        // get here; C and Zig ones leave it to the plugin.
        None if e
            .root_cause()
            .to_string()
            .contains("borrow handles still remain") =>
        {
            "it returned without dropping the `headers` handle lent for the call (in C and Zig: \
             `joinery_plugin_types_header_map_drop_borrow(request->headers)` before returning)"
                .into()
        }
        // The root cause, without the wasm backtrace the client has no use for.
        None => e.root_cause().to_string(),
    }
}
