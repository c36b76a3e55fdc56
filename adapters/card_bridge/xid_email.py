"""The メールアドレス確認 link the person opens from the mail: a page, and its one button.

Opening the link (GET) shows a page with a button; pressing it (POST) confirms the address. A
GET never confirms: mail scanners and link previews open links by themselves, and would spend a
single-use link before the person sees it. The token is the only credential (no app client).
Browsers get a page; a client that asks for JSON gets `{"code", "message"}`.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import structlog
from aiohttp import web

from adapters.card_bridge.xid_links import CONFIRM_PATH, EmailLinks, Presented
from adapters.http.words import error_body
from orchestrator import messages_xid as words
from orchestrator.errors import NotFoundError, RetryLaterError
from orchestrator.model import Registration
from orchestrator.ports import Clock
from orchestrator.service import Orchestrator
from schemas.events import EmailConfirmed, derived_event_id
from schemas.payloads_xid import EmailConfirmedPayload

log = structlog.get_logger("honnin.xid")

PATH = CONFIRM_PATH + "{token}"
_STATUS = {"link_expired": 410, "link_voided": 410, "registration_ended": 410, "link_used": 409}
_PAGE = """<!DOCTYPE html>
<html lang="ja"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<meta name="robots" content="noindex"><title>メールアドレス確認</title></head>
<body><main><h1>メールアドレス確認</h1>
<p id="message" data-code="{code}">{message}</p>{form}</main></body></html>
"""
_FORM = '<form method="post"><button type="submit">メールアドレスを確認する</button></form>'
_ASK = "ボタンを押して、メールアドレスの確認を完了してください。"


@dataclass(frozen=True)
class Verdict:
    status: int
    code: str
    message: str


def add_email_confirmation_routes(
    app: web.Application, *, orchestrator: Orchestrator, clock: Clock, email_links: EmailLinks
) -> None:
    page = ConfirmationPage(orchestrator, clock)
    app.router.add_get(PATH, page.show, name="xid.email_link")
    app.router.add_post(PATH, page.confirm, name="xid.email_confirm")


class ConfirmationPage:
    def __init__(self, orchestrator: Orchestrator, clock: Clock) -> None:
        self._orchestrator = orchestrator
        self._clock = clock

    async def show(self, request: web.Request) -> web.Response:
        """The link as opened: a button to press if it can still confirm, the reason otherwise."""
        _, verdict = await self._check(request)
        if verdict is None:
            return _answer(request, Verdict(200, "link_valid", _ASK), form=True)
        return _answer(request, verdict)

    async def confirm(self, request: web.Request) -> web.Response:
        """The button: `xid.email_confirmed`, once per link (its id derives from the link)."""
        presented, verdict = await self._check(request)
        if verdict is not None or presented is None:
            return _answer(request, verdict or _unknown())
        event = EmailConfirmed(
            type="xid.email_confirmed",
            event_id=derived_event_id("xid-email-link", presented.link_sha256),
            registration_id=presented.registration_id,
            occurred_at=self._clock.now(),
            source="app",
            payload=EmailConfirmedPayload(link_sha256=presented.link_sha256),
        )
        try:
            result = await self._orchestrator.handle(event)
        except RetryLaterError:
            return _answer(request, _unknown())
        log.info("xid.email_link", registration_id=presented.registration_id, outcome=result.status)
        if result.status == "duplicate":
            return _answer(request, Verdict(409, "link_used", words.LINK_USED))
        if result.status == "rejected":
            code = result.code or "link_unknown"
            return _answer(
                request, Verdict(_STATUS.get(code, 409), code, result.message or words.LINK_UNKNOWN)
            )
        return _answer(request, Verdict(200, "email_confirmed", words.EMAIL_CONFIRMED))

    async def _check(self, request: web.Request) -> tuple[Presented | None, Verdict | None]:
        """What the registration says about this link before anything is submitted."""
        presented = EmailLinks.presented(request.match_info["token"])
        if presented is None:
            return None, _unknown()
        registration = await self._find(presented.registration_id)
        email = registration.xid.email if registration and registration.xid else None
        if registration is None or email is None:
            return presented, _unknown()
        if presented.link_sha256 == email.link_sha256:
            if email.confirmed_at is not None:
                return presented, Verdict(409, "link_used", words.LINK_USED)
            if registration.terminal:
                return presented, Verdict(410, "registration_ended", words.LINK_EXPIRED)
            if self._clock.now() >= email.link_expires_at:
                return presented, Verdict(410, "link_expired", words.LINK_EXPIRED)
            return presented, None
        if presented.link_sha256 in email.voided:
            return presented, Verdict(410, "link_voided", words.LINK_VOIDED)
        return presented, _unknown()

    async def _find(self, registration_id: str) -> Registration | None:
        try:
            return (await self._orchestrator.status(registration_id)).registration
        except NotFoundError:
            return None


def _unknown() -> Verdict:
    return Verdict(404, "link_unknown", words.LINK_UNKNOWN)


def _answer(request: web.Request, verdict: Verdict, *, form: bool = False) -> web.Response:
    headers = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    if "application/json" in request.headers.get("Accept", ""):
        body: dict[str, object] = {"code": verdict.code, "message": verdict.message}
        if verdict.status >= 400:
            body = error_body(verdict.code, verdict.message)  # the error shape
        return web.json_response(body, status=verdict.status, headers=headers)
    page = _PAGE.format(
        code=html.escape(verdict.code), message=html.escape(verdict.message), form=_FORM if form else ""
    )
    return web.Response(text=page, status=verdict.status, content_type="text/html", headers=headers)
