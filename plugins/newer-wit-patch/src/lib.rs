//! A test fixture: built against `joinery:plugin@0.2.1` (its own `wit/`), a semver-compatible
//! release of the gateway's `0.2.0`, which the gateway must load and call. It denies every
//! request with a code the tests check, so that a call that reached it is seen.

wit_bindgen::generate!({ world: "policy-plugin", path: "wit" });

use exports::joinery::plugin::policy::{
    Decision, Guest, IncomingRequest, UpstreamDecision, UpstreamEdit, UpstreamRequest,
    UpstreamResponse, UpstreamResponseDecision,
};
use joinery::plugin::types::Denial;

struct Newer;

impl Guest for Newer {
    fn on_request(request: IncomingRequest) -> Decision {
        Decision::Deny(Denial {
            status: 403,
            code: "NEWER_WIT".into(),
            message: format!("called for {}", request.operation_name),
        })
    }

    fn on_upstream_request(_request: UpstreamRequest) -> UpstreamDecision {
        UpstreamDecision::Proceed(UpstreamEdit {
            set_headers: vec![],
            remove_headers: vec![],
        })
    }

    fn on_upstream_response(_response: UpstreamResponse) -> UpstreamResponseDecision {
        UpstreamResponseDecision::Keep
    }
}

export!(Newer);
