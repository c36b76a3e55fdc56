"""The buses every contract test runs against, and the few helpers both can answer.

The in-process bus always; RabbitMQ as an integration test (HONNIN_RABBITMQ_URL, default the
local broker), each test with a queue prefix of its own, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import uuid
import weakref
from collections.abc import Awaitable, Callable

import pytest

from adapters.bus.inprocess import InProcessBus
from adapters.bus.rabbitmq import RabbitMqBus
from orchestrator.errors import BusUnavailableError
from orchestrator.ports import Bus, BusMessage, DeadLetter
from tests.conftest import require

RABBITMQ_URL = os.environ.get("HONNIN_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
KINDS = [
    pytest.param("inprocess", id="inprocess"),
    pytest.param("rabbitmq", marks=pytest.mark.integration, id="rabbitmq"),
]

AnyBus = InProcessBus | RabbitMqBus
_taken: weakref.WeakKeyDictionary[RabbitMqBus, list[DeadLetter]] = weakref.WeakKeyDictionary()


async def open_bus(
    kind: str,
    *,
    delivery_limit: int | None = 3,
    redelivery: float = 0.01,
    window: float = 600.0,
    max_length: int | None = None,
) -> AnyBus:
    """A fresh bus; RabbitMQ unreachable skips locally and fails under CI=true."""
    if kind == "inprocess":
        return InProcessBus(
            delivery_limit=delivery_limit,
            redelivery_delay=redelivery,
            redelivery_window=window,
            max_length=max_length or 100_000,
        )
    return await connect_rabbitmq(
        delivery_limit=delivery_limit,
        redelivery_base=redelivery,
        redelivery_window=window,
        max_length=max_length,
    )


async def connect_rabbitmq(url: str = RABBITMQ_URL, **options: object) -> RabbitMqBus:
    """A RabbitMQ bus on queues and exchanges of its own (a uuid prefix)."""
    options.setdefault("queue_prefix", f"test-{uuid.uuid4().hex[:12]}.")
    options.setdefault("publish_timeout", 5.0)
    try:
        return await RabbitMqBus.connect(url, **options)  # type: ignore[arg-type]
    except BusUnavailableError as exc:
        require("RabbitMQ", exc.message)
        raise  # pragma: no cover - require() never returns


async def dispose(bus: AnyBus) -> None:
    if isinstance(bus, RabbitMqBus):
        try:
            await bus.delete_topology()
        finally:
            await bus.close()
        return
    await bus.close()


async def dead_letters(bus: Bus, queue: str) -> list[DeadLetter]:
    """Dead letters of one queue so far (RabbitMQ's are taken off `<queue>.dead` and kept here)."""
    if isinstance(bus, InProcessBus):
        return [d for d in bus.dead_letters if d.queue == queue]
    assert isinstance(bus, RabbitMqBus)
    taken = _taken.setdefault(bus, [])
    taken += await bus.take_dead_letters(queue)
    return [d for d in taken if d.queue == queue]


async def depth(bus: Bus, queue: str) -> int:
    assert isinstance(bus, InProcessBus | RabbitMqBus)
    found = bus.depth(queue)
    return await found if inspect.isawaitable(found) else found


async def drain(bus: Bus, queue: str) -> list[BusMessage]:
    assert isinstance(bus, InProcessBus | RabbitMqBus)
    return await bus.drain(queue)


async def eventually(check: Callable[[], bool | Awaitable[bool]], timeout: float = 10.0) -> None:
    """Poll `check` until it holds; a broker needs a moment, the in-process bus hardly any."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(0.01)
