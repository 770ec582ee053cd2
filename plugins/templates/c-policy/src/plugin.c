// A policy plugin for Joinery in C: it decides about each client request (on_request), and
// about each request to, and answer from, the upstreams it is attached to.
//
// Build: `make` (clang with wasi-libc, then `joinery plugin componentize`); the component is
// my-plugin.wasm. The bindings in bindings/ come from this gateway's WIT (`joinery plugin new`
// wrote them); the names follow the WIT: `exports_joinery_plugin_policy_<hook>`.
//
// Memory: the arguments of a hook are the plugin's to free (the `_free` helpers free a whole
// record), and everything in the answer must be allocated with malloc (`policy_plugin_string_dup`,
// not `_set`): the bindings free the answer after the gateway has read it.

#include <stdlib.h>
#include <string.h>

#include "policy_plugin.h"

// Whether `name` (a lower-case header name) is among `headers` with a non-empty value.
static bool has_header(const joinery_plugin_types_headers_t *headers, const char *name) {
  size_t length = strlen(name);
  for (size_t i = 0; i < headers->len; i++) {
    const policy_plugin_string_t *header_name = &headers->ptr[i].f0;
    if (header_name->len == length && memcmp(header_name->ptr, name, length) == 0 &&
        headers->ptr[i].f1.len > 0) {
      return true;
    }
  }
  return false;
}

// Once per client request, before any upstream is asked ([policy] plugins).
void exports_joinery_plugin_policy_on_request(
    exports_joinery_plugin_policy_incoming_request_t *request,
    exports_joinery_plugin_policy_decision_t *ret) {
  bool authorized = has_header(&request->headers, "authorization");
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
  exports_joinery_plugin_policy_upstream_request_free(request);
  ret->tag = EXPORTS_JOINERY_PLUGIN_POLICY_UPSTREAM_DECISION_PROCEED;
  memset(&ret->val.proceed, 0, sizeof ret->val.proceed);
}

// After each answer of such an upstream.
void exports_joinery_plugin_policy_on_upstream_response(
    exports_joinery_plugin_policy_upstream_response_t *response,
    exports_joinery_plugin_policy_upstream_response_decision_t *ret) {
  exports_joinery_plugin_policy_upstream_response_free(response);
  ret->tag = EXPORTS_JOINERY_PLUGIN_POLICY_UPSTREAM_RESPONSE_DECISION_KEEP;
}
