//! Cost at build: depth, upstream requests and resolved fields measured with list-size hints,
//! operations above `[operations.budget]` refused at their position, `joinery plan` showing
//! the measures.

use joinery::config::Config;

use crate::harness::{build_errors, default_config, write_project};

const WIDE: (&str, &str) = (
    "wide.graphql",
    "# Every country and its languages.\nquery Wide {\n  countries_countries { code languages { name } }\n}\n",
);

/// `(line, column)` of the first `needle` in `text`, 1-based.
fn position_of(text: &str, needle: &str) -> (usize, usize) {
    let offset = text.find(needle).expect("the needle is in the text");
    let line = text[..offset].matches('\n').count() + 1;
    let column = offset - text[..offset].rfind('\n').map_or(0, |n| n + 1) + 1;
    (line, column)
}

/// The default configuration with `hints` as the countries upstream's `list_sizes` (if any)
/// and `budget` as `[operations.budget]`.
fn config_with(countries: &str, hints: Option<&str>, budget: &str) -> String {
    let mut config = default_config(countries, "http://127.0.0.1:9/graphql");
    if let Some(hints) = hints {
        config = config.replace(
            "forward_headers = [\"authorization\"]\n",
            &format!("forward_headers = [\"authorization\"]\nlist_sizes = {hints}\n"),
        );
    }
    config.push_str("\n[operations.budget]\n");
    config.push_str(budget);
    config
}

#[tokio::test]
async fn operations_over_budget_are_refused_with_the_measure_and_the_budget() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        &countries.url(),
        None,
        "max_depth = 3\nmax_upstream_requests = 1\nmax_fields = 5000\n",
    );
    let err = build_errors(
        dir.path(),
        &config,
        &[
            ("fine.graphql", "query Fine { countries_country(code: \"FR\") { name } }\n"),
            WIDE,
            (
                "deep.graphql",
                "query Deep {\n  countries_continent(code: \"EU\") { countries { languages { name } } }\n}\n",
            ),
            (
                "two.graphql",
                "query Two { countries_country(code: \"FR\") { name } weather_now }\n",
            ),
        ],
    )
    .await;
    let at = |key: &str| {
        let (line, column) = position_of(&config, key);
        format!("joinery.toml:{line}:{}", column + key.len())
    };
    let lines: Vec<&str> = err.lines().collect();
    let expected = [
        format!(
            "operations/wide.graphql:2:1: operation `Wide` may resolve 1002001 fields, above the budget of 5000 (`[operations.budget] max_fields` at {}); lists without a size hint count as the join fan-out limit: countries_countries, countries_countries[].languages",
            at("max_fields = ")
        ),
        format!(
            "operations/deep.graphql:1:1: operation `Deep` is nested 4 fields deep, above the budget of 3 (`[operations.budget] max_depth` at {})",
            at("max_depth = ")
        ),
        format!(
            "operations/two.graphql:1:1: operation `Two` may make 2 upstream requests, above the budget of 1 (`[operations.budget] max_upstream_requests` at {})",
            at("max_upstream_requests = ")
        ),
    ];
    for e in &expected {
        assert!(
            lines.iter().any(|l| l.starts_with(e.as_str())),
            "{e}\nnot in:\n{err}"
        );
    }
    assert!(!err.contains("`Fine`"), "{err}");
    assert!(
        err.ends_with("4 problem(s) found; nothing was written"),
        "{err}"
    );
}

#[tokio::test]
async fn list_size_hints_lower_the_count_and_plan_shows_the_cost() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        &countries.url(),
        Some("{ countries = 250, \"Country.languages\" = 5 }"),
        "max_fields = 2000\n",
    );
    let path = write_project(dir.path(), &config, &[WIDE]);
    let config = Config::load(&path).unwrap();
    joinery::project::build(&config, true).await.unwrap();
    let gateway = joinery::project::gateway(&config).await.unwrap();
    let plan = gateway.registry.find_operation("Wide").unwrap();
    // countries_countries once, code and languages per country, name per language.
    let json = plan.to_json();
    assert_eq!(json["cost"]["depth"], 3);
    assert_eq!(json["cost"]["upstreamRequests"], 1);
    assert_eq!(json["cost"]["fields"], 1 + 250 + 250 + 250 * 5);
    assert_eq!(
        json["cost"]["lists"][1],
        serde_json::json!({ "path": "countries_countries[].languages", "size": 5, "from": "list_sizes" })
    );
    let text = plan.to_string();
    assert!(
        text.contains("cost: depth 3, 1 upstream request(s), at most 1751 field(s) resolved\n  countries_countries counted as 250 item(s) (list_sizes)\n"),
        "{text}"
    );
}

#[tokio::test]
async fn list_size_hints_naming_no_list_are_refused_where_written() {
    let countries = joinery_tests::start_countries("127.0.0.1:0").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(
        &countries.url(),
        Some("{ countrys = 250, \"Country.name\" = 5 }"),
        "",
    );
    let err = build_errors(dir.path(), &config, &[WIDE]).await;
    let (line, column) = position_of(&config, "countrys");
    assert!(
        err.contains(&format!("joinery.toml:{line}:{column}: `list_sizes` of upstream `countries` names `countrys`, which is not one of its root query fields")),
        "{err}"
    );
    let (line, column) = position_of(&config, "\"Country.name\"");
    assert!(
        err.contains(&format!("joinery.toml:{line}:{column}: `list_sizes` of upstream `countries` names `Country.name`, which is not a list (it is `String!`)")),
        "{err}"
    );
}

/// `@listSize` in an upstream's SDL file sizes its lists: a slicing argument's value, else
/// the assumed size.
#[tokio::test]
async fn list_size_directives_of_schema_files_size_lists() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("shop.graphql"),
        r#"directive @listSize(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!], requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION
type Query { products(first: Int): [Product!]! @listSize(slicingArguments: ["first"], assumedSize: 100) }
type Product { name: String! }
"#,
    )
    .unwrap();
    let config = "[upstreams.shop]\nurl = \"http://127.0.0.1:9/graphql\"\nschema_file = \"shop.graphql\"\n[operations.budget]\nmax_fields = 50\n";
    let err = build_errors(
        dir.path(),
        config,
        &[
            (
                "first.graphql",
                "query First { shop_products(first: 49) { name } }\n",
            ),
            (
                "any.graphql",
                "query Any($n: Int) { shop_products(first: $n) { name } }\n",
            ),
        ],
    )
    .await;
    assert!(
        err.starts_with("operations/any.graphql:1:1: operation `Any` may resolve 101 fields, above the budget of 50"),
        "{err}"
    );
    assert!(
        err.ends_with("1 problem(s) found; nothing was written"),
        "{err}"
    );
}
