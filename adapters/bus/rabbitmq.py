"""The Bus port on RabbitMQ (aio-pika), with the in-process bus's semantics.

Topic exchange → durable quorum queues; publishes are persistent, mandatory and wait for the
publisher confirm (a return is UnroutableError, a nack or a lost connection BusUnavailableError).
A handler that raises gets a delayed copy through a `<queue>.retry.<tier>` delay queue (a fixed
TTL per queue, then dead-lettered back) until the redelivery window has passed, then
`<queue>.dead` with the reason; a PermanentError goes there at once. See rabbitmq_topology for
the queue arguments and adapters.bus.redelivery for the schedule.

Operator and test helpers: `depth`, `purge`, `drain`, `take_dead_letters` (destructive: a
non-destructive peek would requeue, which counts as a failed delivery on quorum queues and on
RabbitMQ 4.x — default delivery limit 20 — would in the end drop the dead letter), `join`/`idle`
(in-flight deliveries here plus the ready counts of consumed queues and their retry queues; it
cannot see deliveries other processes hold) and `delete_topology`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection, AbstractRobustExchange
from aio_pika.exceptions import (
    AMQPError,
    ChannelNotFoundEntity,
    ChannelPreconditionFailed,
    DeliveryError,
    PublishError,
)
from pamqp.commands import Basic

from adapters.bus.rabbitmq_codec import bus_message, dead_letter, to_amqp
from adapters.bus.rabbitmq_consumer import InFlight, QueueConsumer, close_quietly
from adapters.bus.rabbitmq_topology import Naming, QueueArguments, declare_all, declare_exchanges
from adapters.bus.redelivery import Redelivery
from adapters.bus.watchdog import ConsumerWatchdog
from orchestrator.errors import (
    BusUnavailableError,
    ConfigurationError,
    NotFoundError,
    UnroutableError,
    exception_kind,
)
from orchestrator.ports import BusMessage, DeadLetter, Handler
from orchestrator.tasks import close_all

log = structlog.get_logger("honnin.bus")

BROKER_ERRORS = (AMQPError, ConnectionError, OSError, RuntimeError, TimeoutError)
"""What aio-pika raises when the broker or the connection fails (its own CONNECTION_EXCEPTIONS)."""
BROKER_REDELIVERIES = 5
"""Without HONNIN_DELIVERY_LIMIT, the broker's own limit (x-delivery-limit, two more than this) is
the same as before the window, so queues declared by an earlier version are declared alike."""


@dataclass
class _Turn:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class RabbitMqBus:
    """Durable, shared by many workers; built by `connect`, which needs a running loop and a broker."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        channel: AbstractRobustChannel,
        exchanges: dict[str, AbstractRobustExchange],
        arguments: QueueArguments,
        policy: Redelivery,
        *,
        prefetch: int,
        publish_timeout: float,
        watchdog: ConsumerWatchdog,
    ) -> None:
        self._connection = connection
        self._channel = channel  # publishing, with confirms; retry copies and dead letters too
        self._exchanges = exchanges  # robust: aio-pika re-declares them after a reconnect
        self._arguments = arguments
        self._naming = arguments.naming
        self._policy = policy
        self._prefetch = prefetch
        self._publish_timeout = publish_timeout
        self._declared: dict[str, tuple[str, ...]] = {}
        self._consumers: list[QueueConsumer] = []
        self._in_flight = InFlight()
        self._settled = False
        self._turns: dict[str, _Turn] = {}
        self.watchdog = watchdog
        self.reconnects = 0  # connections aio-pika re-established; tests and metrics read it

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        exchange: str = "honnin",
        prefetch: int = 32,
        delivery_limit: int | None = None,
        redelivery_base: float = 0.05,
        redelivery_cap: float = 300.0,
        redelivery_window: float = 600.0,
        queue_prefix: str = "",
        max_length: int | None = None,
        publish_timeout: float = 10.0,
        watchdog_interval: float = 5.0,
    ) -> RabbitMqBus:
        """Connect and declare the exchanges; `max_length` bounds the consumed queues (x-max-length)."""
        naming = Naming(queue_prefix, exchange)
        try:
            connection = await aio_pika.connect_robust(url, timeout=publish_timeout)
        except BROKER_ERRORS as exc:
            raise BusUnavailableError(f"cannot connect to RabbitMQ: {exception_kind(exc)}") from exc
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            exchanges = await declare_exchanges(channel, naming, robust=True)
        except BROKER_ERRORS as exc:
            await connection.close()
            raise BusUnavailableError(f"cannot open the publishing channel: {exception_kind(exc)}") from exc
        bus = cls(
            connection,
            channel,
            exchanges,
            QueueArguments(naming, delivery_limit or BROKER_REDELIVERIES, max_length),
            Redelivery(redelivery_window, redelivery_base, redelivery_cap, delivery_limit),
            prefetch=prefetch,
            publish_timeout=publish_timeout,
            watchdog=ConsumerWatchdog(watchdog_interval),
        )
        connection.reconnect_callbacks.add(bus._on_reconnect)
        bus.watchdog.start()
        return bus

    def _on_reconnect(self, _connection: AbstractRobustConnection | None) -> None:
        self.reconnects += 1
        log.warning("bus.reconnected", reconnects=self.reconnects)

    async def declare_queue(
        self, name: str, bindings: Sequence[str], *, max_length: int | None = None
    ) -> None:
        """`max_length`: x-max-length with drop-head (see rabbitmq_topology.DROP_HEAD)."""
        if max_length is not None:
            self._arguments.bounds[name] = max_length
        merged = tuple(dict.fromkeys((*self._declared.get(name, ()), *bindings)))
        async with self._scratch(f"declare queue {name}") as channel:
            await declare_all(channel, self._arguments, name, merged)
        self._declared[name] = merged

    async def publish(self, message: BusMessage) -> None:
        await self._publish(self._naming.exchange, message.routing_key, to_amqp(message))

    async def send_to(self, queue: str, message: BusMessage) -> None:
        """Through the default exchange, so only `queue` gets it (a replayed dead letter)."""
        await self._publish("", self._naming.queue(queue), to_amqp(message))

    async def _publish(self, exchange: str, routing_key: str, message: aio_pika.Message) -> None:
        """Mandatory and confirmed; aio-pika raises PublishError for a return only with `on_return_raises`."""
        try:
            async with self._turn(message.message_id or ""), asyncio.timeout(self._publish_timeout):
                result = await self._exchange(exchange).publish(message, routing_key, mandatory=True)
        except PublishError as exc:
            raise UnroutableError(f"no queue is bound to {routing_key} on {exchange or '(default)'}") from exc
        except DeliveryError as exc:
            raise BusUnavailableError(f"the broker refused {routing_key} (nack): a queue is full?") from exc
        except TimeoutError as exc:
            raise BusUnavailableError(f"no publisher confirm within {self._publish_timeout}s") from exc
        except BROKER_ERRORS as exc:
            raise BusUnavailableError(f"publish failed: {exception_kind(exc)}") from exc
        if not isinstance(result, Basic.Ack):  # a returned message, should aio-pika ever not raise
            raise UnroutableError(f"no queue is bound to {routing_key} on {exchange or '(default)'}")

    @contextlib.asynccontextmanager
    async def _turn(self, message_id: str) -> AsyncIterator[None]:
        """One unconfirmed publish per message id: aiormq matches a return to its publish by message
        id, so two at once could pin one's return on the other and report a lost message as sent."""
        turn = self._turns.setdefault(message_id, _Turn())
        turn.users += 1
        try:
            async with turn.lock:
                yield
        finally:
            turn.users -= 1
            if not turn.users:
                del self._turns[message_id]

    def _exchange(self, name: str) -> AbstractRobustExchange:
        if not name:
            return self._channel.default_exchange  # type: ignore[return-value]
        return self._exchanges[name]

    async def consume(self, queue: str, handler: Handler) -> None:
        if queue not in self._declared:
            raise BusUnavailableError(f"queue {queue} was not declared")
        consumer = QueueConsumer(
            self._connection,
            self._arguments,
            queue,
            lambda: self._declared[queue],
            handler,
            policy=self._policy,
            prefetch=self._prefetch,
            publish_copy=self._publish,
            redeclare=lambda: self.declare_queue(queue, ()),
            in_flight=self._in_flight,
        )
        try:
            await consumer.subscribe()
        except BROKER_ERRORS as exc:
            raise BusUnavailableError(f"cannot consume {queue}: {exception_kind(exc)}") from exc
        self._consumers.append(consumer)
        self.watchdog.watch(consumer)

    @property
    def consumers(self) -> tuple[QueueConsumer, ...]:
        return tuple(self._consumers)

    @property
    def queue_prefix(self) -> str:
        return self._naming.prefix

    @property
    def deliveries_at_once(self) -> int:
        return self._prefetch

    async def close(self) -> None:
        """The watchdog, the consumers (unsettled deliveries return to their queues), then the
        channel and the connection: each part even when the one before it failed or this close
        was cancelled again while it waited (a shutdown cut short), so no connection is left open
        behind a stopped worker. The first failure is raised once all are closed."""
        consumers, self._consumers = self._consumers, []
        await close_all(
            self.watchdog.stop,
            *(consumer.cancel for consumer in consumers),
            partial(close_quietly, self._channel),
            partial(close_quietly, self._connection),
        )

    async def depth(self, queue: str) -> int:
        """Messages ready on the queue (not those a consumer holds)."""
        return await self._ready(self._naming.queue(queue))

    async def purge(self, queue: str) -> int:
        """Forget what waits on the queue and its pending retries; dead letters stay."""
        purged = 0
        async with self._scratch(f"purge {queue}") as channel:
            for name in (self._naming.queue(queue), *self._naming.retries(queue)):
                found = await channel.declare_queue(name, passive=True, robust=False)
                purged += (await found.purge()).message_count or 0
        return purged

    async def drain(self, queue: str) -> list[BusMessage]:
        """Take every waiting message off a queue nobody consumes (tests, operators)."""
        return [bus_message(m) for m in await self._take(self._naming.queue(queue))]

    async def take_dead_letters(self, queue: str) -> list[DeadLetter]:
        """Take the queue's dead letters with their reasons, oldest first (to list, then replay)."""
        return [dead_letter(m, queue) for m in await self._take(self._naming.dead(queue))]

    async def collect_dead_letters(self, queue: str, keep: Callable[[DeadLetter], Awaitable[None]]) -> int:
        """Move the queue's dead letters to `keep` (the store), acking each only once it is kept;
        one `keep` refuses stays on the broker, and the collecting stops there."""
        moved = 0
        async with self._scratch(f"collect {self._naming.dead(queue)}") as channel:
            found = await channel.declare_queue(self._naming.dead(queue), passive=True, robust=False)
            while (message := await found.get(no_ack=False, fail=False)) is not None:
                try:
                    await keep(dead_letter(message, queue))
                except BaseException:
                    await message.nack(requeue=True)
                    raise
                await message.ack()
                moved += 1
        return moved

    async def _take(self, name: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        taken = []
        async with self._scratch(f"read {name}") as channel:
            found = await channel.declare_queue(name, passive=True, robust=False)
            while (message := await found.get(no_ack=False, fail=False)) is not None:
                await message.ack()
                taken.append(message)
        return taken

    def idle(self) -> bool:
        """Nothing in flight here and, at the last `join` poll, nothing waiting on consumed queues."""
        return self._in_flight.count == 0 and self._settled

    async def join(self, within: float = 10.0) -> None:
        """Wait until two polls in a row find nothing in flight and nothing waiting or retrying."""
        async with asyncio.timeout(within):
            calm = 0
            while calm < 2:
                self._settled = await self._quiet()
                calm = calm + 1 if self._settled else 0
                await asyncio.sleep(0.02)

    async def _quiet(self) -> bool:
        if self._in_flight.count:
            return False
        consumed = dict.fromkeys(c.name for c in self._consumers)
        names = [n for q in consumed for n in (self._naming.queue(q), *self._naming.retries(q))]
        waiting = [await self._ready(name) for name in names]
        return not any(waiting) and self._in_flight.count == 0

    async def _ready(self, name: str) -> int:
        async with self._scratch(f"inspect {name}") as channel:
            found = await channel.declare_queue(name, passive=True, robust=False)
        return found.declaration_result.message_count or 0

    async def delete_topology(self) -> None:
        """Delete every queue and both exchanges this bus declared (tests with a queue prefix).

        Consumers go first: aio-pika would otherwise re-declare a deleted queue to restore them.
        """
        await self.watchdog.stop()
        for consumer in self._consumers:
            await consumer.cancel()
        self._consumers = []
        async with self._scratch("delete topology") as channel:
            for name in self._declared:
                retries = self._naming.retries(name)
                for actual in (self._naming.queue(name), *retries, self._naming.dead(name)):
                    await channel.queue_delete(actual)
            await channel.exchange_delete(self._naming.exchange)
            await channel.exchange_delete(self._naming.dlx)

    @contextlib.asynccontextmanager
    async def _scratch(self, what: str) -> AsyncIterator[AbstractRobustChannel]:
        """A short-lived channel, so a refused declaration never closes the publishing channel."""
        try:
            channel = await self._connection.channel(publisher_confirms=False)
            try:
                yield channel
            finally:
                with contextlib.suppress(Exception):
                    await channel.close()
        except ChannelPreconditionFailed as exc:
            raise ConfigurationError(f"{what}: exists with other arguments ({_differing(exc)})") from exc
        except ChannelNotFoundEntity as exc:
            raise NotFoundError(f"{what}: not found ({exception_kind(exc)})") from exc
        except BROKER_ERRORS as exc:
            raise BusUnavailableError(f"{what}: {exception_kind(exc)}") from exc


_INEQUIVALENT = re.compile(r"inequivalent arg '([a-z][a-z_-]{0,40})'")


def _differing(exc: ChannelPreconditionFailed) -> str:
    """Which argument the broker says differs (`x-delivery-limit`), never the rest of its text."""
    found = _INEQUIVALENT.search(" ".join(str(arg) for arg in exc.args))
    return f"{found.group(1)} differs" if found else exception_kind(exc)
