//! Verifies `Authorization: Bearer <HS256 JWT>` with a secret granted by the gateway, checks
//! `exp`, and fills an `@internal` variable from one claim. On upstream requests it sets the
//! headers of its `upstream_headers` config table (for example an API key for one upstream).
//!
//! Config (`[plugins.<name>.config]`):
//! - `secret` — name of the granted secret holding the HMAC key (default `JWT_SECRET`);
//! - `claim` — the claim to read (default `sub`);
//! - `variable` — the `@internal` variable to fill (default `userId`);
//! - `optional` — when true, requests without a token pass without the variable;
//! - `upstream_headers` — a table of headers added to the upstream requests it is attached to.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

wit_bindgen::generate!({ world: "policy-plugin", path: "../../wit" });

use exports::joinery::plugin::policy::{
    Decision, Grant, Guest, IncomingRequest, UpstreamDecision, UpstreamEdit, UpstreamRequest,
    UpstreamResponse, UpstreamResponseDecision,
};
use joinery::plugin::types::Denial;
use joinery::plugin::{config, log};

struct JwtPolicy;

/// What every call reads: the settings and the keyed MAC, made on the first call. The
/// gateway reads secrets once at start-up and config never changes while an instance lives,
/// so parsing the settings and keying the MAC once per instance changes nothing but the cost
/// (each call would otherwise make two host calls, parse JSON and hash the key).
struct Setup {
    settings: Value,
    /// The MAC keyed with the secret, or the secret's name when it is not granted.
    mac: Result<Hmac<Sha256>, String>,
}

fn setup() -> &'static Setup {
    static SETUP: std::sync::OnceLock<Setup> = std::sync::OnceLock::new();
    SETUP.get_or_init(|| {
        let settings = settings();
        let secret_name = setting(&settings, "secret", "JWT_SECRET").to_string();
        let mac = config::secret(&secret_name)
            .and_then(|key| Hmac::<Sha256>::new_from_slice(key.as_bytes()).ok())
            .ok_or(secret_name);
        Setup { settings, mac }
    })
}

fn settings() -> Value {
    serde_json::from_str(&config::get()).unwrap_or(Value::Null)
}

fn setting<'a>(settings: &'a Value, key: &str, default: &'a str) -> &'a str {
    settings.get(key).and_then(Value::as_str).unwrap_or(default)
}

fn unauthenticated(message: &str) -> Decision {
    Decision::Deny(Denial {
        status: 401,
        code: "UNAUTHENTICATED".into(),
        message: message.into(),
    })
}

/// The verified claims of `token`, or why it is refused.
fn verify(token: &str, mac: &Hmac<Sha256>, now: impl Fn() -> u64) -> Result<Value, &'static str> {
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("the token is not a JWT");
    };
    let header: Value = URL_SAFE_NO_PAD
        .decode(header)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("the token's header is not valid")?;
    if header.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err("only HS256 tokens are accepted");
    }
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| "the token's signature is not valid base64url")?;
    let mut mac = mac.clone();
    mac.update(&token.as_bytes()[..header_len(token)]);
    mac.verify_slice(&signature)
        .map_err(|_| "the token's signature does not verify")?;
    let claims: Value = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("the token's claims are not valid JSON")?;
    match claims.get("exp").and_then(Value::as_u64) {
        Some(exp) if exp <= now() => Err("the token has expired"),
        _ => Ok(claims),
    }
}

/// Length of `header.payload`, the signed part.
fn header_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(0)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Guest for JwtPolicy {
    fn on_request(request: IncomingRequest) -> Decision {
        let Setup { settings, mac } = setup();
        let authorization = request.headers.get("authorization");
        let token = authorization
            .as_deref()
            .and_then(|v| v.strip_prefix("Bearer "));
        let Some(token) = token else {
            if settings.get("optional").and_then(Value::as_bool) == Some(true) {
                return Decision::Allow(Grant {
                    variables: vec![],
                    upstream_headers: vec![],
                });
            }
            return unauthenticated("an `Authorization: Bearer <token>` header is required");
        };
        let mac = match mac {
            Ok(mac) => mac,
            Err(secret_name) => {
                log::write(
                    log::Level::Error,
                    &format!("secret `{secret_name}` is not granted or not set"),
                );
                return Decision::Deny(Denial {
                    status: 500,
                    code: "POLICY_MISCONFIGURED".into(),
                    message: "the authentication policy is not configured".into(),
                });
            }
        };
        let claims = match verify(token, mac, now) {
            Ok(c) => c,
            Err(why) => {
                log::write(log::Level::Info, &format!("refused a token: {why}"));
                return unauthenticated(why);
            }
        };
        let claim = setting(settings, "claim", "sub");
        let Some(value) = claims.get(claim) else {
            return Decision::Deny(Denial {
                status: 403,
                code: "FORBIDDEN".into(),
                message: format!("the token has no `{claim}` claim"),
            });
        };
        let variable = setting(settings, "variable", "userId").to_string();
        Decision::Allow(Grant {
            variables: vec![(variable, value.to_string())],
            upstream_headers: vec![],
        })
    }

    fn on_upstream_request(_request: UpstreamRequest) -> UpstreamDecision {
        let settings = &setup().settings;
        let set_headers = settings
            .get("upstream_headers")
            .and_then(Value::as_object)
            .map(|t| {
                t.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        UpstreamDecision::Proceed(UpstreamEdit {
            set_headers,
            remove_headers: vec![],
        })
    }

    fn on_upstream_response(_response: UpstreamResponse) -> UpstreamResponseDecision {
        UpstreamResponseDecision::Keep
    }
}

export!(JwtPolicy);
