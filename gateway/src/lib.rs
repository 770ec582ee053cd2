//! Joinery: a GraphQL gateway that stitches namespaced upstream APIs into one schema and
//! serves persisted operations only.
//!
//! Data flows one way: [`config`] → `schema` → [`operations`] → `plan` → `registry` →
//! [`server`] → `pipeline` → `execute` → [`upstream`] / [`plugin`]. [`project`] ties the stages
//! together for the command line; the modules without a link are internal.

pub mod allocator;
pub mod cli;
pub mod config;
pub mod dev;
pub(crate) mod diagnostic;
pub(crate) mod error_code;
pub(crate) mod execute;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub(crate) mod graphql_error;
pub(crate) mod metrics;
pub mod operations;
pub(crate) mod pipeline;
pub(crate) mod plan;
pub mod plugin;
pub mod plugin_call;
pub(crate) mod plugin_component;
pub mod plugin_new;
pub mod plugin_test;
pub mod project;
pub(crate) mod registry;
pub(crate) mod reload;
pub(crate) mod schema;
pub mod server;
pub mod telemetry;
pub mod upstream;
