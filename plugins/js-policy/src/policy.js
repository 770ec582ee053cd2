// API-key authentication for the `policy-plugin` world of joinery:plugin@0.2.0.
//
// Config (`[plugins.<name>.config]`, read as JSON from `config.get()`):
// - `keys` — a table from API key to tenant, e.g. `"key-1" = "FR"`;
// - `header` — the client header holding the key (default `x-api-key`);
// - `variable` — the `@internal` variable filled with the tenant (default `tenant`);
// - `upstream_headers` — a table of headers the upstream hook sets.
//
// `on-request`: no key → deny 401 UNAUTHENTICATED; a key not in `keys` → deny 403 FORBIDDEN;
// a known key → allow, with the variable set to the tenant (as JSON text). Each denial is
// logged once. `on-upstream-request` sets `upstream_headers`; `on-upstream-response` keeps
// the response as it is.

import { get } from 'joinery:plugin/config@0.2.0';
import { write } from 'joinery:plugin/log@0.2.0';

let cached;

/** The config table, parsed once per instance. */
function settings() {
  if (cached === undefined) {
    try {
      const parsed = JSON.parse(get());
      cached = parsed !== null && typeof parsed === 'object' ? parsed : {};
    } catch {
      cached = {};
    }
  }
  return cached;
}

function text(value, fallback) {
  return typeof value === 'string' ? value : fallback;
}

function table(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : {};
}

function deny(status, code, message) {
  write('warn', `denied with ${status} ${code}: ${message}`);
  return { tag: 'deny', val: { status, code, message } };
}

export const policy = {
  onRequest(request) {
    const config = settings();
    const header = text(config.header, 'x-api-key').toLowerCase();
    // `get` reads one header; the others never cross into the plugin.
    const key = request.headers.get(header);
    if (key === undefined || key === '') {
      return deny(401, 'UNAUTHENTICATED', `an \`${header}\` header is required`);
    }
    const keys = table(config.keys);
    if (!Object.prototype.hasOwnProperty.call(keys, key)) {
      return deny(403, 'FORBIDDEN', 'this API key is not known');
    }
    const variable = text(config.variable, 'tenant');
    return {
      tag: 'allow',
      val: {
        variables: [[variable, JSON.stringify(keys[key])]],
        upstreamHeaders: [],
      },
    };
  },

  onUpstreamRequest(_request) {
    const headers = Object.entries(table(settings().upstream_headers))
      .filter(([, value]) => typeof value === 'string')
      .map(([name, value]) => [name.toLowerCase(), value]);
    return { tag: 'proceed', val: { setHeaders: headers, removeHeaders: [] } };
  },

  onUpstreamResponse(_response) {
    return { tag: 'keep' };
  },
};
