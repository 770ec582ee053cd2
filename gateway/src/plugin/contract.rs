//! The plugins' contract as the gateway embeds it: its WIT package (`wit/`) and the two worlds
//! a plugin can implement.

/// The world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum World {
    /// Decides about requests (`policy-plugin`).
    Policy,
    /// Serves an upstream (`resolver-plugin`).
    Resolver,
}

impl World {
    /// The world's name in the WIT package.
    pub(crate) fn wit_name(self) -> &'static str {
        match self {
            World::Policy => "policy-plugin",
            World::Resolver => "resolver-plugin",
        }
    }
}

/// The gateway's WIT package, written beside every template.
pub(crate) const WIT: [(&str, &str); 7] = [
    ("config.wit", include_str!("../../../wit/config.wit")),
    ("log.wit", include_str!("../../../wit/log.wit")),
    (
        "outbound-http.wit",
        include_str!("../../../wit/outbound-http.wit"),
    ),
    ("policy.wit", include_str!("../../../wit/policy.wit")),
    ("resolver.wit", include_str!("../../../wit/resolver.wit")),
    ("types.wit", include_str!("../../../wit/types.wit")),
    ("worlds.wit", include_str!("../../../wit/worlds.wit")),
];
