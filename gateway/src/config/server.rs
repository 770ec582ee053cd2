//! `[server]`: the address, request and connection limits of the gateway's own server.

use std::net::SocketAddr;
use std::time::Duration;

use toml::Spanned;

use super::check::Check;
use super::raw::RawServer;

/// `[server]`: where and how the gateway listens.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on. Default `127.0.0.1:4000`.
    pub listen: SocketAddr,
    /// Largest accepted request body in bytes. Default 1 MiB.
    pub max_request_bytes: usize,
    /// How long shutdown waits for requests in flight. Default `30s`.
    pub shutdown_grace: Duration,
    /// Most objects (list items) one `_join` may fan out to in one request; more is an error
    /// (`JOIN_FANOUT_EXCEEDED`), never a silent truncation. Default 1000.
    pub max_join_fanout: usize,
    /// Limits that keep slow or idle clients from holding connections.
    pub(crate) connections: ConnectionLimits,
}

/// How many connections the server holds and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// Most open client connections; beyond it, new ones wait in the listen queue. Keep it
    /// below the process's open-file limit. Default 1000.
    pub(crate) max_connections: usize,
    /// Longest time to receive a request body once its headers are in (408 beyond). Default `10s`.
    pub(crate) body_timeout: Duration,
    /// A connection with no request in flight and no traffic for this long is closed (HTTP/1
    /// keep-alive and HTTP/2 alike). Default `60s`.
    pub(crate) idle_timeout: Duration,
    /// Most concurrent streams per HTTP/2 connection. Default 100.
    pub(crate) http2_max_streams: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 1000,
            body_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            http2_max_streams: 100,
        }
    }
}

/// `listen`. Its problem is reported before those of `[metrics]`, `[explorer]` and `[traces]`,
/// the rest of `[server]` after them (see `Config::parse_checked`).
pub(super) fn listen(check: &mut Check, raw: &RawServer) -> SocketAddr {
    match &raw.listen {
        None => SocketAddr::from(([127, 0, 0, 1], 4000)),
        Some(s) => s.get_ref().parse().unwrap_or_else(|_| {
            check.at(
                s.span(),
                format!(
                    "`listen` must be an IP address and port such as \"127.0.0.1:4000\" or \"0.0.0.0:8080\", not {:?}",
                    s.get_ref()
                ),
            );
            SocketAddr::from(([127, 0, 0, 1], 4000))
        }),
    }
}

/// `max_request_bytes` and `shutdown_grace`, checked before `[log]`.
pub(super) struct Requests {
    max_request_bytes: usize,
    shutdown_grace: Duration,
}

pub(super) fn requests(check: &mut Check, raw: &RawServer) -> Requests {
    let max_request_bytes = match &raw.max_request_bytes {
        None => 1 << 20,
        Some(n) if (256..=1 << 30).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            check.at(
                n.span(),
                "`max_request_bytes` must be from 256 to 1073741824 (1 GiB) (default 1048576)"
                    .into(),
            );
            1 << 20
        }
    };
    Requests {
        max_request_bytes,
        shutdown_grace: check.duration(&raw.shutdown_grace, Duration::from_secs(30)),
    }
}

/// The connection limits and `max_join_fanout`, checked after `[log]`, with what
/// [`listen`] and [`requests`] found.
pub(super) fn check(
    check: &mut Check,
    raw: &RawServer,
    listen: SocketAddr,
    requests: Requests,
) -> ServerConfig {
    let defaults = ConnectionLimits::default();
    let max_connections = count(
        check,
        &raw.max_connections,
        "max_connections",
        defaults.max_connections,
        1_000_000,
    );
    let http2_max_streams = count(
        check,
        &raw.http2_max_streams,
        "http2_max_streams",
        defaults.http2_max_streams as usize,
        10_000,
    ) as u32;
    let connections = ConnectionLimits {
        max_connections,
        body_timeout: check.duration(&raw.body_timeout, defaults.body_timeout),
        idle_timeout: check.duration(&raw.idle_timeout, defaults.idle_timeout),
        http2_max_streams,
    };
    let max_join_fanout = match &raw.max_join_fanout {
        None => 1000,
        Some(n) if (1..=1_000_000).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            check.at(
                n.span(),
                "`max_join_fanout` must be from 1 to 1000000 (default 1000)".into(),
            );
            1000
        }
    };
    ServerConfig {
        listen,
        max_request_bytes: requests.max_request_bytes,
        shutdown_grace: requests.shutdown_grace,
        max_join_fanout,
        connections,
    }
}

fn count(
    check: &mut Check,
    raw: &Option<Spanned<i64>>,
    name: &str,
    default: usize,
    max: usize,
) -> usize {
    match raw {
        None => default,
        Some(n) if (1..=max as i64).contains(n.get_ref()) => *n.get_ref() as usize,
        Some(n) => {
            check.at(
                n.span(),
                format!("`{name}` must be from 1 to {max} (default {default})"),
            );
            default
        }
    }
}
