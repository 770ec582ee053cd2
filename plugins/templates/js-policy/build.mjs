// Builds the component: `npm ci && node build.mjs` writes `my-plugin.wasm` (or the path given
// as the first argument).
//
// The gateway links WASI 0.2 and the joinery:plugin interfaces, but not wasi:http: the
// engine's `fetch` support and its incoming-request handler are disabled so that the
// component does not import wasi:http.
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = process.argv[2] ?? join(here, 'my-plugin.wasm');

const { component } = await componentize({
  sourcePath: join(here, 'src/plugin.js'),
  witPath: join(here, 'wit'),
  worldName: 'policy-plugin',
  disableFeatures: ['http', 'fetch-event'],
});
// Write then rename, so that a reader never sees half a component.
const tmp = `${out}.${process.pid}.tmp`;
await writeFile(tmp, component);
await rename(tmp, out);
