"""One handler on one queue, on a channel of its own: ack, delayed retry or dead letter per delivery.

A failing delivery is copied to the delay queue of the tier its backoff rounds down to, carrying
its attempt and first-seen time, until the redelivery window has passed (adapters.bus.redelivery).

Nothing is settled before its consequence is safe: a retry copy or a dead letter is published
with a publisher confirm first, then the delivery is acked; if that publish fails the delivery is
nacked back onto the queue, so a message is never lost between the two. Deliveries run
concurrently, up to the channel's prefetch (aio-pika gives each its own task); handlers must
tolerate that, as the orchestrator's version check does.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import aio_pika
import structlog
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustChannel,
    AbstractRobustConnection,
    AbstractRobustQueue,
)

from adapters.bus.rabbitmq_codec import ATTEMPT, FIRST_SEEN, QUEUE, REASON, to_amqp, to_delivery
from adapters.bus.rabbitmq_topology import QueueArguments, declare_main
from adapters.bus.redelivery import Redelivery, tier
from orchestrator.errors import BusUnavailableError, PermanentError, failure_reason
from orchestrator.ports import Delivery, Handler

log = structlog.get_logger("honnin.bus")

PublishCopy = Callable[[str, str, aio_pika.Message], Awaitable[None]]
"""(exchange, routing key, message): publishes with a confirm or raises BusUnavailableError."""


@dataclass
class InFlight:
    """Deliveries handed to a handler and not yet settled, across every consumer of a bus."""

    count: int = 0


class QueueConsumer:
    """A subscription the watchdog can check and bring back."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        arguments: QueueArguments,
        name: str,
        bindings: Callable[[], tuple[str, ...]],
        handler: Handler,
        *,
        policy: Redelivery,
        prefetch: int,
        publish_copy: PublishCopy,
        redeclare: Callable[[], Awaitable[None]],
        in_flight: InFlight,
    ) -> None:
        self.name = name
        self.handler = handler
        self.channel: AbstractRobustChannel | None = None
        self.tag: str | None = None
        self._connection = connection
        self._arguments = arguments
        self._bindings = bindings
        self._policy = policy
        self._prefetch = prefetch
        self._publish_copy = publish_copy
        self._redeclare = redeclare
        self._in_flight = in_flight
        self._queue: AbstractRobustQueue | None = None

    @property
    def queue_name(self) -> str:
        """The queue's name on the broker."""
        return self._arguments.naming.queue(self.name)

    async def subscribe(self) -> None:
        """A fresh channel; the queue is declared `robust`, so aio-pika restores it with its arguments."""
        channel = await self._connection.channel(publisher_confirms=False)
        try:
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await declare_main(channel, self._arguments, self.name, self._bindings(), robust=True)
            tag = await queue.consume(self._on_message, no_ack=False)
        except BaseException:
            await close_quietly(channel)
            raise
        self.channel, self._queue, self.tag = channel, queue, tag

    async def alive(self) -> bool:
        """Open channel and a consumer tag it still knows; a reconnect in progress counts as alive."""
        connection = self._connection
        if connection.is_closed or not connection.connected.is_set():
            return True  # aio-pika is reconnecting; judge once it says it is back
        if self.channel is None or self.channel.is_closed:
            return False
        async with asyncio.timeout(2.0):
            underlay = await self.channel.get_underlay_channel()
        consumers: Mapping[str, object] = getattr(underlay, "consumers", {})
        return self.tag in consumers

    async def restore(self) -> None:
        """Drop the old channel (so aio-pika stops restoring it), declare everything again, re-subscribe."""
        old, self.channel, self.tag, self._queue = self.channel, None, None, None
        if old is not None:
            await close_quietly(old)
        await self._redeclare()
        await self.subscribe()

    async def cancel(self) -> None:
        """Stop deliveries; unsettled ones go back to the queue when the channel closes."""
        queue, tag, channel = self._queue, self.tag, self.channel
        self.channel, self.tag, self._queue = None, None, None
        if queue is not None and tag is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5.0):
                    await queue.cancel(tag)
        if channel is not None:
            await close_quietly(channel)

    async def _on_message(self, incoming: AbstractIncomingMessage) -> None:
        self._in_flight.count += 1
        try:
            await self._handle(incoming)
        finally:
            self._in_flight.count -= 1

    async def _handle(self, incoming: AbstractIncomingMessage) -> None:
        delivery = to_delivery(incoming, self.name)
        if delivery.first_seen_at is None:  # its first delivery: the window starts now
            delivery = replace(delivery, first_seen_at=datetime.fromtimestamp(time.time(), UTC))
        assert delivery.first_seen_at is not None
        first_seen = delivery.first_seen_at.timestamp()
        try:
            await self.handler(delivery)
        except PermanentError as exc:
            await self._dead_letter(incoming, delivery, failure_reason(exc), first_seen)
        except Exception as exc:
            await self._retry(incoming, delivery, failure_reason(exc), first_seen)
        else:
            await _settle(incoming, delivery, requeue=None)

    async def _retry(
        self, incoming: AbstractIncomingMessage, delivery: Delivery, reason: str, first_seen: float
    ) -> None:
        """A copy on the delay queue of its tier, or a dead letter once the window has passed."""
        delay = self._policy.delay(delivery.attempt, first_seen, time.time())
        if delay is None:
            gave_up = self._policy.gave_up(delivery.attempt, reason)
            await self._dead_letter(incoming, delivery, gave_up, first_seen)
            return
        chosen = tier(delay)
        log.info("bus.retry_scheduled", **_fields(delivery), reason=reason, delay=chosen)
        extra: dict[str, str | int] = {ATTEMPT: delivery.attempt + 1, FIRST_SEEN: f"{first_seen:.6f}"}
        copy = to_amqp(delivery.message, extra)
        await self._forward(incoming, delivery, "", self._arguments.naming.retry(self.name, chosen), copy)

    async def _dead_letter(
        self, incoming: AbstractIncomingMessage, delivery: Delivery, reason: str, first_seen: float
    ) -> None:
        log.warning("message.dead_lettered", **_fields(delivery), reason=reason)
        extra: dict[str, str | int] = {
            REASON: reason,
            QUEUE: self.name,
            ATTEMPT: delivery.attempt,
            FIRST_SEEN: f"{first_seen:.6f}",
        }
        naming = self._arguments.naming
        await self._forward(
            incoming, delivery, naming.dlx, naming.queue(self.name), to_amqp(delivery.message, extra)
        )

    async def _forward(
        self,
        incoming: AbstractIncomingMessage,
        delivery: Delivery,
        exchange: str,
        key: str,
        copy: aio_pika.Message,
    ) -> None:
        """Ack only once the copy is confirmed; otherwise put the delivery back."""
        try:
            await self._publish_copy(exchange, key, copy)
        except BusUnavailableError as exc:
            log.warning("bus.copy_failed", **_fields(delivery), reason=failure_reason(exc))
            await _settle(incoming, delivery, requeue=True)
            return
        await _settle(incoming, delivery, requeue=None)


async def _settle(incoming: AbstractIncomingMessage, delivery: Delivery, *, requeue: bool | None) -> None:
    """Ack (`requeue` None) or nack; on a channel that is gone the broker redelivers by itself."""
    try:
        if requeue is None:
            await incoming.ack()
        else:
            await incoming.nack(requeue=requeue)
    except Exception as exc:
        log.warning("bus.settle_failed", **_fields(delivery), reason=type(exc).__name__)


def _fields(delivery: Delivery) -> dict[str, object]:
    """What a log line may say about a delivery: never its body."""
    return {"queue": delivery.queue, "message_id": delivery.message.message_id, "attempt": delivery.attempt}


async def close_quietly(closable: AbstractRobustChannel | AbstractRobustConnection) -> None:
    """Close a channel or connection that may already be closed or whose broker may be gone."""
    with contextlib.suppress(Exception):
        async with asyncio.timeout(5.0):
            await closable.close()
