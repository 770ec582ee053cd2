//! A bench fixture, not an example: the least a policy can do. It allows every request and
//! reads nothing of it, so that what a request pays for it is what a plugin call itself costs
//! (the probe and the JWT policy add their own work on top).

wit_bindgen::generate!({ world: "policy-plugin", path: "../../wit" });

use exports::joinery::plugin::policy::{
    Decision, Grant, Guest, IncomingRequest, UpstreamDecision, UpstreamEdit, UpstreamRequest,
    UpstreamResponse, UpstreamResponseDecision,
};

struct Allow;

impl Guest for Allow {
    fn on_request(_request: IncomingRequest) -> Decision {
        Decision::Allow(Grant {
            variables: vec![],
            upstream_headers: vec![],
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

export!(Allow);
