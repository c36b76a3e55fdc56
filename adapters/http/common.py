"""One error shape for every HTTP answer, bodies read within limits, Honnin errors as statuses.

Every error body is `{"code": <machine code>, "message": <Japanese, shown as is>, "message_en":
<English, for logs and integrators>, "details": [...]}` (`adapters.http.words`); the seed's
messages travel in `message` verbatim, with the seed's 原因・対処法 as a `details` entry of type
`remedy`. Nothing a caller sent is echoed back.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import structlog
from aiohttp import web
from aiohttp.typedefs import Middleware
from aiohttp.web_protocol import RequestPayloadError
from pydantic import BaseModel, ValidationError

from adapters.http.server import HEADER_TIMEOUT, KEEPALIVE_TIMEOUT, GuardedRunner
from adapters.http.words import error_body, invalid_body_ja
from orchestrator.errors import (
    CardInfoNotReadError,
    HonninError,
    InvalidRequestError,
    NotFoundError,
    PermanentError,
    RetryableError,
    failure_reason,
)
from schemas import strict_json
from schemas.events import error_details

log = structlog.get_logger("honnin.http")

MAX_BODY = 64 * 1024  # a certificate and a signature fit many times over
REQUEST_TIMEOUT = 15.0  # seconds for a whole request, the body's upload included
_UTF8 = frozenset({"utf-8", "utf8"})
Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpError(Exception):
    """Raised by handlers for an answer that is not 2xx."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        *,
        message_en: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.message_en = message_en


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    *,
    message_en: str | None = None,
) -> web.Response:
    """An error in the one shape; `message` in either language (see `adapters.http.words`)."""
    body = error_body(code, message, details, message_en=message_en)
    return web.json_response(body, status=status, dumps=_dumps)


def ok(body: BaseModel | dict[str, Any], status: int = 200) -> web.Response:
    data = body.model_dump(mode="json") if isinstance(body, BaseModel) else body
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


async def read_json(request: web.Request, model: type[Model]) -> Model:
    """The body as `model`: 415 if it is not UTF-8 JSON, 413 if too large, 400 if malformed (a BOM,
    another encoding, a key given twice), 422 if wrong."""
    if request.content_type != "application/json":
        raise HttpError(415, "unsupported_media_type", "the body must be application/json")
    if request.charset is not None and request.charset.lower() not in _UTF8:
        raise HttpError(415, "unsupported_charset", "the body must be UTF-8 (charset=utf-8, or none)")
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise HttpError(413, "body_too_large", f"the body is larger than {MAX_BODY} bytes")
    raw = await _body(request)
    try:
        data = strict_json.loads(raw)
    except strict_json.JsonTextError as exc:
        raise HttpError(400, exc.code, exc.message) from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        details = error_details(exc)
        summary = "; ".join(f"{d['loc']}: {d['msg']}" for d in details[:5])
        english = f"invalid body: {summary}"
        raise HttpError(422, "invalid_body", invalid_body_ja(details), details, message_en=english) from None


async def _body(request: web.Request) -> bytes:
    """The whole body within the limit; a body the parser could not read (bad chunks) is a 400."""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise HttpError(413, "body_too_large", f"the body is larger than {MAX_BODY} bytes") from exc
    except RequestPayloadError:
        raise HttpError(400, "malformed_body", "the body could not be read as HTTP/1.1") from None


def status_of(exc: HonninError) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, InvalidRequestError):
        return 400
    if isinstance(exc, CardInfoNotReadError):
        return 409
    if isinstance(exc, RetryableError):
        return 503
    if isinstance(exc, PermanentError):
        return 409
    return 500


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure in the one error shape; unexpected ones logged by type, answered 500."""
    try:
        return await handler(request)
    except HttpError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details, message_en=exc.message_en)
    except HonninError as exc:
        return error_response(status_of(exc), exc.code, exc.message)
    except web.HTTPException as exc:  # aiohttp's own: 404 for unknown paths, 405, 413
        if exc.status < 400:  # a redirect (the demo's pages) is an answer, not an error
            raise
        if exc.status == 413:
            return error_response(413, "body_too_large", f"the body is larger than {MAX_BODY} bytes")
        return error_response(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
    except ConnectionResetError:  # the client went away mid-request: nobody reads the answer
        log.info("http.client_disconnected", path=request.path)
        return error_response(400, "client_disconnected", "the client closed the connection")
    except Exception as exc:
        log.error("http.unexpected_error", path=request.path, error=failure_reason(exc))
        return error_response(500, "internal_error", "the request could not be handled")


def timeout_middleware(seconds: float) -> Middleware:
    """Every request ends within `seconds`, a slowly trickled body included: 503 `timeout`."""

    @web.middleware
    async def bounded(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            async with asyncio.timeout(seconds):
                return await handler(request)
        except TimeoutError:
            log.warning("http.timeout", path=request.path)
            return error_response(503, "timeout", "the request took too long; try again")

    return bounded


IN_FLIGHT = web.AppKey("honnin_in_flight", set[asyncio.Task[Any]])
"""The tasks running a request's handler now: `serve` ends those its runner left running."""

OUTLIVING_WAIT = 5.0
"""Seconds `serve` waits for the handlers it cancelled at the end to finish."""


def tracking(tasks: set[asyncio.Task[Any]]) -> Middleware:
    """Keeps in `tasks` the task of every handler running."""

    @web.middleware
    async def tracked(request: web.Request, handler: Handler) -> web.StreamResponse:
        task = asyncio.current_task()
        if task is None:
            return await handler(request)
        tasks.add(task)
        try:
            return await handler(request)
        finally:
            tasks.discard(task)

    return tracked


def application(timeout: float = REQUEST_TIMEOUT) -> web.Application:
    """An aiohttp application with the body limit, the time limit and the error middleware."""
    tasks: set[asyncio.Task[Any]] = set()
    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[tracking(tasks), timeout_middleware(timeout), errors_middleware],
    )
    app[IN_FLIGHT] = tasks
    return app


async def _end_outliving(app: web.Application) -> None:
    """aiohttp's shutdown waits for, then cancels, the handlers of the connections still open; a
    handler whose client had already gone (a long poll given up) is on no connection and ran on
    after the server stopped, into the store the process closes next (the bench's driver saw a
    500 `http.unexpected_error` from `/v1/events`). Those are cancelled here and waited for."""
    outliving = {task for task in app.get(IN_FLIGHT, set()) if not task.done()}
    if not outliving:
        return
    for task in outliving:
        task.cancel()
    _, pending = await asyncio.wait(outliving, timeout=OUTLIVING_WAIT)
    if pending:
        log.warning("http.handlers_outlived_shutdown", count=len(pending))


@dataclass
class Server:
    url: str
    runner: web.AppRunner


@asynccontextmanager
async def serve(
    app: web.Application,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    header_timeout: float = HEADER_TIMEOUT,
    keepalive_timeout: float = KEEPALIVE_TIMEOUT,
) -> AsyncIterator[Server]:
    """Run `app` until the block ends; port 0 takes a free one (tests). Connections get a header
    deadline and an idle limit, and aiohttp's parser errors the error shape (`server`)."""
    runner = GuardedRunner(app, header_timeout=header_timeout, keepalive_timeout=keepalive_timeout)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = port
    for address in runner.addresses:  # the port the system chose when asked for 0
        bound = int(address[1])
        break
    try:
        yield Server(f"http://{host}:{bound}", runner)
    finally:
        await runner.cleanup()
        await _end_outliving(app)
