//! Example upstream GraphQL APIs, served over HTTP on `POST /graphql`: countries and weather;
//! and a REST/JSON products API for resolver plugins to adapt.
//!
//! They serve the example project, the gateway's integration tests and the benchmarks. Each
//! server keeps its own in-memory state, records the requests it receives and can inject
//! [`Fault`]s.

mod countries;
mod data;
mod rest;
mod server;
mod travel;
mod weather;

pub use countries::{codes_with_capital, countries_sdl, start_countries};
pub use rest::start_rest;
pub use server::{Fault, Upstream};
pub use travel::{start_travel, travel_sdl, TRAVEL_V1_SDL};
pub use weather::{start_weather, weather_sdl};

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::{json, Value};

    use super::*;

    /// POSTs `body` to the upstream, returning the status and the JSON response.
    pub(super) async fn post(upstream: &Upstream, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(upstream.url())
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    const QUERY: &str = r#"{ country(code: "JP") { capital } }"#;

    #[tokio::test]
    async fn faults_and_recording() {
        let upstream = start_countries("127.0.0.1:0").await.unwrap();
        let client = reqwest::Client::new();
        let send = || {
            client
                .post(upstream.url())
                .header("x-test", "yes")
                .json(&json!({ "query": QUERY }))
                .send()
        };
        let expected = json!({ "data": { "country": { "capital": "Tokyo" } } });

        upstream.set_fault(Fault::Delay(Duration::from_millis(500)));
        let start = Instant::now();
        let delayed = tokio::spawn(send());
        while upstream.requests() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The delayed request does not block a following one, sent once the fault is removed.
        upstream.set_fault(Fault::None);
        let quick = send().await.unwrap().json::<Value>().await.unwrap();
        assert_eq!(quick, expected);
        assert!(!delayed.is_finished());
        let delayed = delayed
            .await
            .unwrap()
            .unwrap()
            .json::<Value>()
            .await
            .unwrap();
        assert_eq!(delayed, expected);
        assert!(start.elapsed() >= Duration::from_millis(500));

        upstream.set_fault(Fault::Status(503));
        assert_eq!(send().await.unwrap().status(), 503);

        upstream.set_fault(Fault::InvalidJson);
        let response = send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.json::<Value>().await.is_err());

        upstream.set_fault(Fault::CloseConnection);
        assert!(send().await.is_err());

        assert_eq!(upstream.requests(), 5);
        assert_eq!(upstream.received()[4], json!({ "query": QUERY }));
        let headers = upstream.received_headers();
        assert!(headers.iter().all(|h| h["x-test"] == "yes"));

        upstream.reset();
        assert_eq!(upstream.requests(), 0);
        assert_eq!(
            send().await.unwrap().json::<Value>().await.unwrap(),
            expected
        );
        assert_eq!(upstream.requests(), 1);
    }

    #[tokio::test]
    async fn http_errors_and_batches() {
        let upstream = start_weather("127.0.0.1:0").await.unwrap();
        let client = reqwest::Client::new();
        let url = upstream.url();
        let other = url.replace("/graphql", "/other");
        assert_eq!(client.post(other).send().await.unwrap().status(), 404);
        assert_eq!(client.get(&url).send().await.unwrap().status(), 405);
        let invalid = client.post(&url).body("{").send().await.unwrap();
        assert_eq!(invalid.status(), 400);
        let batch = json!([{ "query": "{ now }" }, { "query": "{ failing }" }]);
        let (status, body) = post(&upstream, batch).await;
        assert_eq!(status, 200);
        assert_eq!(
            body[0],
            json!({ "data": { "now": "2026-01-01T00:00:00Z" } })
        );
        assert_eq!(
            body[1]["errors"][0]["message"],
            "weather is failing on purpose"
        );
        assert_eq!(upstream.requests(), 2);
        assert_eq!(upstream.received()[0], json!("{"));
    }

    #[tokio::test]
    async fn stop_and_drop_close_the_listener() {
        let upstream = start_countries("127.0.0.1:0").await.unwrap();
        let (addr, url) = (upstream.addr(), upstream.url());
        let client = reqwest::Client::new();
        let request = json!({ "query": QUERY });
        assert!(client.post(&url).json(&request).send().await.is_ok());
        upstream.stop().await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
        // The pooled keep-alive connection is closed too.
        assert!(client.post(&url).json(&request).send().await.is_err());

        let upstream = start_weather("127.0.0.1:0").await.unwrap();
        let addr = upstream.addr();
        drop(upstream);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
