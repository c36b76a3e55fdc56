"""Webhook receivers on loopback (real aiohttp servers) and a worker serving the facility API."""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from adapters.clock import FakeClock
from adapters.http.common import serve
from honnin.bootstrap import App
from honnin.http import build_http
from tests import factory
from tests.integration.harness import start

TOKENS = {"facility-1": "facility-one-token-0123456789", "facility-2": "facility-two-token-0123456789"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        return json.loads(self.body)  # type: ignore[no-any-return]


@dataclass
class Receiver:
    """Answers `statuses` in turn, then `then`; while `hold` is clear, holds every request open."""

    port: int = field(default_factory=free_port)
    statuses: list[int] = field(default_factory=list)
    then: int = 200
    hold: asyncio.Event | None = None
    got: list[Received] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    holding: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/honnin"

    async def handle(self, request: web.Request) -> web.Response:
        self.got.append(Received(dict(request.headers), await request.read()))
        self.arrived.set()
        if self.hold is not None and not self.hold.is_set():
            self.holding += 1
            try:
                await self.hold.wait()
            finally:
                self.holding -= 1
        status = self.statuses.pop(0) if self.statuses else self.then
        if 300 <= status < 400:
            raise web.HTTPFound(f"http://127.0.0.1:{self.port}/elsewhere")
        return web.Response(status=status)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        async with serve(app, "127.0.0.1", self.port):
            yield self

    def ids(self) -> list[str]:
        return [r.headers["webhook-id"] for r in self.got]


@dataclass
class Worker:
    app: App
    base: str
    http: aiohttp.ClientSession
    clock: FakeClock

    async def call(
        self, method: str, path: str, body: Any = None, *, facility: str = "facility-1"
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {TOKENS[facility]}"}
        async with self.http.request(method, self.base + path, json=body, headers=headers) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None

    async def put_webhook(self, url: str, facility: str = "facility-1") -> str:
        status, body = await self.call("PUT", "/v1/webhook", {"url": url}, facility=facility)
        assert status == 200, body
        secret: str = body["secret"]
        return secret

    async def cancelled(self, rid: str, facility: str = "facility-1") -> str:
        """A registration started and cancelled: one facility event (`registration.cancelled`)."""
        payload = {**factory.PAYLOADS["registration.started"], "facility_id": facility}
        await self.app.orchestrator.handle(factory.event("registration.started", rid, payload=payload))
        await self.app.orchestrator.handle(factory.event("registration.cancel_requested", rid))
        [event] = [e for e in await self.app.store.feed(facility, 0, 10_000) if e.registration_id == rid]
        return event.event_id


def settings_for_webhooks(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "facility_tokens": ",".join(f"{f}:{t}" for f, t in TOKENS.items()),
        "webhook_allow_http": True,
        "webhook_poll_seconds": 0.02,
        "webhook_read_timeout_seconds": 2.0,
        "webhook_connect_timeout_seconds": 1.0,
    }
    return values | changes


@asynccontextmanager
async def worker(tmp: Path, clock: FakeClock | None = None, **changes: Any) -> AsyncIterator[Worker]:
    """A worker (`honnin run` wiring) on `tmp`, its HTTP API on a free loopback port."""
    clock = clock or FakeClock(datetime.now(UTC).replace(microsecond=0))
    app = await start(tmp, clock, **settings_for_webhooks(**changes))
    try:
        async with serve(build_http(app)) as server, aiohttp.ClientSession() as http:
            yield Worker(app, server.url, http, clock)
    finally:
        await app.close()


async def until(check: Callable[[], object | Awaitable[object]], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.01)
