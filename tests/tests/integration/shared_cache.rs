//! The shared cache layer: two gateways in front of the same upstreams share answers through
//! one real Redis; Redis going away only means answers come from the upstream, quickly, and
//! sharing resumes once it is back.

use std::time::{Duration, Instant};

use joinery_tests::RedisServer;
use serde_json::json;

use crate::harness::{default_config, Gateway, COUNTRY};

fn shared(redis: &str) -> impl Fn(&str, &str) -> String + '_ {
    move |countries, weather| {
        format!(
            "{}\n[upstreams.countries.cache]\nttl = \"1m\"\n\n[cache]\nredis = \"{redis}\"\nredis_timeout = \"50ms\"\n",
            default_config(countries, weather)
        )
    }
}

#[tokio::test]
async fn replicas_share_answers_through_redis_and_go_on_without_it() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let a = Gateway::start_with(&[COUNTRY], shared(&url)).await;
    // The second replica asks the first one's upstreams, so that their counts tell.
    let (countries, weather) = (a.countries.url(), a.weather.url());
    let b = Gateway::start_with(&[COUNTRY], |_, _| shared(&url)(&countries, &weather)).await;
    let name = |r: &crate::harness::Reply| r.body["data"]["countries_country"]["name"].clone();
    a.countries.reset(); // the second replica's build introspected it

    assert_eq!(
        name(&a.run("Country", json!({ "code": "FR" })).await),
        "France"
    );
    assert_eq!(a.countries.requests(), 1);
    // The answer reaches Redis without the request waiting for it.
    let started = Instant::now();
    while redis.keys() == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "nothing shared");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let r = b.run("Country", json!({ "code": "FR" })).await;
    assert_eq!(name(&r), "France");
    assert_eq!(
        a.countries.requests(),
        1,
        "the other replica answered from Redis"
    );
    assert_eq!(
        r.body["extensions"]["cache"]["countries"]["stale"], false,
        "{}",
        r.body
    );

    // Another token is another entry: nothing shared across users.
    let with_token = b
        .run_as("Bearer other", "Country", json!({ "code": "FR" }))
        .await;
    assert_eq!(name(&with_token), "France");
    assert_eq!(a.countries.requests(), 2);

    // Redis gone: requests are answered by the upstream, without waiting long for Redis.
    redis.kill();
    for (i, code) in ["DE", "JP", "IT"].into_iter().enumerate() {
        let started = Instant::now();
        let r = b.run("Country", json!({ "code": code })).await;
        assert!(
            r.body["data"]["countries_country"]["name"].is_string(),
            "{}",
            r.body
        );
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(a.countries.requests(), 3 + i);
    }

    // Back (empty): answers are shared again once the replicas reconnect.
    redis.restart();
    let started = Instant::now();
    let mut code = 0;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "sharing did not resume"
        );
        // A fresh request each round: asked by one replica, then by the other.
        let codes = ["ES", "PT", "NL", "BE", "AT", "CH", "SE", "NO", "DK", "FI"];
        let vars = json!({ "code": codes[code % codes.len()] });
        code += 1;
        a.countries.reset();
        a.run("Country", vars.clone()).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        b.run("Country", vars).await;
        if a.countries.requests() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn replicas_share_batch_items_per_key() {
    use crate::batch_forms::{config as batch_config, WEATHER_BY_CODES};
    let redis = RedisServer::start();
    let url = redis.url();
    let config = |countries: &str, weather: &str| {
        format!(
            "{}\n[upstreams.weather.cache]\nttl = \"1m\"\n\n[cache]\nredis = \"{url}\"\nredis_timeout = \"50ms\"\n",
            batch_config(countries, weather)
        )
    };
    let a = Gateway::start_with(&[WEATHER_BY_CODES], config).await;
    let (countries, weather) = (a.countries.url(), a.weather.url());
    let b = Gateway::start_with(&[WEATHER_BY_CODES], |_, _| config(&countries, &weather)).await;
    let capitals = a.capitals(4).await;
    let codes: Vec<&str> = capitals.iter().map(|(c, _)| c.as_str()).collect();
    a.weather.reset();

    let first = a
        .run("WeatherByCodes", json!({ "codes": codes[..3] }))
        .await;
    assert_eq!(a.weather.requests(), 1);
    let started = Instant::now();
    while redis.keys() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "items not shared"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(redis.keys(), 3, "one entry per key, no whole answer");
    // The other replica has three of the four items from Redis: it asks for one.
    let r = b.run("WeatherByCodes", json!({ "codes": codes })).await;
    assert_eq!(r.body.get("errors"), None, "{}", r.body);
    let items = |r: &crate::harness::Reply| {
        r.body["data"]["countries_countries"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert_eq!(items(&r)[..3], items(&first)[..]);
    let received = a.weather.received();
    assert_eq!(received.len(), 2, "{received:?}");
    let names = received[1]["variables"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    assert_eq!(names, json!([capitals[3].1]));
}
