"""The card bridge's HTTP API: the phone app reads the card and signs through one-time links.

Every route sits under `/app/v1/links/{token}`; the token is opened first (404 unknown, 410
expired, 403 another step's link). Steps go straight to `Orchestrator.handle` with the link's
own event id, so a second use of a link is a duplicate and answered 409 `link_used`.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal, TypedDict

import structlog
from aiohttp import web

from adapters.card_bridge import landing
from adapters.card_bridge.links import LINK_PATH, Claims, Links, Step
from adapters.card_bridge.qr import render_png, render_svg
from adapters.card_bridge.signing import check_signature
from adapters.http.common import HttpError, ok, read_json, status_of
from orchestrator.errors import HonninError, RetryLaterError
from orchestrator.model import Registration
from orchestrator.ports import Clock
from orchestrator.service import Orchestrator
from schemas.api_card_bridge import (
    CardInfoAccepted,
    CardInfoRequest,
    ChallengeResponse,
    LinkInfo,
    SignatureAccepted,
    SignatureRequest,
)
from schemas.events import CardInfoRead, Envelope, SignatureSubmitted
from schemas.payloads import CardInfoReadPayload, SignatureSubmittedPayload

log = structlog.get_logger("honnin.card_bridge")

BASE = LINK_PATH + "{token}"
NO_STORE = {"Cache-Control": "no-store"}


class _AppFields(TypedDict):
    """The envelope fields every step from the app shares."""

    event_id: uuid.UUID
    registration_id: str
    occurred_at: datetime
    source: Literal["app"]


def add_card_bridge_routes(
    app: web.Application,
    *,
    orchestrator: Orchestrator,
    links: Links,
    clock: Clock,
    simulator: landing.Simulator | None = None,
) -> None:
    """Mount the phone app's API on `app` (the worker's HTTP application, or a test's); with
    `simulator` (demo mode), the landing page offers the phone-app simulator too."""
    bridge = CardBridge(orchestrator, links, clock, simulator)
    app.router.add_get(BASE, bridge.link, name="card_bridge.link")
    app.router.add_post(BASE + "/card-info", bridge.card_info, name="card_bridge.card_info")
    app.router.add_get(BASE + "/challenge", bridge.challenge, name="card_bridge.challenge")
    app.router.add_post(BASE + "/signature", bridge.signature, name="card_bridge.signature")
    app.router.add_get(BASE + "/qr.svg", bridge.qr_svg, name="card_bridge.qr_svg")
    app.router.add_get(BASE + "/qr.png", bridge.qr_png, name="card_bridge.qr_png")


class CardBridge:
    """The handlers; they hold no state of their own, the store and the token carry it all."""

    def __init__(
        self, orchestrator: Orchestrator, links: Links, clock: Clock, simulator: landing.Simulator | None
    ) -> None:
        self._orchestrator = orchestrator
        self._links = links
        self._clock = clock
        self._simulator = simulator

    async def link(self, request: web.Request) -> web.Response:
        """What the app asks first: which screen to open, and for `sign` what to sign. A browser
        (the QR code, 【アプリを起動する】 without the app) gets the landing page instead."""
        if landing.wants_html(request):
            return await self._landing(request)
        claims = self._open(request, None)
        challenge, attempt = None, None
        if claims.step == "sign":
            registration = await self._signing(claims)
            challenge, attempt = registration.challenge, registration.challenge_attempt
        info = LinkInfo(
            step=claims.step,
            registration_id=claims.registration_id,
            expires_at=claims.expires_at,
            challenge=challenge,
            attempt=attempt,
        )
        return _no_store(ok(info.model_dump(mode="json", exclude_none=True)))

    async def card_info(self, request: web.Request) -> web.Response:
        """Step 2: the card's four facts become `card.info_read`, once per link."""
        claims = self._open(request, "card_read")
        body = await read_json(request, CardInfoRequest)
        event = CardInfoRead(
            type="card.info_read",
            payload=CardInfoReadPayload(card=body.card),
            **self._envelope(claims),
        )
        await self._submit(event, claims)
        return _no_store(ok(CardInfoAccepted()))

    async def challenge(self, request: web.Request) -> web.Response:
        """Step 5 begins: the bytes the card signs, read from the store (never from a message)."""
        registration = await self._signing(self._open(request, "sign"))
        assert registration.challenge is not None  # _signing refuses a registration without one
        answer = ChallengeResponse(challenge=registration.challenge, attempt=registration.challenge_attempt)
        return _no_store(ok(answer))

    async def signature(self, request: web.Request) -> web.Response:
        """Step 5: checked here against this registration's challenge, then verified in the background."""
        claims = self._open(request, "sign")
        body = await read_json(request, SignatureRequest)
        registration = await self._signing(claims)
        assert registration.challenge is not None
        self._check(body, registration.challenge, claims)
        event = SignatureSubmitted(
            type="card.signature_submitted",
            payload=SignatureSubmittedPayload(
                certificate=body.certificate, signature=body.signature, algorithm=body.algorithm
            ),
            **self._envelope(claims),
        )
        await self._submit(event, claims)
        return _no_store(ok(SignatureAccepted(), status=202))

    async def qr_svg(self, request: web.Request) -> web.Response:
        """The PC/tablet page shows this; the phone scans it and opens the same link."""
        url = self._url(request)
        return web.Response(body=render_svg(url), content_type="image/svg+xml", headers=NO_STORE)

    async def qr_png(self, request: web.Request) -> web.Response:
        """The same code as a PNG, for pages that cannot embed SVG."""
        url = self._url(request)
        return web.Response(body=render_png(url), content_type="image/png", headers=NO_STORE)

    async def _landing(self, request: web.Request) -> web.Response:
        """The landing page, or the reason the link cannot be used, in Japanese."""
        try:
            claims = self._open(request, None)
            if claims.step == "sign":
                await self._signing(claims)
            os = landing.os_of(request, guess=True)
        except HttpError as exc:
            return landing.error_page(exc)
        except HonninError as exc:  # the registration is gone (purged): the page says so too
            return landing.error_page(HttpError(status_of(exc), exc.code, exc.message))
        token = request.match_info["token"]
        return landing.page(claims, token, self._links, os, self._simulator)

    def _open(self, request: web.Request, step: Step | None) -> Claims:
        """Every route starts here: a genuine, unexpired link for this step, or 404/410/403."""
        return self._links.open(request.match_info["token"], step)

    def _url(self, request: web.Request) -> str:
        """The link's public URL (with `?os=` when asked), built from the configured base, never
        from the request's Host."""
        self._open(request, None)
        os = landing.os_of(request)
        token = request.match_info["token"]
        return self._links.os_link(token, os).url if os else self._links.url_of(token)

    def _envelope(self, claims: Claims) -> _AppFields:
        """The app's envelope fields: the link's own event id makes a second use a duplicate."""
        return {
            "event_id": claims.event_id(),
            "registration_id": claims.registration_id,
            "occurred_at": self._clock.now(),
            "source": "app",
        }

    async def _signing(self, claims: Claims) -> Registration:
        """The registration a sign link may still act on: its challenge attempt must be current."""
        registration = (await self._orchestrator.status(claims.registration_id)).registration
        if registration.terminal:
            raise HttpError(410, "registration_ended", f"the registration is {registration.state.value}")
        if registration.challenge is None:
            raise HttpError(409, "challenge_not_issued", "there is nothing to sign yet")
        if registration.challenge_attempt != claims.attempt:
            raise HttpError(
                410,
                "link_superseded",
                "a new challenge was issued: open the new link from the facility's page",
            )
        return registration

    def _check(self, body: SignatureRequest, challenge: str, claims: Claims) -> None:
        """Refused signatures are logged (by code only): many of them may mean a stolen challenge."""
        try:
            check_signature(body, challenge)
        except HttpError as exc:
            log.bind(registration_id=claims.registration_id).info(
                "card_bridge.signature_refused", code=exc.code
            )
            raise

    async def _submit(self, event: Envelope, claims: Claims) -> None:
        """Hand the step to the orchestrator and turn anything but `applied` into an HTTP error."""
        bound = log.bind(registration_id=claims.registration_id)
        try:
            result = await self._orchestrator.handle(event)
        except RetryLaterError as exc:
            bound.info("card_bridge.deferred", event_type=event.type, code=exc.code)
            raise HttpError(503, exc.code, exc.message) from None
        bound.info("card_bridge.submitted", event_type=event.type, outcome=result.status, code=result.code)
        if result.status == "duplicate":
            raise HttpError(409, "link_used", "this link has been used already")
        if result.status == "rejected":
            raise HttpError(409, result.code or "rejected", result.message or "the step was refused")


def _no_store(response: web.Response) -> web.Response:
    """Links and challenges are single-use secrets: no cache may keep them."""
    response.headers.update(NO_STORE)
    return response
