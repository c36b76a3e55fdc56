"""The Bus port's contract, written once and run against the in-process bus and RabbitMQ.

Tests see only what both buses offer: the port, what their handlers record, and the helpers of
tests/contract/buses.py (dead letters, depth, drain, `join`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from structlog.testing import capture_logs

from orchestrator.errors import BusUnavailableError, PermanentError, RetryableError, UnroutableError
from orchestrator.ports import BusMessage, Delivery
from tests.contract.buses import KINDS, AnyBus, dead_letters, depth, dispose, drain, eventually, open_bus


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def bus(kind: str) -> AsyncIterator[AnyBus]:
    opened = await open_bus(kind)
    yield opened
    await dispose(opened)


def message(key: str, mid: str) -> BusMessage:
    return BusMessage(routing_key=key, body=mid.encode(), message_id=mid, headers={"registration_id": "r1"})


async def test_topic_routing_copies_a_message_to_every_bound_queue(bus: AnyBus) -> None:
    await bus.declare_queue("q.all", ["registration.#"])
    await bus.declare_queue("q.one", ["registration.activated"])
    await bus.declare_queue("q.card", ["card.*"])
    got: dict[str, list[BusMessage]] = {"q.all": [], "q.one": [], "q.card": []}

    async def record(d: Delivery) -> None:
        got[d.queue].append(d.message)

    for q in got:
        await bus.consume(q, record)
    sent = [
        message("registration.activated", "m1"),
        message("registration.started", "m2"),
        message("card.info_read", "m3"),
    ]
    for m in sent:
        await bus.publish(m)
    await eventually(lambda: sum(map(len, got.values())) >= 4)
    await bus.join()
    ids = {q: [m.message_id for m in ms] for q, ms in got.items()}
    assert ids == {"q.all": ["m1", "m2"], "q.one": ["m1"], "q.card": ["m3"]}
    assert got["q.all"] == sent[:2]  # key, body, id and headers arrive as published


async def test_an_unroutable_publish_fails_instead_of_vanishing(bus: AnyBus) -> None:
    await bus.declare_queue("q", ["card.*"])
    with pytest.raises(UnroutableError):
        await bus.publish(message("registration.activated", "m1"))


async def test_a_retryable_failure_is_redelivered_then_acked(bus: AnyBus) -> None:
    await bus.declare_queue("q", ["k"])
    attempts: list[int] = []

    async def flaky(d: Delivery) -> None:
        attempts.append(d.attempt)
        if d.attempt < 3:
            raise RetryableError("not yet")

    await bus.consume("q", flaky)
    await bus.publish(message("k", "m1"))
    await eventually(lambda: len(attempts) >= 3)
    await bus.join()
    assert attempts == [1, 2, 3]
    assert await depth(bus, "q") == 0
    assert await dead_letters(bus, "q") == []


async def test_the_delivery_limit_dead_letters_with_the_last_reason(bus: AnyBus) -> None:
    await bus.declare_queue("q", ["k"])
    attempts: list[int] = []

    async def broken(d: Delivery) -> None:
        attempts.append(d.attempt)
        raise RetryableError("store down", code="store_unavailable")

    await bus.consume("q", broken)
    await bus.publish(message("k", "m1"))
    await eventually(lambda: _any_dead(bus, "q"))
    [letter] = await dead_letters(bus, "q")
    assert attempts == [1, 2, 3]
    assert (letter.message, letter.attempts) == (message("k", "m1"), 3)
    assert "delivery limit 3" in letter.reason
    assert "store_unavailable: store down" in letter.reason


async def test_a_poison_message_is_dead_lettered_at_once_and_blocks_nothing(bus: AnyBus) -> None:
    await bus.declare_queue("q", ["k"])
    handled: list[str] = []

    async def handler(d: Delivery) -> None:
        if d.message.message_id == "poison":
            raise PermanentError("cannot parse", code="poison_message")
        handled.append(d.message.message_id)

    await bus.consume("q", handler)
    await bus.publish(message("k", "poison"))
    await bus.publish(message("k", "good"))
    await eventually(lambda: handled == ["good"])
    await eventually(lambda: _any_dead(bus, "q"))
    [letter] = await dead_letters(bus, "q")
    assert (letter.message.message_id, letter.attempts) == ("poison", 1)
    assert letter.reason == "poison_message: cannot parse"


PERSONAL_FACTS = ("東京都千代田区千代田1-1", "公的　花子", "hanako@example.jp")


@pytest.mark.parametrize(
    "failure",
    [
        KeyError(PERSONAL_FACTS[0]),
        ValueError(f"{PERSONAL_FACTS[1]} <{PERSONAL_FACTS[2]}>"),
        RuntimeError(" ".join(PERSONAL_FACTS)),
    ],
    ids=["KeyError", "ValueError", "RuntimeError"],
)
async def test_a_failures_text_never_reaches_a_dead_letter_or_a_log(bus: AnyBus, failure: Exception) -> None:
    """Only the exception's type travels (RabbitMQ: the x-honnin-reason header): its text may
    quote personal facts."""
    await bus.declare_queue("q", ["k"])

    async def leaky(_: Delivery) -> None:
        raise failure

    with capture_logs() as logs:
        await bus.consume("q", leaky)
        await bus.publish(message("k", "m1"))
        await eventually(lambda: _any_dead(bus, "q"))
    [letter] = await dead_letters(bus, "q")
    assert letter.reason == f"delivery limit 3 reached; last: {type(failure).__name__}"
    said = json.dumps(logs, ensure_ascii=False, default=str)
    assert type(failure).__name__ in said
    for fact in (*PERSONAL_FACTS, "千代田", "hanako"):
        assert fact not in letter.reason
        assert fact not in said


async def test_a_honnin_errors_reason_is_one_line_and_masked(bus: AnyBus) -> None:
    await bus.declare_queue("q", ["k"])

    async def refusing(_: Delivery) -> None:
        raise PermanentError("bad input\nnumber 1234 5678 9012\x1b[31m", code="poison_message")

    await bus.consume("q", refusing)
    await bus.publish(message("k", "m1"))
    await eventually(lambda: _any_dead(bus, "q"))
    [letter] = await dead_letters(bus, "q")
    assert letter.reason == "poison_message: bad input number [individual-number-removed]m"


async def test_competing_consumers_share_a_queue_and_see_each_message_once(bus: AnyBus) -> None:
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
    await eventually(lambda: len(seen["a"]) + len(seen["b"]) >= 50)
    await bus.join()
    together = seen["a"] + seen["b"]
    assert sorted(together) == sorted(f"m{i}" for i in range(50))
    assert seen["a"]
    assert seen["b"]


async def test_a_full_queue_refuses_the_publish(kind: str) -> None:
    """Bounded like `x-max-length` with `reject-publish`. A quorum queue checks the bound after it
    enqueues, so RabbitMQ takes one message past it before refusing: the bound is soft by one."""
    small = await open_bus(kind, max_length=2)
    try:
        await small.declare_queue("q", ["k"])
        accepted, refused = await _publish_until_refused(small, up_to=5)
        assert isinstance(refused, BusUnavailableError)
        assert not isinstance(refused, UnroutableError)
        assert accepted in (["m1", "m2"], ["m1", "m2", "m3"])
        assert [m.message_id for m in await drain(small, "q")] == accepted
    finally:
        await dispose(small)


async def _any_dead(bus: AnyBus, queue: str) -> bool:
    return bool(await dead_letters(bus, queue))


async def _publish_until_refused(bus: AnyBus, up_to: int) -> tuple[list[str], Exception | None]:
    accepted: list[str] = []
    for i in range(1, up_to + 1):
        try:
            await bus.publish(message("k", f"m{i}"))
        except RetryableError as exc:
            return accepted, exc
        accepted.append(f"m{i}")
    return accepted, None


async def test_a_queue_with_its_own_bound_drops_its_oldest_and_never_refuses(bus: AnyBus) -> None:
    """For outside consumers (the facility queue): `x-max-length` with drop-head."""
    await bus.declare_queue("q.outside", ["k"], max_length=3)
    await bus.declare_queue("q.ours", ["k"])
    for i in range(1, 9):
        await bus.publish(message("k", f"m{i}"))  # never refused
    await eventually(lambda: _depth_is(bus, "q.outside", 3))
    assert [m.message_id for m in await drain(bus, "q.outside")] == ["m6", "m7", "m8"]
    assert len(await drain(bus, "q.ours")) == 8, "the other queue bound to the key has them all"


async def _depth_is(bus: AnyBus, queue: str, n: int) -> bool:
    return await depth(bus, queue) == n


async def test_the_in_process_bus_keeps_records_only_when_asked() -> None:
    from adapters.bus.inprocess import InProcessBus

    quiet, recording = InProcessBus(keep_dead=2), InProcessBus(record=True)
    for bus in (quiet, recording):
        await bus.declare_queue("q", ["k"])

        async def poison(_: Delivery) -> None:
            raise PermanentError("poison")

        await bus.consume("q", poison)
        for i in range(5):
            await bus.publish(message("k", f"m{i}"))
        await bus.join()
    assert (quiet.published, quiet.acked) == ([], [])
    assert [d.message.message_id for d in quiet.dead_letters] == ["m3", "m4"], "the latest kept"
    assert [m.message_id for m in recording.published] == [f"m{i}" for i in range(5)]
    for bus in (quiet, recording):
        await bus.close()


# -- the redelivery window ---------------------------------------------------------------------------


async def test_without_a_limit_a_failing_message_is_redelivered_until_its_window_passes(kind: str) -> None:
    bus = await open_bus(kind, delivery_limit=None, window=0.6)
    try:
        await bus.declare_queue("q", ["k"])
        seen: list[Delivery] = []

        async def broken(d: Delivery) -> None:
            seen.append(d)
            raise RetryableError("store down", code="store_unavailable")

        await bus.consume("q", broken)
        await bus.publish(message("k", "m1"))
        await eventually(lambda: _any_dead(bus, "q"))
        [letter] = await dead_letters(bus, "q")
        assert [d.attempt for d in seen] == list(range(1, len(seen) + 1))
        assert len(seen) >= 3, "redelivered, not dead-lettered at the first failure"
        first = seen[0].first_seen_at
        assert first is not None
        for d in seen:  # the first-seen time travels with every copy, and into the dead letter
            assert d.first_seen_at is not None
            assert abs((d.first_seen_at - first).total_seconds()) < 0.001
        assert letter.first_seen_at is not None
        assert abs((letter.first_seen_at - first).total_seconds()) < 0.001
        assert letter.attempts == len(seen)
        assert f"redelivery window of 0.6s passed after {len(seen)} deliveries" in letter.reason
        assert "store_unavailable: store down" in letter.reason
    finally:
        await dispose(bus)


async def test_a_message_sent_to_one_queue_reaches_that_queue_only(bus: AnyBus) -> None:
    await bus.declare_queue("q.one", ["k"])
    await bus.declare_queue("q.two", ["k"])
    got: list[tuple[str, BusMessage]] = []

    async def record(d: Delivery) -> None:
        got.append((d.queue, d.message))

    await bus.consume("q.one", record)
    await bus.consume("q.two", record)
    await bus.send_to("q.two", message("k", "replayed"))
    await eventually(lambda: bool(got))
    await bus.join()
    assert got == [("q.two", message("k", "replayed"))], "past the routing: the other queue hears nothing"
    with pytest.raises(UnroutableError):
        await bus.send_to("q.none", message("k", "lost"))


async def test_a_queue_declared_after_publishes_hears_the_next_ones(bus: AnyBus) -> None:
    """Routing learnt from earlier publishes (the in-process bus remembers each key's queues) must
    follow every later declare: a new queue, a new binding, a key no queue took before."""
    await bus.declare_queue("q.a", ["card.info_read"])
    got: list[tuple[str, str]] = []

    async def record(d: Delivery) -> None:
        got.append((d.queue, d.message.message_id))

    await bus.consume("q.a", record)
    await bus.publish(message("card.info_read", "m1"))
    with pytest.raises(UnroutableError):
        await bus.publish(message("card.signature_submitted", "lost"))
    await bus.declare_queue("q.b", ["card.*"])
    await bus.declare_queue("q.a", ["registration.started"])  # one binding more on a known queue
    await bus.consume("q.b", record)
    await bus.publish(message("card.info_read", "m2"))
    await bus.publish(message("card.signature_submitted", "m3"))
    await bus.publish(message("registration.started", "m4"))
    await eventually(lambda: len(got) >= 5)
    await bus.join()
    assert sorted(got) == [("q.a", "m1"), ("q.a", "m2"), ("q.a", "m4"), ("q.b", "m2"), ("q.b", "m3")]


async def test_the_in_process_bus_remembers_a_bounded_number_of_routing_keys() -> None:
    from adapters.bus.inprocess import ROUTES_KEPT

    bus = await open_bus("inprocess")
    try:
        await bus.declare_queue("q", ["#"], max_length=1)  # drops its oldest: never refuses
        for i in range(ROUTES_KEPT + 10):
            await bus.publish(message(f"key.{i}", f"m{i}"))
        assert 0 < len(bus._routes) <= ROUTES_KEPT  # type: ignore[union-attr]
        assert await depth(bus, "q") == 1
    finally:
        await dispose(bus)
