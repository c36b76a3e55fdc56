"""The embedded bus: the broker's semantics in one process, recording what it did.

Topic routing, competing consumers, acks, redelivery with backoff over a window from the first
delivery (adapters.bus.redelivery), dead letters with the reason, a bounded queue length that
refuses publishes like `x-overflow: reject-publish` (or, for a queue declared with its own
`max_length`, drops the oldest like `drop-head`), and an unroutable publish that fails like a
returned mandatory message. Messages live in memory: they do not outlive the process (RabbitMQ is
the durable shape). Dead letters go to the store (`dead_letters_to`, as bootstrap wires it), where
they outlive the process and `honnin dead-letters` lists them; a dead letter the store cannot take
now is redelivered later instead of being lost. Without a store (tests) the latest `keep_dead`
stay in `dead_letters`; what it published and acked is recorded only with `record=True`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from adapters.bus.redelivery import Redelivery
from adapters.bus.topic import matches
from orchestrator.errors import BusUnavailableError, PermanentError, UnroutableError, failure_reason
from orchestrator.ports import BusMessage, DeadLetter, DeadLetterSink, Delivery, Handler

log = structlog.get_logger("honnin.bus")


ROUTES_KEPT = 1024  # routing keys whose bound queues publish remembers


@dataclass
class _Queue:
    name: str
    bindings: list[str]
    items: asyncio.Queue[tuple[BusMessage, int, float | None]] = field(default_factory=asyncio.Queue)
    outstanding: int = 0  # queued, in flight or waiting to be redelivered
    consumers: int = 0
    drop_head_at: int | None = None  # a bound that drops the oldest instead of refusing
    dropped: int = 0


class InProcessBus:
    def __init__(
        self,
        *,
        delivery_limit: int | None = None,
        redelivery_delay: float = 0.05,
        redelivery_window: float = 600.0,
        redelivery_cap: float = 300.0,
        dead_letters_to: DeadLetterSink | None = None,
        max_length: int = 100_000,
        record: bool = False,
        keep_dead: int = 10_000,
        now: Callable[[], float] = time.time,
        concurrency: int = 1,
    ) -> None:
        self._concurrency = concurrency  # deliveries a consumer handles at once (RabbitMQ's prefetch)
        self._policy = Redelivery(redelivery_window, redelivery_delay, redelivery_cap, delivery_limit)
        self._sink = dead_letters_to
        self._now = now
        self._max_length = max_length
        self._record = record
        self._keep_dead = keep_dead
        self._queues: dict[str, _Queue] = {}
        self._routes: dict[str, list[_Queue]] = {}  # routing key → bound queues, until a declare
        self._consumers: list[asyncio.Task[None]] = []
        self._closed = False
        self.published: list[BusMessage] = []  # only with record=True
        self.acked: list[tuple[str, str]] = []  # (queue, message_id), only with record=True
        self.dead_letters: list[DeadLetter] = []  # the latest keep_dead, without a store or with record

    async def declare_queue(
        self, name: str, bindings: Sequence[str], *, max_length: int | None = None
    ) -> None:
        queue = self._queues.setdefault(name, _Queue(name, []))
        queue.bindings.extend(b for b in bindings if b not in queue.bindings)
        self._routes.clear()
        if max_length is not None:
            queue.drop_head_at = max_length

    async def publish(self, message: BusMessage) -> None:
        if self._closed:
            raise BusUnavailableError("the in-process bus is closed")
        targets = self._targets(message.routing_key)
        if not targets:
            raise UnroutableError(f"no queue is bound to {message.routing_key}")
        full = [q.name for q in targets if q.drop_head_at is None and q.items.qsize() >= self._max_length]
        if full:
            raise BusUnavailableError(f"queue {full[0]} is full ({self._max_length} messages)")
        if self._record:
            self.published.append(message)
        for queue in targets:
            if queue.drop_head_at is not None:
                self._drop_head(queue, queue.drop_head_at - 1)
            self._put(queue, message, 1, None)

    def _targets(self, routing_key: str) -> list[_Queue]:
        """The queues bound to `routing_key`, matched once per key: a registration's steps are a
        handful of keys, and matching every binding of every queue was 59 topic matches per
        registration. Bounded, should a caller route by an unbounded set of keys."""
        targets = self._routes.get(routing_key)
        if targets is None:
            targets = [q for q in self._queues.values() if any(matches(b, routing_key) for b in q.bindings)]
            if len(self._routes) >= ROUTES_KEPT:
                self._routes.clear()
            self._routes[routing_key] = targets
        return targets

    async def send_to(self, queue: str, message: BusMessage) -> None:
        if self._closed:
            raise BusUnavailableError("the in-process bus is closed")
        target = self._queues.get(queue)
        if target is None:
            raise UnroutableError(f"no queue {queue}")
        self._put(target, message, 1, None)

    @staticmethod
    def _drop_head(queue: _Queue, room: int) -> None:
        while queue.items.qsize() > max(room, 0):
            queue.items.get_nowait()
            queue.outstanding -= 1
            queue.dropped += 1

    def _put(self, queue: _Queue, message: BusMessage, attempt: int, first_seen: float | None) -> None:
        queue.outstanding += 1
        queue.items.put_nowait((message, attempt, first_seen))

    async def consume(self, queue: str, handler: Handler) -> None:
        if queue not in self._queues:
            raise BusUnavailableError(f"queue {queue} was not declared")
        self._queues[queue].consumers += 1
        for _ in range(self._concurrency):  # they take messages in queue order, then overlap
            task = asyncio.create_task(self._consume(self._queues[queue], handler), name=f"consumer:{queue}")
            self._consumers.append(task)

    async def _consume(self, queue: _Queue, handler: Handler) -> None:
        while True:
            message, attempt, first_seen = await queue.items.get()
            first_seen = first_seen if first_seen is not None else self._now()
            try:
                await handler(Delivery(message, queue.name, attempt, _instant(first_seen)))
            except PermanentError as exc:
                await self._dead_letter(queue, message, failure_reason(exc), attempt, first_seen)
            except asyncio.CancelledError:
                self._put(queue, message, attempt, first_seen)  # unacked at shutdown: back on the queue
                queue.outstanding -= 1
                raise
            except Exception as exc:
                await self._nack(queue, message, attempt, first_seen, exc)
            else:
                if self._record:
                    self.acked.append((queue.name, message.message_id))
            queue.outstanding -= 1

    async def _nack(
        self, queue: _Queue, message: BusMessage, attempt: int, first_seen: float, exc: Exception
    ) -> None:
        reason = failure_reason(exc)
        delay = self._policy.delay(attempt, first_seen, self._now())
        if delay is None:
            await self._dead_letter(
                queue, message, self._policy.gave_up(attempt, reason), attempt, first_seen
            )
            return
        self._later(queue, message, attempt + 1, first_seen, delay)

    def _later(
        self, queue: _Queue, message: BusMessage, attempt: int, first_seen: float, delay: float
    ) -> None:
        queue.outstanding += 1
        loop = asyncio.get_running_loop()
        loop.call_later(delay, self._redeliver, queue, message, attempt, first_seen)

    def _redeliver(self, queue: _Queue, message: BusMessage, attempt: int, first_seen: float) -> None:
        self._put(queue, message, attempt, first_seen)
        queue.outstanding -= 1

    async def _dead_letter(
        self, queue: _Queue, message: BusMessage, reason: str, attempt: int, first_seen: float
    ) -> None:
        now = self._now()
        letter = DeadLetter(queue.name, message, reason, attempt, 0, _instant(first_seen), _instant(now))
        if self._sink is not None:
            try:
                await self._sink.add_dead_letter(letter, _instant(now))
            except Exception as exc:  # the store is down too: keep the message, try it again later
                log.warning(
                    "bus.dead_letter_deferred",
                    queue=queue.name,
                    message_id=message.message_id,
                    reason=failure_reason(exc),
                )
                self._later(queue, message, attempt + 1, first_seen, min(self._policy.cap, 5.0))
                return
        log.warning("message.dead_lettered", queue=queue.name, message_id=message.message_id, reason=reason)
        if self._sink is None or self._record:
            self.dead_letters.append(letter)
            if len(self.dead_letters) > self._keep_dead:
                del self.dead_letters[: len(self.dead_letters) - self._keep_dead]

    def depth(self, queue: str) -> int:
        return self._queues[queue].items.qsize()

    def dropped(self, queue: str) -> int:
        """Messages a bounded queue dropped from its head to take newer ones."""
        return self._queues[queue].dropped

    def queues(self) -> list[str]:
        return list(self._queues)

    async def drain(self, queue: str) -> list[BusMessage]:
        """Take every waiting message off a queue nobody consumes (tests, operators)."""
        target = self._queues[queue]
        taken = []
        while not target.items.empty():
            message, _, _ = target.items.get_nowait()
            taken.append(message)
            target.outstanding -= 1
        return taken

    @property
    def deliveries_at_once(self) -> int:
        return self._concurrency

    def idle(self) -> bool:
        """No message waits, runs or awaits redelivery on any queue that has a consumer."""
        return not any(q.outstanding for q in self._queues.values() if q.consumers)

    async def join(self, within: float = 10.0) -> None:
        """Wait until `idle` (tests and `run --until-idle`); polls, as it is no hot path."""
        async with asyncio.timeout(within):
            while not self.idle():  # noqa: ASYNC110
                await asyncio.sleep(0.005)

    async def close(self) -> None:
        self._closed = True
        for task in self._consumers:
            task.cancel()
        await asyncio.gather(*self._consumers, return_exceptions=True)
        self._consumers = []


def _instant(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)
