"""A resolver plugin for Joinery: an upstream written in WebAssembly. It gives its schema
(without namespace: the gateway adds the upstream's) and resolves the root fields of each
request the gateway sends it, typically by calling a REST API through `outbound_http`.

Variants are classes (`Ok`, `Err`); records are dataclasses with snake_case fields.
"""

import json
from typing import List

from componentize_py_types import Err, Ok, Result

import wit_world
from wit_world.exports.resolver import Field, FieldError, Request

SCHEMA = """
type Query {
  "A greeting for `name`."
  hello(name: String! = "world"): String!
}
"""


def resolve_root(field: Field) -> Result[str, FieldError]:
    # Arguments come as a JSON object, defaults applied.
    arguments = json.loads(field.arguments or "{}")
    if field.name == "hello":
        name = arguments.get("name", "world")
        return Ok(json.dumps(f"Hello, {name}!"))
    return Err(FieldError(message=f"no field `{field.name}`", code="BAD_REQUEST", path=[]))


class Resolver(wit_world.exports.Resolver):
    def schema(self) -> str:
        return SCHEMA

    def resolve(self, request: Request) -> List[Result[str, FieldError]]:
        """One result per root field, in order: the field's value as JSON text, or an error.
        `fields` lists every selected field; those with `parent` None are the root fields."""
        return [resolve_root(f) for f in request.fields if f.parent is None]
