//! Plugins in languages whose compilers make core WebAssembly modules, not components (C and
//! Zig with wasi-libc, built for `wasm32-wasi` preview 1): their bindings, generated from this
//! gateway's WIT, and the step that turns their module into a component with the WASI adapter
//! of the wasmtime this gateway runs, so that such a plugin needs a compiler and `joinery`
//! only.

use std::path::PathBuf;

use anyhow::Context as _;
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

use crate::plugin::contract::{World, WIT};

/// The C bindings of `world`: `<world>.c`, `<world>.h` and `<world>_component_type.o` (the
/// world's type, linked into the module so that [`componentize`] knows what it implements),
/// with `-` in the world's name turned into `_`.
pub(crate) fn c_bindings(world: World) -> anyhow::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut sources = wit_parser::SourceMap::default();
    for (file, text) in WIT {
        sources.push_str(file, text);
    }
    let group = sources
        .parse()
        .map_err(|(_, e)| anyhow::anyhow!("the gateway's WIT does not parse: {e}"))?;
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_group(group)
        .map_err(|e| anyhow::anyhow!("the gateway's WIT does not resolve: {e:?}"))?;
    let world = resolve.select_world(&[package], Some(world.wit_name()))?;
    let mut files = wit_bindgen_core::Files::default();
    wit_bindgen_c::Opts::default()
        .build()
        .generate(&mut resolve, world, &mut files)?;
    Ok(files
        .iter()
        .map(|(name, bytes)| (PathBuf::from(name), bytes.to_vec()))
        .collect())
}

/// Turns a core module built for `wasm32-wasi` (preview 1) with bindings from [`c_bindings`]
/// into a component: its WASI preview 1 imports are served by the adapter of this gateway's
/// wasmtime, and its exports become the world's.
pub(crate) fn componentize(module: &[u8]) -> anyhow::Result<Vec<u8>> {
    if wasmparser::Parser::is_component(module) {
        anyhow::bail!("it is a component already: configure it as it is");
    }
    if !wasmparser::Parser::is_core_wasm(module) {
        anyhow::bail!("it is not a WebAssembly module");
    }
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .context(
            "it has no joinery world in it: link the `<world>_component_type.o` of its bindings into it",
        )?
        .adapter(
            WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
            WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
        )?
        .encode()
        .context("it cannot be made a component")
}
