//! Upstream answers are read with a size limit: an oversized or endless answer fails its fetch
//! (`UPSTREAM_BAD_RESPONSE` at the fields it was to resolve) as soon as the limit is passed,
//! instead of growing the gateway's memory until the timeout.

use std::time::{Duration, Instant};

use joinery_tests::Fault;
use serde_json::{json, Value};

use crate::harness::{default_config, Gateway, COUNTRY};

fn limited(countries: &str, weather: &str) -> String {
    default_config(countries, weather).replacen(
        "forward_headers = [\"authorization\"]",
        "forward_headers = [\"authorization\"]\nmax_response_bytes = \"64KiB\"",
        1,
    )
}

#[tokio::test]
async fn oversized_and_endless_answers_stop_at_max_response_bytes() {
    let gw = Gateway::start_with(&[COUNTRY], limited).await;
    let expect_refused = |r: &crate::harness::Reply| {
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(
            r.body["data"]["countries_country"],
            Value::Null,
            "{}",
            r.body
        );
        let error = &r.body["errors"][0];
        assert_eq!(error["extensions"]["code"], "UPSTREAM_BAD_RESPONSE");
        assert_eq!(error["path"], json!(["countries_country"]));
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("longer than max_response_bytes (65536 bytes)"),
            "{error}"
        );
    };

    // Announced by Content-Length: refused before the body is read.
    gw.countries.set_fault(Fault::Oversized(1 << 20));
    expect_refused(&gw.run("Country", json!({ "code": "FR" })).await);

    // Never ending: refused once 64 KiB have come, long before the 2 s timeout.
    gw.countries.set_fault(Fault::Endless);
    let started = Instant::now();
    expect_refused(&gw.run("Country", json!({ "code": "FR" })).await);
    assert!(started.elapsed() < Duration::from_millis(1500));

    // Under the limit, and afterwards: answers as usual.
    gw.countries.set_fault(Fault::None);
    let r = gw.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(
        r.body["data"]["countries_country"]["name"], "France",
        "{}",
        r.body
    );
    assert!(r.body.get("errors").is_none(), "{}", r.body);
}
