"""The operator API: `/ops/v1`, on the same server as `/v1`, behind operators' own bearer tokens.

Every route is a thin face of orchestrator.operations (the CLI's `honnin ops` is the other): the
same listings, the same replay, the same audit (the token's operator name is the who). Answers
are never cached and carry no personal fact; errors come in the house's one shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from aiohttp import web

from adapters.http.common import HttpError, ok, read_json
from adapters.ops.auth import operator_tokens
from orchestrator.errors import InvalidRequestError
from orchestrator.listing import AuditRecord, RegistrationQuery, RegistrationSummary
from orchestrator.model import State
from orchestrator.operations import Operations
from orchestrator.operations_views import (
    Actor,
    DeadLetterSummary,
    RegistrationDetail,
    ReplayReport,
    ReplaySelection,
    parse_age,
    parse_instant,
)
from orchestrator.ports import Clock
from schemas.api_ops import (
    OpsAuditPage,
    OpsAuditRecord,
    OpsCollected,
    OpsCounts,
    OpsDeadLetter,
    OpsDeadLetterPage,
    OpsDecision,
    OpsRegistration,
    OpsRegistrationDetail,
    OpsRegistrationPage,
    OpsReplayItem,
    OpsReplayReport,
    OpsReplayRequest,
    OpsStep,
    OpsVerification,
)

OPS = "/ops/v1"
REPLAY_BUDGET = 10.0  # seconds of replaying per request, within the server's request time limit
_STATES = frozenset(s.value for s in State) - {"new"}
_VERIFICATIONS = frozenset({"pending", "retrying", "passed", "failed", "parked"})


def add_ops_routes(
    app: web.Application, *, operations: Operations, clock: Clock, operators: Mapping[str, str]
) -> None:
    """Mount `/ops/v1` on the worker's HTTP application (or a test's)."""
    api = OpsApi(operations, clock)
    guard = operator_tokens(operators).guard
    app.router.add_get(OPS + "/registrations", guard(api.registrations), name="ops.registrations")
    app.router.add_get(OPS + "/registrations/{registration_id}", guard(api.show), name="ops.show")
    app.router.add_get(OPS + "/counts", guard(api.counts), name="ops.counts")
    app.router.add_get(OPS + "/dead-letters", guard(api.dead_letters), name="ops.dead_letters")
    app.router.add_post(OPS + "/dead-letters/collect", guard(api.collect), name="ops.collect")
    app.router.add_post(OPS + "/replays", guard(api.replay), name="ops.replay")
    app.router.add_get(OPS + "/audit", guard(api.audit), name="ops.audit")


class OpsApi:
    def __init__(self, operations: Operations, clock: Clock) -> None:
        self._ops = operations
        self._clock = clock

    async def registrations(self, request: web.Request, _: str) -> web.Response:
        q = request.query
        page = await self._ops.list_registrations(
            registration_query(q, self._clock.now()), q.get("after") or None, _int(q, "limit", 100)
        )
        body = OpsRegistrationPage(
            items=[registration_body(r) for r in page.items], next_cursor=page.next_cursor
        )
        return ok(body)

    async def show(self, request: web.Request, _: str) -> web.Response:
        detail = await self._ops.show(request.match_info["registration_id"])
        return ok(detail_body(detail))

    async def counts(self, _: web.Request, __: str) -> web.Response:
        counts = await self._ops.counts()
        body = OpsCounts(
            by_state=counts.by_state,
            by_verification=counts.by_verification,
            by_code=counts.by_code,
            unindexed=counts.unindexed,
            at=self._clock.now(),
        )
        return ok(body)

    async def dead_letters(self, request: web.Request, _: str) -> web.Response:
        q = request.query
        limit = _int(q, "limit", 100)
        letters = await self._ops.dead_letters(q.get("queue") or None, _int(q, "after", 0), limit)
        next_after = letters[-1].id if len(letters) == limit else None
        return ok(OpsDeadLetterPage(items=[letter_body(d) for d in letters], next_after=next_after))

    async def collect(self, _: web.Request, operator: str) -> web.Response:
        moved = await self._ops.collect(Actor(operator, "http"))
        return ok(OpsCollected(collected=moved))

    async def replay(self, request: web.Request, operator: str) -> web.Response:
        body = await read_json(request, OpsReplayRequest)
        selection = ReplaySelection(
            tuple(body.registration_ids), tuple(body.dead_letter_ids), body.code, body.since, body.until
        )
        report = await self._ops.replay(
            selection,
            Actor(operator, "http"),
            dry_run=body.dry_run,
            rate=body.rate,
            reason=body.reason,
            budget_seconds=REPLAY_BUDGET,
        )
        return ok(report_body(report))

    async def audit(self, request: web.Request, _: str) -> web.Response:
        q = request.query
        limit = _int(q, "limit", 100)
        before = _int(q, "before", 0) or None
        records = await self._ops.audit(before, limit, q.get("operator") or None)
        next_before = records[-1].id if len(records) == limit else None
        return ok(OpsAuditPage(items=[audit_body(r) for r in records], next_before=next_before))


def registration_query(q: Mapping[str, str], now: datetime) -> RegistrationQuery:
    """?state=&verification=&code=&facility=&profile=, ISO times (created_after …) and ages
    (older_than=2h: created before now - 2h; newer_than=30m: created after now - 30m)."""
    state, verification = q.get("state") or None, q.get("verification") or None
    if state is not None and state not in _STATES:
        raise InvalidRequestError(f"state: one of {', '.join(sorted(_STATES))}", code="invalid_query")
    if verification is not None and verification not in _VERIFICATIONS:
        raise InvalidRequestError(
            f"verification: one of {', '.join(sorted(_VERIFICATIONS))}", code="invalid_query"
        )
    times: dict[str, datetime | None] = {
        name: parse_instant(q[name], name) if q.get(name) else None
        for name in ("created_after", "created_before", "updated_after", "updated_before")
    }
    if q.get("older_than"):
        times["created_before"] = now - parse_age(q["older_than"], "older_than")
    if q.get("newer_than"):
        times["created_after"] = now - parse_age(q["newer_than"], "newer_than")
    return RegistrationQuery(
        state=state,
        verification=verification,
        code=_text(q, "code"),
        facility_id=_text(q, "facility"),
        profile=_text(q, "profile"),
        **times,
    )


def _text(q: Mapping[str, str], name: str) -> str | None:
    value = q.get(name) or None
    if value is not None and (len(value) > 64 or not value.isprintable()):
        raise InvalidRequestError(f"{name}: 1-64 printable characters", code="invalid_query")
    return value


def _int(q: Mapping[str, str], name: str, default: int) -> int:
    text = q.get(name)
    if not text:
        return default
    if not text.isdigit() or len(text) > 9:
        raise HttpError(400, "invalid_query", f"{name}: a whole number")
    return int(text)


def registration_body(r: RegistrationSummary) -> OpsRegistration:
    data: dict[str, Any] = dict(vars(r))
    data["registration_id"] = data.pop("id")
    return OpsRegistration.model_validate(data)


def detail_body(d: RegistrationDetail) -> OpsRegistrationDetail:
    v = d.verification
    return OpsRegistrationDetail(
        registration=registration_body(d.summary),
        expires_at=d.expires_at,
        activated_at=d.activated_at,
        ended_at=d.ended_at,
        card_read=d.card_read,
        challenge_attempt=d.challenge_attempt,
        verification=OpsVerification.model_validate(vars(v)) if v else None,
        history=[OpsStep.model_validate(vars(s)) for s in d.history],
        decisions=[OpsDecision.model_validate(vars(x)) for x in d.decisions],
    )


def letter_body(d: DeadLetterSummary) -> OpsDeadLetter:
    return OpsDeadLetter.model_validate(vars(d))


def report_body(report: ReplayReport) -> OpsReplayReport:
    return OpsReplayReport(
        dry_run=report.dry_run,
        affected=report.affected,
        audit_id=report.audit_id,
        remaining=report.remaining,
        items=[OpsReplayItem.model_validate(vars(i)) for i in report.items],
    )


def audit_body(r: AuditRecord) -> OpsAuditRecord:
    data: dict[str, Any] = dict(vars(r))
    return OpsAuditRecord.model_validate(data)
