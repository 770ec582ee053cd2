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
use serde::Deserialize;
use serde_json::value::RawValue;
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

    /// `GET base_url + path`: the body of a 2xx answer.
    fn get(&self, path: &str) -> Result<Vec<u8>, FieldError> {
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
        Ok(response.body)
    }
}

/// The products of a REST answer, each kept as the JSON text it was sent as (answers are
/// that text again: nothing is parsed into a tree, copied and written back), with the few
/// members this adapter reads. An answer that is JSON but not a list has no products.
fn products(body: &[u8]) -> Result<Vec<Product<'_>>, FieldError> {
    match serde_json::from_slice::<Vec<&RawValue>>(body) {
        Ok(items) => Ok(items.into_iter().filter_map(Product::read).collect()),
        Err(_) => match serde_json::from_slice::<&RawValue>(body) {
            Ok(_) => Ok(Vec::new()),
            Err(e) => Err(error(
                format!("the products API answered something that is not JSON: {e}"),
                "REST_BAD_RESPONSE",
            )),
        },
    }
}

/// One product of a REST answer.
struct Product<'a> {
    json: &'a RawValue,
    keys: Keys,
}

/// What this adapter reads of a product; the rest stays in its JSON text.
#[derive(Deserialize)]
struct Keys {
    id: Option<Value>,
    country: Option<Value>,
    #[serde(rename = "priceCents")]
    price_cents: Option<Value>,
}

impl<'a> Product<'a> {
    /// `None` for an item that is not an object (it is no product).
    fn read(json: &'a RawValue) -> Option<Self> {
        let keys = serde_json::from_str(json.get()).ok()?;
        Some(Product { json, keys })
    }
}

/// A JSON list of `items`' texts.
fn list<'a>(items: impl IntoIterator<Item = &'a RawValue>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item.get());
    }
    out.push(']');
    out
}

fn as_id(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The ids, then the countries, that `roots` look up: each becomes one REST call.
fn wanted(roots: &[(&Field, Value)]) -> (Vec<String>, Vec<String>) {
    let (mut ids, mut countries) = (Vec::new(), Vec::new());
    for (field, args) in roots {
        match field.name.as_str() {
            "product" => ids.push(arg(args, "id")),
            "productsByIds" => ids.extend(listed(args)),
            "productsIn" => countries.push(arg(args, "country")),
            _ => {}
        }
    }
    for keys in [&mut ids, &mut countries] {
        keys.sort();
        keys.dedup();
    }
    (ids, countries)
}

fn arg(args: &Value, name: &str) -> String {
    args.get(name).map(as_id).unwrap_or_default()
}

fn listed(args: &Value) -> Vec<String> {
    args.get("ids")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().map(as_id).collect())
        .unwrap_or_default()
}

impl Guest for RestResolver {
    fn schema() -> String {
        SCHEMA.into()
    }

    fn resolve(request: Request) -> Vec<Result<String, FieldError>> {
        // Each root field with its arguments, parsed once.
        let roots: Vec<(&Field, Value)> = request
            .fields
            .iter()
            .filter(|f| f.parent.is_none())
            .map(|f| (f, serde_json::from_str(&f.arguments).unwrap_or(Value::Null)))
            .collect();
        let api = match Api::configured() {
            Ok(api) => api,
            Err(e) => return roots.iter().map(|_| Err(e.clone())).collect(),
        };
        let (ids, countries) = wanted(&roots);
        let by_id = (!ids.is_empty()).then(|| api.get(&format!("/products?ids={}", ids.join(","))));
        let by_country = (!countries.is_empty())
            .then(|| api.get(&format!("/products?country={}", countries.join(","))));
        // The products of each answer, keyed (the answers' bodies outlive them).
        let by_id = by_id.as_ref().map(|body| {
            let found = products(body.as_ref().map_err(Clone::clone)?)?;
            Ok::<HashMap<String, &RawValue>, FieldError>(
                found
                    .into_iter()
                    .filter_map(|p| Some((as_id(p.keys.id.as_ref()?), p.json)))
                    .collect(),
            )
        });
        let by_country = by_country.as_ref().map(|body| {
            let mut grouped: HashMap<String, Vec<&RawValue>> = HashMap::new();
            for p in products(body.as_ref().map_err(Clone::clone)?)? {
                if let Some(c) = p.keys.country.as_ref().and_then(Value::as_str) {
                    grouped.entry(c.to_string()).or_default().push(p.json);
                }
            }
            Ok::<_, FieldError>(grouped)
        });
        roots
            .iter()
            .map(|(f, args)| match f.name.as_str() {
                "product" => match by_id.as_ref().expect("fetched above") {
                    Ok(found) => Ok(found
                        .get(&arg(args, "id"))
                        .map_or_else(|| "null".to_string(), |p| p.get().to_string())),
                    Err(e) => Err(e.clone()),
                },
                "productsByIds" => match by_id.as_ref().expect("fetched above") {
                    Ok(found) => Ok(list(
                        listed(args).iter().filter_map(|id| found.get(id).copied()),
                    )),
                    Err(e) => Err(e.clone()),
                },
                "productsIn" => match by_country.as_ref().expect("fetched above") {
                    Ok(found) => Ok(list(
                        found
                            .get(&arg(args, "country"))
                            .into_iter()
                            .flatten()
                            .copied(),
                    )),
                    Err(e) => Err(e.clone()),
                },
                "products" => {
                    let limit = args.get("limit").and_then(Value::as_u64).unwrap_or(10);
                    let body = api.get("/products")?;
                    let mut all = products(&body)?;
                    all.sort_by_key(|p| p.keys.price_cents.as_ref().and_then(Value::as_u64));
                    all.truncate(limit as usize);
                    Ok(list(all.iter().map(|p| p.json)))
                }
                other => Err(error(
                    format!("this adapter has no field `{other}`"),
                    "ADAPTER_UNKNOWN_FIELD",
                )),
            })
            .collect()
    }
}

export!(RestResolver);
