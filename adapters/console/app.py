"""The console at /ops/: log in with an operator token, see counts and charts, the failed and parked
registrations and the dead letters, and replay — always a dry run first, then a confirmation.

Every page is rendered here (Jinja2, inline SVG, no script); every action goes through the operator
service (orchestrator.operations), so it is the same replay, and the same audit, as `honnin ops`
and /ops/v1. Labels are in Japanese and English side by side.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiohttp import web
from jinja2 import Environment, PackageLoader, select_autoescape
from multidict import MultiDictProxy

from adapters.console import chart, words
from adapters.console.session import Session, Sessions
from orchestrator.errors import HonninError, NotFoundError, QuarantinedError
from orchestrator.listing import RegistrationQuery
from orchestrator.operations import PARKED, Operations
from orchestrator.operations_views import Actor, ReplaySelection
from orchestrator.ports import Clock, Store

log = structlog.get_logger("honnin.console")

BASE = "/ops/"
COOKIE, LOGIN_COOKIE = "honnin_ops", "honnin_ops_login"
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
FAILED = RegistrationQuery(state="confirmed", verification="failed")
Page = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]


def add_console_routes(
    app: web.Application,
    *,
    operations: Operations,
    store: Store,
    clock: Clock,
    operators: Mapping[str, str],
    key: bytes,
    session_seconds: int,
) -> None:
    console = Console(operations, store, clock, Sessions(key, operators, session_seconds))
    app.router.add_get(BASE, console.guarded(console.dashboard), name="console")
    app.router.add_get(BASE + "login", console.login_form, name="console.login")
    app.router.add_post(BASE + "login", console.login, name="console.login_post")
    app.router.add_post(BASE + "logout", console.guarded(console.logout), name="console.logout")
    app.router.add_post(BASE + "replay", console.guarded(console.replay), name="console.replay")
    app.router.add_get(
        BASE + "registrations/{registration_id}", console.guarded(console.registration), name="console.show"
    )


class Console:
    def __init__(self, operations: Operations, store: Store, clock: Clock, sessions: Sessions) -> None:
        self._ops = operations
        self._store = store
        self._clock = clock
        self._sessions = sessions
        self._pages = Environment(
            loader=PackageLoader("adapters.console"), autoescape=select_autoescape(["html"])
        )
        self._pages.globals["words"] = words

    def guarded(self, page: Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """No session: to the login page. A POST without the session's CSRF token: 403."""

        async def route(request: web.Request) -> web.StreamResponse:
            session = self._sessions.read(request.cookies.get(COOKIE), self._clock.now())
            if session is None:
                if request.method == "POST":
                    return self._render("forbidden.html", status=403, reason="session")
                return _see(BASE + "login")
            if request.method == "POST":
                form = await request.post()
                if not self._sessions.csrf_ok(session.nonce, form.get("csrf")):
                    return self._render("forbidden.html", status=403, reason="csrf")
            return await page(request, session)

        return route

    def _render(self, name: str, *, status: int = 200, **values: Any) -> web.Response:
        body = self._pages.get_template(name).render(jst=chart.JST, **values)
        return web.Response(text=body, status=status, content_type="text/html", headers=HEADERS)

    # --- logging in and out ---------------------------------------------------------------------

    async def login_form(self, request: web.Request, *, error: bool = False) -> web.Response:
        nonce = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
        response = self._render(
            "login.html",
            status=401 if error else 200,
            csrf=self._sessions.csrf("login:" + nonce),
            error=error,
        )
        _cookie(response, request, LOGIN_COOKIE, nonce, 600)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not self._sessions.csrf_ok("login:" + nonce if nonce else None, form.get("csrf")):
            return self._render("forbidden.html", status=403, reason="csrf")
        token = form.get("token")
        opened = self._sessions.open(token, self._clock.now()) if isinstance(token, str) else None
        if opened is None:  # a facility's token, an app's, a typo: all the same here
            log.warning("console.login_refused", remote=request.remote)
            return await self.login_form(request, error=True)
        session, cookie = opened
        log.info("console.login", operator=session.operator, remote=request.remote)
        response = _see(BASE)
        _cookie(response, request, COOKIE, cookie, self._sessions.lifetime)
        response.del_cookie(LOGIN_COOKIE, path=BASE)
        return response

    async def logout(self, request: web.Request, session: Session) -> web.StreamResponse:
        response = _see(BASE + "login")
        response.del_cookie(COOKIE, path=BASE)
        return response

    # --- pages ----------------------------------------------------------------------------------

    async def dashboard(self, request: web.Request, session: Session) -> web.Response:
        since, until = chart.window(self._clock.now())
        history = await self._store.history_counts(since, until)
        parked = await self._ops.list_registrations(PARKED, limit=100)
        failed = await self._ops.list_registrations(FAILED, limit=100)
        return self._render(
            "dashboard.html",
            session=session,
            csrf=self._sessions.csrf(session.nonce),
            counts=await self._ops.counts(),
            states=chart.chart(chart.by_state(history), since),
            codes=chart.chart(chart.by_code(history), since),
            parked=parked.items,
            parked_codes=sorted({r.code for r in parked.items if r.code}),
            failed=failed.items,
            letters=await self._ops.dead_letters(limit=100),
            quarantined=await self._store.quarantine_count(),
            audit=await self._ops.audit(limit=10),
        )

    async def registration(self, request: web.Request, session: Session) -> web.Response:
        rid = request.match_info["registration_id"]
        try:
            detail = await self._ops.show(rid)
        except (NotFoundError, QuarantinedError) as exc:
            return self._render("missing.html", status=404, session=session, rid=rid, reason=exc.message)
        return self._render(
            "registration.html", session=session, csrf=self._sessions.csrf(session.nonce), detail=detail
        )

    async def replay(self, request: web.Request, session: Session) -> web.Response:
        """step=dry_run shows what would happen and asks to confirm; step=confirm does it."""
        form = await request.post()
        selection = _selection(form)
        confirm = form.get("step") == "confirm"
        actor = Actor(session.operator, "http")
        try:
            report = await self._ops.replay(selection, actor, dry_run=not confirm)
        except HonninError as exc:
            return self._render("missing.html", status=400, session=session, rid="", reason=exc.message)
        return self._render(
            "replay.html",
            session=session,
            csrf=self._sessions.csrf(session.nonce),
            report=report,
        )


def _selection(form: MultiDictProxy[str | Any]) -> ReplaySelection:
    rids = tuple(str(v) for v in form.getall("registration_id", []) if str(v).strip())
    letters = tuple(int(v) for v in form.getall("dead_letter_id", []) if str(v).strip().isdigit())
    code = form.get("code")
    return ReplaySelection(
        registration_ids=rids,
        dead_letter_ids=letters,
        code=str(code) if isinstance(code, str) and code.strip() else None,
    )


def _see(location: str) -> web.Response:
    return web.Response(status=303, headers={**HEADERS, "Location": location})


def _cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, seconds: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=BASE,
        httponly=True,
        samesite="Strict",
        secure=request.secure,
    )
