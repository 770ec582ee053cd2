//! Integration tests: real upstream servers on 127.0.0.1, real builds, a real gateway.

#![allow(unreachable_pub)] // test helpers are shared between modules of this binary

mod apollo;
mod batch_forms;
mod build;
mod cached_items;
mod caching;
mod cases;
mod coalescing;
mod connections;
mod cost;
mod example;
mod execution;
mod explorer;
mod federation;
mod fuzz_corpus;
mod guest_languages;
mod harness;
mod introspection;
mod joins;
mod metrics;
mod plugin_templates;
mod plugins;
mod readme;
mod reload;
mod requests;
mod resilience;
mod resolvers;
mod rest;
mod shared_cache;
mod traces;
mod untrusted_data;
mod upstream_limits;
