"""The orchestrator end to end on the embedded shape: real SQLite file, in-process bus."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.bus.inprocess import InProcessBus
from adapters.clock import FakeClock
from honnin.bootstrap import App
from orchestrator import messages
from orchestrator.errors import CardInfoNotReadError, RetryLaterError
from orchestrator.model import State
from orchestrator.ports import BusMessage
from schemas.events import OUTBOUND_TYPES
from tests import factory
from tests.contract.buses import eventually
from tests.integration.harness import outbound, publish, published, settle, start

RID = "reg-00000001"


async def state_of(app, rid: str = RID) -> State:
    stored = await app.store.load(rid)
    assert stored is not None
    return stored.registration.state


async def test_the_facility_flow_over_the_bus_ends_activated_once(tmp_path: Path, clock: FakeClock) -> None:
    app = await start(tmp_path, clock)
    try:
        for event in factory.flow(RID):
            await publish(app, event)
            await settle(app)
        assert await state_of(app) is State.ACTIVATED
        sent = Counter(m.routing_key for m in await outbound(app))
        assert sent == {
            "registration.challenge_issued": 1,
            "verification.requested": 1,
            "registration.signature_verified": 1,
            "registration.activated": 1,
        }
        history = await app.orchestrator.history(RID)
        assert [(h.event_type, h.outcome) for h in history] == [(k, "applied") for k in factory.FLOW]
    finally:
        await app.close()


async def test_the_same_event_twice_and_out_of_order_makes_exactly_one_transition(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = await start(tmp_path, clock)
    started, card_read = factory.flow(RID, upto=2)
    try:
        await publish(app, card_read)  # overtakes its registration.started: deferred, not refused
        await publish(app, started)
        await publish(app, card_read)  # the same event id again
        await settle(app)
        await publish(app, card_read)  # and once more, long after
        await settle(app)
        history = await app.orchestrator.history(RID)
        assert [(h.event_type, h.outcome) for h in history] == [
            ("registration.started", "applied"),
            ("card.info_read", "applied"),
        ]
        stored = await app.store.load(RID)
        assert stored is not None
        assert (stored.registration.state, stored.version) == (State.CARD_READ, 2)
        assert app.bus.dead_letters == []  # type: ignore[attr-defined]
    finally:
        await app.close()


async def test_an_event_whose_registration_never_comes_is_dead_lettered_with_its_reason(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = await start(tmp_path, clock, delivery_limit=3)
    try:
        await publish(app, factory.event("card.info_read", "reg-orphan-01"))
        await settle(app)
        [letter] = app.bus.dead_letters  # type: ignore[attr-defined]
        assert letter.attempts == 3
        assert "unknown_registration" in letter.reason
        assert await app.store.load("reg-orphan-01") is None
    finally:
        await app.close()


async def test_an_illegal_event_is_refused_recorded_and_changes_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = await start(tmp_path, clock)
    try:
        for event in factory.flow(RID, upto=2):
            await app.orchestrator.handle(event)
        refused = factory.event("registration.started", RID)  # a second start: late, never valid again
        result = await app.orchestrator.handle(refused)
        assert (result.status, result.code) == ("rejected", "event_not_accepted")
        stored = await app.store.load(RID)
        assert stored is not None
        assert (stored.registration.state, stored.version) == (State.CARD_READ, 2)
        last = (await app.orchestrator.history(RID))[-1]
        assert (last.outcome, last.event_id, last.code) == (
            "rejected",
            str(refused.event_id),
            "event_not_accepted",
        )
        await settle(app)
        rejected = [m for m in await outbound(app) if m.routing_key == "registration.event_rejected"]
        assert len(rejected) == 1
        assert json.loads(rejected[0].body)["payload"]["rejected_event_id"] == str(refused.event_id)
        again = await app.orchestrator.handle(refused)
        assert again.status == "duplicate"
    finally:
        await app.close()


async def test_a_poison_message_is_dead_lettered_and_the_queue_goes_on(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = await start(tmp_path, clock)
    try:
        await app.bus.publish(BusMessage("registration.started", b"{not json", "poison-1"))
        outbound_type = factory.raw("registration.started", RID)
        outbound_type.update(
            type="registration.activated",
            source="orchestrator",
            payload={"facility_id": "f", "activated_at": factory.NOW.isoformat()},
        )
        await app.bus.publish(
            BusMessage("registration.started", json.dumps(outbound_type).encode(), "poison-2")
        )
        await publish(app, factory.event("registration.started", RID))
        await settle(app)
        letters = {d.message.message_id: d for d in app.bus.dead_letters}  # type: ignore[attr-defined]
        assert set(letters) == {"poison-1", "poison-2"}
        assert all(d.attempts == 1 and d.reason.startswith("poison_message") for d in letters.values())
        assert "not an event the orchestrator accepts" in letters["poison-2"].reason
        assert await state_of(app) is State.INFO_ENTERED
    finally:
        await app.close()


class StallingBus(InProcessBus):
    """Takes inbound messages but never returns from publishing an outbound one (`after`:
    only once the message is on its queue), so the worker can be killed at that point."""

    def __init__(self, *, after: bool) -> None:
        super().__init__(redelivery_delay=0.01)
        self.after = after
        self.stalled: list[BusMessage] = []

    async def publish(self, message: BusMessage) -> None:
        if message.routing_key not in OUTBOUND_TYPES:
            await super().publish(message)
            return
        if self.after:
            await super().publish(message)
        self.stalled.append(message)
        await asyncio.Event().wait()


async def _kill_mid_publish(tmp_path: Path, clock: FakeClock, *, after: bool) -> list[str]:
    """Run the flow up to a verification request with a stalling bus, kill the worker, return
    stalled ids (facility events go to the feed in the commit itself: the bus carries the request)."""
    bus = StallingBus(after=after)
    app = await start(tmp_path, clock, bus=bus)
    for event in factory.flow(RID, upto=4):
        await publish(app, event)
        await bus.join()
    async with asyncio.timeout(5):
        while not bus.stalled:
            await asyncio.sleep(0.005)
    await app.close()  # the kill: relay cancelled inside publish, before mark_sent
    return [m.message_id for m in bus.stalled]


async def test_killed_between_save_and_publish_the_outbox_delivers_exactly_once_after_restart(
    tmp_path: Path, clock: FakeClock
) -> None:
    stalled = await _kill_mid_publish(tmp_path, clock, after=False)
    restarted = await start(tmp_path, clock)
    try:
        await settle(restarted)
        delivered = Counter(m.message_id for m in await published(restarted))
        assert delivered == Counter({stalled[0]: 1})
        await settle(restarted)
        assert await published(restarted) == [], "nothing is published twice"
        assert await state_of(restarted) is State.CONFIRMED
    finally:
        await restarted.close()


async def test_killed_between_publish_and_mark_the_same_ids_go_out_again(
    tmp_path: Path, clock: FakeClock
) -> None:
    stalled = await _kill_mid_publish(tmp_path, clock, after=True)
    restarted = await start(tmp_path, clock)
    try:
        await settle(restarted)
        again = [m.message_id for m in await published(restarted)]
        assert again == stalled, "at-least-once, with the same ids, so consumers deduplicate"
    finally:
        await restarted.close()


async def test_an_unactivated_registration_expires_after_a_restart(tmp_path: Path, clock: FakeClock) -> None:
    first = await start(tmp_path, clock, activation_timeout_seconds=600)
    await first.orchestrator.handle(factory.event("registration.started", RID))
    await first.close()

    clock.advance(timedelta(minutes=11))
    restarted = await start(tmp_path, clock)
    rival = await start(tmp_path, clock)  # a second worker sweeping the same store
    try:
        async with asyncio.timeout(5):
            while await state_of(restarted) is not State.EXPIRED:
                await asyncio.sleep(0.01)
        await settle(restarted)
        await settle(rival)
        expired = [m for app in (restarted, rival) for m in await outbound(app)]
        assert [m.routing_key for m in expired] == ["registration.expired"]
        history = await restarted.orchestrator.history(RID)
        assert [h.event_type for h in history] == ["registration.started", "registration.deadline_reached"]
    finally:
        await restarted.close()
        await rival.close()


async def test_a_retry_later_outcome_is_retried_from_the_persisted_schedule(
    tmp_path: Path, clock: FakeClock
) -> None:
    first = await start(tmp_path, clock)
    for event in factory.flow(RID, upto=4):
        await first.orchestrator.handle(event)
    retry = factory.event(
        "verification.completed", RID, payload={"attempt": 1, "outcome": "retry_later", "code": "99"}
    )
    await first.orchestrator.handle(retry)
    stored = await first.store.load(RID)
    assert stored is not None
    assert stored.registration.verification is not None
    retry_at = stored.registration.verification.retry_at
    assert retry_at is not None
    assert timedelta(seconds=1) <= retry_at - clock.now() <= timedelta(seconds=2)
    await first.close()

    clock.advance(timedelta(seconds=3))
    restarted = await start(tmp_path, clock)
    try:
        async with asyncio.timeout(5):
            while True:
                await settle(restarted)
                requests = [m for m in await outbound(restarted) if m.routing_key == "verification.requested"]
                if requests:
                    break
                await asyncio.sleep(0.01)
        stored = await restarted.store.load(RID)
        assert stored is not None
        assert stored.registration.verification is not None
        assert stored.registration.verification.status == "pending"
    finally:
        await restarted.close()


async def test_two_workers_racing_on_one_registration_lose_no_update(
    tmp_path: Path, clock: FakeClock
) -> None:
    one = await start(tmp_path, clock)
    two = await start(tmp_path, clock)
    try:
        await one.orchestrator.handle(factory.event("registration.started", RID))
        reads = [factory.event("card.info_read", RID) for _ in range(6)]
        results = await asyncio.gather(
            *(app.orchestrator.handle(e) for app, e in zip([one, two] * 3, reads, strict=True))
        )
        assert [r.status for r in results] == ["applied"] * 6
        stored = await one.store.load(RID)
        assert stored is not None
        assert stored.version == 7
        assert len(await one.orchestrator.history(RID)) == 7
    finally:
        await one.close()
        await two.close()


async def test_reflect_card_info_fails_with_the_seed_message_until_the_card_is_read(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = await start(tmp_path, clock)
    try:
        await app.orchestrator.handle(factory.event("registration.started", RID))
        with pytest.raises(CardInfoNotReadError) as refused:
            await app.orchestrator.reflect_card_info(RID)
        assert refused.value.message == (
            "情報の取得に失敗しました。アプリで読み取りが完了してから「情報を反映する」を押してください。"
        )
        assert refused.value.message == messages.CARD_INFO_NOT_READ
        await app.orchestrator.handle(factory.event("card.info_read", RID))
        facts = await app.orchestrator.reflect_card_info(RID)
        assert facts.name == factory.NAME
    finally:
        await app.close()


async def test_a_step_that_overtook_the_one_before_waits_for_it(tmp_path: Path, clock: FakeClock) -> None:
    app = await start(tmp_path, clock)
    started, card_read, confirmed = factory.flow(RID, upto=3)
    try:
        await publish(app, started)
        await settle(app)
        await publish(app, confirmed)  # a competing consumer took it before card.info_read
        await publish(app, card_read)
        await settle(app)
        history = await app.orchestrator.history(RID)
        assert [(h.event_type, h.outcome) for h in history] == [
            ("registration.started", "applied"),
            ("card.info_read", "applied"),
            ("registration.confirmed", "applied"),
        ]
    finally:
        await app.close()


def events_counted(app: App, event_type: str, outcome: str) -> float:
    """honnin_events_total for one type and outcome, as /metrics shows it."""
    for family in text_string_to_metric_families(app.metrics.exposition(None).decode()):
        for sample in family.samples:
            if sample.name == "honnin_events_total" and sample.labels == {
                "type": event_type,
                "outcome": outcome,
            }:
                return sample.value
    return 0.0


@pytest.mark.parametrize("kind", ["card.info_read", "registration.confirmed"])
async def test_a_delivered_step_that_overtook_the_one_before_is_applied_after_one_wait_in_the_worker(
    tmp_path: Path, clock: FakeClock, kind: str
) -> None:
    """Competing workers deliver a registration's steps in any order; one that overtook the step
    before it (`unknown_registration`, `not_yet_accepted`) waits in the worker once and is applied
    then, without a trip through the bus's redelivery. With a delivery limit of 1 the bus cannot
    redeliver at all, so a step that was not applied in its one delivery is dead-lettered."""
    bus = InProcessBus(delivery_limit=1, concurrency=4)
    app = await start(tmp_path, clock, bus, early_event_wait_seconds=2.0)
    events = dict(
        zip(
            ["registration.started", "card.info_read", "registration.confirmed"],
            factory.flow(RID, upto=3),
            strict=True,
        )
    )
    before = list(events)[: list(events).index(kind)]
    try:
        await publish(app, events[kind])
        await eventually(lambda: events_counted(app, kind, "waited") == 1)  # its first try found it early
        for earlier in before:
            await publish(app, events[earlier])
        await settle(app)
        history = await app.orchestrator.history(RID)
        assert [(h.event_type, h.outcome) for h in history] == [(k, "applied") for k in [*before, kind]]
        assert app.bus.dead_letters == []  # type: ignore[attr-defined]
        assert events_counted(app, kind, "deferred") == 0, "never handed back to the bus"
    finally:
        await app.close()


@pytest.mark.parametrize(("wait", "at_once"), [(0.0, 4), (5.0, 1)])
async def test_without_the_wait_an_overtaking_step_goes_back_to_the_bus_at_once(
    tmp_path: Path, clock: FakeClock, wait: float, at_once: int
) -> None:
    """No wait configured, or a bus that delivers one message at a time: there the wait would
    hold up every message behind the early one, so the bus redelivers it instead."""
    bus = InProcessBus(delivery_limit=1, concurrency=at_once)
    app = await start(tmp_path, clock, bus, early_event_wait_seconds=wait)
    started, card_read = factory.flow(RID, upto=2)
    try:
        await publish(app, card_read)
        await eventually(lambda: len(app.bus.dead_letters) == 1, timeout=4)  # type: ignore[attr-defined]  # not after 5 s
        await publish(app, started)
        await settle(app)
        [letter] = app.bus.dead_letters  # type: ignore[attr-defined]
        assert "unknown_registration" in letter.reason
        assert [h.event_type for h in await app.orchestrator.history(RID)] == ["registration.started"]
        assert events_counted(app, "card.info_read", "waited") == 0
    finally:
        await app.close()


async def test_a_deferred_event_raises_retry_later_and_records_nothing(
    tmp_path: Path, clock: FakeClock
) -> None:
    """A caller that is not the bus (an HTTP step) is told at once, whatever the worker's wait."""
    app = await start(tmp_path, clock, InProcessBus(concurrency=4), early_event_wait_seconds=5)
    try:
        early = factory.event("card.info_read", RID)
        with pytest.raises(RetryLaterError):
            async with asyncio.timeout(1):
                await app.orchestrator.handle(early)
        assert not await app.store.is_processed(str(early.event_id))
        assert await app.orchestrator.history(RID) == []
    finally:
        await app.close()


async def test_personal_facts_are_not_in_the_database_file_in_clear(tmp_path: Path, clock: FakeClock) -> None:
    app = await start(tmp_path, clock)
    for event in factory.flow(RID):
        await app.orchestrator.handle(event)
    await settle(app)
    await app.close()
    files = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("honnin.db"))
    for fact in (factory.NAME, factory.ADDRESS, "hanako@example.jp", "03-1234-5678", "tarou12345"):
        assert fact.encode() not in files, f"{fact!r} is stored in clear"
    assert RID.encode() in files, "the check reads the real file"


async def test_ended_registrations_are_purged_after_the_retention(tmp_path: Path, clock: FakeClock) -> None:
    app = await start(tmp_path, clock, retention_days=1)
    try:
        await app.orchestrator.handle(factory.event("registration.started", RID))
        await app.orchestrator.handle(factory.event("registration.cancel_requested", RID))
        assert await state_of(app) is State.CANCELLED
        await settle(app)
        clock.advance(timedelta(days=1, seconds=1))
        async with asyncio.timeout(5):
            while await app.store.load(RID) is not None:
                await asyncio.sleep(0.01)
        assert await app.orchestrator.history(RID) == []
    finally:
        await app.close()


async def test_a_worker_whose_background_task_dies_stops_with_the_error(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = await start(tmp_path, clock)
    await app.store._db.close()  # type: ignore[attr-defined]  # the database connection is gone
    try:
        with pytest.raises((sqlite3.ProgrammingError, ValueError)):
            async with asyncio.timeout(5):
                await app.runtime.wait(asyncio.Event())
    finally:
        await app.runtime.stop()
        await app.bus.close()
        await app.store.close()  # its readers are still open, and each holds a thread


async def test_the_history_keeps_a_fingerprint_not_the_certificate(tmp_path: Path, clock: FakeClock) -> None:
    app = await start(tmp_path, clock)
    try:
        for event in factory.flow(RID, upto=4):
            await app.orchestrator.handle(event)
        [submitted] = [
            h for h in await app.orchestrator.history(RID) if h.event_type == "card.signature_submitted"
        ]
        payload = json.loads(submitted.event)["payload"]
        assert payload["certificate"].startswith("sha256:")
        assert payload["signature"] == "[not kept]"
        assert factory.PAYLOADS["card.signature_submitted"]["certificate"] not in submitted.event.decode()
    finally:
        await app.close()


async def test_a_stop_while_marking_sent_still_marks_what_the_bus_took(
    tmp_path: Path, clock: FakeClock
) -> None:
    from orchestrator.relay import OutboxRelay

    app = await start(tmp_path, clock)
    await app.runtime.stop()  # this test drives its own relay
    for event in factory.flow(RID, upto=4):
        await app.orchestrator.handle(event)
    gate = asyncio.Event()
    marking = asyncio.Event()
    real_mark = app.store.mark_sent

    async def slow_mark(ids, now):
        marking.set()
        await gate.wait()
        await real_mark(ids, now)

    app.store.mark_sent = slow_mark  # type: ignore[method-assign]
    relay = OutboxRelay(app.store, app.bus, clock, worker="w")
    task = asyncio.create_task(relay.relay_once())
    await asyncio.wait_for(marking.wait(), 5)
    task.cancel()
    gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await app.store.outbox_backlog() == 0, "the confirmed messages were marked despite the stop"
    await app.close()
