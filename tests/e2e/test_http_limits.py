"""What both HTTP APIs share: a request that takes too long ends with a 503 in the error shape."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web

from adapters.http.common import application, serve


async def test_a_request_that_runs_past_the_limit_is_a_503_timeout() -> None:
    app = application(timeout=0.1)

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="too late")

    async def quick(_: web.Request) -> web.Response:
        return web.Response(text="in time")

    app.router.add_get("/slow", slow)
    app.router.add_get("/quick", quick)
    async with serve(app) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/slow") as response:
            assert response.status == 503
            assert (await response.json())["code"] == "timeout"
        async with http.get(f"{server.url}/quick") as response:
            assert (response.status, await response.text()) == (200, "in time")


async def test_a_body_trickled_slower_than_the_limit_is_cut_off() -> None:
    app = application(timeout=0.2)

    async def echo_size(request: web.Request) -> web.Response:
        return web.Response(text=str(len(await request.read())))

    app.router.add_post("/upload", echo_size)

    async def trickle():
        for _ in range(20):
            yield b"x" * 10
            await asyncio.sleep(0.05)

    async with (
        serve(app) as server,
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}/upload", data=trickle()) as response,
    ):
        assert response.status == 503
