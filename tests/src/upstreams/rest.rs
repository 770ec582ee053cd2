//! A REST/JSON API (not GraphQL), for resolver plugins that adapt one:
//!
//! - `GET /products/{id}` → one product, or 404;
//! - `GET /products?ids=1,2` → the products with those ids that exist, in that order;
//! - `GET /products?country=FR,DE` → the products made in those countries;
//! - `GET /books` → every book; `GET /books/{id}` → one book, or 404.
//!
//! Each request is recorded as `{"method", "uri"}` with its headers, and faults apply as for
//! the GraphQL upstreams.

use std::io;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use super::server::{self, json_response, text, Handler, HttpResponse, Shared};
use super::Upstream;

/// (id, name, price in cents, country code)
const PRODUCTS: &[(&str, &str, u32, &str)] = &[
    ("1", "Espresso cup", 1200, "IT"),
    ("2", "Cast-iron pan", 4500, "FR"),
    ("3", "Chef's knife", 8900, "JP"),
    ("4", "Tea kettle", 3900, "JP"),
    ("5", "Bread knife", 2900, "DE"),
    ("6", "Copper pot", 12900, "FR"),
];

fn product(p: &(&str, &str, u32, &str)) -> Value {
    // More than the adapter's schema selects: the gateway keeps only the selection.
    json!({ "id": p.0, "name": p.1, "priceCents": p.2, "country": p.3, "sku": format!("SKU-{}", p.0) })
}

/// (id, title, author)
const BOOKS: &[(&str, &str, &str)] = &[
    ("1", "Dune", "Frank Herbert"),
    ("2", "The Left Hand of Darkness", "Ursula K. Le Guin"),
    ("3", "Solaris", "Stanisław Lem"),
];

fn book(b: &(&str, &str, &str)) -> Value {
    json!({ "id": b.0, "title": b.1, "author": b.2, "isbn": format!("ISBN-{}", b.0) })
}

fn not_found(path: &str) -> HttpResponse {
    json_response(
        StatusCode::NOT_FOUND,
        json!({ "error": format!("nothing at {path}") })
            .to_string()
            .into(),
    )
}

#[derive(Clone)]
struct Rest;

impl Handler for Rest {
    async fn handle(
        self,
        request: Request<Incoming>,
        shared: Arc<Mutex<Shared>>,
    ) -> io::Result<HttpResponse> {
        let (parts, _) = request.into_parts();
        let recorded = json!({ "method": parts.method.as_str(), "uri": parts.uri.to_string() });
        if let Err(answer) = server::record(&shared, recorded, parts.headers).await {
            return answer;
        }
        if parts.method != Method::GET {
            return Ok(text(StatusCode::METHOD_NOT_ALLOWED, "use GET".into()));
        }
        let path = parts.uri.path();
        let query: Vec<(String, String)> = parts
            .uri
            .query()
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect()
            })
            .unwrap_or_default();
        let list = |key: &str| -> Option<Vec<String>> {
            query
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.split(',').map(str::to_string).collect())
        };
        let body = if path == "/books" {
            Value::from(BOOKS.iter().map(book).collect::<Vec<_>>())
        } else if let Some(id) = path.strip_prefix("/books/") {
            match BOOKS.iter().find(|b| b.0 == id) {
                Some(b) => book(b),
                None => return Ok(not_found(path)),
            }
        } else if path == "/products" {
            if let Some(ids) = list("ids") {
                let found: Vec<Value> = ids
                    .iter()
                    .filter_map(|id| PRODUCTS.iter().find(|p| p.0 == id))
                    .map(product)
                    .collect();
                Value::from(found)
            } else if let Some(countries) = list("country") {
                let found: Vec<Value> = PRODUCTS
                    .iter()
                    .filter(|p| countries.iter().any(|c| c == p.3))
                    .map(product)
                    .collect();
                Value::from(found)
            } else {
                Value::from(PRODUCTS.iter().map(product).collect::<Vec<_>>())
            }
        } else if let Some(id) = path.strip_prefix("/products/") {
            match PRODUCTS.iter().find(|p| p.0 == id) {
                Some(p) => product(p),
                None => return Ok(not_found(path)),
            }
        } else {
            return Ok(text(StatusCode::NOT_FOUND, "not found".into()));
        };
        Ok(json_response(StatusCode::OK, body.to_string().into()))
    }
}

/// Starts the REST API on `addr` (e.g. `127.0.0.1:0`); its base URL is `http://<addr>`.
pub async fn start_rest(addr: &str) -> io::Result<Upstream> {
    server::start_with(addr, Rest).await
}
