"""The OpenAPI document of both HTTP APIs, built from the same pydantic models the handlers use.

`ROUTES` is the one list of what is served; a test checks it against the aiohttp router both
ways, so the document cannot drift from the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    response: type[BaseModel] | None
    status: int = 200
    request: type[BaseModel] | None = None
    errors: tuple[int, ...] = ()
    tag: str = "facility"
    security: bool = True
    media_type: str = "application/json"
    body_required: bool = True
    idempotency_key: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    scheme: str = "facilityToken"  # which credential `security` asks for
    query: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (name, description, allowed values)


class ErrorBody(BaseModel):
    """Every error: a machine code, a Japanese message shown to the person as it is (the seed's words
    where the seed has them), the same in English, and details: where and why for a 422 (`loc`,
    `type`, `msg`), and after seed 000 §3's errors an entry of `type` `remedy` with the seed's
    原因・対処法 (`cause`, `remedy`, `note`, `remedy_en`)."""

    code: str
    message: str = Field(description="Japanese, for the person: show it as it is")
    message_en: str = Field(description="the same in English, for logs and integrators")
    details: list[dict[str, Any]] = Field(
        default=[],
        description="422: {loc, type, msg}; after seed §3's errors: {type: remedy, cause?, remedy, note?}",
    )


@dataclass(frozen=True)
class Webhook:
    """An event Honnin POSTs to a facility's endpoint (OpenAPI 3.1 `webhooks`)."""

    name: str
    summary: str
    body: type[BaseModel]


WEBHOOK_HEADERS = (
    ("webhook-id", "the event id: the same on every retry, so the receiver deduplicates by it"),
    ("webhook-timestamp", "seconds since the epoch when this attempt was signed"),
    ("webhook-signature", "space-separated `v1,<base64 HMAC-SHA256 of id.timestamp.body>`, one per secret"),
)


def document(
    routes: list[Route], *, title: str, version: str, webhooks: tuple[Webhook, ...] = ()
) -> dict[str, Any]:
    models = (
        {r.request for r in routes if r.request}
        | {r.response for r in routes if r.response}
        | {w.body for w in webhooks}
        | {ErrorBody}
    )
    refs, defs = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "webhooks": {w.name: _webhook(w, refs) for w in webhooks},
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "facilityToken": {"type": "http", "scheme": "bearer"},
                "appClient": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an xID app client's secret (HONNIN_APP_CLIENTS); never a facility token",
                },
                "operatorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an operator's token (HONNIN_OPERATOR_TOKENS); never a facility token",
                },
            },
        },
    }


def _operation(route: Route, refs: dict[Any, Any]) -> dict[str, Any]:
    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return dict(refs[(model, "validation")])

    responses: dict[str, Any] = {}
    if route.response is not None:
        responses[str(route.status)] = {
            "description": route.summary,
            "content": {route.media_type: {"schema": ref(route.response)}},
        }
    else:
        responses[str(route.status)] = {"description": route.summary, "content": {route.media_type: {}}}
    for status in route.errors:
        responses[str(status)] = {
            "description": "error",
            "content": {"application/json": {"schema": ref(ErrorBody)}},
        }
    operation: dict[str, Any] = {"summary": route.summary, "tags": [route.tag], "responses": responses}
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_names(route.path)
    ]
    parameters += [
        {"name": name, "in": "query", "required": False, "description": text, "schema": _enum(values)}
        for name, text, values in route.query
    ]
    if route.idempotency_key:
        parameters.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "a retried request with the same key is the same step, answered as the first",
                "schema": {"type": "string", "maxLength": 128},
            }
        )
    if parameters:
        operation["parameters"] = parameters
    if route.request is not None:
        operation["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": ref(route.request)}},
        }
    if route.security:
        operation["security"] = [{route.scheme: []}]
    operation.update(route.extra)
    return operation


def _webhook(hook: Webhook, refs: dict[Any, Any]) -> dict[str, Any]:
    """A POST to the facility's endpoint, signed per Standard Webhooks; 2xx is delivered, 410
    disables the endpoint, anything else is retried."""
    return {
        "post": {
            "summary": hook.summary,
            "parameters": [
                {
                    "name": name,
                    "in": "header",
                    "required": True,
                    "description": text,
                    "schema": {"type": "string"},
                }
                for name, text in WEBHOOK_HEADERS
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": dict(refs[(hook.body, "validation")])}},
            },
            "responses": {
                "2XX": {"description": "delivered"},
                "410": {"description": "gone: Honnin disables the endpoint"},
                "default": {"description": "anything else: retried with backoff for about 3 days"},
            },
        }
    }


def _enum(values: tuple[str, ...]) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)} if values else {"type": "string"}


def _path_names(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]
