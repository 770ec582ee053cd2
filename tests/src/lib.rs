//! Example upstream GraphQL APIs, the example runner, integration tests and benchmarks for
//! Joinery.

pub mod apt;
pub mod bench;
pub mod gateway;
pub mod plugins;
pub mod redis;
pub mod served;
pub mod upstreams;

pub use gateway::RunningGateway;
pub use redis::RedisServer;
pub use served::{JoineryProcess, ServedGateway};

pub use upstreams::{
    codes_with_capital, countries_sdl, start_countries, start_rest, start_travel, start_weather,
    travel_sdl, weather_sdl, Fault, Upstream, TRAVEL_V1_SDL,
};

/// The variables an example operation is run with: the JSON after `# Example variables:` in
/// its file's leading comments (`None` when it has no such line; `Err` when it is not JSON).
pub fn example_variables(text: &str) -> Option<Result<serde_json::Value, serde_json::Error>> {
    text.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.strip_prefix("# Example variables:"))
        .map(|json| serde_json::from_str(json.trim()))
}
