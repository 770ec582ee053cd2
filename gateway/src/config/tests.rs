use std::time::Duration;

use super::*;

fn parse(text: &str) -> Result<Config, String> {
    Config::parse(Path::new("joinery.toml"), text, &|n| {
        (n == "TOKEN").then(|| "s3cret".to_string())
    })
    .map_err(|e| e.to_string())
}

#[test]
fn defaults_apply() {
    let c = parse("[upstreams.countries]\nurl = \"http://127.0.0.1:4001/graphql\"\n").unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:4000");
    assert_eq!(c.server.max_request_bytes, 1 << 20);
    let up = &c.upstreams["countries"];
    assert_eq!(up.timeout, Duration::from_secs(10));
    assert_eq!(up.schema, SchemaSource::Introspection);
    assert_eq!(c.operations.dir, Path::new("operations"));
}

/// Found by fuzzing: the TOML parser refuses control characters without a message.
#[test]
fn control_characters_are_named() {
    let err = parse("# a \u{1} b\n[upstreams.a]\nurl = \"http://x/graphql\"\n").unwrap_err();
    assert_eq!(
        err,
        "joinery.toml:1:5: the control character U+0001 is not allowed in TOML (tabs and line breaks are)"
    );
}

#[test]
fn visible_headers_are_header_names() {
    let base = "[upstreams.a]\nurl = \"http://x/graphql\"\n[plugins.p]\npath = \"p.wasm\"\n";
    let ok = parse(base).unwrap();
    assert_eq!(ok.plugins["p"].visible_headers, None, "all by default");
    let ok = parse(&format!("{base}visible_headers = [\"Authorization\"]\n")).unwrap();
    assert_eq!(
        ok.plugins["p"].visible_headers,
        Some(vec!["authorization".to_string()])
    );
    let err = parse(&format!("{base}visible_headers = [\"x ok\"]\n")).unwrap_err();
    assert_eq!(
        err,
        "joinery.toml:5:20: `x ok` is not a valid HTTP header name"
    );
}

#[test]
fn resolver_plugin_upstreams() {
    let ok = parse("[plugins.shop]\npath = \"shop.wasm\"\n[upstreams.shop]\nplugin = \"shop\"\n")
        .unwrap();
    assert_eq!(
        ok.upstreams["shop"].transport,
        Transport::Plugin("shop".into())
    );
    assert_eq!(
        ok.upstreams["shop"].schema,
        SchemaSource::Plugin("shop".into())
    );

    let err = parse(
        "[plugins.shop]\npath = \"shop.wasm\"\n[upstreams.a]\nurl = \"http://x/graphql\"\nplugin = \"shop\"\n[upstreams.b]\ntimeout = \"1s\"\n[upstreams.c]\nplugin = \"shop\"\nschema_file = \"c.graphql\"\n[upstreams.d]\nplugin = \"shopp\"\n",
    )
    .unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(
        lines[0].starts_with("joinery.toml:5:10: `url` and `plugin` exclude each other"),
        "{err}"
    );
    assert!(lines[1].starts_with("joinery.toml:6:1"), "{err}");
    assert!(
        lines[1].contains("needs `url`") && lines[1].contains("or `plugin`"),
        "{err}"
    );
    assert!(
        lines[2].starts_with("joinery.toml:10:15: a resolver plugin supplies its own schema"),
        "{err}"
    );
    assert!(
        lines[3].starts_with("joinery.toml:12:10: no plugin named `shopp`"),
        "{err}"
    );
    assert!(lines[3].contains("use one of: shop"), "{err}");
}

#[test]
fn unknown_keys_are_refused_with_position_and_alternatives() {
    let err =
        parse("[upstreams.countries]\nurl = \"http://x/graphql\"\ntimeot = \"1s\"\n").unwrap_err();
    assert!(
        err.starts_with("joinery.toml:3:1: unknown field `timeot`, expected one of"),
        "{err}"
    );
    assert!(err.contains("`timeout`"), "{err}");
}

#[test]
fn every_unknown_key_and_type_error_is_reported_in_one_run() {
    let err = parse(
        "[server]\nlisten = 4000\nmax_conections = 5\n[upstreams.a]\nurl = \"http://x/graphql\"\ntimeot = \"1s\"\nforward_headers = \"authorization\"\n",
    )
    .unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 4, "{err}");
    assert!(
        lines[0].starts_with("joinery.toml:2:10: invalid type"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("joinery.toml:3:1: unknown field `max_conections`"),
        "{err}"
    );
    assert!(
        lines[2].starts_with("joinery.toml:6:1: unknown field `timeot`"),
        "{err}"
    );
    assert!(
        lines[3].starts_with("joinery.toml:7:19: invalid type"),
        "{err}"
    );
}

#[test]
fn bad_values_are_all_reported() {
    let err = parse(
        "[server]\nlisten = \"localhost\"\n[upstreams.my_api]\nurl = \"ftp://x\"\ntimeout = \"soon\"\nforward_headers = [\"Host\"]\nheaders = { \"x-key\" = \"${MISSING}\", \"x-ok\" = \"${TOKEN}\" }\n",
    )
    .unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("joinery.toml:2:10: `listen` must be"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("joinery.toml:3:12: invalid namespace `my_api`"),
        "{err}"
    );
    assert!(lines[1].contains("`myapi`"), "{err}");
    assert!(
        lines[2].starts_with("joinery.toml:4:7: `url` must be"),
        "{err}"
    );
    assert!(
        lines[3].starts_with("joinery.toml:5:11: expected a positive duration"),
        "{err}"
    );
    assert!(
        lines[4].starts_with("joinery.toml:6:20: header `host` is set by the gateway"),
        "{err}"
    );
    assert!(
        lines[5].starts_with("joinery.toml:7:23: environment variable `MISSING`"),
        "{err}"
    );
    assert_eq!(lines.len(), 6, "{err}");
}

#[test]
fn budgets_and_list_sizes_below_one_are_refused_where_written() {
    let err = parse("[operations.budget]\nmax_depth = 0\nmax_fields = 10\n[upstreams.a]\nurl = \"http://127.0.0.1:1/graphql\"\nlist_sizes = { items = 0 }\n")
        .unwrap_err();
    assert_eq!(
        err,
        "joinery.toml:6:24: the list size of `items` must be from 1 to 1000000000\njoinery.toml:2:13: `max_depth` must be at least 1"
    );
    let config = parse("[operations.budget]\nmax_fields = 10\n[upstreams.a]\nurl = \"http://127.0.0.1:1/graphql\"\nlist_sizes = { items = 7 }\n").unwrap();
    assert_eq!(config.operations.budget.max_fields.unwrap().value, 10);
    assert_eq!(config.operations.budget.max_depth, None);
    assert_eq!(config.upstreams["a"].list_sizes[0].size, 7);
}

#[test]
fn absurd_limits_and_url_credentials_are_refused() {
    let err = parse("[server]\nmax_request_bytes = 9223372036854775807\nmax_join_fanout = 99999999\n[upstreams.a]\nurl = \"https://user:secret@api.example.com/graphql\"\n")
        .unwrap_err();
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with("joinery.toml:2:21: `max_request_bytes` must be from 256"),
        "{err}"
    );
    assert!(
        lines[1].starts_with("joinery.toml:3:19: `max_join_fanout` must be from 1"),
        "{err}"
    );
    assert!(
        lines[2].starts_with("joinery.toml:5:7: `url` must not hold credentials"),
        "{err}"
    );
    assert!(
        !err.contains("secret"),
        "the error does not repeat the password: {err}"
    );
}

#[test]
fn an_invalid_log_level_is_a_config_error() {
    let err = parse(
        "[log]\nlevel = \"info,joinery=loud\"\n[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n",
    )
    .unwrap_err();
    assert!(
        err.starts_with("joinery.toml:2:9: `level` is not a log filter"),
        "{err}"
    );
    let ok = parse(
        "[log]\nlevel = \"warn,joinery=debug\"\n[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n",
    )
    .unwrap();
    assert_eq!(ok.log.level, "warn,joinery=debug");
}

#[test]
fn retry_and_breaker_tables_are_checked() {
    let config = |table: &str| {
        parse(&format!(
            "[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n{table}\n"
        ))
    };
    let ok = config(
        "[upstreams.a.retry]\nattempts = 2\n[upstreams.a.breaker]\nfailures = 5\nopen_for = \"2s\"",
    )
    .unwrap();
    let a = &ok.upstreams["a"];
    assert_eq!(a.retry.unwrap().attempts, 2);
    assert_eq!(a.retry.unwrap().backoff, Duration::from_millis(50));
    assert_eq!(a.breaker.unwrap().failures, 5);
    assert_eq!(a.breaker.unwrap().open_for, Duration::from_secs(2));
    let none = config("").unwrap();
    assert!(none.upstreams["a"].retry.is_none() && none.upstreams["a"].breaker.is_none());
    let err = config("[upstreams.a.retry]\nattempts = 9").unwrap_err();
    assert!(
        err.starts_with("joinery.toml:4:12: `attempts` must be from 1 to 5"),
        "{err}"
    );
    let err = config("[upstreams.a.breaker]\nfailures = 0\nopen_for = \"soon\"").unwrap_err();
    assert!(
        err.contains("joinery.toml:4:12: `failures` must be from 1 to 1000"),
        "{err}"
    );
    assert!(
        err.contains("joinery.toml:5:12: expected a positive duration"),
        "{err}"
    );
    let err = config("[upstreams.a.retry]\nattempts = 1\ntimes = 3").unwrap_err();
    assert!(err.starts_with("joinery.toml:5:1:"), "{err}");
}

#[test]
fn shared_cache_is_a_redis_url() {
    let base = "[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n[cache]\n";
    let ok = parse(&format!("{base}redis = \"redis+unix:///tmp/r.sock\"\n")).unwrap();
    assert_eq!(ok.cache.redis.as_deref(), Some("redis+unix:///tmp/r.sock"));
    assert_eq!(ok.cache.redis_timeout, Duration::from_millis(20));
    let err = parse(&format!(
        "{base}redis = \"http://x\"\nredis_timeout = \"-1\"\n"
    ))
    .unwrap_err();
    assert!(
        err.contains("joinery.toml:4:9: `redis` must be a redis://"),
        "{err}"
    );
    assert!(
        err.contains("joinery.toml:5:17: expected a positive duration"),
        "{err}"
    );
}

#[test]
fn cache_tables_are_checked() {
    let config = |table: &str| {
        parse(&format!(
            "[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n[upstreams.a.cache]\n{table}\n"
        ))
    };
    let ok = config("ttl = \"30s\"").unwrap();
    let cache = ok.upstreams["a"].cache.clone().unwrap();
    assert_eq!(cache.ttl, Duration::from_secs(30));
    assert_eq!(cache.max_bytes, 16 << 20);
    assert_eq!(cache.stale_if_error, None);
    let ok = config("ttl = \"30s\"\nstale_if_error = \"5m\"").unwrap();
    let stale = ok.upstreams["a"].cache.clone().unwrap().stale_if_error;
    assert_eq!(stale, Some(Duration::from_secs(300)));
    let err = config("ttl = \"0s\"\nmax_bytes = \"12\"").unwrap_err();
    assert!(
        err.contains("joinery.toml:4:7: expected a positive duration"),
        "{err}"
    );
    assert!(
        err.contains("joinery.toml:5:13: `max_bytes` must be a size"),
        "{err}"
    );
    let err = config("max_bytes = \"1MiB\"").unwrap_err();
    assert!(err.contains("ttl"), "{err}");
}

#[test]
fn coalescing_is_on_unless_turned_off() {
    let config = |line: &str| {
        parse(&format!(
            "[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n{line}\n"
        ))
    };
    assert!(config("").unwrap().upstreams["a"].coalesce);
    assert!(!config("coalesce = false").unwrap().upstreams["a"].coalesce);
    let err = config("coalesce = \"no\"").unwrap_err();
    assert!(err.starts_with("joinery.toml:3:12:"), "{err}");
}

#[test]
fn federation_is_for_url_upstreams() {
    let ok = parse("[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\nfederation = true\n").unwrap();
    assert!(ok.upstreams["a"].federation);
    let plain = parse("[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n").unwrap();
    assert!(!plain.upstreams["a"].federation);
    let err = parse(
        "[plugins.shop]\npath = \"shop.wasm\"\n[upstreams.shop]\nplugin = \"shop\"\nfederation = true\n",
    )
    .unwrap_err();
    assert!(
        err.starts_with("joinery.toml:5:14: `federation` is for GraphQL endpoints"),
        "{err}"
    );
}

#[test]
fn max_response_bytes_is_a_bounded_size() {
    let config = |value: &str| {
        parse(&format!(
            "[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\nmax_response_bytes = {value}\n"
        ))
    };
    assert_eq!(
        config("\"2MiB\"").unwrap().upstreams["a"].max_response_bytes,
        2 << 20
    );
    let defaults = parse("[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n").unwrap();
    assert_eq!(defaults.upstreams["a"].max_response_bytes, 16 << 20);
    for bad in ["\"2GiB\"", "\"12\"", "\"lots\""] {
        let err = config(bad).unwrap_err();
        assert!(
            err.starts_with("joinery.toml:3:22: `max_response_bytes` must be a size"),
            "{bad}: {err}"
        );
    }
}

#[test]
fn secrets_are_interpolated_from_the_environment() {
    let c = parse("[upstreams.a]\nurl = \"https://api.example.com/graphql\"\nheaders = { Authorization = \"Bearer ${TOKEN}\" }\n").unwrap();
    assert_eq!(
        c.upstreams["a"].headers,
        vec![("authorization".to_string(), "Bearer s3cret".to_string())]
    );
}

#[test]
fn metrics_are_served_only_where_the_config_says() {
    let none = parse("[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n").unwrap();
    assert_eq!(none.metrics.listen, None);
    let set = parse(
        "[metrics]\nlisten = \"127.0.0.1:9464\"\n[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n",
    )
    .unwrap();
    assert_eq!(set.metrics.listen, Some(([127, 0, 0, 1], 9464).into()));
    let err = parse("[metrics]\nlisten = \"9464\"\n[upstreams.a]\nurl = \"http://127.0.0.1:1/\"\n")
        .unwrap_err();
    assert!(
        err.starts_with("joinery.toml:2:10: `listen` must be an IP address and port such as \"127.0.0.1:9464\", not \"9464\""),
        "{err}"
    );
}

#[test]
fn a_config_without_upstreams_is_refused() {
    let err = parse("").unwrap_err();
    assert!(
        err.starts_with("joinery.toml:1:1: no upstreams are configured"),
        "{err}"
    );
}
