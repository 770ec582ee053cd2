//! A resolver plugin for Joinery: an upstream written in WebAssembly. It gives its schema
//! (without namespace: the gateway adds the upstream's) and resolves the root fields of each
//! request the gateway sends it, typically by calling a REST API through `outbound-http`.
//!
//! Build: `cargo build --release --target wasm32-wasip2` (once: `rustup target add
//! wasm32-wasip2`); the component is `target/wasm32-wasip2/release/my_plugin.wasm`.

wit_bindgen::generate!({ world: "resolver-plugin", path: "wit" });

use exports::joinery::plugin::resolver::{Field, FieldError, Guest, Request};

const SCHEMA: &str = r#"
type Query {
  "A greeting for `name`."
  hello(name: String! = "world"): String!
}
"#;

struct Plugin;

impl Guest for Plugin {
    fn schema() -> String {
        SCHEMA.into()
    }

    /// One result per root field, in order: the field's value as JSON text, or an error.
    /// `fields` lists every selected field; those with `parent: None` are the root fields.
    fn resolve(request: Request) -> Vec<Result<String, FieldError>> {
        request
            .fields
            .iter()
            .filter(|f| f.parent.is_none())
            .map(resolve_root)
            .collect()
    }
}

fn resolve_root(field: &Field) -> Result<String, FieldError> {
    let error = |message: String| FieldError {
        message,
        code: Some("BAD_REQUEST".into()),
        path: vec![],
    };
    // Arguments come as a JSON object, defaults applied.
    let arguments: serde_json::Value =
        serde_json::from_str(&field.arguments).map_err(|e| error(e.to_string()))?;
    match field.name.as_str() {
        "hello" => {
            let name = arguments["name"].as_str().unwrap_or("world");
            Ok(serde_json::Value::from(format!("Hello, {name}!")).to_string())
        }
        other => Err(error(format!("no field `{other}`"))),
    }
}

export!(Plugin);
