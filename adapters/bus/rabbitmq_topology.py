"""RabbitMQ names and queue arguments for one logical queue, so declaring twice is a no-op.

Every logical queue `q` is quorum queues: `q` (bound to the topic exchange), one delay queue per
tier `q.retry.<tier>` (100ms, 1s, 10s, 60s, 300s: a fixed x-message-ttl each, then dead-lettered
back to `q` through the default exchange) and `q.dead` (bound to the dead-letter exchange with
routing key `q`). A queue expires only its head, so one queue with a TTL per message would hold a
1 s copy behind a 60 s one; with one TTL per queue, every copy in it expires in arrival order.
Arguments are explicit, so RabbitMQ 3.10 (no default delivery limit) and 4.x (a default of 20)
behave alike. The single `q.retry` of earlier versions (per-message TTL) is no longer declared or
used: what it holds still expires back into `q`; delete it once it is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractRobustChannel, AbstractRobustExchange, ExchangeType

from adapters.bus.redelivery import TIERS, tier_label

AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
"""At-least-once dead-lettering from a quorum queue needs `reject-publish`; without it, it is at-most-once."""
DROP_HEAD = {"x-dead-letter-strategy": "at-most-once", "x-overflow": "drop-head"}
"""A bounded queue for outside consumers: a full queue drops its oldest message instead of refusing
publishes. On a quorum queue that rules out at-least-once dead-lettering for it: what it drops, and
what its consumers reject, reaches `<queue>.dead` at most once (that queue is bounded the same way)."""


@dataclass(frozen=True)
class Naming:
    """Turns logical names into the broker's, with the prefix that isolates tests."""

    prefix: str
    exchange_name: str

    @property
    def exchange(self) -> str:
        return f"{self.prefix}{self.exchange_name}"

    @property
    def dlx(self) -> str:
        return f"{self.exchange}.dlx"

    def queue(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def retry(self, name: str, tier: float) -> str:
        return f"{self.queue(name)}.retry.{tier_label(tier)}"

    def retries(self, name: str) -> tuple[str, ...]:
        return tuple(self.retry(name, t) for t in TIERS)

    def dead(self, name: str) -> str:
        return f"{self.queue(name)}.dead"


@dataclass(frozen=True)
class QueueArguments:
    """The x-arguments of the three queues; the broker's delivery limit is only a safety net."""

    naming: Naming
    delivery_limit: int
    max_length: int | None = None
    bounds: dict[str, int] = field(default_factory=dict)  # queue → a drop-head bound of its own

    def main(self, name: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {
            "x-queue-type": "quorum",
            "x-dead-letter-exchange": self.naming.dlx,
            "x-dead-letter-routing-key": self.naming.queue(name),
            **AT_LEAST_ONCE,
            "x-delivery-limit": self.delivery_limit + 2,
        }
        if name in self.bounds:
            arguments |= {**DROP_HEAD, "x-max-length": self.bounds[name]}
        elif self.max_length is not None:
            arguments["x-max-length"] = self.max_length
        return arguments

    def retry(self, name: str, tier: float) -> dict[str, Any]:
        return {
            "x-queue-type": "quorum",
            "x-message-ttl": round(tier * 1000),
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": self.naming.queue(name),
            **AT_LEAST_ONCE,
        }

    def dead(self, name: str) -> dict[str, Any]:
        if name in self.bounds:
            return {"x-queue-type": "quorum", "x-overflow": "drop-head", "x-max-length": self.bounds[name]}
        return {"x-queue-type": "quorum"}


async def declare_exchanges(
    channel: AbstractRobustChannel, naming: Naming, *, robust: bool
) -> dict[str, AbstractRobustExchange]:
    """Both exchanges, durable; `robust` ones are re-declared by aio-pika after a reconnect."""
    topic = await channel.declare_exchange(naming.exchange, ExchangeType.TOPIC, durable=True, robust=robust)
    dlx = await channel.declare_exchange(naming.dlx, ExchangeType.DIRECT, durable=True, robust=robust)
    return {naming.exchange: topic, naming.dlx: dlx}


async def declare_all(
    channel: AbstractRobustChannel, arguments: QueueArguments, name: str, bindings: tuple[str, ...]
) -> None:
    """The exchanges, the dead and delay queues, then the queue itself with its bindings."""
    naming = arguments.naming
    await declare_exchanges(channel, naming, robust=False)
    dead = await channel.declare_queue(
        naming.dead(name), durable=True, arguments=arguments.dead(name), robust=False
    )
    await dead.bind(naming.dlx, naming.queue(name), robust=False)
    for tier in TIERS:
        await channel.declare_queue(
            naming.retry(name, tier), durable=True, arguments=arguments.retry(name, tier), robust=False
        )
    await declare_main(channel, arguments, name, bindings, robust=False)


async def declare_main(
    channel: AbstractRobustChannel,
    arguments: QueueArguments,
    name: str,
    bindings: tuple[str, ...],
    *,
    robust: bool,
) -> aio_pika.abc.AbstractRobustQueue:
    """The consumed queue and its bindings; a consumer declares it `robust` so aio-pika restores both."""
    queue = await channel.declare_queue(
        arguments.naming.queue(name), durable=True, arguments=arguments.main(name), robust=robust
    )
    for binding in bindings:
        await queue.bind(arguments.naming.exchange, binding, robust=robust)
    return queue
