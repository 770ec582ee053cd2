//! The operations explorer: plain server-rendered pages, on a listen address of their own
//! (`[explorer] listen`), listing the registered operations with their variables and plans,
//! with a form that runs one by hash and shows the response. Its page script posts to the
//! explorer's own `/graphql`, answered by the serving gateway exactly as the gateway's is; no
//! resource comes from anywhere else, so it works offline.

use std::fmt::Write as _;
use std::sync::Arc;

use apollo_compiler::executable::OperationType;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;

use super::{Current, Gateway};
use crate::plan::Plan;

/// Serves the explorer for the gateway `current` holds, on `listener`, until the task is
/// dropped.
pub async fn serve_explorer(current: Arc<Current>, listener: TcpListener) -> std::io::Result<()> {
    let local = listener.local_addr()?;
    tracing::info!(address = %local, "the operations explorer is at http://{local}/");
    super::serve_side(listener, move |req| {
        let gateway = current.load_full();
        async move { answer(&gateway, req).await }
    })
    .await
}

async fn answer(gateway: &Gateway, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    match (req.method(), path.as_str()) {
        // The page's requests, answered as the gateway answers them.
        (_, "/graphql") => gateway.handle(req).await,
        (&Method::GET, "/") => page(StatusCode::OK, "Operations", &index(gateway)),
        (&Method::GET, p) if p.starts_with("/op/") => {
            let name = &p["/op/".len()..];
            match gateway.registry.find_named(name) {
                Some((hash, plan)) => page(StatusCode::OK, name, &operation(name, hash, plan)),
                None => page(
                    StatusCode::NOT_FOUND,
                    "Not found",
                    &format!(
                        "<p>No registered operation is named <code>{}</code>. <a href=\"/\">All operations</a></p>",
                        escape(name)
                    ),
                ),
            }
        }
        _ => page(
            StatusCode::NOT_FOUND,
            "Not found",
            "<p>Nothing here. <a href=\"/\">All operations</a></p>",
        ),
    }
}

/// The list of operations.
fn index(gateway: &Gateway) -> String {
    let mut operations: Vec<(&str, &Arc<Plan>)> = gateway.registry.named_operations().collect();
    operations.sort_by_key(|(name, _)| *name);
    let mut html = format!(
        "<p>{} registered operation(s). Clients call them by hash at <code>/graphql</code>, or as REST at <code>/operations/&lt;Name&gt;</code>.</p><table><tr><th>operation</th><th>kind</th><th>variables</th></tr>",
        operations.len()
    );
    for (name, plan) in operations {
        let _ = write!(
            html,
            "<tr><td><a href=\"/op/{0}\">{0}</a></td><td>{1}</td><td><code>{2}</code></td></tr>",
            escape(name),
            kind(plan),
            escape(&variables(plan)),
        );
    }
    html.push_str("</table>");
    html
}

/// One operation: its document, its plan, and the form that runs it.
fn operation(name: &str, hash: &str, plan: &Plan) -> String {
    let skeleton: serde_json::Map<String, serde_json::Value> = plan
        .client_operation
        .variables
        .iter()
        .filter(|v| v.default_value.is_none())
        .map(|v| (v.name.to_string(), serde_json::Value::Null))
        .collect();
    format!(
        r#"<p><a href="/">All operations</a> · {kind} · sha256 <code id="hash">{hash}</code></p>
<h2>Variables</h2>
<p><code>{variables}</code></p>
<form id="run-form">
<textarea id="variables" rows="6" cols="80" spellcheck="false">{skeleton}</textarea><br>
<button id="run" type="submit">Run</button> <span id="status"></span>
</form>
<h2>Response</h2>
<pre id="response"></pre>
<h2>Document</h2>
<pre>{document}</pre>
<h2>Plan</h2>
<pre id="plan">{plan_text}</pre>
<script>
const form = document.getElementById('run-form');
const input = document.getElementById('variables');
const status = document.getElementById('status');
const output = document.getElementById('response');
form.addEventListener('submit', async (event) => {{
  event.preventDefault();
  let variables;
  try {{
    variables = JSON.parse(input.value || '{{}}');
  }} catch (e) {{
    status.textContent = 'the variables are not JSON: ' + e.message;
    return;
  }}
  status.textContent = 'running…';
  const started = performance.now();
  const response = await fetch('/graphql', {{
    method: 'POST',
    headers: {{ 'content-type': 'application/json' }},
    body: JSON.stringify({{ documentId: 'sha256:{hash}', operationName: {name_json}, variables }}),
  }});
  const body = await response.text();
  let shown = body;
  try {{ shown = JSON.stringify(JSON.parse(body), null, 2); }} catch (e) {{}}
  output.textContent = shown;
  status.textContent = 'HTTP ' + response.status + ' in ' + Math.round(performance.now() - started) + ' ms';
}});
</script>"#,
        kind = kind(plan),
        hash = escape(hash),
        variables = escape(&variables(plan)),
        skeleton = escape(&serde_json::to_string_pretty(&skeleton).expect("JSON serializes")),
        document = escape(&plan.document.serialize().to_string()),
        plan_text = escape(&plan.to_string()),
        // A GraphQL name as a JSON string: nothing in it needs escaping inside a script.
        name_json = serde_json::Value::from(name),
    )
}

fn kind(plan: &Plan) -> &'static str {
    match plan.kind {
        OperationType::Mutation => "mutation",
        _ => "query",
    }
}

/// The variables a client sets, as the operation declares them.
fn variables(plan: &Plan) -> String {
    let list: Vec<String> = plan
        .client_operation
        .variables
        .iter()
        .map(|v| match &v.default_value {
            Some(default) => format!("${}: {} = {}", v.name, v.ty, default),
            None => format!("${}: {}", v.name, v.ty),
        })
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// A whole page: a little CSS, no outside resource; scripts only from the page itself.
fn page(status: StatusCode, title: &str, body: &str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · Joinery explorer</title>\
<style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}}table{{border-collapse:collapse}}\
td,th{{border:1px solid #ccc;padding:.3rem .6rem;text-align:left}}pre{{background:#f4f4f4;padding:.8rem;overflow:auto}}\
textarea{{font-family:monospace}}</style></head><body><h1>{title}</h1>{body}</body></html>",
        title = escape(title),
    );
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .header(
            CONTENT_SECURITY_POLICY,
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        )
        .body(Full::new(Bytes::from(html)))
        .expect("static parts are valid")
}

/// Text made safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
