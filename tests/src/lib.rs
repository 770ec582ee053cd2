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

/// Requests per mode for a benchmark: `JOINERY_BENCH_REQUESTS`, else `default`.
pub fn bench_requests(default: usize) -> usize {
    std::env::var("JOINERY_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
