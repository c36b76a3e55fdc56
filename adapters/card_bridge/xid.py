"""The xID app's API (seed 003): the app registers by itself, with its app client credential.

Every route under `/app/v1/xid/registrations` needs `Authorization: Bearer <app client secret>`
(401 otherwise); a registration another client started, or a facility registration, is
answered 404 like one that does not exist. Steps become events for `Orchestrator.handle`; a
refusal is answered 409 with the orchestrator's code and message, an early step 409
`not_yet_accepted`. The e-mail link the person opens lives in `xid_email`.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from adapters.card_bridge.xid_auth import app_clients
from adapters.card_bridge.xid_checks import certificate_facts, check_consent_signature, device_key
from adapters.card_bridge.xid_email import add_email_confirmation_routes
from adapters.card_bridge.xid_links import EmailLinks
from adapters.card_bridge.xid_wire import four_facts, municipality_of, status_of, xid_of
from adapters.http.common import HttpError, ok, read_json
from adapters.web.auth import start_event_id, start_registration_id
from adapters.web.wire import read_optional_body, state_of
from orchestrator import messages
from orchestrator import messages_xid as words
from orchestrator.errors import NotFoundError, RetryLaterError
from orchestrator.model import Registration, State
from orchestrator.ports import Clock
from orchestrator.service import Orchestrator
from orchestrator.states.xid_steps import signed_message
from schemas.api_xid import (
    ActivationRequest,
    CertificateRequest,
    ChallengeToSign,
    ConsentRequest,
    EmailQueued,
    EmailRequest,
    EmptyRequest,
    Enabled,
    FactsShown,
    InUse,
    SignatureTaken,
    XidSignatureRequest,
    XidStarted,
    XidStartRequest,
)
from schemas.events import (
    ActivationRequested,
    CertificateRead,
    ConsentGiven,
    EmailEntered,
    Envelope,
    RegistrationStarted,
    UseStarted,
    XidSignatureSubmitted,
)
from schemas.payloads import RegistrationStartedPayload
from schemas.payloads_xid import (
    ActivationRequestedPayload,
    CertificateReadPayload,
    ConsentGivenPayload,
    EmailEnteredPayload,
    XidSignaturePayload,
)
from schemas.privacy import contains_individual_number

log = structlog.get_logger("honnin.xid")

XID = "/app/v1/xid/registrations"
ONE = XID + "/{registration_id}"
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{7,63}$")


def add_xid_routes(
    app: web.Application,
    *,
    orchestrator: Orchestrator,
    clock: Clock,
    clients: Mapping[str, str],
    email_links: EmailLinks,
) -> None:
    """Mount the xID app API and the e-mail confirmation link on `app`."""
    api = XidApi(orchestrator, clock, email_links)
    guard = app_clients(clients).guard  # facts, challenges: no cache keeps them
    app.router.add_post(XID, guard(api.start), name="xid.start")
    app.router.add_get(ONE, guard(api.status), name="xid.status")
    app.router.add_post(ONE + "/certificate", guard(api.certificate), name="xid.certificate")
    app.router.add_post(ONE + "/consent", guard(api.consent), name="xid.consent")
    app.router.add_get(ONE + "/challenge", guard(api.challenge), name="xid.challenge")
    app.router.add_post(ONE + "/signature", guard(api.signature), name="xid.signature")
    app.router.add_post(ONE + "/activation", guard(api.activation), name="xid.activation")
    app.router.add_post(ONE + "/email", guard(api.email), name="xid.email")
    app.router.add_post(ONE + "/start-using", guard(api.start_using), name="xid.start_using")
    app.router.add_get(ONE + "/municipality", guard(api.municipality), name="xid.municipality")
    add_email_confirmation_routes(app, orchestrator=orchestrator, clock=clock, email_links=email_links)


def _not_found() -> HttpError:
    return HttpError(404, "not_found", "no such registration")


class XidApi:
    """The handlers; the store carries every state, the token in the path nothing secret."""

    def __init__(self, orchestrator: Orchestrator, clock: Clock, email_links: EmailLinks) -> None:
        self._orchestrator = orchestrator
        self._clock = clock
        self._links = email_links

    async def start(self, request: web.Request, client: str) -> web.Response:
        """The app's first screen was accepted (利用規約, 同意する): a registration of the xID profile."""
        body = await read_json(request, XidStartRequest)
        rid = start_registration_id(client, body.request_id, None)
        event = RegistrationStarted(
            type="registration.started",
            payload=RegistrationStartedPayload(facility_id=client, profile="xid", terms=body.terms),
            **self._envelope(rid, start_event_id(client, body.request_id, None)),
        )
        result = await self._orchestrator.handle(event)
        if result.status == "rejected":
            raise HttpError(409, result.code or "rejected", result.message or "the start was refused")
        registration = await self._find(rid)
        if registration is None or not _is_own(registration, client):
            raise HttpError(409, "request_id_reused", "this request_id started another registration")
        answer = XidStarted(
            registration_id=rid,
            state=state_of(registration.state),
            expires_at=registration.expires_at,
            terms=xid_of(registration).terms,
        )
        return ok(answer, status=201 if result.status == "applied" else 200)

    async def status(self, request: web.Request, client: str) -> web.Response:
        return ok(status_of(await self._owned(request, client)))

    async def certificate(self, request: web.Request, client: str) -> web.Response:
        """The signing certificate's four facts, for 基本情報の確認 (再読み取り: send it again)."""
        registration = await self._owned(request, client)
        body = await read_json(request, CertificateRequest)
        facts, print_ = certificate_facts(body.certificate)
        payload = CertificateReadPayload(facts=facts, certificate_fingerprint=print_)
        await self._submit(
            CertificateRead(type="xid.certificate_read", payload=payload, **self._new(registration))
        )
        after = await self._load(registration.id)
        answer = FactsShown(
            state=state_of(after.state),
            facts=four_facts(facts),
            message=words.FACTS_NOTICE,
            note=words.FACTS_WRONG,
            certificate_fingerprint=print_,
        )
        return ok(answer)

    async def consent(self, request: web.Request, client: str) -> web.Response:
        """本人確認に関する同意: the challenge is issued; the answer says what the card signs."""
        registration = await self._owned(request, client)
        body = await read_json(request, ConsentRequest)
        payload = ConsentGivenPayload(consent=body.consent)
        await self._submit(ConsentGiven(type="xid.consent_given", payload=payload, **self._new(registration)))
        return ok(_to_sign(await self._load(registration.id)))

    async def challenge(self, request: web.Request, client: str) -> web.Response:
        """What to sign now: after a failed verification, a fresh challenge is waiting here."""
        return ok(_to_sign(_signable(await self._owned(request, client))))

    async def signature(self, request: web.Request, client: str) -> web.Response:
        """The card's signature over the consent message, checked here, then verified in the background."""
        owned = await self._owned(request, client)
        body = await read_json(request, XidSignatureRequest)
        registration = _signable(owned)
        check_consent_signature(body, signed_message(registration))
        payload = XidSignaturePayload(
            certificate=body.certificate, signature=body.signature, algorithm=body.algorithm
        )
        event = XidSignatureSubmitted(
            type="xid.signature_submitted", payload=payload, **self._new(registration)
        )
        await self._submit(event)
        return ok(SignatureTaken(), status=202)

    async def activation(self, request: web.Request, client: str) -> web.Response:
        """ID有効化: the device key is registered (PIN1 and PIN2 stay on the device)."""
        registration = await self._owned(request, client)
        body = await read_json(request, ActivationRequest)
        payload = ActivationRequestedPayload(device_key=device_key(body.device_public_key))
        event = ActivationRequested(
            type="xid.activation_requested", payload=payload, **self._new(registration)
        )
        await self._submit(event, too_early=messages.SIGNATURE_NOT_SUBMITTED)
        enabled = await self._load(registration.id)
        record = xid_of(enabled).municipality
        assert record is not None  # ID有効化 always decides it, `unknown` included
        return ok(Enabled(state=state_of(enabled.state), municipality=municipality_of(record)))

    async def email(self, request: web.Request, client: str) -> web.Response:
        """メールアドレスの登録 and 再入力する: a new link is mailed, the earlier one is void."""
        registration = await self._owned(request, client)
        body = await read_json(request, EmailRequest)
        link = self._links.new(registration.id)
        payload = EmailEnteredPayload(email=body.email, link_id=link.link_id, link_sha256=link.link_sha256)
        event = EmailEntered(type="xid.email_entered", payload=payload, **self._new(registration))
        await self._submit(event, too_early=messages.SIGNATURE_NOT_SUBMITTED)
        email = xid_of(await self._load(registration.id)).email
        assert email is not None
        answer = EmailQueued(
            state="email_pending",
            attempt=email.attempt,
            link_expires_at=email.link_expires_at,
            message=words.EMAIL_SENT,
            warning=email.warning,
            warning_code="carrier_mail" if email.warning else None,
        )
        return ok(answer, status=202)

    async def start_using(self, request: web.Request, client: str) -> web.Response:
        """利用を開始する: accepted only once the address is confirmed."""
        registration = await self._owned(request, client)
        await read_optional_body(request, EmptyRequest)
        await self._submit(
            UseStarted(type="xid.use_started", **self._new(registration)), too_early=words.EMAIL_NOT_ENTERED
        )
        done = await self._load(registration.id)
        assert done.activated_at is not None  # only an applied 利用を開始する gets here
        return ok(InUse(registration_id=done.id, activated_at=done.activated_at))

    async def municipality(self, request: web.Request, client: str) -> web.Response:
        """お住まいの自治体, decided at ID有効化."""
        record = xid_of(await self._owned(request, client)).municipality
        if record is None:
            raise HttpError(409, "not_enabled", "お住まいの自治体 is known once the ID is enabled (ID有効化)")
        return ok(municipality_of(record))

    def _envelope(self, registration_id: str, event_id: uuid.UUID) -> dict[str, Any]:
        return {
            "event_id": event_id,
            "registration_id": registration_id,
            "occurred_at": self._clock.now(),
            "source": "app",
        }

    def _new(self, registration: Registration) -> dict[str, Any]:
        return self._envelope(registration.id, uuid.uuid4())

    async def _submit(self, event: Envelope, *, too_early: str = "") -> None:
        bound = log.bind(registration_id=event.registration_id, event_type=event.type)
        try:
            result = await self._orchestrator.handle(event)
        except RetryLaterError as exc:  # an earlier step is missing: the app does it first
            bound.info("xid.too_early", code=exc.code)
            if exc.code == "unknown_registration":
                raise _not_found() from None
            raise HttpError(409, "not_yet_accepted", too_early or exc.message) from None
        bound.info("xid.submitted", outcome=result.status, code=result.code)
        if result.status == "duplicate":
            raise HttpError(409, "duplicate", "this step was submitted already")
        if result.status == "rejected":
            raise HttpError(409, result.code or "rejected", result.message or "the step was refused")

    async def _owned(self, request: web.Request, client: str) -> Registration:
        rid = request.match_info["registration_id"]
        if not _ID.match(rid) or contains_individual_number(rid):
            raise _not_found()
        registration = await self._find(rid)
        if registration is None or not _is_own(registration, client):
            raise _not_found()
        return registration

    async def _find(self, registration_id: str) -> Registration | None:
        try:
            return (await self._orchestrator.status(registration_id)).registration
        except NotFoundError:
            return None

    async def _load(self, registration_id: str) -> Registration:
        registration = await self._find(registration_id)
        if registration is None:
            raise _not_found()
        return registration


def _is_own(registration: Registration, client: str) -> bool:
    return (
        registration.profile == "xid" and registration.xid is not None and registration.facility_id == client
    )


def _signable(registration: Registration) -> Registration:
    if registration.state is not State.CONFIRMED or registration.challenge is None:
        raise HttpError(
            409,
            "not_signable",
            f"there is nothing to sign while the registration is {registration.state.value}",
        )
    return registration


def _to_sign(registration: Registration) -> ChallengeToSign:
    assert registration.challenge is not None
    return ChallengeToSign(
        state=state_of(registration.state),
        attempt=registration.challenge_attempt,
        challenge=registration.challenge,
        terms=xid_of(registration).terms,
        to_be_signed=base64.b64encode(signed_message(registration)).decode(),
    )
