//! A resolver plugin that adapts a REST/JSON products API into a GraphQL namespace.
//!
//! Configuration (`[plugins.<name>.config]`):
//! - `base_url` (required): the API's base URL, e.g. `"http://127.0.0.1:9000"`; its host must
//!   be in the plugin's `allowed_hosts`;
//! - `api_key_secret` (optional): the name of a granted secret sent as `x-api-key`.
//!
//! All the `product(id:)` and `productsByIds(ids:)` fields of one request (a batched `_join`
//! asks for many) become one `GET /products?ids=...`, and all the `productsIn(country:)` fields
//! one `GET /products?country=...`: one REST call per kind of field, whatever the batch size.

wit_bindgen::generate!({ world: "resolver-plugin", path: "../../wit" });

use std::collections::HashMap;

use exports::joinery::plugin::resolver::{Field, FieldError, Guest, Request};
use joinery::plugin::outbound_http::{self, Error as HttpError};
use joinery::plugin::{config, log};
use serde_json::Value;

const SCHEMA: &str = r#""A product of the catalogue."
type Product {
  id: ID!
  name: String!
  "Price in euro cents."
  priceCents: Int!
  "ISO 3166 code of the country it is made in."
  country: String!
}

type Query {
  "One product by id; null when there is none."
  product(id: ID!): Product
  "The products with these ids that exist, in any order (the batch form of `product`)."
  productsByIds(ids: [ID!]!): [Product!]!
  "The products made in one country."
  productsIn(country: String!): [Product!]!
  "Every product, cheapest first, at most `limit`."
  products(limit: Int = 10): [Product!]!
}
"#;

struct RestResolver;

/// Where the API is and how to call it.
struct Api {
    base_url: String,
    headers: Vec<(String, String)>,
}

fn error(message: String, code: &str) -> FieldError {
    FieldError {
        message,
        code: Some(code.into()),
        path: vec![],
    }
}

impl Api {
    /// The API as configured, read on an instance's first call and kept: config and secrets
    /// do not change while an instance lives, and reading them costs two host calls and a
    /// JSON parse.
    fn configured() -> &'static Result<Self, FieldError> {
        static API: std::sync::OnceLock<Result<Api, FieldError>> = std::sync::OnceLock::new();
        API.get_or_init(Api::from_config)
    }

    fn from_config() -> Result<Self, FieldError> {
        let settings: Value = serde_json::from_str(&config::get()).unwrap_or(Value::Null);
        let base_url = settings
            .get("base_url")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                error(
                    "the plugin's config has no `base_url`".into(),
                    "ADAPTER_MISCONFIGURED",
                )
            })?
            .trim_end_matches('/')
            .to_string();
        let mut headers = vec![("accept".to_string(), "application/json".to_string())];
        if let Some(name) = settings.get("api_key_secret").and_then(Value::as_str) {
            match config::secret(name) {
                Some(key) => headers.push(("x-api-key".into(), key)),
                None => {
                    return Err(error(
                        format!("the secret `{name}` is not granted or not set"),
                        "ADAPTER_MISCONFIGURED",
                    ))
                }
            }
        }
        Ok(Api { base_url, headers })
    }

    /// `GET base_url + path`, as JSON.
    fn get(&self, path: &str) -> Result<Value, FieldError> {
        let request = outbound_http::Request {
            method: "GET".into(),
            url: format!("{}{path}", self.base_url),
            headers: self.headers.clone(),
            body: vec![],
        };
        let response = outbound_http::send(&request).map_err(|e| match e {
            HttpError::HostNotAllowed(m) => error(
                format!("the products API may not be called: {m}"),
                "REST_REFUSED",
            ),
            HttpError::InvalidUrl(m) => error(format!("bad products API URL: {m}"), "REST_REFUSED"),
            HttpError::Transport(m) => error(
                format!("the products API is unavailable: {m}"),
                "REST_UNAVAILABLE",
            ),
        })?;
        if !(200..300).contains(&response.status) {
            log::write(
                log::Level::Warn,
                &format!("GET {path} answered HTTP {}", response.status),
            );
            return Err(error(
                format!(
                    "the products API answered HTTP {} to GET {path}",
                    response.status
                ),
                "REST_STATUS",
            ));
        }
        serde_json::from_slice(&response.body).map_err(|e| {
            error(
                format!("the products API answered something that is not JSON: {e}"),
                "REST_BAD_RESPONSE",
            )
        })
    }
}

fn argument(field: &Field, name: &str) -> Option<Value> {
    let args: Value = serde_json::from_str(&field.arguments).ok()?;
    args.get(name).cloned()
}

fn as_id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Fetches the products with `ids` in one call, by id.
fn products_by_id(api: &Api, ids: &[String]) -> Result<HashMap<String, Value>, FieldError> {
    let mut unique: Vec<&String> = ids.iter().collect();
    unique.sort();
    unique.dedup();
    let list: Vec<&str> = unique.iter().map(|s| s.as_str()).collect();
    let found = api.get(&format!("/products?ids={}", list.join(",")))?;
    Ok(found
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((as_id(p.get("id")?), p.clone())))
        .collect())
}

/// Fetches the products of `countries` in one call, grouped by country.
fn products_by_country(
    api: &Api,
    countries: &[String],
) -> Result<HashMap<String, Vec<Value>>, FieldError> {
    let mut unique: Vec<&String> = countries.iter().collect();
    unique.sort();
    unique.dedup();
    let list: Vec<&str> = unique.iter().map(|s| s.as_str()).collect();
    let found = api.get(&format!("/products?country={}", list.join(",")))?;
    let mut grouped: HashMap<String, Vec<Value>> = HashMap::new();
    for p in found.as_array().into_iter().flatten() {
        if let Some(c) = p.get("country").and_then(Value::as_str) {
            grouped.entry(c.to_string()).or_default().push(p.clone());
        }
    }
    Ok(grouped)
}

impl Guest for RestResolver {
    fn schema() -> String {
        SCHEMA.into()
    }

    fn resolve(request: Request) -> Vec<Result<String, FieldError>> {
        let roots: Vec<&Field> = request
            .fields
            .iter()
            .filter(|f| f.parent.is_none())
            .collect();
        let api = match Api::configured() {
            Ok(api) => api,
            Err(e) => return roots.iter().map(|_| Err(e.clone())).collect(),
        };
        let arg = |f: &Field, name: &str| argument(f, name).map(|v| as_id(&v)).unwrap_or_default();
        let listed = |f: &Field| -> Vec<String> {
            argument(f, "ids")
                .and_then(|v| v.as_array().map(|ids| ids.iter().map(as_id).collect()))
                .unwrap_or_default()
        };
        let ids: Vec<String> = roots
            .iter()
            .flat_map(|f| match f.name.as_str() {
                "product" => vec![arg(f, "id")],
                "productsByIds" => listed(f),
                _ => Vec::new(),
            })
            .collect();
        let countries: Vec<String> = roots
            .iter()
            .filter(|f| f.name == "productsIn")
            .map(|f| arg(f, "country"))
            .collect();
        let by_id = (!ids.is_empty()).then(|| products_by_id(api, &ids));
        let by_country = (!countries.is_empty()).then(|| products_by_country(api, &countries));
        roots
            .iter()
            .map(|f| {
                let value = match f.name.as_str() {
                    "product" => match by_id.as_ref().expect("fetched above") {
                        Ok(found) => found.get(&arg(f, "id")).cloned().unwrap_or(Value::Null),
                        Err(e) => return Err(e.clone()),
                    },
                    "productsByIds" => match by_id.as_ref().expect("fetched above") {
                        Ok(found) => Value::from(
                            listed(f)
                                .iter()
                                .filter_map(|id| found.get(id).cloned())
                                .collect::<Vec<_>>(),
                        ),
                        Err(e) => return Err(e.clone()),
                    },
                    "productsIn" => match by_country.as_ref().expect("fetched above") {
                        Ok(found) => {
                            Value::from(found.get(&arg(f, "country")).cloned().unwrap_or_default())
                        }
                        Err(e) => return Err(e.clone()),
                    },
                    "products" => {
                        let limit = argument(f, "limit").and_then(|v| v.as_u64()).unwrap_or(10);
                        let mut all = api
                            .get("/products")?
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        all.sort_by_key(|p| p.get("priceCents").and_then(Value::as_u64));
                        all.truncate(limit as usize);
                        Value::from(all)
                    }
                    other => {
                        return Err(error(
                            format!("this adapter has no field `{other}`"),
                            "ADAPTER_UNKNOWN_FIELD",
                        ))
                    }
                };
                Ok(value.to_string())
            })
            .collect()
    }
}

export!(RestResolver);
