"""A worker stopping: a handler whose client has gone must not outlive the server into the store
the process closes next."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
from aiohttp import web
from structlog.testing import capture_logs

from adapters.clock import FakeClock
from adapters.http.common import IN_FLIGHT, application, serve
from honnin.http import build_http
from tests.integration.harness import start

TOKEN = "token-of-facility-one-000"


async def test_a_long_poll_given_up_by_its_client_ends_with_the_server_not_after_the_store(
    tmp_path: Path, clock: FakeClock
) -> None:
    """The bench's driver stopped reading `/v1/events` (a 30 s long poll), then the worker was
    stopped: aiohttp's shutdown only ends handlers on connections still open, so this one went on
    polling the store after it closed and answered a 500 `http.unexpected_error` (ValueError).
    Two things now prevent it: the feed's waits released at shutdown, and `serve()` ending the
    handlers that outlive the runner (tested alone below)."""
    app = await start(tmp_path, clock, facility_tokens=f"facility-1:{TOKEN}")
    http = build_http(app)
    with capture_logs() as logs:
        try:
            async with serve(http) as server:
                async with aiohttp.ClientSession() as client:
                    polling = asyncio.create_task(
                        client.get(
                            f"{server.url}/v1/events?wait=30",
                            headers={"Authorization": f"Bearer {TOKEN}"},
                        )
                    )
                    for _ in range(200):  # until its handler runs
                        if http[IN_FLIGHT]:
                            break
                        await asyncio.sleep(0.01)
                    assert http[IN_FLIGHT], "the long poll reached its handler"
                    handlers = set(http[IN_FLIGHT])
                    polling.cancel()  # the client goes away mid-poll
                await asyncio.sleep(0.1)
            assert all(task.done() for task in handlers), "no handler outlives the server"
        finally:
            await app.close()
        await asyncio.sleep(0.3)  # several store polls (50 ms): a handler still running would fail
    assert [e for e in logs if e.get("log_level") == "error"] == []


async def test_a_long_poll_in_progress_when_the_worker_stops_is_answered_with_its_cursor(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A rolling restart: the facility's 30 s long poll gets an empty page and the cursor it sent,
    so it asks again at once (of a worker that runs), instead of the connection being cut after the
    server's shutdown wait."""
    app = await start(tmp_path, clock, facility_tokens=f"facility-1:{TOKEN}")
    headers = {"Authorization": f"Bearer {TOKEN}"}
    try:
        async with aiohttp.ClientSession() as client:
            http = build_http(app)
            async with serve(http) as server:
                async with client.get(f"{server.url}/v1/events", headers=headers) as first:
                    cursor = (await first.json())["cursor"]
                polling = asyncio.create_task(
                    client.get(f"{server.url}/v1/events?wait=30&after={cursor}", headers=headers)
                )
                for _ in range(200):  # until its handler holds
                    if http[IN_FLIGHT]:
                        break
                    await asyncio.sleep(0.01)
                assert http[IN_FLIGHT], "the long poll reached its handler"
            answer = await polling
            assert answer.status == 200
            assert await answer.json() == {"events": [], "cursor": cursor}
            answer.release()
            async with serve(build_http(app)) as again:  # a server that starts holds polls again
                waiting = asyncio.create_task(
                    client.get(f"{again.url}/v1/events?wait=30&after={cursor}", headers=headers)
                )
                await asyncio.sleep(0.3)
                assert not waiting.done(), "a running server's long poll holds"
                waiting.cancel()
    finally:
        await app.close()


async def test_any_handler_whose_client_has_gone_is_ended_with_the_server() -> None:
    """The mechanism beneath the feed's case, for every route: a handler that takes its time and
    heeds no wake-up (here it polls on until cancelled) is cancelled and waited for when the
    server stops, though aiohttp no longer counts it once its client has gone."""
    app = application()
    ticks: list[int] = []

    async def slow(_: web.Request) -> web.Response:
        while True:
            await asyncio.sleep(0.02)
            ticks.append(1)

    app.router.add_get("/slow", slow)
    async with serve(app) as server:
        async with aiohttp.ClientSession() as client:
            asking = asyncio.create_task(client.get(f"{server.url}/slow"))
            for _ in range(200):  # until its handler runs
                if app[IN_FLIGHT]:
                    break
                await asyncio.sleep(0.01)
            handlers = set(app[IN_FLIGHT])
            assert handlers, "the request reached its handler"
            asking.cancel()  # the client goes away
        await asyncio.sleep(0.1)
    assert all(task.done() for task in handlers), "no handler outlives the server"
    after = len(ticks)
    await asyncio.sleep(0.1)
    assert len(ticks) == after, "nothing runs on after the server stopped"
