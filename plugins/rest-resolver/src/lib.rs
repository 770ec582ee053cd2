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

use std::borrow::Cow;
use std::cell::RefCell;
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

    /// `GET base_url + path`, where `path` appends the path to the URL it is given: the body
    /// of a 2xx answer.
    fn get(&self, path: impl FnOnce(&mut String)) -> Result<Vec<u8>, FieldError> {
        thread_local! {
            /// The request record, kept from call to call: only its URL changes, so its method,
            /// headers and URL buffer are not allocated again for every call.
            static REQUEST: RefCell<Option<outbound_http::Request>> = const { RefCell::new(None) };
        }
        REQUEST.with_borrow_mut(|kept| {
            let request = kept.get_or_insert_with(|| outbound_http::Request {
                method: "GET".into(),
                url: String::new(),
                headers: self.headers.clone(),
                body: vec![],
                // Only the status and body are read.
                response_headers: vec![],
            });
            request.url.clear();
            request.url.push_str(&self.base_url);
            path(&mut request.url);
            let response = outbound_http::send(request);
            let path = &request.url[self.base_url.len()..];
            let response = response.map_err(|e| match e {
                HttpError::HostNotAllowed(m) => error(
                    format!("the products API may not be called: {m}"),
                    "REST_REFUSED",
                ),
                HttpError::InvalidUrl(m) => {
                    error(format!("bad products API URL: {m}"), "REST_REFUSED")
                }
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
        })
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
    keys: Keys<'a>,
}

/// What this adapter reads of a product, borrowed from its JSON text (the rest stays there).
#[derive(Deserialize)]
struct Keys<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    country: Option<&'a RawValue>,
    #[serde(borrow, rename = "priceCents")]
    price_cents: Option<&'a RawValue>,
}

impl<'a> Product<'a> {
    /// `None` for an item that is not an object (it is no product).
    fn read(json: &'a RawValue) -> Option<Self> {
        let keys = serde_json::from_str(json.get()).ok()?;
        Some(Product { json, keys })
    }

    fn price_cents(&self) -> Option<u64> {
        self.keys.price_cents?.get().parse().ok()
    }
}

/// The arguments this adapter reads of a root field, borrowed from their JSON text; each is
/// read when used, so that one of an unexpected shape does not hide the others.
#[derive(Deserialize, Default)]
struct Args<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    #[serde(borrow)]
    ids: Option<&'a RawValue>,
    #[serde(borrow)]
    country: Option<&'a RawValue>,
    #[serde(borrow)]
    limit: Option<&'a RawValue>,
}

impl<'a> Args<'a> {
    fn read(json: &'a str) -> Self {
        serde_json::from_str(json).unwrap_or_default()
    }

    fn id(&self) -> Cow<'a, str> {
        self.id.map(key).unwrap_or_default()
    }

    fn ids(&self) -> Vec<Cow<'a, str>> {
        self.ids
            .and_then(|ids| serde_json::from_str::<Vec<&RawValue>>(ids.get()).ok())
            .map(|ids| ids.into_iter().map(key).collect())
            .unwrap_or_default()
    }

    fn country(&self) -> Cow<'a, str> {
        self.country.map(key).unwrap_or_default()
    }

    fn limit(&self) -> u64 {
        self.limit.and_then(|l| l.get().parse().ok()).unwrap_or(10)
    }
}

/// A value as a lookup key: a string's content, any other value's JSON text (an id may be
/// sent as a number).
fn key(value: &RawValue) -> Cow<'_, str> {
    string(value).unwrap_or(Cow::Borrowed(value.get()))
}

/// A JSON string's content, borrowed unless it has escapes; `None` for any other value.
fn string(value: &RawValue) -> Option<Cow<'_, str>> {
    let text = value.get();
    if !text.starts_with('"') {
        return None;
    }
    match serde_json::from_str::<&str>(text) {
        Ok(plain) => Some(Cow::Borrowed(plain)),
        Err(_) => serde_json::from_str::<String>(text).ok().map(Cow::Owned),
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

/// Appends `keys` to `url`, separated by commas.
fn joined(url: &mut String, keys: &[Cow<'_, str>]) {
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            url.push(',');
        }
        url.push_str(k);
    }
}

/// The ids, then the countries, that `roots` look up: each becomes one REST call.
fn wanted<'a>(roots: &[(&Field, Args<'a>)]) -> (Vec<Cow<'a, str>>, Vec<Cow<'a, str>>) {
    let (mut ids, mut countries) = (Vec::new(), Vec::new());
    for (field, args) in roots {
        match field.name.as_str() {
            "product" => ids.push(args.id()),
            "productsByIds" => ids.extend(args.ids()),
            "productsIn" => countries.push(args.country()),
            _ => {}
        }
    }
    for keys in [&mut ids, &mut countries] {
        keys.sort();
        keys.dedup();
    }
    (ids, countries)
}

impl Guest for RestResolver {
    fn schema() -> String {
        SCHEMA.into()
    }

    fn resolve(request: Request) -> Vec<Result<String, FieldError>> {
        // Each root field with its arguments, read once.
        let roots: Vec<(&Field, Args)> = request
            .fields
            .iter()
            .filter(|f| f.parent.is_none())
            .map(|f| (f, Args::read(&f.arguments)))
            .collect();
        let api = match Api::configured() {
            Ok(api) => api,
            Err(e) => return roots.iter().map(|_| Err(e.clone())).collect(),
        };
        let (ids, countries) = wanted(&roots);
        let by_id = (!ids.is_empty()).then(|| {
            api.get(|url| {
                url.push_str("/products?ids=");
                joined(url, &ids);
            })
        });
        let by_country = (!countries.is_empty()).then(|| {
            api.get(|url| {
                url.push_str("/products?country=");
                joined(url, &countries);
            })
        });
        // The products of each answer, keyed (the answers' bodies outlive them).
        let by_id = by_id.as_ref().map(|body| {
            let found = products(body.as_ref().map_err(Clone::clone)?)?;
            Ok::<HashMap<Cow<str>, &RawValue>, FieldError>(
                found
                    .into_iter()
                    .filter_map(|p| Some((key(p.keys.id?), p.json)))
                    .collect(),
            )
        });
        let by_country = by_country.as_ref().map(|body| {
            let mut grouped: HashMap<Cow<str>, Vec<&RawValue>> = HashMap::new();
            for p in products(body.as_ref().map_err(Clone::clone)?)? {
                if let Some(c) = p.keys.country.and_then(string) {
                    grouped.entry(c).or_default().push(p.json);
                }
            }
            Ok::<_, FieldError>(grouped)
        });
        roots
            .iter()
            .map(|(f, args)| match f.name.as_str() {
                "product" => match by_id.as_ref().expect("fetched above") {
                    Ok(found) => Ok(found
                        .get(args.id().as_ref())
                        .map_or_else(|| "null".to_string(), |p| p.get().to_string())),
                    Err(e) => Err(e.clone()),
                },
                "productsByIds" => match by_id.as_ref().expect("fetched above") {
                    Ok(found) => Ok(list(
                        args.ids()
                            .iter()
                            .filter_map(|id| found.get(id.as_ref()).copied()),
                    )),
                    Err(e) => Err(e.clone()),
                },
                "productsIn" => match by_country.as_ref().expect("fetched above") {
                    Ok(found) => Ok(list(
                        found
                            .get(args.country().as_ref())
                            .into_iter()
                            .flatten()
                            .copied(),
                    )),
                    Err(e) => Err(e.clone()),
                },
                "products" => {
                    let body = api.get(|url| url.push_str("/products"))?;
                    let mut all = products(&body)?;
                    all.sort_by_key(Product::price_cents);
                    all.truncate(args.limit() as usize);
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
