"""An API's OpenAPI 3.1 document, generated from its route table and its schemas.

Nothing here is written by hand about an operation: paths, parameters, bodies and responses
come from the `Route` declarations the pipeline dispatches on, and the JSON Schemas from the
msgspec structs it decodes and encodes with. A route cannot be served without being described.
"""

from __future__ import annotations

import http
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import msgspec

from ._dialect import ErrorBody
from ._routing import RAW_JSON, RAW_TEXT, EventStream, Route

__all__ = ["generic_errors", "openapi_document"]

_REF: Final = "#/components/schemas/{name}"


def generic_errors(route: Route) -> tuple[int, ...]:
    """The error statuses the pipeline itself may answer for `route`, before or around its handler."""
    statuses = {429, 500, 503}  # throttled (a tenant's rate, or an address's failed authentications), busy
    if not route.public:
        statuses |= {401}
    if route.body is not None:
        statuses |= {400, 408, 413, 415, 422}
    if route.query is not None:
        statuses |= {422}
    return tuple(sorted(statuses))


def openapi_document(
    routes: Sequence[Route],
    *,
    title: str,
    version: str,
    description: str,
    answer_headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The OpenAPI 3.1 description of `routes`, whose non-public answers carry `answer_headers` (name: what)."""
    headers = {
        name: {"description": text, "schema": {"type": "string"}} for name, text in (answer_headers or {}).items()
    }
    structs = _structs(routes)
    _, schemas = msgspec.json.schema_components(structs, ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, headers)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "headers": headers,
        },
        "security": [{"bearer": []}],
    }


def _structs(routes: Iterable[Route]) -> list[Any]:
    found: dict[str, Any] = {"ErrorBody": ErrorBody}
    for route in routes:
        kinds = [route.body, *(kind.event if isinstance(kind, EventStream) else kind for kind in route.ok.values())]
        for kind in kinds:
            if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
                found[kind.__name__] = kind
    return list(found.values())


def _operation(route: Route, headers: Mapping[str, Any]) -> dict[str, Any]:
    operation: dict[str, Any] = {"operationId": route.operation_id, "summary": route.summary}
    if route.description:
        operation["description"] = route.description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}} for name in route.path_params
    ]
    if route.query is not None:
        _, found = msgspec.json.schema_components([route.query], ref_template=_REF)
        schema = found[route.query.__name__]
        required = set(schema.get("required", ()))
        for name, prop in schema["properties"].items():
            parameter = {"name": name, "in": "query", "required": name in required, "schema": prop}
            if "description" in prop:
                parameter["description"] = prop["description"]
            parameters.append(parameter)
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": _REF.format(name=route.body.__name__)}}},
        }
    answered = {} if route.public else {name: {"$ref": f"#/components/headers/{name}"} for name in headers}
    responses: dict[str, Any] = {}
    for status, kind in route.ok.items():
        responses[str(status)] = _response(status, kind, answered)
    for status in sorted({*route.errors, *generic_errors(route)}):
        responses[str(status)] = _response(status, ErrorBody, answered)
    operation["responses"] = responses
    if route.public:
        operation["security"] = []
    return operation


def _response(status: int, kind: Any, headers: Mapping[str, Any]) -> dict[str, Any]:
    response: dict[str, Any] = {"description": http.HTTPStatus(status).phrase}
    if kind is RAW_JSON:
        response["content"] = {"application/json": {"schema": {}}}
    elif kind is RAW_TEXT:
        response["content"] = {"text/plain": {"schema": {"type": "string"}}}
    elif isinstance(kind, EventStream):
        name = kind.event.__name__
        response["content"] = {
            "text/event-stream": {
                "schema": {
                    "type": "string",
                    "description": f"Server-Sent Events: `id` the event's seq, `event` its kind, `data` a {name} "
                    "as JSON; comment lines keep the connection alive",
                },
                "x-event-schema": {"$ref": _REF.format(name=name)},
            }
        }
    elif kind is not None:
        response["content"] = {"application/json": {"schema": {"$ref": _REF.format(name=kind.__name__)}}}
    if headers:
        response["headers"] = dict(headers)
    return response
