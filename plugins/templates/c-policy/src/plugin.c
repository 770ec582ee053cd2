// A policy plugin for Joinery in C: it decides about each client request (on_request), and
// about each request to, and answer from, the upstreams it is attached to.
//
// Build: `make` (clang with wasi-libc, then `joinery plugin componentize`); the component is
// my-plugin.wasm. The bindings in bindings/ come from this gateway's WIT (`joinery plugin new`
// wrote them); the names follow the WIT: `exports_joinery_plugin_policy_<hook>`.
//
// Memory: the arguments of a hook are the plugin's to free (the `_free` helpers free a whole
// record), and everything in the answer must be allocated with malloc (`policy_plugin_string_dup`,
// not `_set`): the bindings free the answer after the gateway has read it. `headers` is a handle
// lent for the call: drop it (`joinery_plugin_types_header_map_drop_borrow`) before returning,
// or the call fails ("borrow handles still remain at the end of the call").

#include <stdlib.h>
#include <string.h>

#include "policy_plugin.h"

// Whether header `name` has a non-empty value. Headers are read on demand (`_method_header_map_`
// `get`, `get_all`, `entries`); the ones not read cost nothing.
static bool has_header(joinery_plugin_types_borrow_header_map_t headers, const char *name) {
  policy_plugin_string_t key, value;
  policy_plugin_string_set(&key, name);
  if (!joinery_plugin_types_method_header_map_get(headers, &key, &value)) {
    return false;
  }
  bool present = value.len > 0;
  policy_plugin_string_free(&value);
  return present;
}

// Once per client request, before any upstream is asked ([policy] plugins).
void exports_joinery_plugin_policy_on_request(
    exports_joinery_plugin_policy_incoming_request_t *request,
    exports_joinery_plugin_policy_decision_t *ret) {
  bool authorized = has_header(request->headers, "authorization");
  joinery_plugin_types_header_map_drop_borrow(request->headers);
  exports_joinery_plugin_policy_incoming_request_free(request);
  if (!authorized) {
    ret->tag = EXPORTS_JOINERY_PLUGIN_POLICY_DECISION_DENY;
    ret->val.deny.status = 401;
    policy_plugin_string_dup(&ret->val.deny.code, "UNAUTHENTICATED");
    policy_plugin_string_dup(&ret->val.deny.message, "this API needs an authorization header");
    return;
  }
  ret->tag = EXPORTS_JOINERY_PLUGIN_POLICY_DECISION_ALLOW;
  // `@internal` variables to fill: (name, JSON value); none here.
  ret->val.allow.variables.ptr = NULL;
  ret->val.allow.variables.len = 0;
  // Headers for every upstream request of this client request.
  ret->val.allow.upstream_headers.ptr = malloc(sizeof(policy_plugin_tuple2_string_string_t));
  ret->val.allow.upstream_headers.len = 1;
  policy_plugin_string_dup(&ret->val.allow.upstream_headers.ptr[0].f0, "x-checked-by");
  policy_plugin_string_dup(&ret->val.allow.upstream_headers.ptr[0].f1, "my-plugin");
}

// Before each request to an upstream whose `policies` name this plugin.
void exports_joinery_plugin_policy_on_upstream_request(
    exports_joinery_plugin_policy_upstream_request_t *request,
    exports_joinery_plugin_policy_upstream_decision_t *ret) {
  joinery_plugin_types_header_map_drop_borrow(request->headers);
  exports_joinery_plugin_policy_upstream_request_free(request);
  ret->tag = EXPORTS_JOINERY_PLUGIN_POLICY_UPSTREAM_DECISION_PROCEED;
  memset(&ret->val.proceed, 0, sizeof ret->val.proceed);
}

// After each answer of such an upstream.
void exports_joinery_plugin_policy_on_upstream_response(
    exports_joinery_plugin_policy_upstream_response_t *response,
    exports_joinery_plugin_policy_upstream_response_decision_t *ret) {
  joinery_plugin_types_header_map_drop_borrow(response->headers);
  exports_joinery_plugin_policy_upstream_response_free(response);
  ret->tag = EXPORTS_JOINERY_PLUGIN_POLICY_UPSTREAM_RESPONSE_DECISION_KEEP;
}
