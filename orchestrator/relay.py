"""The outbox relay: publishes what a commit wrote, marks it sent only once the bus took it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

import structlog

from orchestrator.errors import RetryableError
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
    ) -> None:
        self._store = store
        self._bus = bus
        self._clock = clock
        self._worker = worker
        self._batch = batch
        self._lease = lease_seconds
        self._idle = idle_seconds

    async def relay_once(self) -> int:
        """Publish one batch in order; stop at the first failure so order per registration holds."""
        claimed = await self._store.claim_outbox(self._worker, self._clock.now(), self._lease, self._batch)
        sent: list[str] = []
        try:
            for message in claimed:
                await self._bus.publish(_to_bus(message))
                sent.append(message.message_id)
        except RetryableError as exc:
            log.warning(
                "outbox.publish_failed", code=exc.code, reason=exc.message, pending=len(claimed) - len(sent)
            )
        finally:
            if sent:
                await _finish(self._store.mark_sent(sent, self._clock.now()))
        return len(sent)

    async def run(self, wake: asyncio.Event) -> None:
        """Relay until cancelled; a commit sets `wake` so messages leave without waiting."""
        while True:
            try:
                sent = await self.relay_once()
            except RetryableError as exc:
                log.warning("outbox.relay_failed", code=exc.code, reason=exc.message)
                sent = 0
            if sent:
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._idle):
                    await wake.wait()


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
