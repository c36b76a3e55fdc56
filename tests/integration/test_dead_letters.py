"""The embedded bus keeps its dead letters in the store, where they outlive the process; a dead
letter the store cannot take now is redelivered later instead of being lost."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from adapters.bus.inprocess import InProcessBus
from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from orchestrator.errors import PoisonMessageError, StoreUnavailableError
from orchestrator.ports import BusMessage, DeadLetter, Delivery
from tests.contract.buses import eventually


class FlakySink:
    """A store that refuses its first dead letters (it is down), then keeps them."""

    def __init__(self, store: SqliteStore, refusals: int) -> None:
        self.store = store
        self.refusals = refusals
        self.tried = 0

    async def add_dead_letter(self, letter: DeadLetter, at: datetime) -> None:
        self.tried += 1
        if self.tried <= self.refusals:
            raise StoreUnavailableError("the store is down")
        await self.store.add_dead_letter(letter, at)


async def poisoned(bus: InProcessBus) -> list[int]:
    await bus.declare_queue("q", ["k"])
    attempts: list[int] = []

    async def refuse(d: Delivery) -> None:
        attempts.append(d.attempt)
        raise PoisonMessageError("not an event")

    await bus.consume("q", refuse)
    await bus.publish(BusMessage("k", b"{}", "poison-1", {"registration_id": "r1"}))
    return attempts


async def test_dead_letters_go_to_the_store_and_outlive_the_bus(tmp_path: Path, sealer: Sealer) -> None:
    store = await SqliteStore.open(tmp_path / "honnin.db", sealer)
    bus = InProcessBus(dead_letters_to=store)
    try:
        await poisoned(bus)
        await bus.join()
        await bus.close()
        [letter] = await store.dead_letters()
        assert (letter.queue, letter.message.message_id, letter.attempts) == ("q", "poison-1", 1)
        assert letter.reason == "poison_message: not an event"
        assert letter.first_seen_at is not None
        assert letter.last_seen_at is not None
        assert letter.first_seen_at <= letter.last_seen_at
        assert bus.dead_letters == [], "not kept in memory"
    finally:
        await store.close()
    reopened = await SqliteStore.open(tmp_path / "honnin.db", sealer)
    try:
        assert [d.message.message_id for d in await reopened.dead_letters()] == ["poison-1"]
    finally:
        await reopened.close()


async def test_a_dead_letter_the_store_refuses_is_delivered_again_not_lost(
    tmp_path: Path, sealer: Sealer
) -> None:
    store = await SqliteStore.open(tmp_path / "honnin.db", sealer)
    sink = FlakySink(store, refusals=2)
    bus = InProcessBus(dead_letters_to=sink, redelivery_cap=0.05)
    try:
        attempts = await poisoned(bus)
        await eventually(lambda: _kept(store))
        await bus.join()
        assert attempts == [1, 2, 3], "handed to the consumer again while the store was down"
        [letter] = await store.dead_letters()
        assert (letter.message.message_id, letter.attempts) == ("poison-1", 3)
        assert sink.tried == 3
    finally:
        await bus.close()
        await store.close()


async def _kept(store: SqliteStore) -> bool:
    return await store.dead_letter_count() == 1


async def test_the_relay_and_the_sweeper_log_failures_through_the_one_sanitiser(clock) -> None:
    """Their log lines say failure_reason(exc): one line, any 12-digit run masked, never raw text."""
    import asyncio
    import contextlib

    from structlog.testing import capture_logs

    from orchestrator.relay import OutboxRelay
    from orchestrator.sweeper import DeadlineSweeper
    from tests import factory

    leaky = StoreUnavailableError("failed at\nrow 1234-5678-9012")

    class DownStore:
        async def claim_outbox(self, *_: object) -> list[object]:
            raise leaky

        async def due(self, *_: object) -> list[str]:
            raise leaky

    relay = OutboxRelay(DownStore(), InProcessBus(), clock, worker="w", idle_seconds=0.01)  # type: ignore[arg-type]
    sweeper = DeadlineSweeper(
        None, DownStore(), clock, retention=factory.NOW - factory.NOW, interval_seconds=0.01
    )  # type: ignore[arg-type]
    with capture_logs() as logs:
        for task in (asyncio.create_task(relay.run(asyncio.Event())), asyncio.create_task(sweeper.run())):
            await asyncio.sleep(0.05)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    reasons = {entry["event"]: entry["reason"] for entry in logs if "reason" in entry}
    assert set(reasons) == {"outbox.relay_failed", "sweeper.failed"}
    for reason in reasons.values():
        assert reason.startswith("store_unavailable: failed at")
        assert "9012" not in reason
        assert "\n" not in reason
