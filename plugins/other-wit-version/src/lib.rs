//! A test fixture: built against `joinery:plugin@0.1.0` (its own `wit/`), which the gateway
//! must refuse with a message naming both versions.

wit_bindgen::generate!({ world: "policy-plugin", path: "wit" });

struct Old;

impl exports::joinery::plugin::policy::Guest for Old {
    fn on_request(_operation_name: String) -> bool {
        true
    }
}

export!(Old);
