"""GET /v1/events over real HTTP: commit order, opaque cursors, long polls woken by commits (this
worker's, and another worker's on the same store), and one facility never seeing another's."""

from __future__ import annotations

import asyncio
import base64
import time
from datetime import timedelta
from pathlib import Path

from tests import factory
from tests.integration.harness import start
from tests.integration.receivers import Receiver, settings_for_webhooks, until, worker


async def page(w, after: str | None = None, facility: str = "facility-1", **query: object):
    params = "&".join(f"{k}={v}" for k, v in ({"after": after} if after else {}).items() | query.items())
    status, body = await w.call("GET", "/v1/events" + (f"?{params}" if params else ""), facility=facility)
    assert status == 200, body
    return body


async def test_the_feed_serves_a_facility_s_events_in_commit_order_page_by_page(tmp_path: Path) -> None:
    async with worker(tmp_path) as w:
        ids = [await w.cancelled(f"reg-feed-{i:04d}") for i in range(5)]
        await w.cancelled("reg-other-0001", "facility-2")
        first = await page(w, limit=2)
        assert [e["event_id"] for e in first["events"]] == ids[:2]
        rest = await page(w, first["cursor"], limit=10)
        assert [e["event_id"] for e in rest["events"]] == ids[2:]
        assert all(e["type"] == "registration.cancelled" for e in rest["events"])
        empty = await page(w, rest["cursor"])
        assert (empty["events"], empty["cursor"]) == ([], rest["cursor"])
        other = await page(w, facility="facility-2")
        assert [e["registration_id"] for e in other["events"]] == ["reg-other-0001"]


async def test_the_feed_carries_the_same_ids_and_bodies_as_the_webhook(tmp_path: Path) -> None:
    async with worker(tmp_path) as w, Receiver().running() as receiver:
        await w.put_webhook(receiver.url)
        await w.cancelled("reg-feed-0001")
        await until(lambda: receiver.got)
        [event] = (await page(w))["events"]
        assert event == receiver.got[0].event
        assert event["event_id"] == receiver.got[0].headers["webhook-id"]


async def test_cursors_are_opaque_checked_and_bound_to_their_facility(tmp_path: Path) -> None:
    async with worker(tmp_path) as w:
        await w.cancelled("reg-feed-0001")
        cursor = (await page(w))["cursor"]
        raw = bytearray(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        raw[7] ^= 1  # another position, same MAC
        forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
        for bad, facility in ((forged, "facility-1"), ("not-a-cursor", "facility-1"), (cursor, "facility-2")):
            status, body = await w.call("GET", f"/v1/events?after={bad}", facility=facility)
            assert (status, body["code"]) == (400, "invalid_cursor")
        for query in ("limit=0", "limit=1001", "limit=2.5", "wait=31", "wait=-1", "wait=nan", "limit=x"):
            status, body = await w.call("GET", f"/v1/events?{query}")
            assert status == 400, query
        status, _ = await w.call("GET", "/v1/events?limit=1000&wait=0")
        assert status == 200


async def test_a_long_poll_answers_because_of_a_commit_in_this_worker(tmp_path: Path) -> None:
    async with worker(tmp_path) as w:
        cursor = (await page(w))["cursor"]
        started = time.monotonic()
        poll = asyncio.create_task(page(w, cursor, wait=20))
        await asyncio.sleep(0.3)
        assert not poll.done(), "with nothing new, the request waits"
        event_id = await w.cancelled("reg-feed-0001")
        answer = await asyncio.wait_for(poll, 15)
        assert [e["event_id"] for e in answer["events"]] == [event_id]
        assert time.monotonic() - started < 10, "answered by the commit, long before `wait` ran out"


async def test_a_long_poll_answers_because_of_a_commit_in_another_worker(tmp_path: Path) -> None:
    async with worker(tmp_path, webhook_delivery_enabled=False) as w:
        other = await start(tmp_path, w.clock, **settings_for_webhooks(worker_id="other-worker"))
        try:
            cursor = (await page(w))["cursor"]
            poll = asyncio.create_task(page(w, cursor, wait=20))
            await asyncio.sleep(0.3)
            assert not poll.done()
            payload = {**factory.PAYLOADS["registration.started"], "facility_id": "facility-1"}
            rid = "reg-elsewhere1"
            await other.orchestrator.handle(factory.event("registration.started", rid, payload=payload))
            await other.orchestrator.handle(factory.event("registration.cancel_requested", rid))
            answer = await asyncio.wait_for(poll, 15)
            assert [e["registration_id"] for e in answer["events"]] == [rid]
        finally:
            await other.close()


async def test_a_long_poll_with_nothing_new_answers_empty_when_its_wait_ends(tmp_path: Path) -> None:
    async with worker(tmp_path) as w:
        started = time.monotonic()
        answer = await page(w, wait=0.4)
        assert answer["events"] == []
        assert time.monotonic() - started >= 0.4


async def test_feed_events_are_kept_for_the_retention_period_then_purged(tmp_path: Path) -> None:
    async with worker(tmp_path, retention_days=1) as w:
        await w.cancelled("reg-feed-0001")
        assert len((await page(w))["events"]) == 1
        w.clock.advance(timedelta(hours=23))
        await w.app.runtime.sweeper.purge_once()
        assert len((await page(w))["events"]) == 1
        w.clock.advance(timedelta(hours=2))
        await w.app.runtime.sweeper.purge_once()
        assert (await page(w))["events"] == []


async def test_only_the_long_poll_route_may_outlast_the_usual_request_limit() -> None:
    import aiohttp
    from aiohttp import web

    from adapters.http.common import application, serve
    from adapters.web.feed import FEED_ROUTE, long_poll_aware

    app = application(timeout=1.0)  # the long poll's own bound
    app.middlewares.insert(0, long_poll_aware(0.2, frozenset({FEED_ROUTE, "too.long"})))  # all else

    async def slow(_: web.Request) -> web.Response:
        await asyncio.sleep(0.5)
        return web.Response(text="done")

    async def slower(_: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="too late")

    app.router.add_get("/v1/events", slow, name=FEED_ROUTE)
    app.router.add_get("/other", slow, name="web.other")
    app.router.add_get("/v1/events/too-long", slower, name="too.long")
    async with serve(app) as server, aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/v1/events") as response:
            assert (response.status, await response.text()) == (200, "done")
        async with http.get(f"{server.url}/other") as response:
            assert (response.status, (await response.json())["code"]) == (503, "timeout")
        async with http.get(f"{server.url}/v1/events/too-long") as response:
            assert response.status == 503, "a long poll is still bounded, by the application's limit"
