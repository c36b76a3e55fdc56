"""The Bus port's contract, written once; issue 4 adds RabbitMQ to BUSES."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from adapters.bus.inprocess import InProcessBus
from orchestrator.errors import PermanentError, RetryableError, UnroutableError
from orchestrator.ports import BusMessage, Delivery

BUSES = ["inprocess"]


@pytest.fixture(params=BUSES)
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[InProcessBus]:
    opened = InProcessBus(delivery_limit=3, redelivery_delay=0.01)
    yield opened
    await opened.close()


def message(key: str, mid: str) -> BusMessage:
    return BusMessage(routing_key=key, body=mid.encode(), message_id=mid)


async def eventually(check, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


async def test_topic_routing_copies_a_message_to_every_bound_queue(bus: InProcessBus) -> None:
    await bus.declare_queue("q.all", ["registration.#"])
    await bus.declare_queue("q.one", ["registration.activated"])
    await bus.declare_queue("q.card", ["card.*"])
    got: dict[str, list[str]] = {"q.all": [], "q.one": [], "q.card": []}

    async def record(d: Delivery) -> None:
        got[d.queue].append(d.message.message_id)

    for q in got:
        await bus.consume(q, record)
    await bus.publish(message("registration.activated", "m1"))
    await bus.publish(message("registration.started", "m2"))
    await bus.publish(message("card.info_read", "m3"))
    await bus.join()
    assert got == {"q.all": ["m1", "m2"], "q.one": ["m1"], "q.card": ["m3"]}


async def test_an_unroutable_publish_fails_instead_of_vanishing(bus: InProcessBus) -> None:
    await bus.declare_queue("q", ["card.*"])
    with pytest.raises(UnroutableError):
        await bus.publish(message("registration.activated", "m1"))


async def test_a_retryable_failure_is_redelivered_then_acked(bus: InProcessBus) -> None:
    await bus.declare_queue("q", ["k"])
    attempts: list[int] = []

    async def flaky(d: Delivery) -> None:
        attempts.append(d.attempt)
        if d.attempt < 3:
            raise RetryableError("not yet")

    await bus.consume("q", flaky)
    await bus.publish(message("k", "m1"))
    await bus.join()
    assert attempts == [1, 2, 3]
    assert bus.acked == [("q", "m1")]
    assert bus.dead_letters == []


async def test_the_delivery_limit_dead_letters_with_the_last_reason(bus: InProcessBus) -> None:
    await bus.declare_queue("q", ["k"])

    async def broken(d: Delivery) -> None:
        raise RetryableError("store down", code="store_unavailable")

    await bus.consume("q", broken)
    await bus.publish(message("k", "m1"))
    await bus.join()
    [letter] = bus.dead_letters
    assert letter.attempts == 3
    assert "delivery limit 3" in letter.reason
    assert "store_unavailable: store down" in letter.reason


async def test_a_poison_message_is_dead_lettered_at_once_and_blocks_nothing(bus: InProcessBus) -> None:
    await bus.declare_queue("q", ["k"])
    handled: list[str] = []

    async def handler(d: Delivery) -> None:
        if d.message.message_id == "poison":
            raise PermanentError("cannot parse", code="poison_message")
        handled.append(d.message.message_id)

    await bus.consume("q", handler)
    await bus.publish(message("k", "poison"))
    await bus.publish(message("k", "good"))
    await bus.join()
    assert handled == ["good"]
    [letter] = bus.dead_letters
    assert (letter.message.message_id, letter.attempts) == ("poison", 1)
    assert letter.reason == "poison_message: cannot parse"


async def test_competing_consumers_share_a_queue_and_see_each_message_once(bus: InProcessBus) -> None:
    await bus.declare_queue("q", ["k"])
    seen: dict[str, list[str]] = {"a": [], "b": []}

    def consumer(name: str):
        async def handle(d: Delivery) -> None:
            seen[name].append(d.message.message_id)
            await asyncio.sleep(0.001)

        return handle

    await bus.consume("q", consumer("a"))
    await bus.consume("q", consumer("b"))
    for i in range(50):
        await bus.publish(message("k", f"m{i}"))
    await bus.join()
    together = seen["a"] + seen["b"]
    assert sorted(together) == sorted(f"m{i}" for i in range(50))
    assert seen["a"]
    assert seen["b"]


async def test_a_full_queue_refuses_the_publish(bus: InProcessBus) -> None:
    small = InProcessBus(max_length=2)
    await small.declare_queue("q", ["k"])
    await small.publish(message("k", "m1"))
    await small.publish(message("k", "m2"))
    with pytest.raises(RetryableError):
        await small.publish(message("k", "m3"))
    assert [m.message_id for m in await small.drain("q")] == ["m1", "m2"]
    await small.close()
