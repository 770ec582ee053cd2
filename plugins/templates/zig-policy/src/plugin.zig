//! A policy plugin for Joinery in Zig: it decides about each client request (on_request), and
//! about each request to, and answer from, the upstreams it is attached to.
//!
//! Build: `make`; the component is my-plugin.wasm. `bindings` is the C bindings' header
//! translated to Zig (the C bindings come from this gateway's WIT: `joinery plugin new` wrote
//! them); the hooks are the C functions the bindings call, `exports_joinery_plugin_policy_<hook>`.
//!
//! Memory, as in C: the arguments of a hook are the plugin's to free (the `_free` helpers free
//! a whole record), and everything in the answer must come from malloc
//! (`policy_plugin_string_dup`): the bindings free the answer after the gateway has read it.
//! `headers` is a handle lent for the call: drop it (`joinery_plugin_types_header_map_drop_borrow`)
//! before returning, or the call fails ("borrow handles still remain at the end of the call").

const std = @import("std");
const c = @import("bindings");

/// Whether header `name` has a non-empty value. Headers are read on demand
/// (`_method_header_map_` `get`, `get_all`, `entries`); the ones not read cost nothing.
fn hasHeader(headers: c.joinery_plugin_types_borrow_header_map_t, name: []const u8) bool {
    var key = c.policy_plugin_string_t{ .ptr = @constCast(name.ptr), .len = name.len };
    var value: c.policy_plugin_string_t = undefined;
    if (!c.joinery_plugin_types_method_header_map_get(headers, &key, &value)) return false;
    defer c.policy_plugin_string_free(&value);
    return value.len > 0;
}

/// Once per client request, before any upstream is asked ([policy] plugins).
export fn exports_joinery_plugin_policy_on_request(
    request: *c.exports_joinery_plugin_policy_incoming_request_t,
    ret: *c.exports_joinery_plugin_policy_decision_t,
) void {
    const authorized = hasHeader(request.headers, "authorization");
    c.joinery_plugin_types_header_map_drop_borrow(request.headers);
    c.exports_joinery_plugin_policy_incoming_request_free(request);
    if (!authorized) {
        ret.tag = c.EXPORTS_JOINERY_PLUGIN_POLICY_DECISION_DENY;
        ret.val.deny.status = 401;
        c.policy_plugin_string_dup(&ret.val.deny.code, "UNAUTHENTICATED");
        c.policy_plugin_string_dup(&ret.val.deny.message, "this API needs an authorization header");
        return;
    }
    ret.tag = c.EXPORTS_JOINERY_PLUGIN_POLICY_DECISION_ALLOW;
    // `@internal` variables to fill: (name, JSON value); none here.
    ret.val.allow.variables = .{ .ptr = null, .len = 0 };
    // Headers for every upstream request of this client request.
    const Header = c.policy_plugin_tuple2_string_string_t;
    const header: [*c]Header = @ptrCast(@alignCast(std.c.malloc(@sizeOf(Header))));
    c.policy_plugin_string_dup(&header[0].f0, "x-checked-by");
    c.policy_plugin_string_dup(&header[0].f1, "my-plugin");
    ret.val.allow.upstream_headers = .{ .ptr = header, .len = 1 };
}

/// Before each request to an upstream whose `policies` name this plugin.
export fn exports_joinery_plugin_policy_on_upstream_request(
    request: *c.exports_joinery_plugin_policy_upstream_request_t,
    ret: *c.exports_joinery_plugin_policy_upstream_decision_t,
) void {
    c.joinery_plugin_types_header_map_drop_borrow(request.headers);
    c.exports_joinery_plugin_policy_upstream_request_free(request);
    ret.tag = c.EXPORTS_JOINERY_PLUGIN_POLICY_UPSTREAM_DECISION_PROCEED;
    ret.val.proceed = std.mem.zeroes(c.exports_joinery_plugin_policy_upstream_edit_t);
}

/// After each answer of such an upstream.
export fn exports_joinery_plugin_policy_on_upstream_response(
    response: *c.exports_joinery_plugin_policy_upstream_response_t,
    ret: *c.exports_joinery_plugin_policy_upstream_response_decision_t,
) void {
    c.joinery_plugin_types_header_map_drop_borrow(response.headers);
    c.exports_joinery_plugin_policy_upstream_response_free(response);
    ret.tag = c.EXPORTS_JOINERY_PLUGIN_POLICY_UPSTREAM_RESPONSE_DECISION_KEEP;
}
