//! Example upstream GraphQL APIs, the example runner, integration tests and benchmarks for
//! Joinery.

pub mod gateway;
pub mod plugins;
pub mod redis;
pub mod upstreams;

pub use gateway::RunningGateway;
pub use redis::RedisServer;

pub use upstreams::{
    codes_with_capital, countries_sdl, start_countries, start_rest, start_weather, weather_sdl,
    Fault, Upstream,
};
