// A resolver plugin for Joinery in C: an upstream written in WebAssembly. It gives its schema
// (without namespace: the gateway adds the upstream's) and resolves the root fields of each
// request the gateway sends it, typically by calling a REST API through outbound-http.
//
// Build: `make` (clang with wasi-libc, then `joinery plugin componentize`); the component is
// my-plugin.wasm. The bindings in bindings/ come from this gateway's WIT (`joinery plugin new`
// wrote them); the names follow the WIT: `exports_joinery_plugin_resolver_<function>`.
//
// Memory: the arguments of an export are the plugin's to free (the `_free` helpers free a
// whole record), and everything in the answer must be allocated with malloc
// (`resolver_plugin_string_dup`, not `_set`): the bindings free the answer after the gateway
// has read it. Strings must be valid UTF-8.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resolver_plugin.h"

static const char SCHEMA[] =
    "type Query {\n"
    "  \"A greeting for `name`.\"\n"
    "  hello(name: String! = \"world\"): String!\n"
    "}\n";

void exports_joinery_plugin_resolver_schema(resolver_plugin_string_t *ret) {
  resolver_plugin_string_dup(ret, SCHEMA);
}

static bool is(const resolver_plugin_string_t *string, const char *text) {
  size_t length = strlen(text);
  return string->len == length && memcmp(string->ptr, text, length) == 0;
}

static void fail(exports_joinery_plugin_resolver_result_string_field_error_t *result,
                 const char *message) {
  result->is_err = true;
  resolver_plugin_string_dup(&result->val.err.message, message);
  result->val.err.code.is_some = true;
  resolver_plugin_string_dup(&result->val.err.code.val, "BAD_REQUEST");
  result->val.err.path.ptr = NULL;
  result->val.err.path.len = 0;
}

// hello(name:): arguments come as a JSON object with defaults applied, here always
// {"name":"..."}; the greeting is that string's JSON text with "Hello, " and "!" around it.
// For anything more, parse the arguments with a JSON library (cJSON, for one, builds as is).
static void hello(const resolver_plugin_string_t *arguments,
                  exports_joinery_plugin_resolver_result_string_field_error_t *result) {
  static const char prefix[] = "{\"name\":\"";
  size_t start = sizeof prefix - 1;
  if (arguments->len < start + 2 || memcmp(arguments->ptr, prefix, start) != 0) {
    fail(result, "hello: unexpected arguments");
    return;
  }
  // The escaped name, without its quotes: stays valid inside another JSON string.
  int name_length = (int)(arguments->len - start - 2);
  const char *name = (const char *)arguments->ptr + start;
  size_t size = (size_t)name_length + sizeof "\"Hello, !\"";
  char *value = malloc(size);
  snprintf(value, size, "\"Hello, %.*s!\"", name_length, name);
  result->is_err = false;
  result->val.ok.ptr = (uint8_t *)value;
  result->val.ok.len = strlen(value);
}

// One result per root field, in order: the field's value as JSON text, or an error.
// `fields` lists every selected field; those without a parent are the root fields.
void exports_joinery_plugin_resolver_resolve(
    exports_joinery_plugin_resolver_request_t *request,
    exports_joinery_plugin_resolver_list_result_string_field_error_t *ret) {
  size_t roots = 0;
  for (size_t i = 0; i < request->fields.len; i++) {
    roots += !request->fields.ptr[i].parent.is_some;
  }
  ret->ptr = calloc(roots, sizeof *ret->ptr);
  ret->len = roots;
  size_t next = 0;
  for (size_t i = 0; i < request->fields.len; i++) {
    const exports_joinery_plugin_resolver_field_t *field = &request->fields.ptr[i];
    if (field->parent.is_some) {
      continue;
    }
    if (is(&field->name, "hello")) {
      hello(&field->arguments, &ret->ptr[next]);
    } else {
      fail(&ret->ptr[next], "no such field");
    }
    next++;
  }
  // `headers`, lent for the call, must be dropped before returning.
  joinery_plugin_types_header_map_drop_borrow(request->headers);
  exports_joinery_plugin_resolver_request_free(request);
}
