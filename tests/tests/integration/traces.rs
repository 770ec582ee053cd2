//! OpenTelemetry traces of a real `joinery serve` process, received by an OTLP/HTTP receiver
//! started here that decodes the official protobuf definitions (`opentelemetry-proto`): the
//! span tree of a joined request with a policy plugin, continuing the client's `traceparent`
//! and passing it on to both upstreams.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;

const JOINERY: &str = env!("CARGO_BIN_EXE_joinery_cli");
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// Accepts OTLP/HTTP protobuf exports at `/v1/traces`; keeps every span.
async fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    let spans = Arc::new(Mutex::new(Vec::new()));
    let kept = spans.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let kept = kept.clone();
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let kept = kept.clone();
                    async move {
                        assert_eq!(req.uri().path(), "/v1/traces");
                        assert_eq!(req.headers()["content-type"], "application/x-protobuf");
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let export = ExportTraceServiceRequest::decode(body).unwrap();
                        for resource in export.resource_spans {
                            for scope in resource.scope_spans {
                                kept.lock().unwrap().extend(scope.spans);
                            }
                        }
                        let answer = ExportTraceServiceResponse::default().encode_to_vec();
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder()
                                .header("content-type", "application/x-protobuf")
                                .body(Full::new(Bytes::from(answer)))
                                .unwrap(),
                        )
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    (url, spans)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            AnyValue::IntValue(i) => Some(i.to_string()),
            other => Some(format!("{other:?}")),
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_joined_request_is_one_trace_from_the_client_to_the_upstreams() {
    let (endpoint, spans) = receiver().await;
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let weather = joinery_tests::start_weather("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\n[log]\nformat = \"json\"\n[traces]\nendpoint = \"{endpoint}\"\nservice_name = \"joinery-test\"\n\n[upstreams.countries]\nurl = \"{}\"\n\n[upstreams.weather]\nurl = \"{}\"\nschema_file = \"{}\"\n\n[policy]\nplugins = [\"probe\"]\n\n[plugins.probe]\npath = \"{}\"\n",
        countries.url(),
        weather.url(),
        crate::harness::repo_root().join("schemas/weather.graphql").display(),
        joinery_tests::plugins::rust_plugin("probe").display(),
    );
    std::fs::write(dir.path().join("joinery.toml"), config).unwrap();
    std::fs::create_dir(dir.path().join("operations")).unwrap();
    std::fs::write(
        dir.path().join("operations/capitals.graphql"),
        r#"query Capitals($codes: [String!], $capital: String! @internal) {
  countries_countries(filter: { code: { in: $codes } }) {
    capital @export(as: "capital")
    _join { weather_getCityByName(name: $capital) { name } }
  }
}
"#,
    )
    .unwrap();
    let binary = std::path::Path::new(JOINERY);
    joinery_tests::JoineryProcess::build(binary, dir.path()).unwrap();
    let mut served = joinery_tests::ServedGateway::start(binary, dir.path(), &[]).unwrap();
    let manifest =
        joinery::operations::Manifest::read(&dir.path().join(".joinery/manifest.json")).unwrap();
    let hash = manifest.documents[0].hash.clone();
    let reply: serde_json::Value = reqwest::Client::new()
        .post(&served.url)
        .header("traceparent", format!("00-{TRACE_ID}-{CLIENT_SPAN}-01"))
        .json(&json!({ "documentId": format!("sha256:{hash}"), "variables": { "codes": ["FR", "JP"] } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(reply["errors"].is_null(), "{reply}");
    // Stopping flushes the spans not yet exported.
    served.process.signal("TERM").unwrap();
    let exit = served.process.wait().unwrap();
    assert!(exit.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !spans.lock().unwrap().iter().any(|s| s.name == "request") {
        assert!(Instant::now() < deadline, "no request span was exported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let spans = spans.lock().unwrap().clone();
    let hex = |b: &[u8]| hex::encode(b);
    // One trace: the client's.
    assert!(
        spans.iter().all(|s| hex(&s.trace_id) == TRACE_ID),
        "{spans:?}"
    );
    let by_id: HashMap<String, &Span> = spans.iter().map(|s| (hex(&s.span_id), s)).collect();
    let parent_name = |s: &Span| {
        by_id
            .get(&hex(&s.parent_span_id))
            .map(|p| p.name.clone())
            .unwrap_or_else(|| hex(&s.parent_span_id))
    };
    let request = spans.iter().find(|s| s.name == "request").unwrap();
    assert_eq!(hex(&request.parent_span_id), CLIENT_SPAN);
    assert_eq!(attribute(request, "operation").as_deref(), Some("Capitals"));
    assert_eq!(attribute(request, "hash"), Some(hash.clone()));
    let plugin = spans.iter().find(|s| s.name == "plugin").unwrap();
    assert_eq!(parent_name(plugin), "request");
    assert_eq!(attribute(plugin, "plugin").as_deref(), Some("probe"));
    assert_eq!(attribute(plugin, "hook").as_deref(), Some("on-request"));
    let upstream = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == "upstream" && attribute(s, "upstream").as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no upstream span for {name}: {spans:?}"))
    };
    assert_eq!(parent_name(upstream("countries")), "request");
    let wave = spans.iter().find(|s| s.name == "join wave").unwrap();
    assert_eq!(parent_name(wave), "request");
    assert_eq!(parent_name(upstream("weather")), "join wave");
    // Never a variable's value.
    for span in &spans {
        for attribute in &span.attributes {
            let text = format!("{:?}", attribute.value);
            assert!(!text.contains("FR") && !text.contains("Tokyo"), "{span:?}");
        }
    }
    // Each upstream got the trace, with its own request span as the parent.
    for (server, name) in [(&countries, "countries"), (&weather, "weather")] {
        // The last request: the build introspected `countries` before.
        let sent = server.received_headers();
        let traceparent = sent.last().unwrap()["traceparent"]
            .to_str()
            .unwrap()
            .to_string();
        let parts: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(parts[1], TRACE_ID, "{traceparent}");
        assert_eq!(parts[2], hex(&upstream(name).span_id), "{traceparent}");
    }
}
