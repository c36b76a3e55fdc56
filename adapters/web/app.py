"""The facility web API: the reservation system's page drives a registration through seed 000's steps.

Every route sits under `/v1` and needs the facility's bearer token (401 `unauthorized`). Ids are
the facility's own: a facility's `registration_id` is the registration's `reference`, and Honnin
keys it by an id derived from (facility, reference) (schemas.references), so another facility's id
is looked up exactly as an unused one is (the same two reads, the same 404) and two facilities may
use the same id. A registration whose id is its reference (stored before per-facility ids, or
started on the bus) is found by a second, legacy lookup. Steps become events for
`Orchestrator.handle`; a refusal is answered 409 with the orchestrator's code and the seed's
message verbatim. A retried start with the same `request_id`,
or a retried step with the same `Idempotency-Key` header, is the same event and gets the first
answer again.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from adapters.card_bridge.links import Links
from adapters.http.common import HttpError, ok, read_json
from adapters.web.auth import (
    event_id_for,
    facility_tokens,
    idempotency_key,
    start_event_id,
    start_registration_id,
)
from adapters.web.feed import FEED_ROUTE
from adapters.web.webhooks import OutboundApi
from adapters.web.wire import link_of, read_optional_body, state_of, status_of
from orchestrator import messages
from orchestrator.errors import NotFoundError, QuarantinedError, RetryLaterError
from orchestrator.model import Registration, State
from orchestrator.ports import Clock, StoredRegistration
from orchestrator.service import HandleResult, Orchestrator
from schemas.api_web import (
    CancelRequest,
    CancelResponse,
    CompleteResponse,
    ConfirmRequest,
    ReflectResponse,
    SignLinkResponse,
    StartRegistrationRequest,
    StartRegistrationResponse,
)
from schemas.events import (
    Envelope,
    RegistrationCancelRequested,
    RegistrationCompleteRequested,
    RegistrationConfirmed,
    RegistrationStarted,
)
from schemas.payloads import CancelRequestedPayload, RegistrationConfirmedPayload, RegistrationStartedPayload
from schemas.privacy import MAX_ID_DIGITS, digit_count
from schemas.references import namespaced_id

log = structlog.get_logger("honnin.web")

ONE = "/v1/registrations/{registration_id}"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$")


def add_web_routes(
    app: web.Application,
    *,
    orchestrator: Orchestrator,
    links: Links,
    clock: Clock,
    facilities: Mapping[str, str],
    outbound: OutboundApi | None = None,
) -> None:
    """Mount the facility API on `app` (the worker's HTTP application, or a test's); with
    `outbound`, the webhook endpoint and the event feed too."""
    api = WebApi(orchestrator, links, clock)
    guard = facility_tokens(facilities).guard  # answers are never cached
    app.router.add_post("/v1/registrations", guard(api.start), name="web.start")
    app.router.add_get(ONE, guard(api.status), name="web.status")
    app.router.add_delete(ONE, guard(api.cancel), name="web.cancel")
    app.router.add_post(ONE + "/reflect", guard(api.reflect), name="web.reflect")
    app.router.add_post(ONE + "/confirm", guard(api.confirm), name="web.confirm")
    app.router.add_post(ONE + "/sign-link", guard(api.sign_link), name="web.sign_link")
    app.router.add_post(ONE + "/complete", guard(api.complete), name="web.complete")
    if outbound is not None:
        hooks, feed = outbound.webhooks(), outbound.feed()
        app.router.add_put("/v1/webhook", guard(hooks.put), name="web.webhook_put")
        app.router.add_get("/v1/webhook", guard(hooks.get), name="web.webhook_get")
        app.router.add_delete("/v1/webhook", guard(hooks.delete), name="web.webhook_delete")
        app.router.add_post("/v1/webhook/test", guard(hooks.test), name="web.webhook_test")
        app.router.add_get("/v1/events", guard(feed.events), name=FEED_ROUTE)


def _not_found() -> HttpError:
    """The same answer for a missing registration and another facility's: nothing to probe."""
    return HttpError(404, "not_found", "no such registration")


class WebApi:
    """The handlers; they hold no state of their own, the store carries it all."""

    def __init__(self, orchestrator: Orchestrator, links: Links, clock: Clock) -> None:
        self._orchestrator = orchestrator
        self._links = links
        self._clock = clock

    async def start(self, request: web.Request, facility: str) -> web.Response:
        """必要事項を入力 + 【アプリを起動する】: `registration.started`, and the app's card-read link."""
        body = await read_json(request, StartRegistrationRequest)
        reference = start_registration_id(facility, body.request_id, body.registration_id)
        payload = RegistrationStartedPayload(
            facility_id=facility, reference=reference, applicant=body.applicant
        )
        event = RegistrationStarted(
            type="registration.started",
            payload=payload,
            **self._envelope(
                namespaced_id(facility, reference),
                start_event_id(facility, body.request_id, body.registration_id),
            ),
        )
        registration = await self._started(event, facility, reference)
        answer = StartRegistrationResponse(
            registration_id=registration.reference,
            state=state_of(registration.state),
            expires_at=registration.expires_at,
            card_read_link=link_of(self._links.issue(registration.id, "card_read")),
        )
        return ok(answer, status=201)

    async def status(self, request: web.Request, facility: str) -> web.Response:
        """The page polls this: state, deadline and the verification's outcome in the seed's words."""
        return ok(status_of(await self._owned(request, facility)))

    async def reflect(self, request: web.Request, facility: str) -> web.Response:
        """【情報を反映する】: the card's facts fill the form, or the seed's error before the read."""
        registration = await self._owned(request, facility)
        if registration.terminal:
            raise HttpError(409, "registration_ended", f"the registration is {registration.state.value}")
        card = await self._orchestrator.reflect_card_info(registration.id)
        return ok(ReflectResponse(card=card, message=messages.CARD_INFO_REFLECTED))

    async def confirm(self, request: web.Request, facility: str) -> web.Response:
        """【マイナンバーカードの確認へ】: `registration.confirmed`, and the app's link to sign with."""
        stored = await self._owned_stored(request, facility)
        registration = stored.registration
        body = await read_json(request, ConfirmRequest)
        payload = RegistrationConfirmedPayload(
            notice_acknowledged=body.notice_acknowledged, phone=body.phone, email=body.email
        )
        event = RegistrationConfirmed(
            type="registration.confirmed",
            payload=payload,
            **self._envelope(registration.id, self._step_id(request, facility, "confirm", registration)),
        )
        result = await self._submit(event, too_early=messages.CARD_NOT_READ_YET, known=stored)
        return ok(self._sign_answer(result.registration or await self._load(registration.id)))

    async def sign_link(self, request: web.Request, facility: str) -> web.Response:
        """A fresh link for the current challenge: after a failure the person signs again."""
        registration = await self._owned(request, facility)
        verification = registration.verification
        if registration.state is not State.CONFIRMED or registration.challenge is None:
            state = registration.state.value
            raise HttpError(
                409, "not_signable", f"there is nothing to sign while the registration is {state}"
            )
        if verification is not None and verification.in_progress:
            raise HttpError(409, "verification_in_progress", messages.VERIFICATION_PENDING)
        return ok(self._sign_answer(registration))

    async def complete(self, request: web.Request, facility: str) -> web.Response:
        """【完了する】: activated, or the seed's error for the last verification outcome."""
        stored = await self._owned_stored(request, facility)
        registration = stored.registration
        event = RegistrationCompleteRequested(
            type="registration.complete_requested",
            **self._envelope(registration.id, self._step_id(request, facility, "complete", registration)),
        )
        result = await self._submit(event, too_early=messages.SIGNATURE_NOT_SUBMITTED, known=stored)
        activated = result.registration or await self._load(registration.id)
        if activated.activated_at is None:  # only an applied complete gets here: it activated
            raise HttpError(409, "not_activated", f"the registration is {activated.state.value}")
        answer = CompleteResponse(
            registration_id=activated.reference, state="activated", activated_at=activated.activated_at
        )
        return ok(answer)

    async def cancel(self, request: web.Request, facility: str) -> web.Response:
        """The person gave up, or the facility withdraws the registration: `cancelled`, for good."""
        registration = await self._owned(request, facility)
        body = await read_optional_body(request, CancelRequest)
        event = RegistrationCancelRequested(
            type="registration.cancel_requested",
            payload=CancelRequestedPayload(reason=body.reason),
            **self._envelope(registration.id, self._step_id(request, facility, "cancel", registration)),
        )
        await self._submit(event, too_early="")  # cancel is accepted in every open state
        return ok(CancelResponse(registration_id=registration.reference, state="cancelled"), status=202)

    def _envelope(self, registration_id: str, event_id: uuid.UUID) -> dict[str, Any]:
        """The envelope fields every step from the web shares."""
        return {
            "event_id": event_id,
            "registration_id": registration_id,
            "occurred_at": self._clock.now(),
            "source": "web",
        }

    @staticmethod
    def _step_id(request: web.Request, facility: str, route: str, registration: Registration) -> uuid.UUID:
        """The event id of a step: derived from the Idempotency-Key header when there is one."""
        return event_id_for(facility, route, registration.id, idempotency_key(request))

    async def _started(self, event: RegistrationStarted, facility: str, reference: str) -> Registration:
        """The registration this start created, or the one an earlier try of it created; within the
        facility, an id in use by another request is refused (another facility's is never seen)."""
        existing = await self._lookup(facility, reference)
        if existing is None:
            result = await self._orchestrator.handle(event)
            if result.status == "applied":
                return await self._load(event.registration_id)
            existing = await self._lookup(facility, reference)
            if existing is None:  # a duplicate with nothing here: the id was spent on another one
                raise HttpError(409, "request_id_reused", "this request_id started another registration")
        if await self._seen(existing.id, event):
            return existing
        raise HttpError(
            409, "registration_id_taken", "this registration_id is taken: choose another, or omit it"
        )

    async def _submit(
        self, event: Envelope, *, too_early: str, known: StoredRegistration | None = None
    ) -> HandleResult:
        """Hand a step to the orchestrator (with the registration just read for it, saving a load);
        a duplicate answers as the first try did, a refusal 409."""
        bound = log.bind(registration_id=event.registration_id, event_type=event.type)
        try:
            result = await self._orchestrator.handle(event, known)
        except RetryLaterError as exc:  # the person must do an earlier step first: not a 503 here
            bound.info("web.too_early", code=exc.code)
            if exc.code == "unknown_registration":
                raise _not_found() from None
            raise HttpError(409, "not_yet_accepted", too_early or exc.message) from None
        if result.status == "duplicate":
            result = await self._replayed(event)
        bound.info("web.submitted", outcome=result.status, code=result.code)
        if result.status == "rejected":
            raise HttpError(409, result.code or "rejected", result.message or "the step was refused")
        return result

    async def _replayed(self, event: Envelope) -> HandleResult:
        """What the first try of a retried event got, from the registration's history."""
        for entry in await self._orchestrator.history(event.registration_id):
            if entry.event_id == str(event.event_id):
                if entry.outcome == "rejected":
                    return HandleResult("rejected", State(entry.from_state), entry.code, entry.message)
                return HandleResult("applied", State(entry.to_state))
        raise HttpError(409, "idempotency_conflict", "this idempotency key was used for another request")

    async def _seen(self, registration_id: str, event: Envelope) -> bool:
        """Whether the registration's history holds this very event (a retried start)."""
        history = await self._orchestrator.history(registration_id)
        return any(entry.event_id == str(event.event_id) for entry in history)

    async def _owned(self, request: web.Request, facility: str) -> Registration:
        """The path's registration if this facility started it; 404 otherwise, whatever the reason."""
        return (await self._owned_stored(request, facility)).registration

    async def _owned_stored(self, request: web.Request, facility: str) -> StoredRegistration:
        """`_owned` with the version it was read at, for a step to hand on to the orchestrator."""
        reference = request.match_info["registration_id"]
        if not _ID.match(reference) or digit_count(reference) > MAX_ID_DIGITS:
            raise _not_found()
        stored = await self._lookup_stored(facility, reference)
        if stored is None:
            raise _not_found()
        return stored

    async def _lookup(self, facility: str, reference: str) -> Registration | None:
        stored = await self._lookup_stored(facility, reference)
        return stored.registration if stored else None

    async def _lookup_stored(self, facility: str, reference: str) -> StoredRegistration | None:
        """This facility's registration called `reference`: by the derived id, then by the id itself
        (a registration stored before per-facility ids, or started on the bus). Both reads happen
        whoever holds the id, so another facility's looks like an unused one."""
        own = await self._find_stored(namespaced_id(facility, reference))
        mine = own.registration if own else None
        if (
            own is not None
            and mine is not None
            and mine.facility_id == facility
            and mine.reference == reference
        ):
            return own
        try:
            legacy = await self._find_stored(reference)
        except HttpError:  # quarantined: it may be another facility's, and must not show
            return None
        old = legacy.registration if legacy else None
        if legacy is not None and old is not None and old.facility_id == facility and old.reference == old.id:
            return legacy
        return None

    async def _find(self, registration_id: str) -> Registration | None:
        """The registration, or None: absence is an answer here, not an error."""
        stored = await self._find_stored(registration_id)
        return stored.registration if stored else None

    async def _find_stored(self, registration_id: str) -> StoredRegistration | None:
        try:
            return await self._orchestrator.status(registration_id)
        except NotFoundError:
            return None
        except QuarantinedError:
            raise HttpError(
                503, "registration_unavailable", "this registration cannot be read now; operators are told"
            ) from None

    async def _load(self, registration_id: str) -> Registration:
        """The registration just written (or found): its current state and challenge attempt."""
        registration = await self._find(registration_id)
        if registration is None:  # purged between two reads: as gone as any other
            raise _not_found()
        return registration

    def _sign_answer(self, registration: Registration) -> SignLinkResponse:
        """The sign link for the registration's current challenge attempt (the bridge refuses others)."""
        attempt = registration.challenge_attempt
        return SignLinkResponse(
            registration_id=registration.reference,
            state=state_of(registration.state),
            attempt=attempt,
            sign_link=link_of(self._links.issue(registration.id, "sign", attempt)),
        )
