// A real Apollo Client (InMemoryCache, persisted queries link) against a Joinery gateway.
//
//   node client.mjs manifest <operation.graphql> <out.json>
//     writes an Apollo persisted query manifest for the document as Apollo Client sends it
//     (with the `__typename`s its cache adds), like Apollo's manifest generator does;
//   node client.mjs query <gateway url> <operation.graphql> <variables json> <default|configured>
//     runs the operation through Apollo Client and prints the data it returns (read back
//     from its normalized cache).
import { ApolloClient, InMemoryCache, HttpLink, gql } from "@apollo/client/core/index.js";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries/index.js";
import { print } from "graphql";
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const sha256 = (text) => createHash("sha256").update(text).digest("hex");

// The configuration Joinery documents: another type name is the cache's root query type, so
// `_join` objects (typed `Query`) stay inside the object that holds them.
const configuredCache = () => new InMemoryCache({ typePolicies: { JoineryRootQuery: { queryType: true } } });

const [command, ...args] = process.argv.slice(2);
if (command === "manifest") {
  const [file, out] = args;
  const document = new InMemoryCache().transformDocument(gql(readFileSync(file, "utf8")));
  const body = print(document);
  const name = document.definitions.find((d) => d.kind === "OperationDefinition").name.value;
  const manifest = {
    format: "apollo-persisted-query-manifest",
    version: 1,
    operations: [{ id: sha256(body), name, type: "query", body }],
  };
  writeFileSync(out, JSON.stringify(manifest, null, 2));
} else if (command === "query") {
  const [url, file, variables, mode] = args;
  const cache = mode === "configured" ? configuredCache() : new InMemoryCache();
  const link = createPersistedQueryLink({ sha256, useGETForHashedQueries: false }).concat(new HttpLink({ uri: url }));
  const client = new ApolloClient({ cache, link });
  const result = await client.query({ query: gql(readFileSync(file, "utf8")), variables: JSON.parse(variables) });
  process.stdout.write(JSON.stringify({ data: result.data, errors: result.errors ?? null }));
} else {
  console.error("usage: client.mjs manifest|query …");
  process.exit(2);
}
