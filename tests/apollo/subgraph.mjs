// A federation subgraph built with Apollo's own `@apollo/subgraph`, served over plain HTTP on
// 127.0.0.1 for the integration tests (a second implementation beside async-graphql's).
//
//   node subgraph.mjs
//     prints `listening <port>` once it accepts requests; `POST /graphql` answers GraphQL,
//     `GET /received` lists the request bodies received so far.
//
// Entities: `Country @key(fields: "code")`. The `greeting` of `AQ` fails (an error at that
// entity's position, as Apollo's subgraphs report it); `BV` is not found (null).
import { createServer } from "node:http";
import { graphql, parse } from "graphql";
import { buildSubgraphSchema } from "@apollo/subgraph";

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])

  type Query {
    "Ways to say hello, by language code."
    hellos(language: String!): [String!]!
  }

  type Country @key(fields: "code") {
    code: String!
    "How visitors are greeted."
    greeting: String!
  }
`);

const resolvers = {
  Query: {
    hellos: (_, { language }) => (language === "fr" ? ["bonjour", "salut"] : ["hello"]),
  },
  Country: {
    __resolveReference: ({ code }) => (code === "BV" ? null : { code }),
    greeting: ({ code }) => {
      if (code === "AQ") throw new Error("nobody greets in AQ");
      return `welcome to ${code}`;
    },
  },
};

const schema = buildSubgraphSchema([{ typeDefs, resolvers }]);
const received = [];

const server = createServer((request, response) => {
  if (request.method === "GET" && request.url === "/received") {
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(received));
    return;
  }
  if (request.method !== "POST" || request.url !== "/graphql") {
    response.writeHead(404).end();
    return;
  }
  let body = "";
  request.on("data", (chunk) => (body += chunk));
  request.on("end", async () => {
    let result;
    try {
      const { query, variables, operationName } = JSON.parse(body);
      received.push(JSON.parse(body));
      result = await graphql({ schema, source: query, variableValues: variables, operationName });
    } catch (e) {
      result = { errors: [{ message: String(e) }] };
    }
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify(result));
  });
});

server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
