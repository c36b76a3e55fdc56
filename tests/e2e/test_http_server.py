"""The HTTP server over raw sockets: parser errors in the error shape, header and idle deadlines,
disconnects, and failures that never carry what the client sent into an answer or a log."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel
from structlog.testing import capture_logs

from adapters.http.common import application, read_json, serve

PERSONAL = ("hanako", "公的", "東京都")
GUARD = 10.0  # a hang guard for reads, not a timing assertion


class Echo(BaseModel):
    name: str = ""


@asynccontextmanager
async def server(*, header_timeout: float = 5.0, keepalive_timeout: float = 30.0) -> AsyncIterator[int]:
    app = application()

    async def echo(request: web.Request) -> web.Response:
        body = await read_json(request, Echo)
        return web.json_response({"length": len(body.name)})

    async def boom(_: web.Request) -> web.Response:
        raise KeyError("東京都千代田区千代田1-1 公的花子 hanako@example.jp")

    async def hello(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app.router.add_post("/echo", echo)
    app.router.add_get("/boom", boom)
    app.router.add_get("/", hello)
    async with serve(app, header_timeout=header_timeout, keepalive_timeout=keepalive_timeout) as running:
        yield int(running.url.rsplit(":", 1)[1])


@asynccontextmanager
async def connection(port: int) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        yield reader, writer
    finally:
        writer.close()


async def send(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(data)
    await writer.drain()


async def response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.x response: status, headers (lower-cased names) and the Content-Length body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), GUARD)
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), GUARD)
    return int(status_line.split(" ")[1]), headers, body


async def closed(reader: asyncio.StreamReader) -> bytes:
    """Whatever the server still sends, once it has closed the connection."""
    return await asyncio.wait_for(reader.read(), GUARD)


def error_of(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    assert headers["content-type"].startswith("application/json")
    answer = json.loads(body)
    assert set(answer) == {"code", "message", "message_en", "details"}
    return answer


def said(logs: list[dict[str, Any]], body: bytes = b"") -> str:
    return json.dumps(logs, ensure_ascii=False, default=str) + body.decode("utf-8", "replace")


HOST = b"Host: 127.0.0.1\r\n"
PARSER_ERRORS = {
    "not http": (b"GARBAGE hanako@example.jp\r\n\r\n", 400, "bad_request"),
    "tls on the http port": (
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03hanako\r\n\r\n",
        400,
        "bad_request",
    ),
    "request line too long": (
        b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
        431,
        "header_too_large",
    ),
    "header too long": (
        b"GET / HTTP/1.1\r\n" + HOST + b"X-Note: " + b"h" * 9000 + b"\r\n\r\n",
        431,
        "header_too_large",
    ),
    "too many headers": (
        b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: hanako\r\n" % i for i in range(200)) + b"\r\n",
        431,
        "too_many_headers",
    ),
    "space in a header name": (b"GET / HTTP/1.1\r\n" + HOST + b"X Name: hanako\r\n\r\n", 400, "bad_request"),
    "control in a header value": (
        b"GET / HTTP/1.1\r\n" + HOST + "X-Name: 公的花子\x01 hanako@example.jp\r\n\r\n".encode(),
        400,
        "bad_request",
    ),
    "header without a colon": (
        b"GET / HTTP/1.1\r\n" + HOST + b"hanako@example.jp\r\n\r\n",
        400,
        "bad_request",
    ),
    "two content lengths": (
        b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        400,
        "bad_request",
    ),
    "bad chunk size": (
        b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nhanako\r\n{}\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
    "chunked and content length": (
        b"POST /echo HTTP/1.1\r\n"
        + HOST
        + b"Content-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        "bad_request",
    ),
    "bad http version": (b"GET / HTTP/9.hanako\r\n" + HOST + b"\r\n", 400, "bad_request"),
}


@pytest.mark.parametrize("name", sorted(PARSER_ERRORS))
async def test_parser_errors_get_the_error_shape_echo_nothing_and_log_one_line(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    data, status, code = PARSER_ERRORS[name]
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    async with server() as port, connection(port) as (reader, writer):
        with capture_logs() as logs:
            await send(writer, data)
            got, headers, body = await response(reader)
            rest = await closed(reader)
    assert (got, error_of(headers, body)["code"]) == (status, code)
    assert rest == b"", "the connection is closed after a parser error"
    everything = said(logs, body)
    for fact in (*PERSONAL, "GARBAGE", "X Name", "hhhh", "aaaa"):
        assert fact not in everything
    assert [entry["event"] for entry in logs] == ["http.bad_request"]
    assert logs[0]["log_level"] == "info"
    assert [r for r in caplog.records if r.name.startswith("aiohttp")] == [], "no traceback from aiohttp"


async def test_bad_chunking_after_the_headers_is_a_400_at_once() -> None:
    """aiohttp leaves the body of the request open when a later chunk is malformed; the handler
    would wait for the whole-request limit. It gets the error instead, answered 400."""
    async with server() as port, connection(port) as (reader, writer):
        with capture_logs() as logs:
            head = b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
            await send(writer, head + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n")
            await asyncio.sleep(0.05)
            await send(writer, b"hanako@example.jp\r\n")
            status, headers, body = await response(reader)
            await closed(reader)
    assert (status, error_of(headers, body)["code"]) == (400, "malformed_body")
    assert "hanako" not in said(logs, body)
    assert {entry["log_level"] for entry in logs} == {"info"}


async def test_a_half_sent_request_is_answered_408_and_closed() -> None:
    async with server(header_timeout=0.3) as port, connection(port) as (reader, writer):
        with capture_logs() as logs:
            await send(writer, b"GET / HTTP/1.1\r\n" + HOST + b"X-Partial: yes")
            status, headers, body = await response(reader)
            rest = await closed(reader)
    assert (status, error_of(headers, body)["code"]) == (408, "header_timeout")
    assert headers["connection"] == "close"
    assert rest == b""
    assert [(e["event"], e["log_level"]) for e in logs] == [("http.header_timeout", "info")]


async def test_headers_trickled_byte_by_byte_are_cut_at_the_deadline() -> None:
    request = b"GET / HTTP/1.1\r\n" + HOST + b"X-Slow: " + b"s" * 200 + b"\r\n\r\n"
    async with server(header_timeout=0.3) as port, connection(port) as (reader, writer):

        async def trickle() -> None:
            for byte in request:
                if writer.is_closing():
                    return
                writer.write(bytes([byte]))
                await asyncio.sleep(0.01)

        sender = asyncio.create_task(trickle())
        outcome: int | str
        try:
            outcome, _, _ = await response(reader)
            await closed(reader)
        except ConnectionResetError:  # closed while bytes were still arriving: the 408 may be lost
            outcome = "reset"
        sender.cancel()
    assert outcome in (408, "reset"), "cut at the deadline, never served"


async def test_a_connection_that_sends_nothing_is_closed_silently() -> None:
    async with server(header_timeout=0.2) as port, connection(port) as (reader, _):
        assert await closed(reader) == b""


async def test_headers_completed_within_the_deadline_are_served() -> None:
    async with server(header_timeout=3.0) as port, connection(port) as (reader, writer):
        await send(writer, b"GET / HTTP/1.1\r\n")
        await asyncio.sleep(0.1)
        await send(writer, HOST + b"\r\n")
        status, _, body = await response(reader)
    assert (status, json.loads(body)) == (200, {"ok": True})


async def test_an_idle_keep_alive_connection_is_closed() -> None:
    async with (
        server(header_timeout=30.0, keepalive_timeout=0.3) as port,
        connection(port) as (reader, writer),
    ):
        await send(writer, b"GET / HTTP/1.1\r\n" + HOST + b"\r\n")
        status, headers, _ = await response(reader)
        assert status == 200
        assert headers.get("connection", "keep-alive").lower() != "close"
        assert await closed(reader) == b""


async def test_a_kept_alive_connection_serves_the_next_request_after_a_pause() -> None:
    """The header deadline runs from the next request's first byte, not from the last answer."""
    async with (
        server(header_timeout=0.3, keepalive_timeout=30.0) as port,
        connection(port) as (reader, writer),
    ):
        for _ in range(2):
            await send(writer, b"GET / HTTP/1.1\r\n" + HOST + b"\r\n")
            status, _, _ = await response(reader)
            assert status == 200
            await asyncio.sleep(0.6)


async def test_a_client_that_disconnects_mid_body_is_logged_at_info() -> None:
    async with server() as port:
        with capture_logs() as logs:
            async with connection(port) as (_, writer):
                head = b"POST /echo HTTP/1.1\r\n" + HOST + b"Content-Type: application/json\r\n"
                await send(writer, head + b'Content-Length: 1000\r\n\r\n{"name": "hanako')
                await asyncio.sleep(0.1)
            for _ in range(500):  # the server notices the close on its next read
                if logs:
                    break
                await asyncio.sleep(0.02)
    assert [(e["event"], e["log_level"]) for e in logs] == [("http.client_disconnected", "info")]
    assert "hanako" not in said(logs)


async def test_personal_facts_in_a_handlers_exception_reach_neither_answer_nor_log() -> None:
    async with server() as port, connection(port) as (reader, writer):
        with capture_logs() as logs:
            await send(writer, b"GET /boom HTTP/1.1\r\n" + HOST + b"\r\n")
            status, headers, body = await response(reader)
    assert (status, error_of(headers, body)["code"]) == (500, "internal_error")
    everything = said(logs, body)
    for fact in (*PERSONAL, "千代田"):
        assert fact not in everything
    assert [(e["event"], e["error"]) for e in logs] == [("http.unexpected_error", "KeyError")]


@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/json", 200),
        ("application/json; charset=utf-8", 200),
        ("application/json; charset=UTF-8", 200),
        ("application/json; charset=latin-1", 415),
        ("application/json; charset=utf-16", 415),
        ("application/json; charset=shift_jis", 415),
    ],
)
async def test_only_utf8_bodies_are_read(content_type: str, status: int) -> None:
    body = json.dumps({"name": "公的　花子"}, ensure_ascii=False).encode()
    request = (
        f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    async with server() as port, connection(port) as (reader, writer):
        await send(writer, request)
        got, _, answer = await response(reader)
    assert got == status, answer
