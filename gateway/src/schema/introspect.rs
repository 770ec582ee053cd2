//! Fetching an upstream's schema by introspection and turning the result into SDL.

use std::fmt::Write;

use serde::Deserialize;

/// The introspection query sent to upstreams (no newer-spec fields, so older servers answer it).
pub(crate) const QUERY: &str = r#"query IntrospectionQuery {
  __schema {
    queryType { name }
    mutationType { name }
    subscriptionType { name }
    types { ...FullType }
    directives { name description locations isRepeatable args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description specifiedByURL
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } }
"#;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct IntrospectionSchema {
    query_type: Option<Named>,
    mutation_type: Option<Named>,
    subscription_type: Option<Named>,
    types: Vec<FullType>,
    #[serde(default)]
    directives: Vec<Directive>,
}

#[derive(Deserialize)]
struct Named {
    name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FullType {
    kind: String,
    name: String,
    description: Option<String>,
    #[serde(rename = "specifiedByURL", default)]
    specified_by_url: Option<String>,
    fields: Option<Vec<Field>>,
    input_fields: Option<Vec<InputValue>>,
    interfaces: Option<Vec<TypeRef>>,
    enum_values: Option<Vec<EnumValue>>,
    possible_types: Option<Vec<TypeRef>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Field {
    name: String,
    description: Option<String>,
    #[serde(default)]
    args: Vec<InputValue>,
    #[serde(rename = "type")]
    ty: TypeRef,
    #[serde(default)]
    is_deprecated: bool,
    deprecation_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InputValue {
    name: String,
    description: Option<String>,
    #[serde(rename = "type")]
    ty: TypeRef,
    default_value: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnumValue {
    name: String,
    description: Option<String>,
    #[serde(default)]
    is_deprecated: bool,
    deprecation_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Directive {
    name: String,
    description: Option<String>,
    locations: Vec<String>,
    #[serde(default)]
    is_repeatable: bool,
    #[serde(default)]
    args: Vec<InputValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TypeRef {
    kind: String,
    name: Option<String>,
    of_type: Option<Box<TypeRef>>,
}

const BUILT_IN_DIRECTIVES: &[&str] = &["skip", "include", "deprecated", "specifiedBy", "oneOf"];

impl TypeRef {
    /// The named type inside the list and non-null wrappers.
    fn inner_name(&self) -> Option<&str> {
        match &self.of_type {
            Some(inner) => inner.inner_name(),
            None => self.name.as_deref(),
        }
    }

    fn render(&self, out: &mut String) {
        match (self.kind.as_str(), &self.of_type) {
            ("NON_NULL", Some(inner)) => {
                inner.render(out);
                out.push('!');
            }
            ("LIST", Some(inner)) => {
                out.push('[');
                inner.render(out);
                out.push(']');
            }
            _ => out.push_str(self.name.as_deref().unwrap_or("Unknown")),
        }
    }
}

fn description(out: &mut String, indent: &str, text: &Option<String>) {
    if let Some(text) = text.as_deref().filter(|t| !t.is_empty()) {
        let _ = writeln!(
            out,
            "{indent}\"\"\"{}\"\"\"",
            text.replace("\"\"\"", "\\\"\"\"")
        );
    }
}

fn deprecated(out: &mut String, is: bool, reason: &Option<String>) {
    if is {
        match reason {
            Some(r) => {
                let _ = write!(
                    out,
                    " @deprecated(reason: {})",
                    serde_json::Value::from(r.as_str())
                );
            }
            None => out.push_str(" @deprecated"),
        }
    }
}

fn input_values(out: &mut String, args: &[InputValue], indent: &str, separator: &str) {
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        description(out, indent, &a.description);
        let _ = write!(out, "{indent}{}: ", a.name);
        a.ty.render(out);
        if let Some(d) = &a.default_value {
            let _ = write!(out, " = {d}");
        }
    }
}

impl IntrospectionSchema {
    /// Whether the schema is an Apollo Federation subgraph's: its query type has
    /// `_service: _Service!`.
    pub(crate) fn is_subgraph(&self) -> bool {
        let Some(query) = &self.query_type else {
            return false;
        };
        self.types.iter().any(|t| {
            t.name == query.name
                && t.fields
                    .iter()
                    .flatten()
                    .any(|f| f.name == "_service" && f.ty.inner_name() == Some("_Service"))
        })
    }

    /// Renders the introspection result as SDL (introspection and built-in types left out).
    pub(crate) fn to_sdl(&self) -> String {
        let mut out = String::new();
        let roots = [
            ("query", &self.query_type),
            ("mutation", &self.mutation_type),
            ("subscription", &self.subscription_type),
        ];
        out.push_str("schema {\n");
        for (op, named) in roots {
            if let Some(n) = named {
                let _ = writeln!(out, "  {op}: {}", n.name);
            }
        }
        out.push_str("}\n\n");
        for d in &self.directives {
            if BUILT_IN_DIRECTIVES.contains(&d.name.as_str()) {
                continue;
            }
            description(&mut out, "", &d.description);
            let _ = write!(out, "directive @{}", d.name);
            if !d.args.is_empty() {
                out.push('(');
                input_values(&mut out, &d.args, "", ", ");
                out.push(')');
            }
            if d.is_repeatable {
                out.push_str(" repeatable");
            }
            let _ = writeln!(out, " on {}\n", d.locations.join(" | "));
        }
        for t in &self.types {
            if t.name.starts_with("__")
                || (t.kind == "SCALAR"
                    && matches!(
                        t.name.as_str(),
                        "Int" | "Float" | "String" | "Boolean" | "ID"
                    ))
            {
                continue;
            }
            description(&mut out, "", &t.description);
            match t.kind.as_str() {
                "SCALAR" => {
                    let _ = write!(out, "scalar {}", t.name);
                    if let Some(url) = &t.specified_by_url {
                        let _ = write!(
                            out,
                            " @specifiedBy(url: {})",
                            serde_json::Value::from(url.as_str())
                        );
                    }
                    out.push('\n');
                }
                "OBJECT" | "INTERFACE" => {
                    let keyword = if t.kind == "OBJECT" {
                        "type"
                    } else {
                        "interface"
                    };
                    let _ = write!(out, "{keyword} {}", t.name);
                    let interfaces = t.interfaces.as_deref().unwrap_or_default();
                    for (i, iface) in interfaces.iter().enumerate() {
                        out.push_str(if i == 0 { " implements " } else { " & " });
                        iface.render(&mut out);
                    }
                    out.push_str(" {\n");
                    for f in t.fields.as_deref().unwrap_or_default() {
                        description(&mut out, "  ", &f.description);
                        let _ = write!(out, "  {}", f.name);
                        if !f.args.is_empty() {
                            out.push_str("(\n");
                            input_values(&mut out, &f.args, "    ", "\n");
                            out.push_str("\n  )");
                        }
                        out.push_str(": ");
                        f.ty.render(&mut out);
                        deprecated(&mut out, f.is_deprecated, &f.deprecation_reason);
                        out.push('\n');
                    }
                    out.push_str("}\n");
                }
                "UNION" => {
                    let _ = write!(out, "union {} =", t.name);
                    for (i, m) in t
                        .possible_types
                        .as_deref()
                        .unwrap_or_default()
                        .iter()
                        .enumerate()
                    {
                        out.push_str(if i == 0 { " " } else { " | " });
                        m.render(&mut out);
                    }
                    out.push('\n');
                }
                "ENUM" => {
                    let _ = writeln!(out, "enum {} {{", t.name);
                    for v in t.enum_values.as_deref().unwrap_or_default() {
                        description(&mut out, "  ", &v.description);
                        let _ = write!(out, "  {}", v.name);
                        deprecated(&mut out, v.is_deprecated, &v.deprecation_reason);
                        out.push('\n');
                    }
                    out.push_str("}\n");
                }
                "INPUT_OBJECT" => {
                    let _ = writeln!(out, "input {} {{", t.name);
                    input_values(
                        &mut out,
                        t.input_fields.as_deref().unwrap_or_default(),
                        "  ",
                        "\n",
                    );
                    out.push_str("\n}\n");
                }
                _ => {}
            }
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn introspection_json_becomes_valid_sdl() {
        let json = serde_json::json!({
            "queryType": {"name": "Query"}, "mutationType": null, "subscriptionType": null,
            "directives": [],
            "types": [
                {"kind": "OBJECT", "name": "Query", "description": "Root", "fields": [
                    {"name": "hello", "description": null, "args": [
                        {"name": "name", "description": "who", "type": {"kind": "SCALAR", "name": "String"}, "defaultValue": "\"world\""}
                    ], "type": {"kind": "NON_NULL", "ofType": {"kind": "LIST", "ofType": {"kind": "ENUM", "name": "Mood"}}},
                    "isDeprecated": true, "deprecationReason": "use \"hi\""}
                ]},
                {"kind": "ENUM", "name": "Mood", "enumValues": [{"name": "HAPPY", "isDeprecated": false}]},
                {"kind": "SCALAR", "name": "String"},
                {"kind": "OBJECT", "name": "__Type", "fields": []}
            ]
        });
        let schema: IntrospectionSchema = serde_json::from_value(json).unwrap();
        let sdl = schema.to_sdl();
        assert!(sdl.contains("hello(\n    \"\"\"who\"\"\"\n    name: String = \"world\"\n  ): [Mood]! @deprecated(reason: \"use \\\"hi\\\"\")"), "{sdl}");
        assert!(!sdl.contains("__Type"));
        apollo_compiler::Schema::parse_and_validate(sdl, "x.graphql").unwrap();
    }
}
