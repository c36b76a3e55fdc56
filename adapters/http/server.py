"""aiohttp's connection handling with Honnin's limits: headers within a time, idle connections closed,
and the parser's own errors in the one error shape.

aiohttp answers a request it cannot parse (a bad request line, an oversized or invalid header,
bad chunking) as text/plain that quotes the offending bytes, logs it as a traceback, and waits for
headers as long as a client likes. `GuardedRequestHandler` answers JSON that quotes nothing, logs
one line, and closes a connection whose request headers are not complete within
`header_timeout` seconds (408). `GuardedRunner` is an `AppRunner` whose connections use it.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import structlog
from aiohttp import http_exceptions, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler, RequestPayloadError, _ErrInfo

from adapters.http.words import error_body
from orchestrator.errors import failure_reason

log = structlog.get_logger("honnin.http")

HEADER_TIMEOUT = 10.0  # seconds from connection (or the next request's first byte) to complete headers
KEEPALIVE_TIMEOUT = 75.0  # seconds an idle keep-alive connection stays open (longer than a proxy's 60)
_TIMED_OUT = json.dumps(
    error_body("header_timeout", "the request headers took too long"), ensure_ascii=False
).encode()


def _error_body(status: int, code: str, message: str) -> web.Response:
    """The one error shape, written here so the protocol layer needs nothing from the app layer."""
    response = web.json_response(error_body(code, message), status=status, dumps=_dumps)
    response.force_close()
    return response


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _parse_error(exc: BaseException | None) -> tuple[int, str, str]:
    """Status, code and our own words for what aiohttp's parser refused; its message quotes input."""
    if isinstance(exc, http_exceptions.LineTooLong):
        return 431, "header_too_large", "the request line or a header is too long"
    if isinstance(exc, http_exceptions.BadHttpMessage) and "headers" in exc.message.lower():
        return 431, "too_many_headers", "the request has too many headers"
    return 400, "bad_request", "the request is not valid HTTP/1.1"


class GuardedRequestHandler(RequestHandler):
    """One connection: a header deadline armed while headers are awaited, errors without echo."""

    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None
        self._between_requests = True  # no request's headers are being handled
        self._bytes_seen = False
        self._body: StreamReader | None = None  # the body of the request being handled

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if data and self._between_requests and self._header_deadline is None:
            self._arm()  # the first byte of the next request on a kept-alive connection
        self._bytes_seen = self._bytes_seen or bool(data)
        super().data_received(data)
        if self._body is not None and not self._body.is_eof() and self._parser_failed():
            self._body.set_exception(RequestPayloadError("the body's framing is not valid HTTP/1.1"))

    def _parser_failed(self) -> bool:
        """Whether aiohttp queued a parser error (bad chunking) behind the request being handled;
        it leaves that request's body open, so its handler would wait for the whole-request limit.
        Reads aiohttp's queue of parsed messages (3.9-3.14), held by tests over raw sockets."""
        return any(isinstance(message, _ErrInfo) for message, _ in self._messages)

    def headers_read(self, body: StreamReader) -> None:
        """A request's headers are complete: the whole-request limit (15 s) takes over."""
        self._between_requests = False
        self._bytes_seen = False
        self._body = body
        self._disarm()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        try:
            return await super().finish_response(request, resp, start_time)
        finally:
            self._between_requests = True
            self._bytes_seen = False
            self._body = None

    def _arm(self) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._header_deadline = loop.call_later(self._header_timeout, self._headers_timed_out)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_timed_out(self) -> None:
        self._header_deadline = None
        transport = self.transport
        if not self._between_requests or transport is None:
            return
        if self._bytes_seen:  # half a request: say why before closing
            log.info("http.header_timeout", seconds=self._header_timeout)
            head = (
                "HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
                f"Content-Length: {len(_TIMED_OUT)}\r\nConnection: close\r\n\r\n"
            )
            transport.write(head.encode() + _TIMED_OUT)
        self.force_close()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """aiohttp's last resort, for parser errors (400) and failures outside the middlewares."""
        if request.writer.output_size > 0:
            raise ConnectionError("the response is under way; the connection is dropped")
        if status >= 500:
            log.error("http.unhandled", status=status, error=failure_reason(exc) if exc else None)
            if status == 504:
                return _error_body(504, "timeout", "the request took too long; try again")
            return _error_body(500, "internal_error", "the request could not be handled")
        status, code, words = _parse_error(exc)
        log.info("http.bad_request", status=status, code=code, error=type(exc).__name__)
        return _error_body(status, code, words)

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """One line naming the exception type; aiohttp's message may quote the request."""
        exc = kw.get("exc_info")
        if isinstance(exc, RequestPayloadError | http_exceptions.HttpProcessingError):
            log.info("http.bad_request", code="malformed_body", error=type(exc).__name__)
            return
        log.error("http.unhandled", error=failure_reason(exc) if isinstance(exc, BaseException) else None)


class _GuardedServer(web.Server):
    """aiohttp's low-level server, making `GuardedRequestHandler` connections."""

    def __init__(self, made: web.Server, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(
            made.request_handler,
            request_factory=made.request_factory,
            handler_cancellation=made.handler_cancellation,
            **kwargs,
        )
        self._header_timeout = header_timeout
        self._made_request = made.request_factory
        self.request_factory = self._request

    def _request(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> web.BaseRequest:
        if isinstance(protocol, GuardedRequestHandler):
            protocol.headers_read(payload)
        return self._made_request(message, payload, protocol, writer, task)

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(
            self, header_timeout=self._header_timeout, loop=self._loop, **self._kwargs
        )


class GuardedRunner(web.AppRunner):
    """An `AppRunner` whose connections have a header deadline and a keep-alive idle limit."""

    def __init__(self, app: web.Application, *, header_timeout: float, keepalive_timeout: float) -> None:
        super().__init__(app, access_log=None, shutdown_timeout=5.0, keepalive_timeout=keepalive_timeout)
        self._header_timeout = header_timeout

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        return _GuardedServer(made, self._header_timeout, **made._kwargs)
