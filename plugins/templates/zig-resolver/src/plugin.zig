//! A resolver plugin for Joinery in Zig: an upstream written in WebAssembly. It gives its
//! schema (without namespace: the gateway adds the upstream's) and resolves the root fields of
//! each request the gateway sends it, typically by calling a REST API through outbound-http.
//!
//! Build: `make`; the component is my-plugin.wasm. `bindings` is the C bindings' header
//! translated to Zig (the C bindings come from this gateway's WIT: `joinery plugin new` wrote
//! them); the exports are the C functions the bindings call, `exports_joinery_plugin_resolver_*`.
//!
//! Memory, as in C: the arguments of an export are the plugin's to free, and everything in the
//! answer must come from malloc (`resolver_plugin_string_dup_n` copies a Zig slice there): the
//! bindings free the answer after the gateway has read it. Zig's own allocations here live in
//! an arena per call.

const std = @import("std");
const c = @import("bindings");

const schema =
    \\type Query {
    \\  "A greeting for `name`."
    \\  hello(name: String! = "world"): String!
    \\}
    \\
;

const Result = c.exports_joinery_plugin_resolver_result_string_field_error_t;

export fn exports_joinery_plugin_resolver_schema(ret: *c.resolver_plugin_string_t) void {
    c.resolver_plugin_string_dup_n(ret, schema.ptr, schema.len);
}

fn text(string: c.resolver_plugin_string_t) []const u8 {
    return if (string.len == 0) "" else string.ptr[0..string.len];
}

fn fail(result: *Result, message: []const u8) void {
    result.is_err = true;
    c.resolver_plugin_string_dup_n(&result.val.err.message, message.ptr, message.len);
    result.val.err.code.is_some = true;
    c.resolver_plugin_string_dup(&result.val.err.code.val, "BAD_REQUEST");
    result.val.err.path = .{ .ptr = null, .len = 0 };
}

/// hello(name:): arguments come as a JSON object, defaults applied.
fn hello(arena: std.mem.Allocator, arguments: []const u8) ![]const u8 {
    const Arguments = struct { name: []const u8 };
    const parsed = try std.json.parseFromSliceLeaky(Arguments, arena, arguments, .{});
    const greeting = try std.fmt.allocPrint(arena, "Hello, {s}!", .{parsed.name});
    // The value as JSON text.
    return std.fmt.allocPrint(arena, "{f}", .{std.json.fmt(greeting, .{})});
}

/// One result per root field, in order: the field's value as JSON text, or an error.
/// `fields` lists every selected field; those without a parent are the root fields.
export fn exports_joinery_plugin_resolver_resolve(
    request: *c.exports_joinery_plugin_resolver_request_t,
    ret: *c.exports_joinery_plugin_resolver_list_result_string_field_error_t,
) void {
    defer c.exports_joinery_plugin_resolver_request_free(request);
    // `headers`, lent for the call, must be dropped before returning.
    defer c.joinery_plugin_types_header_map_drop_borrow(request.headers);
    var arena_state = std.heap.ArenaAllocator.init(std.heap.c_allocator);
    defer arena_state.deinit();
    const arena = arena_state.allocator();

    const fields = if (request.fields.len == 0) &.{} else request.fields.ptr[0..request.fields.len];
    var roots: usize = 0;
    for (fields) |field| roots += @intFromBool(!field.parent.is_some);
    const memory = std.c.calloc(@max(roots, 1), @sizeOf(Result)) orelse @panic("out of memory");
    const results = @as([*]Result, @ptrCast(@alignCast(memory)))[0..roots];
    ret.* = .{ .ptr = results.ptr, .len = roots };

    var next: usize = 0;
    for (fields) |field| {
        if (field.parent.is_some) continue;
        const result = &results[next];
        next += 1;
        if (!std.mem.eql(u8, text(field.name), "hello")) {
            fail(result, "no such field");
            continue;
        }
        const value = hello(arena, text(field.arguments)) catch |err| {
            fail(result, @errorName(err));
            continue;
        };
        result.is_err = false;
        c.resolver_plugin_string_dup_n(&result.val.ok, value.ptr, value.len);
    }
}
