//! A policy plugin for Joinery: it decides about each client request (`on_request`), and
//! about each request to, and answer from, the upstreams it is attached to.
//!
//! Build: `cargo build --release --target wasm32-wasip2` (once: `rustup target add
//! wasm32-wasip2`); the component is `target/wasm32-wasip2/release/my_plugin.wasm`.

wit_bindgen::generate!({ world: "policy-plugin", path: "wit" });

use exports::joinery::plugin::policy::{
    Decision, Grant, Guest, IncomingRequest, UpstreamDecision, UpstreamEdit, UpstreamRequest,
    UpstreamResponse, UpstreamResponseDecision,
};
use joinery::plugin::types::Denial;

struct Plugin;

impl Guest for Plugin {
    /// Once per client request, before any upstream is asked ([policy] plugins).
    fn on_request(request: IncomingRequest) -> Decision {
        // `headers` is read on demand: `get(name)`, `get_all(name)`, `entries()`; headers
        // not read cost nothing.
        let authorized = request
            .headers
            .get("authorization")
            .is_some_and(|value| !value.is_empty());
        if !authorized {
            return Decision::Deny(Denial {
                status: 401,
                code: "UNAUTHENTICATED".into(),
                message: "this API needs an authorization header".into(),
            });
        }
        Decision::Allow(Grant {
            // `@internal` variables to fill: (name, JSON value).
            variables: vec![],
            // Headers for every upstream request of this client request.
            upstream_headers: vec![("x-checked-by".into(), "my-plugin".into())],
        })
    }

    /// Before each request to an upstream whose `policies` name this plugin.
    fn on_upstream_request(_request: UpstreamRequest) -> UpstreamDecision {
        UpstreamDecision::Proceed(UpstreamEdit {
            set_headers: vec![],
            remove_headers: vec![],
        })
    }

    /// After each answer of such an upstream.
    fn on_upstream_response(_response: UpstreamResponse) -> UpstreamResponseDecision {
        UpstreamResponseDecision::Keep
    }
}

export!(Plugin);
