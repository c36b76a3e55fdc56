"""An OCSP responder, CRL server and platform API over one DevCA, for development and tests.

It speaks the wire formats the real sources speak (RFC 6960 over HTTP POST, a DER CRL, the
platform JSON contract of docs/platform-api.md), so the revocation sources are tested against
real HTTP; `ResponderState` lets a test make it fail (down, slow, malformed, lying) and count calls.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from adapters.ca_revocation.devca import DevCA
from adapters.clock import SystemClock
from orchestrator.ports import Clock

ROUTE_OCSP = "ocsp"
ROUTE_CRL = "crl"
ROUTE_PLATFORM = "platform"
GARBAGE = b"\x00this is not DER"


@dataclass
class ResponderState:
    """What a test flips to simulate an outage, and what it reads to count calls."""

    down: bool = False  # every route answers 503
    delay: float = 0.0  # seconds before answering
    malformed: bool = False  # every route answers garbage with the right content type
    nonce_mode: Literal["echo", "omit", "wrong"] = "echo"
    platform_status: str | None = None  # the platform claims this status whatever the OCSP says
    requests: Counter[str] = field(default_factory=Counter)  # per route: ocsp, crl, platform
    nonces: list[bytes] = field(default_factory=list)  # the nonces OCSP requests carried
    issued: dict[int, x509.Certificate] = field(default_factory=dict)

    def register(self, certificate: x509.Certificate) -> None:
        """The OCSP route answers only for certificates it was told about, as a real CA knows its own."""
        self.issued[certificate.serial_number] = certificate


STATE = web.AppKey("responder_state", ResponderState)


@web.middleware
async def _faults(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Counts every request, then applies the simulated delay and outage."""
    state = request.app[STATE]
    state.requests[request.match_info.route.name or "unrouted"] += 1
    if state.delay > 0:
        await asyncio.sleep(state.delay)
    if state.down:
        return web.Response(status=503, text="down (simulated)")
    return await handler(request)


class _Handlers:
    """The three routes over one CA; `clock` dates the answers so FakeClock tests line up."""

    def __init__(self, ca: DevCA, state: ResponderState, token: str | None, clock: Clock) -> None:
        self._ca = ca
        self._state = state
        self._token = token
        self._clock = clock

    async def ocsp_route(self, request: web.Request) -> web.Response:
        if self._state.malformed:
            return _ocsp_reply(GARBAGE)
        try:
            parsed = ocsp.load_der_ocsp_request(await request.read())
        except ValueError:
            return _ocsp_reply(_unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST))
        nonce = _nonce_of(parsed)
        if nonce is not None:
            self._state.nonces.append(nonce)
        certificate = self._known(parsed)
        if certificate is None:
            return _ocsp_reply(_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED))
        answer = self._ca.ocsp_response(
            certificate, this_update=self._clock.now(), nonce=self._reply_nonce(nonce)
        )
        return _ocsp_reply(answer)

    def _known(self, parsed: ocsp.OCSPRequest) -> x509.Certificate | None:
        """A registered certificate whose CertID names this CA's key; anything else is not ours."""
        certificate = self._state.issued.get(parsed.serial_number)
        if certificate is None:
            return None
        own = ocsp.OCSPRequestBuilder().add_certificate(
            certificate, self._ca.certificate, parsed.hash_algorithm
        )
        return certificate if own.build().issuer_key_hash == parsed.issuer_key_hash else None

    def _reply_nonce(self, nonce: bytes | None) -> bytes | None:
        if nonce is None or self._state.nonce_mode == "omit":
            return None
        return secrets.token_bytes(len(nonce)) if self._state.nonce_mode == "wrong" else nonce

    async def crl_route(self, request: web.Request) -> web.Response:
        body = GARBAGE if self._state.malformed else self._ca.crl(this_update=self._clock.now())
        return web.Response(body=body, content_type="application/pkix-crl")

    async def platform_route(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        if self._state.malformed:
            return web.Response(text="{not json", content_type="application/json")
        certificate = await _submitted_certificate(request)
        if certificate is None:
            return web.json_response({"error": "certificate must be base64 DER"}, status=400)
        if not self._issued_by_ca(certificate):
            return web.json_response({"error": "not a certificate of this CA"}, status=422)
        return web.json_response(self._platform_answer(certificate))

    def _refused(self, request: web.Request) -> web.Response | None:
        """401 without a bearer token, 403 with a wrong one, as an operator's gateway would."""
        if self._token is None:
            return None
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            return web.json_response({"error": "bearer token required"}, status=401)
        if not hmac.compare_digest(presented.encode(), self._token.encode()):
            return web.json_response({"error": "token not accepted"}, status=403)
        return None

    def _issued_by_ca(self, certificate: x509.Certificate) -> bool:
        try:
            certificate.verify_directly_issued_by(self._ca.certificate)
        except (ValueError, TypeError, InvalidSignature):
            return False
        return True

    def _platform_answer(self, certificate: x509.Certificate) -> dict[str, str | None]:
        now = self._clock.now()
        revoked = self._ca.revoked.get(certificate.serial_number)
        response = self._ca.ocsp_response(certificate, this_update=now)
        return {
            "status": self._state.platform_status or ("revoked" if revoked else "good"),
            "reason": revoked[1].value if revoked else None,
            "checked_at": now.isoformat(),
            "ocsp_response": base64.b64encode(response).decode("ascii"),
        }


async def _submitted_certificate(request: web.Request) -> x509.Certificate | None:
    try:
        body = await request.json()
        der = base64.b64decode(body["certificate"], validate=True)
        return x509.load_der_x509_certificate(der)
    except (ValueError, KeyError, TypeError, binascii.Error):
        return None


def _nonce_of(parsed: ocsp.OCSPRequest) -> bytes | None:
    try:
        return parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


def _ocsp_reply(body: bytes) -> web.Response:
    return web.Response(body=body, content_type="application/ocsp-response")


def make_app(ca: DevCA, *, token: str | None = None, clock: Clock | None = None) -> web.Application:
    """The responder as an aiohttp app; `app[STATE]` is the test's handle on it."""
    state = ResponderState()
    handlers = _Handlers(ca, state, token, clock or SystemClock())
    app = web.Application(middlewares=[_faults])
    app[STATE] = state
    app.router.add_post("/ocsp", handlers.ocsp_route, name=ROUTE_OCSP)
    app.router.add_get("/crl", handlers.crl_route, name=ROUTE_CRL)
    app.router.add_post("/v1/revocation-status", handlers.platform_route, name=ROUTE_PLATFORM)
    return app


@dataclass(frozen=True)
class RunningResponder:
    url: str  # http://127.0.0.1:<port>, without a trailing slash
    state: ResponderState
    app: web.Application


@asynccontextmanager
async def serve(
    ca: DevCA,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    token: str | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[RunningResponder]:
    """Serves on loopback (an ephemeral port by default) and stops cleanly, slow handlers included."""
    app = make_app(ca, token=token, clock=clock)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        yield RunningResponder(url=f"http://{host}:{bound}", state=app[STATE], app=app)
    finally:
        await runner.cleanup()
