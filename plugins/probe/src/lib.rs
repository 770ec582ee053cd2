//! A test fixture, not an example: on each request it does what the `x-probe` header asks,
//! so the test suite can prove that the sandbox holds and that a broken plugin fails only
//! its own call. It reports what it saw by denying with a code the tests check.

wit_bindgen::generate!({ world: "policy-plugin", path: "../../wit" });

use exports::joinery::plugin::policy::{
    Decision, Grant, Guest, IncomingRequest, UpstreamDecision, UpstreamEdit, UpstreamRequest,
    UpstreamResponse, UpstreamResponseDecision,
};
use joinery::plugin::outbound_http;
use joinery::plugin::types::Denial;

struct Probe;

fn report(code: &str, message: String) -> Decision {
    Decision::Deny(Denial {
        status: 418,
        code: code.into(),
        message,
    })
}

fn header(request: &IncomingRequest, name: &str) -> String {
    request.headers.get(name).unwrap_or_default()
}

/// Deep recursion on the WebAssembly call stack itself (no locals in linear memory).
fn recurse(depth: u64) -> u64 {
    if depth == u64::MAX {
        return 0;
    }
    1 + recurse(std::hint::black_box(depth + 1))
}

impl Guest for Probe {
    fn on_request(request: IncomingRequest) -> Decision {
        let arg = header(&request, "x-probe-arg");
        match header(&request, "x-probe").as_str() {
            "loop" => loop {
                std::hint::black_box(0);
            },
            // Waits in the host (a WASI clock), where no epoch interrupts it.
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(30));
                report("UNREACHED", "woke up".into())
            }
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "stack" => report("UNREACHED", recurse(0).to_string()),
            "trap" => panic!("the probe was asked to panic"),
            "exit" => std::process::exit(3),
            "file" => {
                match std::fs::read_to_string(if arg.is_empty() { "/etc/passwd" } else { &arg }) {
                    Ok(text) => report("SANDBOX_BROKEN", text),
                    Err(e) => report("SANDBOX_HELD", e.to_string()),
                }
            }
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                if vars.is_empty() {
                    report("SANDBOX_HELD", "no environment".into())
                } else {
                    report("SANDBOX_BROKEN", vars.join(","))
                }
            }
            "socket" => match std::net::TcpStream::connect(arg.as_str()) {
                Ok(_) => report("SANDBOX_BROKEN", format!("connected to {arg}")),
                Err(e) => report("SANDBOX_HELD", e.to_string()),
            },
            "fetch" => {
                let request = outbound_http::Request {
                    method: "POST".into(),
                    url: arg,
                    headers: vec![("content-type".into(), "application/json".into())],
                    body: br#"{"query":"{ __typename }"}"#.to_vec(),
                    response_headers: vec!["Content-Type".into()],
                };
                match outbound_http::send(&request) {
                    Ok(r) => report(
                        "FETCHED",
                        format!(
                            "{} {:?} {}",
                            r.status,
                            r.headers,
                            String::from_utf8_lossy(&r.body)
                        ),
                    ),
                    Err(e) => report("FETCH_REFUSED", format!("{e:?}")),
                }
            }
            // The names of the headers it was shown, as a denial's message.
            "headers" => {
                let entries = request.headers.entries();
                let mut names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
                names.sort_unstable();
                Decision::Deny(Denial {
                    status: 403,
                    code: "HEADERS_SEEN".into(),
                    message: names.join(","),
                })
            }
            // What `get` and `get-all` answer for the header the argument names.
            "header" => Decision::Deny(Denial {
                status: 403,
                code: "HEADER_SEEN".into(),
                message: format!(
                    "{:?} {:?}",
                    request.headers.get(&arg),
                    request.headers.get_all(&arg)
                ),
            }),
            "big-output" => Decision::Allow(Grant {
                variables: vec![("userId".into(), format!("\"{}\"", "x".repeat(1100 << 10)))],
                upstream_headers: vec![],
            }),
            // The upstream hook sees the headers granted here and acts on them.
            "upstream" => Decision::Allow(Grant {
                variables: vec![],
                upstream_headers: vec![("x-probe-upstream".into(), arg)],
            }),
            // `name=value`: a header for every upstream request of this request.
            "set-header" => {
                let (name, value) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
                Decision::Allow(Grant {
                    variables: vec![],
                    upstream_headers: vec![(name.into(), value.into())],
                })
            }
            "long-denial" => Decision::Deny(Denial {
                status: 403,
                code: "TOO_CHATTY".into(),
                message: "blah ".repeat(20_000),
            }),
            "bad-denial" => Decision::Deny(Denial {
                status: 200,
                code: "OK".into(),
                message: String::new(),
            }),
            _ => Decision::Allow(Grant {
                variables: vec![],
                upstream_headers: vec![("x-probe-seen".into(), request.operation_name)],
            }),
        }
    }

    fn on_upstream_request(request: UpstreamRequest) -> UpstreamDecision {
        let asked = request.headers.get("x-probe-upstream");
        match asked.as_deref() {
            Some("deny") => UpstreamDecision::Deny(Denial {
                status: 403,
                code: "NO_UPSTREAM".into(),
                message: format!("{} is off limits", request.namespace),
            }),
            Some("trap") => panic!("the probe was asked to panic in the upstream hook"),
            _ => UpstreamDecision::Proceed(UpstreamEdit {
                set_headers: vec![],
                remove_headers: vec!["x-probe-upstream".into()],
            }),
        }
    }

    /// Driven by markers in the upstream's answer, since the hook sees no client headers.
    fn on_upstream_response(response: UpstreamResponse) -> UpstreamResponseDecision {
        if response.body.contains("PROBE_DENY_RESPONSE") {
            UpstreamResponseDecision::Deny(Denial {
                status: 502,
                code: "RESPONSE_REFUSED".into(),
                message: format!("{} answered something off limits", response.namespace),
            })
        } else if response.body.contains("PROBE_TRAP_RESPONSE") {
            panic!("the probe was asked to panic in the response hook")
        } else if response.body.contains("PROBE_REWRITE_RESPONSE") {
            UpstreamResponseDecision::Replace(response.body.replace(
                "PROBE_REWRITE_RESPONSE",
                &format!("rewritten (status {})", response.status),
            ))
        } else if response.body.contains("PROBE_BAD_RESPONSE") {
            UpstreamResponseDecision::Replace("not json".into())
        } else {
            UpstreamResponseDecision::Keep
        }
    }
}

export!(Probe);
