//! What the benchmarks share: how many requests to send, timed requests, percentiles.

use std::time::{Duration, Instant};

use serde_json::Value;

/// Requests per mode for a benchmark: `JOINERY_BENCH_REQUESTS`, else `default`.
pub fn requests(default: usize) -> usize {
    std::env::var("JOINERY_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The sample at fraction `p` (0 to 1) of `sorted`.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// A duration in microseconds.
pub fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// POSTs `body` as JSON to `url` and reads the JSON answer.
pub async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    client
        .post(url)
        .json(body)
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON")
}

/// Sends `request` and times it to the end of its body, which must be a success holding
/// `expect` (a benchmark of failing requests measures nothing).
pub async fn timed(request: reqwest::RequestBuilder, expect: &[u8]) -> Duration {
    let started = Instant::now();
    let response = request.send().await.expect("request sent");
    assert!(response.status().is_success());
    let body = response.bytes().await.expect("body read");
    assert!(
        !expect.is_empty() && body.windows(expect.len()).any(|w| w == expect),
        "{}",
        String::from_utf8_lossy(&body)
    );
    started.elapsed()
}

/// Context switches of every thread of this process so far (voluntary and not).
pub fn context_switches() -> u64 {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
    {
        let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
        total += status
            .lines()
            .filter(|l| l.contains("ctxt_switches:"))
            .filter_map(|l| l.split(':').nth(1)?.trim().parse::<u64>().ok())
            .sum::<u64>();
    }
    total
}
