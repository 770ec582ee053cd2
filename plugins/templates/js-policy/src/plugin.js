// A policy plugin for Joinery: it decides about each client request (`onRequest`), and about
// each request to, and answer from, the upstreams it is attached to. Variants are
// `{ tag, val }` objects; records use camelCase field names.

import { write } from 'joinery:plugin/log@0.2.0';

export const policy = {
  // Once per client request, before any upstream is asked ([policy] plugins).
  onRequest(request) {
    // `headers` is read on demand: `get(name)` (undefined when absent), `getAll(name)`,
    // `entries()` ([name, value] pairs); headers not read cost nothing.
    const authorization = request.headers.get('authorization');
    if (authorization === undefined || authorization === '') {
      write('info', 'a request without an authorization header was refused');
      return {
        tag: 'deny',
        val: {
          status: 401,
          code: 'UNAUTHENTICATED',
          message: 'this API needs an authorization header',
        },
      };
    }
    return {
      tag: 'allow',
      val: {
        // `@internal` variables to fill: [name, JSON text].
        variables: [],
        // Headers for every upstream request of this client request.
        upstreamHeaders: [['x-checked-by', 'my-plugin']],
      },
    };
  },

  // Before each request to an upstream whose `policies` name this plugin.
  onUpstreamRequest(_request) {
    return { tag: 'proceed', val: { setHeaders: [], removeHeaders: [] } };
  },

  // After each answer of such an upstream.
  onUpstreamResponse(_response) {
    return { tag: 'keep' };
  },
};
