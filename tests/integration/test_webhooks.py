"""Webhooks against real aiohttp receivers on loopback, signatures checked by the independent
`standardwebhooks` package: receivers that are down, failing, hanging, gone or redirecting, and one
facility's dead endpoint beside another's live one."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.integration.receivers import Received, Receiver, Worker, until, worker


def signed_by(secret: str, got: Received) -> bool:
    """The package's own signature for this attempt is among the ones sent (any timestamp: tests
    move the clock by hours, past the package's 5-minute tolerance for `verify`)."""
    at = datetime.fromtimestamp(int(got.headers["webhook-timestamp"]), UTC)
    expected = Webhook(secret).sign(got.headers["webhook-id"], at, got.body.decode())
    return expected in got.headers["webhook-signature"].split(" ")


async def delivery(w: Worker, event_id: str) -> tuple[str, int, str | None]:
    rows = await w.app.store._fetch(  # type: ignore[attr-defined]
        "SELECT state, attempts, next_attempt_at FROM webhook_deliveries WHERE event_id = ?", (event_id,)
    )
    return rows[0][0], rows[0][1], rows[0][2]


async def attempted(w: Worker, event_id: str, attempts: int) -> None:
    async def check() -> bool:
        return (await delivery(w, event_id))[1] >= attempts

    await until(check)


async def next_try(w: Worker, event_id: str) -> None:
    """Move the fake clock to the delivery's persisted next attempt."""
    _, _, at = await delivery(w, event_id)
    assert at is not None
    w.clock.advance(datetime.fromisoformat(at) - w.clock.now() + timedelta(milliseconds=1))


async def test_an_event_arrives_signed_with_the_feed_s_id_and_body(tmp_path: Path) -> None:
    async with worker(tmp_path) as w, Receiver().running() as receiver:
        secret = await w.put_webhook(receiver.url)
        assert secret.startswith("whsec_")
        event_id = await w.cancelled("reg-hook-0001")
        await until(lambda: receiver.got)
        [got] = receiver.got
        assert Webhook(secret).verify(got.body, got.headers)["type"] == "registration.cancelled"
        assert got.headers["webhook-id"] == event_id
        [fed] = await w.app.store.feed("facility-1", 0, 10)
        assert got.body == fed.body, "the webhook carries the feed's very body"
        with pytest.raises(WebhookVerificationError):
            Webhook("whsec_" + "QUJD" * 8).verify(got.body, got.headers)
        await attempted(w, event_id, 1)
        assert (await delivery(w, event_id))[0] == "delivered"
        status, shown = await w.call("GET", "/v1/webhook")
        assert status == 200
        assert "secret" not in shown
        assert secret not in json.dumps(shown)
        assert (shown["url"], shown["state"], shown["pending"]) == (receiver.url, "active", 0)
        assert shown["last_delivery"]["status"] == 200


async def test_a_rotation_signs_with_both_secrets_for_a_day_then_with_the_new_one(tmp_path: Path) -> None:
    async with worker(tmp_path) as w, Receiver().running() as receiver:
        old = await w.put_webhook(receiver.url)
        new = await w.put_webhook(receiver.url)
        assert new != old
        await w.cancelled("reg-hook-0001")
        await until(lambda: len(receiver.got) == 1)
        first = receiver.got[0]
        assert len(first.headers["webhook-signature"].split(" ")) == 2
        assert Webhook(old).verify(first.body, first.headers)
        assert Webhook(new).verify(first.body, first.headers)
        w.clock.advance(timedelta(hours=24, seconds=1))
        await w.cancelled("reg-hook-0002")
        await until(lambda: len(receiver.got) == 2)
        second = receiver.got[1]
        assert len(second.headers["webhook-signature"].split(" ")) == 1
        assert signed_by(new, second)
        assert not signed_by(old, second), "the old secret stops signing after 24 h"


async def test_a_receiver_that_is_down_then_back_gets_the_event(tmp_path: Path) -> None:
    receiver = Receiver()  # not listening yet: connection refused
    async with worker(tmp_path) as w:
        secret = await w.put_webhook(receiver.url)
        event_id = await w.cancelled("reg-hook-0001")
        await attempted(w, event_id, 1)
        state, _, _ = await delivery(w, event_id)
        assert state == "pending"
        _, shown = await w.call("GET", "/v1/webhook")
        assert shown["last_delivery"]["status"] is None
        assert "connection failed" in shown["last_delivery"]["error"]
        async with receiver.running():
            await next_try(w, event_id)
            await until(lambda: receiver.got)
            await attempted(w, event_id, 2)
        assert (await delivery(w, event_id))[:2] == ("delivered", 2)
        assert receiver.ids() == [event_id]
        assert signed_by(secret, receiver.got[0])


async def test_a_receiver_answering_500_for_a_while_gets_the_event_once_it_recovers(tmp_path: Path) -> None:
    async with worker(tmp_path) as w, Receiver(statuses=[500, 500, 503]).running() as receiver:
        secret = await w.put_webhook(receiver.url)
        event_id = await w.cancelled("reg-hook-0001")
        gaps = []
        for attempts in (1, 2, 3):
            await attempted(w, event_id, attempts)
            before = w.clock.now()
            await next_try(w, event_id)
            gaps.append(w.clock.now() - before)
        await attempted(w, event_id, 4)
        assert (await delivery(w, event_id))[:2] == ("delivered", 4)
        assert receiver.ids() == [event_id] * 4, "the same webhook-id on every retry"
        assert all(signed_by(secret, got) for got in receiver.got)
        assert gaps[0] < gaps[1] < gaps[2], f"the backoff grows: {gaps}"


async def test_a_receiver_that_hangs_is_cut_off_by_the_read_timeout_and_retried(tmp_path: Path) -> None:
    hold = asyncio.Event()
    async with (
        worker(tmp_path, webhook_read_timeout_seconds=0.3) as w,
        Receiver(hold=hold).running() as receiver,
    ):
        await w.put_webhook(receiver.url)
        event_id = await w.cancelled("reg-hook-0001")
        await attempted(w, event_id, 1)
        _, shown = await w.call("GET", "/v1/webhook")
        assert shown["last_delivery"]["error"].startswith("timeout")
        assert (await delivery(w, event_id))[0] == "pending"
        hold.set()
        await next_try(w, event_id)
        await attempted(w, event_id, 2)
        assert (await delivery(w, event_id))[0] == "delivered"


async def test_one_facility_s_dead_endpoint_does_not_delay_another_facility(tmp_path: Path) -> None:
    hold = asyncio.Event()
    async with (
        worker(tmp_path, webhook_read_timeout_seconds=30, webhook_concurrency_per_endpoint=2) as w,
        Receiver(hold=hold).running() as stuck,
        Receiver().running() as live,
    ):
        await w.put_webhook(stuck.url, "facility-1")
        await w.put_webhook(live.url, "facility-2")
        for i in range(6):
            await w.cancelled(f"reg-stuck-{i:04d}", "facility-1")
        await until(lambda: stuck.holding == 2)
        for i in range(3):
            await w.cancelled(f"reg-live-{i:05d}", "facility-2")
        await until(lambda: len(live.got) == 3)
        assert stuck.holding == 2, "facility-1 still holds its two slots, and no more"
        assert len(stuck.got) == 2
        hold.set()
        await until(lambda: len(stuck.got) == 6)


async def test_410_disables_the_endpoint_and_a_new_put_enables_it(tmp_path: Path) -> None:
    async with worker(tmp_path) as w, Receiver(statuses=[410]).running() as receiver:
        await w.put_webhook(receiver.url)
        gone = await w.cancelled("reg-hook-0001")
        await attempted(w, gone, 1)
        _, shown = await w.call("GET", "/v1/webhook")
        assert (shown["state"], shown["last_delivery"]["status"]) == ("disabled", 410)
        waiting = await w.cancelled("reg-hook-0002")
        await asyncio.sleep(0.2)
        assert receiver.ids() == [gone], "a disabled endpoint gets nothing"
        await w.put_webhook(receiver.url)
        await until(lambda: waiting in receiver.ids())
        assert (await delivery(w, gone))[0] == "failed", "the refused one waits for a replay"


async def test_a_redirect_is_not_followed_but_retried(tmp_path: Path) -> None:
    async with worker(tmp_path) as w, Receiver(statuses=[302]).running() as receiver:
        await w.put_webhook(receiver.url)
        event_id = await w.cancelled("reg-hook-0001")
        await attempted(w, event_id, 1)
        assert len(receiver.got) == 1, "the Location was not followed"
        _, shown = await w.call("GET", "/v1/webhook")
        assert shown["last_delivery"]["status"] == 302
        await next_try(w, event_id)
        await attempted(w, event_id, 2)
        assert (await delivery(w, event_id))[0] == "delivered"


async def test_when_the_schedule_runs_out_the_endpoint_fails_until_a_replay(tmp_path: Path) -> None:
    from honnin.cli import replay_webhooks

    async with (
        worker(tmp_path, webhook_retry_window_seconds=120, webhook_retry_base_seconds=10) as w,
        Receiver(then=500).running() as receiver,
    ):
        await w.put_webhook(receiver.url)
        event_id = await w.cancelled("reg-hook-0001")
        for attempts in range(1, 20):
            await attempted(w, event_id, attempts)
            state, _, _ = await delivery(w, event_id)
            if state == "failed":
                break
            await next_try(w, event_id)
        assert state == "failed"
        _, shown = await w.call("GET", "/v1/webhook")
        assert shown["state"] == "failing"
        later = await w.cancelled("reg-hook-0002")
        await asyncio.sleep(0.2)
        assert later not in receiver.ids(), "a failing endpoint's deliveries wait"
        receiver.then = 200
        assert await replay_webhooks(w.app, "facility-1", None) == 2
        await until(lambda: {event_id, later} <= set(receiver.ids()))
        await attempted(w, later, 1)
        _, shown = await w.call("GET", "/v1/webhook")
        assert (shown["state"], shown["pending"]) == ("active", 0)


async def test_the_test_event_goes_through_the_same_path(tmp_path: Path) -> None:
    async with worker(tmp_path) as w, Receiver().running() as receiver:
        status, body = await w.call("POST", "/v1/webhook/test")
        assert (status, body["code"]) == (404, "no_webhook")
        secret = await w.put_webhook(receiver.url)
        status, body = await w.call("POST", "/v1/webhook/test")
        assert status == 202
        await until(lambda: receiver.got)
        event = Webhook(secret).verify(receiver.got[0].body, receiver.got[0].headers)
        assert (event["type"], event["event_id"], event["payload"]) == (
            "webhook.test",
            body["event_id"],
            {"facility_id": "facility-1"},
        )
        assert await w.app.store.feed("facility-1", 0, 10) == [], "a test event is not in the feed"
        status, _ = await w.call("DELETE", "/v1/webhook")
        assert status == 204
        status, body = await w.call("GET", "/v1/webhook")
        assert (status, body["code"]) == (404, "no_webhook")


async def test_webhook_urls_are_refused_unless_https_to_a_public_address(tmp_path: Path) -> None:
    async with worker(tmp_path, webhook_allow_http=False) as w:
        for url in (
            "http://example.com/hook",
            "https://127.0.0.1/hook",
            "https://10.1.2.3/hook",
            "https://[fd00:ec2::254]/hook",
            "https://169.254.169.254/latest",
            "https://100.64.0.1/hook",
            "https://user:pw@example.com/hook",
            "ftp://example.com/hook",
            "https://localhost/hook",
            "not a url",
        ):
            status, body = await w.call("PUT", "/v1/webhook", {"url": url})
            assert status == 422, (url, body)
            assert url not in json.dumps(body), "the URL is not repeated"
        status, _ = await w.call("GET", "/v1/webhook")
        assert status == 404, "nothing was registered"


async def test_a_restart_in_the_middle_of_the_retry_schedule_loses_no_delivery(tmp_path: Path) -> None:
    from adapters.clock import FakeClock

    clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
    async with Receiver(statuses=[500, 500]).running() as receiver:
        async with worker(tmp_path, clock) as first:
            secret = await first.put_webhook(receiver.url)
            event_id = await first.cancelled("reg-hook-0001")
            await attempted(first, event_id, 1)
            scheduled = await delivery(first, event_id)
        assert scheduled[:2] == ("pending", 1)
        async with worker(tmp_path, clock) as restarted:  # a new bootstrap on the same SQLite file
            assert await delivery(restarted, event_id) == scheduled, "the schedule outlives the worker"
            await asyncio.sleep(0.2)
            assert len(receiver.got) == 1, "nothing is sent before its persisted time"
            await next_try(restarted, event_id)
            await attempted(restarted, event_id, 2)
            await next_try(restarted, event_id)
            await attempted(restarted, event_id, 3)
            assert (await delivery(restarted, event_id))[:2] == ("delivered", 3)
    assert receiver.ids() == [event_id] * 3
    assert all(signed_by(secret, got) for got in receiver.got), "the sealed secret survived the restart"
