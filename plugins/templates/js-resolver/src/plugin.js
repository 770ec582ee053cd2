// A resolver plugin for Joinery: an upstream written in WebAssembly. It gives its schema
// (without namespace: the gateway adds the upstream's) and resolves the root fields of each
// request the gateway sends it, typically by calling a REST API through `outbound-http`.
// Results are `{ tag: 'ok', val }` or `{ tag: 'err', val }`; records use camelCase field names.

const SCHEMA = `
type Query {
  "A greeting for \`name\`."
  hello(name: String! = "world"): String!
}
`;

function resolveRoot(field) {
  // Arguments come as a JSON object, defaults applied.
  const args = JSON.parse(field.arguments);
  if (field.name === 'hello') {
    return { tag: 'ok', val: JSON.stringify(`Hello, ${args.name}!`) };
  }
  return {
    tag: 'err',
    val: { message: `no field \`${field.name}\``, code: 'BAD_REQUEST', path: [] },
  };
}

export const resolver = {
  schema() {
    return SCHEMA;
  },

  // One result per root field, in order: the field's value as JSON text, or an error.
  // `fields` lists every selected field; those without a `parent` are the root fields.
  resolve(request) {
    return request.fields.filter((field) => field.parent === undefined).map(resolveRoot);
  },
};
