//! Settings of the allocator the `joinery` binary runs on (mimalloc, chosen by the binary:
//! the library does not impose one).

/// Gives pages freed by a thread back to the system at once instead of after a delay that
/// only ends when the thread allocates again: after answers near `max_response_bytes` an idle
/// gateway keeps about 20 MiB above its baseline instead of 50 (tests/memory.rs); under the
/// peers load CPU per request and throughput did not change measurably. 15 is
/// `mi_option_purge_delay` in the mimalloc v2 that libmimalloc-sys 0.1.49 vendors (its Rust
/// constants do not list it).
#[allow(unsafe_code)] // the allocator's options are set through its C interface
pub fn return_free_memory() {
    const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: options may be set at any time; this one takes a plain integer.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) };
}
