"""A books REST/JSON API as a GraphQL upstream: the `resolver-plugin` world of
joinery:plugin@0.2.0.

Config (`[plugins.<name>.config]`, read as JSON from `config.get()`):

- `base_url` — where the REST API lives, e.g. `"http://127.0.0.1:8080"` (its host must be
  in the plugin's `allowed_hosts`).

Root fields, answered in order, one result per root field:

- `book(id:)` → `GET {base_url}/books/{id}`; a 404 answers `null` (the field is nullable and
  "no such book" is not an error);
- `books` → `GET {base_url}/books`.

Any other failure of the REST API (a status other than 200, a body that is not JSON, a host
that is not granted, a connection error) becomes a field error at that root field, with
`extensions.code` `REST_ERROR` (the API answered badly) or `REST_UNREACHABLE` (no answer).
Identical GETs of one `resolve` call (a batched `_join` asking for the same book twice) are
sent once.
"""

import json
from typing import Dict, List
from urllib.parse import quote

from componentize_py_types import Err, Ok, Result

import wit_world
from wit_world.exports.resolver import FieldError, Request
from wit_world.imports import config, log, outbound_http

SCHEMA = """
type Query {
  "One book by its id, null when there is none."
  book(id: ID!): Book
  "Every book."
  books: [Book!]!
}

type Book {
  id: ID!
  title: String!
  author: String!
}
"""


class FieldFailure(Exception):
    """A root field that cannot be resolved: becomes a `field-error`."""

    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def settings() -> dict:
    try:
        value = json.loads(config.get())
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class Rest:
    """GETs against the REST API for one `resolve` call, each distinct URL sent once."""

    def __init__(self, base_url: str, headers: List[tuple]) -> None:
        self.base_url = base_url.rstrip("/")
        # The upstream's headers (configured, forwarded, added by policies) go along.
        self.headers = [(n, v) for (n, v) in headers if n != "accept"]
        self.headers.append(("accept", "application/json"))
        self.answers: Dict[str, object] = {}

    def get(self, path: str, missing_is_null: bool = False) -> object:
        url = self.base_url + path
        if url not in self.answers:
            try:
                self.answers[url] = ("ok", self.fetch(url, missing_is_null))
            except FieldFailure as failure:
                self.answers[url] = ("failed", failure)
        outcome, value = self.answers[url]
        if outcome == "failed":
            raise value
        return value

    def fetch(self, url: str, missing_is_null: bool) -> object:
        request = outbound_http.Request(
            method="GET",
            url=url,
            headers=self.headers,
            body=b"",
            # Only the status and body are read: no response header is asked for.
            response_headers=[],
        )
        try:
            response = outbound_http.send(request)
        except Err as e:
            error = e.value
            if isinstance(error, outbound_http.Error_HostNotAllowed):
                why = f"host not allowed: {error.value}"
            elif isinstance(error, outbound_http.Error_InvalidUrl):
                why = f"invalid URL: {error.value}"
            else:
                why = error.value
            log.write(log.Level.WARN, f"GET {url} failed: {why}")
            raise FieldFailure(f"the REST API cannot be reached (GET {url}: {why})", "REST_UNREACHABLE")
        if response.status == 404 and missing_is_null:
            return None
        if response.status != 200:
            log.write(log.Level.WARN, f"GET {url} answered {response.status}")
            raise FieldFailure(f"the REST API answered {response.status} to GET {url}", "REST_ERROR")
        try:
            return json.loads(response.body)
        except ValueError:
            raise FieldFailure(f"the REST API's answer to GET {url} is not JSON", "REST_ERROR")


def resolve_field(rest: Rest, name: str, arguments: dict) -> object:
    if name == "book":
        book_id = arguments.get("id")
        if not isinstance(book_id, (str, int)):
            raise FieldFailure("`book` needs an `id`", "BAD_ARGUMENTS")
        return rest.get("/books/" + quote(str(book_id), safe=""), missing_is_null=True)
    if name == "books":
        books = rest.get("/books")
        if not isinstance(books, list):
            raise FieldFailure("the REST API's book list is not a JSON array", "REST_ERROR")
        return books
    raise FieldFailure(f"no root field `{name}`", "UNKNOWN_FIELD")


class Resolver(wit_world.exports.Resolver):
    def schema(self) -> str:
        return SCHEMA

    def resolve(self, request: Request) -> List[Result[str, FieldError]]:
        base_url = settings().get("base_url")
        rest = Rest(base_url if isinstance(base_url, str) else "", request.headers.entries())
        results: List[Result[str, FieldError]] = []
        for field in request.fields:
            if field.parent is not None:
                continue
            try:
                if not rest.base_url:
                    raise FieldFailure("the plugin's config has no `base_url`", "PLUGIN_MISCONFIGURED")
                try:
                    arguments = json.loads(field.arguments or "{}")
                except ValueError:
                    arguments = {}
                value = resolve_field(rest, field.name, arguments)
                results.append(Ok(json.dumps(value)))
            except FieldFailure as failure:
                results.append(Err(FieldError(message=failure.message, code=failure.code, path=[])))
        return results
