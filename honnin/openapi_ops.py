"""The operator API's routes (`/ops/v1`) for the OpenAPI document, beside the facility API's."""

from __future__ import annotations

from pydantic import BaseModel

from honnin.openapi import Route
from schemas import api_ops as ops

OPS_ERRORS = (400, 401, 503)
LIST_QUERY = (
    ("state", "the registration's state", ()),
    ("verification", "the verification's status", ("pending", "retrying", "passed", "failed", "parked")),
    ("code", "the current failure, park or retry code, e.g. 42", ()),
    ("facility", "the facility's id", ()),
    ("profile", "facility or xid", ()),
    ("created_after", "ISO 8601 (UTC without a zone): created at or after", ()),
    ("created_before", "ISO 8601: created before", ()),
    ("updated_after", "ISO 8601: last changed at or after", ()),
    ("updated_before", "ISO 8601: last changed before", ()),
    ("older_than", "an age, e.g. 2h, 30m, 7d: created before now minus it", ()),
    ("newer_than", "an age: created after now minus it", ()),
    ("limit", "1-1000, default 100", ()),
    ("after", "the next_cursor of the previous page", ()),
)


def _ops(
    method: str,
    path: str,
    summary: str,
    response: type[BaseModel],
    *,
    request: type[BaseModel] | None = None,
    errors: tuple[int, ...] = OPS_ERRORS,
    query: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
) -> Route:
    """An operator route: tagged `operator`, behind an operator token (HONNIN_OPERATOR_TOKENS)."""
    return Route(
        method, path, summary, response, 200, request, errors,
        tag="operator", scheme="operatorToken", query=query,
    )  # fmt: skip


OPS_ROUTES = [
    _ops(
        "GET",
        "/ops/v1/registrations",
        "Registrations by state, verification, code, facility, profile and age; keyset pages",
        ops.OpsRegistrationPage,
        query=LIST_QUERY,
    ),
    _ops(
        "GET",
        "/ops/v1/registrations/{registration_id}",
        "One registration: its whole history and every verification decision (no personal fact)",
        ops.OpsRegistrationDetail,
        errors=(401, 404, 409, 503),
    ),
    _ops("GET", "/ops/v1/counts", "Counts by state, verification status and code", ops.OpsCounts),
    _ops(
        "GET",
        "/ops/v1/dead-letters",
        "Dead letters kept in the store: queue, reason, attempts, first and last seen (never the body)",
        ops.OpsDeadLetterPage,
        query=(("queue", "only this queue's", ()), ("after", "an id", ()), ("limit", "1-1000", ())),
    ),
    _ops(
        "POST",
        "/ops/v1/replays",
        "Replay parked registrations (by id, code or time range) and dead letters; dry_run: what would be",
        ops.OpsReplayReport,
        request=ops.OpsReplayRequest,
        errors=(400, 401, 413, 415, 422, 503),
    ),
    _ops(
        "GET",
        "/ops/v1/audit",
        "Every operator action, newest first: who, when, what, how many",
        ops.OpsAuditPage,
        query=(("operator", "only this operator's", ()), ("before", "an id", ()), ("limit", "1-1000", ())),
    ),
]
