"""The RabbitMQ bus against a real broker: connection loss, lost consumers, restarts, queue arguments.

Each test has queues and exchanges of its own (a uuid prefix) and a named connection, so the
broker-side interventions (`rabbitmqctl close_connection`) touch nothing but the test's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
import time
import uuid
from collections.abc import AsyncIterator

import aio_pika
import pytest
from yarl import URL

from adapters.bus.rabbitmq import RabbitMqBus
from orchestrator.errors import ConfigurationError, RetryableError, UnroutableError
from orchestrator.ports import BusMessage, Delivery
from tests.conftest import require
from tests.contract.buses import RABBITMQ_URL, connect_rabbitmq, dead_letters, dispose, eventually

pytestmark = pytest.mark.integration


def named_url(name: str, **query: str) -> str:
    """The broker URL with a connection name (to find it with rabbitmqctl) and aio-pika options."""
    return str(URL(RABBITMQ_URL).update_query(name=name, **query))


async def rabbitmqctl(*args: str) -> str:
    if shutil.which("rabbitmqctl") is None:
        require("rabbitmqctl", "not on PATH")
    process = await asyncio.create_subprocess_exec(
        "rabbitmqctl", "-q", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    if process.returncode != 0:
        require("rabbitmqctl", err.decode(errors="replace").strip()[:300])
    return out.decode()


async def close_connection_named(name: str) -> None:
    """Close our connection from the server side, as a broker restart or an operator would."""
    listing = await rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers")
    pids = [line.split("\t")[0] for line in listing.splitlines() if f'{{"connection_name","{name}"}}' in line]
    assert pids, f"no connection named {name}"
    for pid in pids:
        await rabbitmqctl("close_connection", pid, "honnin test: server-side close")


def message(key: str, mid: str) -> BusMessage:
    return BusMessage(key, mid.encode(), mid, {"registration_id": "r1"})


async def publish_as_the_relay_does(bus: RabbitMqBus, msg: BusMessage, failures: list[float]) -> float:
    """Retry until the broker confirms (the outbox row stays unsent meanwhile); returns when it did."""
    while True:
        try:
            await bus.publish(msg)
            return time.monotonic()
        except RetryableError:
            failures.append(time.monotonic())
            await asyncio.sleep(0.05)


@pytest.fixture
async def bus() -> AsyncIterator[RabbitMqBus]:
    opened = await connect_rabbitmq(delivery_limit=3, watchdog_interval=0.2)
    yield opened
    await dispose(opened)


async def test_a_server_side_close_mid_stream_loses_nothing() -> None:
    name = f"honnin-test-{uuid.uuid4().hex[:8]}"
    bus = await connect_rabbitmq(named_url(name, reconnect_interval="0.5"), watchdog_interval=0.5)
    try:
        await bus.declare_queue("stream", ["stream.#"])
        handled: set[str] = set()
        deliveries: list[float] = []
        redelivered = 0

        async def handler(d: Delivery) -> None:
            nonlocal redelivered
            await asyncio.sleep(0.002)
            deliveries.append(time.monotonic())
            handled.add(d.message.message_id)
            redelivered += d.attempt > 1

        await bus.consume("stream", handler)
        ids = [f"m{i:03d}" for i in range(500)]
        failures: list[float] = []
        published: list[float] = []
        midway = asyncio.Event()

        async def publisher() -> None:
            for i, mid in enumerate(ids):
                published.append(await publish_as_the_relay_does(bus, message("stream.x", mid), failures))
                if i == 150:
                    midway.set()
                await asyncio.sleep(0.005)

        publishing = asyncio.create_task(publisher())
        await midway.wait()
        await close_connection_named(name)
        closed_at = time.monotonic()
        await publishing
        await eventually(lambda: handled == set(ids), timeout=60)
        await bus.join(within=30)

        assert bus.reconnects == 1, "the connection was not closed and re-opened: the test proved nothing"
        assert len(published) == 500
        assert published[-1] > closed_at  # the close landed mid-stream
        outage = min(t for t in published if t > failures[0]) - failures[0] if failures else 0.0
        pause = max(b - a for a, b in itertools.pairwise(deliveries))
        print(  # the numbers the report quotes (pytest -s)
            f"\n500 messages, {len(deliveries)} deliveries ({redelivered} redelivered), "
            f"{len(failures)} failed publishes retried; publishing failed for {outage:.3f}s, "
            f"the longest pause between deliveries {pause:.3f}s; "
            f"watchdog restorations: {bus.watchdog.restored}"
        )
        assert outage < 15
        assert await dead_letters(bus, "stream") == []
    finally:
        await dispose(bus)


async def test_the_watchdog_restores_a_consumer_whose_channel_was_closed() -> None:
    bus = await connect_rabbitmq(watchdog_interval=3600)  # rounds are driven by hand below
    try:
        await bus.declare_queue("q", ["k"])
        handled: list[str] = []

        async def record(d: Delivery) -> None:
            handled.append(d.message.message_id)

        await bus.consume("q", record)
        await bus.publish(message("k", "before"))
        await eventually(lambda: handled == ["before"])

        [consumer] = bus.consumers
        assert consumer.channel is not None
        await consumer.channel.close()  # aio-pika never restores a channel closed on the client side
        await bus.publish(message("k", "while-gone"))
        await asyncio.sleep(1.0)
        assert handled == ["before"]
        assert await bus.depth("q") == 1  # the consumer did not come back by itself

        assert await bus.watchdog.check() == 0  # one miss: maybe aio-pika is restoring it right now
        assert await bus.watchdog.check() == 1
        assert bus.watchdog.restored == 1
        await eventually(lambda: handled == ["before", "while-gone"])
        await bus.publish(message("k", "after"))
        await eventually(lambda: handled == ["before", "while-gone", "after"])
        assert await consumer.alive()
    finally:
        await dispose(bus)


async def test_messages_flow_again_after_the_queue_is_deleted_under_the_consumer(bus: RabbitMqBus) -> None:
    """The broker cancels the consumer (basic.cancel); aio-pika or the watchdog brings it back."""
    await bus.declare_queue("q", ["k"])
    handled: list[str] = []

    async def record(d: Delivery) -> None:
        handled.append(d.message.message_id)

    await bus.consume("q", record)
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(bus.consumers[0].queue_name)
    await publish_as_the_relay_does(bus, message("k", "after-delete"), [])
    await eventually(lambda: handled == ["after-delete"], timeout=20)
    assert await bus.consumers[0].alive()


async def test_messages_survive_a_bus_restart() -> None:
    first = await connect_rabbitmq()
    prefix = first.queue_prefix
    await first.declare_queue("q", ["k"])
    ids = [f"m{i}" for i in range(100)]
    for mid in ids:
        await first.publish(message("k", mid))
    await first.close()

    second = await connect_rabbitmq(queue_prefix=prefix)
    try:
        await second.declare_queue("q", ["k"])  # the same declaration again: a no-op
        assert await second.depth("q") == 100
        handled: list[BusMessage] = []

        async def record(d: Delivery) -> None:
            handled.append(d.message)

        await second.consume("q", record)
        await eventually(lambda: len(handled) >= 100)
        assert sorted(m.message_id for m in handled) == sorted(ids)
        assert handled[0] == message("k", handled[0].message_id)
    finally:
        await dispose(second)


async def test_the_queues_carry_the_declared_arguments(bus: RabbitMqBus) -> None:
    await bus.declare_queue("q", ["k"])
    await bus.declare_queue("q", ["k"])  # idempotent
    listing = json.loads(
        await rabbitmqctl("list_queues", "name", "type", "durable", "arguments", "--formatter", "json")
    )
    prefix = bus.queue_prefix
    queues = {q["name"].removeprefix(prefix): q for q in listing if q["name"].startswith(prefix)}
    tiers = {"q.retry.100ms": 100, "q.retry.1s": 1_000, "q.retry.10s": 10_000, "q.retry.60s": 60_000}
    tiers["q.retry.300s"] = 300_000
    assert set(queues) == {"q", "q.dead", *tiers}
    assert all(q["type"] == "quorum" and q["durable"] for q in queues.values())
    args = {name: {a[0]: a[2] for a in q["arguments"]} for name, q in queues.items()}
    assert args["q"] == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 3 + 2,  # connect_rabbitmq's delivery limit plus the safety margin
        "x-dead-letter-exchange": f"{prefix}honnin.dlx",
        "x-dead-letter-routing-key": f"{prefix}q",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    for name, ttl in tiers.items():  # one fixed TTL per delay queue: nothing waits behind a longer copy
        assert args[name] == {
            "x-queue-type": "quorum",
            "x-message-ttl": ttl,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": f"{prefix}q",
            "x-dead-letter-strategy": "at-least-once",
            "x-overflow": "reject-publish",
        }
    assert args["q.dead"] == {"x-queue-type": "quorum"}


async def test_a_different_delivery_limit_is_refused_not_ignored(bus: RabbitMqBus) -> None:
    await bus.declare_queue("q", ["k"])
    other = await connect_rabbitmq(queue_prefix=bus.queue_prefix, delivery_limit=9)
    try:
        with pytest.raises(ConfigurationError, match="x-delivery-limit"):
            await other.declare_queue("q", ["k"])
    finally:
        await other.close()


async def test_the_broker_dead_letters_past_its_delivery_limit(bus: RabbitMqBus) -> None:
    """The safety net: a consumer that keeps putting a message back (here a raw one that nacks)."""
    await bus.declare_queue("q", ["k"])
    await bus.publish(message("k", "stuck"))
    deliveries = 0
    connection = await aio_pika.connect(RABBITMQ_URL)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(f"{bus.queue_prefix}q", ensure=False)

        async def nack(incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal deliveries
            deliveries += 1
            await incoming.nack(requeue=True)

        await queue.consume(nack)
        await eventually(lambda: _any_dead(bus), timeout=20)
    [letter] = await dead_letters(bus, "q")
    assert letter.message.message_id == "stuck"
    assert letter.reason == "broker: delivery_limit"
    assert deliveries == 3 + 2 + 1  # x-delivery-limit redeliveries after the first


async def _any_dead(bus: RabbitMqBus) -> bool:
    return bool(await dead_letters(bus, "q"))


async def test_a_return_is_reported_by_the_publish_it_belongs_to(bus: RabbitMqBus) -> None:
    """aiormq finds a returned message's publish by message id; two publishes of one id at once
    must not swap outcomes (a lost message reported as sent)."""
    await bus.declare_queue("q", ["k"])
    for _ in range(20):
        outcomes = await asyncio.gather(
            bus.publish(message("nowhere", "same-id")),
            bus.publish(message("k", "same-id")),
            return_exceptions=True,
        )
        assert isinstance(outcomes[0], UnroutableError)
        assert outcomes[1] is None
    assert await bus.depth("q") == 20


async def test_a_bounded_queue_drops_its_oldest_instead_of_refusing_publishes(bus: RabbitMqBus) -> None:
    """The facility queue (HONNIN_FACILITY_QUEUE=true): x-max-length with drop-head, nobody reading."""
    await bus.declare_queue("f", ["registration.#"], max_length=3)
    ids = [f"m{i}" for i in range(10)]
    for message_id in ids:
        await bus.publish(BusMessage("registration.activated", b"{}", message_id))  # each one confirmed
    await eventually(lambda: _depth_is(bus, "f", 3))
    assert [m.message_id for m in await bus.drain("f")] == ids[-3:], "the newest three stay"
    listing = json.loads(await rabbitmqctl("list_queues", "name", "arguments", "--formatter", "json"))
    args = {q["name"].removeprefix(bus.queue_prefix): {a[0]: a[2] for a in q["arguments"]} for q in listing}
    assert args["f"]["x-overflow"] == "drop-head"
    assert args["f"]["x-max-length"] == 3
    assert args["f"]["x-dead-letter-strategy"] == "at-most-once"
    assert args["f.dead"] == {"x-queue-type": "quorum", "x-overflow": "drop-head", "x-max-length": 3}


async def _depth_is(bus: RabbitMqBus, queue: str, n: int) -> bool:
    return await bus.depth(queue) == n


async def test_a_short_redelivery_never_waits_behind_a_long_one() -> None:
    """One queue with a TTL per message expires only its head: a 100 ms copy behind a 60 s one would
    wait the 60 s. With a delay queue per tier, the short copy comes back at once."""
    bus = await connect_rabbitmq(delivery_limit=None, redelivery_base=0.05)
    try:
        await bus.declare_queue("q", ["k"])
        seen: list[tuple[str, int, float]] = []

        async def fail_once(d: Delivery) -> None:
            seen.append((d.message.message_id, d.attempt, time.monotonic()))
            if d.message.message_id == "slow" or d.attempt == 1:
                raise RetryableError("not yet")

        await bus.consume("q", fail_once)
        # Its 12th delivery failing: 0.05 s × 2¹¹ ≈ 102 s of backoff, the 60 s tier.
        await bus.publish(BusMessage("k", b"slow", "slow", {"x-honnin-attempt": "12"}))
        await eventually(lambda: bool(seen))
        started = time.monotonic()
        await bus.publish(message("k", "fast"))
        await eventually(lambda: ("fast", 2) in [(m, a) for m, a, _ in seen], timeout=5)
        back = next(at for m, a, at in seen if (m, a) == ("fast", 2))
        assert back - started < 3, "the short copy did not wait for the long one"
        assert [m for m, _, _ in seen].count("slow") == 1, "the long one still waits its tier"
        assert await bus._ready(bus._naming.retry("q", 60.0)) == 1  # type: ignore[attr-defined]
    finally:
        await dispose(bus)


async def test_dead_letters_are_collected_into_the_store_acked_only_once_kept(
    bus: RabbitMqBus, tmp_path
) -> None:
    from adapters.store.codec import Sealer
    from adapters.store.sqlite import SqliteStore
    from orchestrator.errors import PoisonMessageError, StoreUnavailableError

    await bus.declare_queue("q", ["k"])

    async def refuse(d: Delivery) -> None:
        raise PoisonMessageError("not an event")

    await bus.consume("q", refuse)
    for n in (1, 2):
        await bus.publish(message("k", f"poison-{n}"))
    await eventually(lambda: _dead_depth(bus, 2))
    store = await SqliteStore.open(tmp_path / "honnin.db", Sealer(bytes(range(32))))
    try:

        async def down(letter) -> None:
            raise StoreUnavailableError("the store is down")

        with pytest.raises(StoreUnavailableError):
            await bus.collect_dead_letters("q", down)
        await eventually(lambda: _dead_depth(bus, 2))  # refused: put back, nothing lost
        moved = await bus.collect_dead_letters(
            "q", lambda letter: store.add_dead_letter(letter, letter.first_seen_at)
        )
        assert moved == 2
        kept = await store.dead_letters()
        assert sorted(d.message.message_id for d in kept) == ["poison-1", "poison-2"]
        assert all(d.reason == "poison_message: not an event" and d.first_seen_at for d in kept)
        assert await _dead_depth(bus, 0)
    finally:
        await store.close()


async def _dead_depth(bus: RabbitMqBus, expected: int) -> bool:
    return await bus._ready(bus._naming.dead("q")) == expected  # type: ignore[attr-defined]


async def connections_named(name: str) -> int:
    listing = await rabbitmqctl("list_connections", "client_properties", "--no-table-headers")
    return sum(f'{{"connection_name","{name}"}}' in line for line in listing.splitlines())


async def _no_connection_named(name: str) -> bool:
    return await connections_named(name) == 0


@contextlib.asynccontextmanager
async def closing_bus(consumers: int) -> AsyncIterator[tuple[RabbitMqBus, str]]:
    """A bus on a named connection with `consumers` consumers of one queue, for a test to close
    itself; afterwards the queue and exchanges go through a bus of their own."""
    name = f"honnin-test-{uuid.uuid4().hex[:8]}"
    bus = await connect_rabbitmq(named_url(name))
    try:
        await bus.declare_queue("q", ["k"])

        async def ignore(d: Delivery) -> None:
            return None

        for _ in range(consumers):
            await bus.consume("q", ignore)
        await eventually(lambda: connections_named(name), timeout=20)
        yield bus, name
    finally:
        cleaner = await connect_rabbitmq(queue_prefix=bus.queue_prefix)
        await cleaner.declare_queue("q", ["k"])
        await dispose(cleaner)


async def test_a_close_cancelled_again_while_it_waits_still_closes_consumers_and_connection() -> None:
    """A shutdown cut short (a second Ctrl-C, a stop with a deadline) cancels close() while the
    watchdog stops: the consumers and the connection are closed all the same, not left open
    behind a worker that believes it stopped."""
    async with closing_bus(consumers=1) as (bus, name):
        [consumer] = bus.consumers
        real_stop = bus.watchdog.stop
        stopping = asyncio.Event()

        async def slow_stop() -> None:  # a watchdog round that takes its time (a broker far away)
            stopping.set()
            await asyncio.sleep(3600)
            await real_stop()

        bus.watchdog.stop = slow_stop  # type: ignore[method-assign]
        closing = asyncio.create_task(bus.close())
        await stopping.wait()
        closing.cancel()
        with pytest.raises(asyncio.CancelledError):
            await closing
        assert consumer.channel is None
        assert bus.consumers == ()
        await eventually(lambda: _no_connection_named(name), timeout=20)
        await real_stop()


async def test_a_consumer_that_fails_to_cancel_leaves_the_connection_closed_all_the_same() -> None:
    async with closing_bus(consumers=2) as (bus, name):
        first, second = bus.consumers

        async def broken() -> None:
            raise RuntimeError("the consumer would not cancel")

        first.cancel = broken  # type: ignore[method-assign]
        with pytest.raises(RuntimeError, match="would not cancel"):
            await bus.close()
        assert second.channel is None  # the other consumer was cancelled all the same
        await eventually(lambda: _no_connection_named(name), timeout=20)


async def test_a_handler_still_running_when_the_bus_closes_is_cancelled_within_close() -> None:
    """A delivery in the middle of its handler, as one asleep in the early-event wait: close()
    cancels it before it returns, so nothing the handler would do next can meet the parts a
    worker closes after the bus (the store last), and the unacked delivery comes back."""
    bus = await connect_rabbitmq()
    prefix = bus.queue_prefix
    await bus.declare_queue("q.slow", ["k"])
    began, outcome = asyncio.Event(), []

    async def slow(delivery: Delivery) -> None:
        began.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        outcome.append("went on")

    await bus.consume("q.slow", slow)
    await bus.publish(message("k", "m-slow"))
    await asyncio.wait_for(began.wait(), 10)
    await bus.close()
    assert outcome == ["cancelled"]
    again: list[str] = []

    async def take(delivery: Delivery) -> None:
        again.append(delivery.message.message_id)

    successor = await connect_rabbitmq(queue_prefix=prefix)
    try:
        await successor.declare_queue("q.slow", ["k"])
        await successor.consume("q.slow", take)
        await eventually(lambda: again == ["m-slow"], timeout=10)
    finally:
        await dispose(successor)
    assert outcome == ["cancelled"], "the first handler never went on"
