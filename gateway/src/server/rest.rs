//! Persisted operations as REST endpoints, for clients that do not speak GraphQL:
//! `GET /operations/<Name>?var=…` runs a query with variables from the query string, typed by
//! the operation's variable definitions; `POST /operations/<Name>` runs any operation with a
//! JSON object of variables as its body. Both answer exactly as `/graphql` does. The OpenAPI
//! 3.1 document of every endpoint is served at `/operations/openapi.json`.

use std::time::Instant;

use apollo_compiler::ast::Type;
use apollo_compiler::executable::OperationType;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::Schema;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use super::response::{self, MediaType};
use super::{Gateway, GraphQLRequest};
use crate::error_code::ErrorCode;
use crate::execute;
use crate::pipeline::RequestError;
use crate::plan::Plan;

/// Where the endpoints live.
const PREFIX: &str = "/operations/";

impl Gateway {
    /// Answers `GET` or `POST /operations/<Name>`.
    pub(super) async fn rest(
        &self,
        req: Request<Incoming>,
        started: Instant,
    ) -> Response<Full<Bytes>> {
        let media = MediaType::negotiate(req.headers());
        let mut operation = None;
        let result = match media {
            Ok(_) => self.rest_inner(req, &mut operation).await,
            Err(_) => Ok(execute::Response::default()),
        };
        self.respond(media, operation, result, started)
    }

    async fn rest_inner(
        &self,
        req: Request<Incoming>,
        operation: &mut Option<String>,
    ) -> Result<execute::Response, RequestError> {
        let (parts, body) = req.into_parts();
        let name = parts.uri.path()[PREFIX.len()..].to_string();
        let Some((hash, plan)) = self.registry.find_named(&name) else {
            return Err(RequestError::new(
                ErrorCode::OperationNotFound,
                format!("no registered operation is named `{name}` (the list: /operations/openapi.json)"),
            )
            .with_status(StatusCode::NOT_FOUND));
        };
        let variables = match parts.method {
            Method::GET => {
                query_variables(&self.registry.supergraph.schema, plan, parts.uri.query())?
            }
            Method::POST => {
                let body = self.json_body(&parts, body).await?;
                if body.iter().all(u8::is_ascii_whitespace) {
                    Value::Object(Map::new())
                } else {
                    serde_json::from_slice(&body).map_err(|e| {
                        RequestError::bad_request(format!(
                            "the request body is not a JSON object of variables: {e}"
                        ))
                    })?
                }
            }
            other => {
                return Err(RequestError::new(
                    ErrorCode::MethodNotAllowed,
                    format!("method {other} is not allowed: use GET (queries) or POST"),
                )
                .with_status(StatusCode::METHOD_NOT_ALLOWED))
            }
        };
        let request = GraphQLRequest {
            document_id: Some(format!("sha256:{hash}")),
            operation_name: Some(name),
            variables: Some(serde_json::from_value(variables).expect("JSON converts")),
            ..GraphQLRequest::default()
        };
        self.pipeline()
            .run(&parts.method, parts.headers, request, operation)
            .await
    }
}

/// The variables of a `GET` request: each query parameter names a variable; a list variable
/// takes the parameter once per item; an input object is written as JSON.
fn query_variables(
    schema: &Schema,
    plan: &Plan,
    query: Option<&str>,
) -> Result<Value, RequestError> {
    let invalid = |m: String| RequestError::new(ErrorCode::InvalidVariables, m).quoting_values();
    let mut given: Vec<(String, Vec<String>)> = Vec::new();
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match given.iter_mut().find(|(k, _)| *k == *key) {
            Some((_, values)) => values.push(value.into_owned()),
            None => given.push((key.into_owned(), vec![value.into_owned()])),
        }
    }
    let mut variables = Map::new();
    for (name, values) in given {
        let Some(definition) = plan
            .client_operation
            .variables
            .iter()
            .find(|v| v.name == name.as_str())
        else {
            return Err(invalid(format!(
                "query parameter `{name}` is not a variable of operation `{}`",
                plan.name.as_deref().unwrap_or("")
            )));
        };
        let ty = &definition.ty;
        let value = if ty.is_list() {
            let item = ty.item_type();
            let items = values
                .iter()
                .map(|text| typed(schema, item, text, &name))
                .collect::<Result<Vec<_>, _>>()?;
            Value::Array(items)
        } else {
            let [text] = &values[..] else {
                return Err(invalid(format!(
                    "query parameter `{name}` is given {} times, but `${name}` is not a list",
                    values.len()
                )));
            };
            typed(schema, ty, text, &name)?
        };
        variables.insert(name, value);
    }
    Ok(Value::Object(variables))
}

/// One query parameter's text as a value of `ty` (a named type, or a list written as JSON).
fn typed(schema: &Schema, ty: &Type, text: &str, name: &str) -> Result<Value, RequestError> {
    let invalid = |what: &str| {
        RequestError::new(
            ErrorCode::InvalidVariables,
            format!("query parameter `{name}` must be {what}, not {text:?}"),
        )
        .quoting_values()
    };
    if ty.is_list() {
        return serde_json::from_str(text).map_err(|_| invalid("a JSON list"));
    }
    Ok(match ty.inner_named_type().as_str() {
        "Int" => text
            .parse::<i32>()
            .map(Value::from)
            .map_err(|_| invalid("an Int"))?,
        "Float" => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .ok_or_else(|| invalid("a Float"))?,
        "Boolean" => match text {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => return Err(invalid("true or false")),
        },
        other => match schema.types.get(other) {
            Some(ExtendedType::InputObject(_)) => {
                serde_json::from_str(text).map_err(|_| invalid("a JSON object"))?
            }
            // Strings, IDs, enum values and custom scalars are taken as written.
            _ => Value::String(text.to_string()),
        },
    })
}

/// `GET /operations/openapi.json`.
pub(super) fn openapi(gateway: &Gateway) -> Response<Full<Bytes>> {
    response::json_response(StatusCode::OK, MediaType::Json, &document(gateway))
}

/// The OpenAPI 3.1 document of every named operation's endpoints.
fn document(gateway: &Gateway) -> Value {
    let schema = &gateway.registry.supergraph.schema;
    let mut components = Map::new();
    components.insert(
        "GraphQLResponse".into(),
        json!({
            "type": "object",
            "description": "The operation's GraphQL response, as /graphql answers it.",
            "properties": {
                "data": { "type": ["object", "null"] },
                "errors": { "type": "array", "items": { "$ref": "#/components/schemas/GraphQLError" } },
                "extensions": { "type": "object" }
            }
        }),
    );
    components.insert(
        "GraphQLError".into(),
        json!({
            "type": "object",
            "required": ["message"],
            "properties": {
                "message": { "type": "string" },
                "path": { "type": "array", "items": { "type": ["string", "integer"] } },
                "extensions": {
                    "type": "object",
                    "properties": { "code": { "type": "string" } }
                }
            }
        }),
    );
    let mut operations: Vec<(&str, &Plan)> = gateway
        .registry
        .named_operations()
        .map(|(name, plan)| (name, &**plan))
        .collect();
    operations.sort_by_key(|(name, _)| *name);
    let mut paths = Map::new();
    for (name, plan) in operations {
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut parameters = Vec::new();
        for variable in &plan.client_operation.variables {
            let ty = &variable.ty;
            let value_schema = schema_of(schema, ty, &mut components);
            let needed = ty.is_non_null() && variable.default_value.is_none();
            if needed {
                required.push(Value::from(variable.name.as_str()));
            }
            properties.insert(variable.name.to_string(), value_schema.clone());
            // Input objects (or lists of them) travel as JSON in their parameter.
            let complex = matches!(
                schema.types.get(ty.inner_named_type().as_str()),
                Some(ExtendedType::InputObject(_))
            ) || ty.item_type().is_list();
            let mut parameter =
                json!({ "name": variable.name.as_str(), "in": "query", "required": needed });
            if complex {
                parameter["content"] = json!({ "application/json": { "schema": value_schema } });
            } else {
                parameter["schema"] = value_schema;
            }
            parameters.push(parameter);
        }
        let responses = json!({
            "200": {
                "description": "The GraphQL response: `data`, and `errors` for the fields that failed.",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/GraphQLResponse" } } }
            },
            "default": {
                "description": "A refused request (unknown operation, invalid variables, a policy's denial…): `errors` only, with `extensions.code`.",
                "content": { "application/json": { "schema": { "$ref": "#/components/schemas/GraphQLResponse" } } }
            }
        });
        let description = format!("```graphql\n{}\n```", plan.document.serialize().no_indent());
        let kind = match plan.kind {
            OperationType::Mutation => "mutation",
            _ => "query",
        };
        let mut item = Map::new();
        if plan.kind != OperationType::Mutation {
            item.insert(
                "get".into(),
                json!({
                    "operationId": name,
                    "summary": format!("Runs the persisted {kind} `{name}`"),
                    "description": description,
                    "parameters": parameters,
                    "responses": responses,
                }),
            );
        }
        item.insert(
            "post".into(),
            json!({
                "operationId": format!("{name}_post"),
                "summary": format!("Runs the persisted {kind} `{name}`"),
                "description": description,
                "requestBody": {
                    "required": !required.is_empty(),
                    "content": { "application/json": { "schema": {
                        "type": "object",
                        "properties": properties,
                        "required": required,
                        "additionalProperties": false
                    } } }
                },
                "responses": responses,
            }),
        );
        paths.insert(format!("{PREFIX}{name}"), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Joinery persisted operations",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Each registered operation as an endpoint: GET with variables as query parameters (queries), POST with a JSON object of variables. Answers are GraphQL responses, as /graphql gives them."
        },
        "paths": paths,
        "components": { "schemas": components }
    })
}

/// The JSON Schema of a GraphQL input type; input objects go to `components` (once, so that
/// recursive ones end).
fn schema_of(schema: &Schema, ty: &Type, components: &mut Map<String, Value>) -> Value {
    let inner = if ty.is_list() {
        json!({ "type": "array", "items": schema_of(schema, ty.item_type(), components) })
    } else {
        named_schema(schema, ty.inner_named_type().as_str(), components)
    };
    if ty.is_non_null() {
        inner
    } else {
        json!({ "anyOf": [inner, { "type": "null" }] })
    }
}

fn named_schema(schema: &Schema, name: &str, components: &mut Map<String, Value>) -> Value {
    match name {
        "Int" => return json!({ "type": "integer", "format": "int32" }),
        "Float" => return json!({ "type": "number" }),
        "Boolean" => return json!({ "type": "boolean" }),
        "String" | "ID" => return json!({ "type": "string" }),
        _ => {}
    }
    match schema.types.get(name) {
        Some(ExtendedType::Enum(e)) => json!({
            "type": "string",
            "enum": e.values.keys().map(|v| v.as_str()).collect::<Vec<_>>(),
        }),
        Some(ExtendedType::InputObject(input)) => {
            if !components.contains_key(name) {
                // Claimed before its fields are described: a field of its own type refers back.
                components.insert(name.to_string(), Value::Null);
                let mut properties = Map::new();
                let mut required = Vec::new();
                for (field, definition) in &input.fields {
                    properties.insert(
                        field.to_string(),
                        schema_of(schema, &definition.ty, components),
                    );
                    if definition.ty.is_non_null() && definition.default_value.is_none() {
                        required.push(Value::from(field.as_str()));
                    }
                }
                components.insert(
                    name.to_string(),
                    json!({
                        "type": "object",
                        "properties": properties,
                        "required": required,
                        "additionalProperties": false
                    }),
                );
            }
            json!({ "$ref": format!("#/components/schemas/{name}") })
        }
        // A custom scalar: whatever its upstream accepts.
        _ => json!({ "description": format!("the custom scalar `{name}`") }),
    }
}
