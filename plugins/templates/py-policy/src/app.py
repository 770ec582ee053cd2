"""A policy plugin for Joinery: it decides about each client request (`on_request`), and about
each request to, and answer from, the upstreams it is attached to.

Variants are one class per case (`Decision_Allow(value)`); records are dataclasses with
snake_case fields.
"""

import wit_world
from wit_world.exports.policy import (
    Decision,
    Decision_Allow,
    Decision_Deny,
    Grant,
    IncomingRequest,
    UpstreamDecision,
    UpstreamDecision_Proceed,
    UpstreamEdit,
    UpstreamRequest,
    UpstreamResponse,
    UpstreamResponseDecision,
    UpstreamResponseDecision_Keep,
)
from wit_world.imports import log
from wit_world.imports.types import Denial


class Policy(wit_world.exports.Policy):
    def on_request(self, request: IncomingRequest) -> Decision:
        """Once per client request, before any upstream is asked ([policy] plugins)."""
        # `headers` is read on demand: `get(name)` (None when absent), `get_all(name)`,
        # `entries()` ((name, value) pairs); headers not read cost nothing.
        if not request.headers.get("authorization"):
            log.write(log.Level.INFO, "a request without an authorization header was refused")
            return Decision_Deny(
                Denial(
                    status=401,
                    code="UNAUTHENTICATED",
                    message="this API needs an authorization header",
                )
            )
        return Decision_Allow(
            Grant(
                # `@internal` variables to fill: (name, JSON text).
                variables=[],
                # Headers for every upstream request of this client request.
                upstream_headers=[("x-checked-by", "my-plugin")],
            )
        )

    def on_upstream_request(self, request: UpstreamRequest) -> UpstreamDecision:
        """Before each request to an upstream whose `policies` name this plugin."""
        return UpstreamDecision_Proceed(UpstreamEdit(set_headers=[], remove_headers=[]))

    def on_upstream_response(self, response: UpstreamResponse) -> UpstreamResponseDecision:
        """After each answer of such an upstream."""
        return UpstreamResponseDecision_Keep()
