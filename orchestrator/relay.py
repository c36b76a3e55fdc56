"""The outbox relay: publishes what a commit wrote, marks it sent only once the bus took it.

Destinations are isolated: a message the bus refuses holds back only the later messages of its own
registration (their order is kept); everything else in the batch goes on, and the refused ones are
deferred and tried again later. A batch stops early only when several publishes fail in a row,
which means the bus itself is down rather than one destination.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import structlog

from orchestrator.errors import RetryableError, failure_reason
from orchestrator.ports import Bus, BusMessage, Clock, OutboxMessage, Store

log = structlog.get_logger("honnin.relay")


class OutboxRelay:
    """At-least-once: a crash between publish and mark re-publishes; consumers deduplicate by id."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        clock: Clock,
        *,
        worker: str,
        batch: int = 100,
        lease_seconds: float = 30.0,
        idle_seconds: float = 0.5,
        retry_seconds: float = 5.0,
        failures_in_a_row: int = 3,
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._worker = worker
        self._batch = batch
        self._lease = lease_seconds
        self._idle = idle_seconds
        self._retry = timedelta(seconds=retry_seconds)
        self._in_a_row = failures_in_a_row

    async def relay_once(self) -> int:
        """Publish one batch in order per registration; return how many the bus took."""
        claimed = await self._store.claim_outbox(self._worker, self._clock.now(), self._lease, self._batch)
        sent: list[str] = []
        held: list[str] = []
        refused: set[str] = set()  # registrations whose later messages wait behind a refused one
        streak = 0
        try:
            for message in claimed:
                if message.registration_id in refused:
                    held.append(message.message_id)
                    continue
                try:
                    await self._bus.publish(_to_bus(message))
                except RetryableError as exc:
                    refused.add(message.registration_id)
                    held.append(message.message_id)
                    streak += 1
                    _log_refused(message, exc, len(claimed))
                    if streak >= self._in_a_row:
                        break  # the bus, not a destination: the rest stays leased, in order
                    continue
                streak = 0
                sent.append(message.message_id)
        finally:
            if sent:
                await _finish(self._store.mark_sent(sent, self._clock.now()))
            if held:
                await _finish(self._store.defer_outbox(held, self._clock.now() + self._retry))
        return len(sent)

    async def run(self, wake: asyncio.Event) -> None:
        """Relay until cancelled; a commit sets `wake` so messages leave without waiting."""
        while True:
            try:
                sent = await self.relay_once()
            except RetryableError as exc:
                log.warning("outbox.relay_failed", code=exc.code, reason=failure_reason(exc))
                sent = 0
            if sent:
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._idle):
                    await wake.wait()


def _log_refused(message: OutboxMessage, exc: RetryableError, batch: int) -> None:
    log.warning(
        "outbox.publish_failed",
        registration_id=message.registration_id,
        message_id=message.message_id,
        routing_key=message.routing_key,
        code=exc.code,
        reason=failure_reason(exc),
        batch=batch,
    )


async def _finish(bookkeeping: Coroutine[Any, Any, None]) -> None:
    """Marking what the bus confirmed must not be cut short by a stop: a cancelled mark rolls back
    and every message of the batch would go out again after the restart."""
    task = asyncio.ensure_future(bookkeeping)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await task
        raise


def _to_bus(message: OutboxMessage) -> BusMessage:
    return BusMessage(
        routing_key=message.routing_key,
        body=message.body,
        message_id=message.message_id,
        headers={"registration_id": message.registration_id},
    )
