"""Persisted deadlines: expiry and verification retries survive restarts; nothing is a timer."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import structlog

from orchestrator.errors import PermanentError, RetryableError, failure_reason
from orchestrator.ports import Clock, Store
from orchestrator.service import Orchestrator
from schemas.events import DeadlineReached, derived_event_id
from schemas.payloads import DeadlineReachedPayload

log = structlog.get_logger("honnin.sweeper")


class DeadlineSweeper:
    """Turns passed deadlines into `registration.deadline_reached` events; ids derive from the
    deadline, so several workers sweeping at once still apply each deadline once."""

    def __init__(
        self,
        orchestrator: Orchestrator,
        store: Store,
        clock: Clock,
        *,
        retention: timedelta,
        interval_seconds: float = 1.0,
        batch: int = 100,
    ) -> None:
        self._orchestrator = orchestrator
        self._store = store
        self._clock = clock
        self._retention = retention
        self._interval = interval_seconds
        self._batch = batch

    async def sweep_once(self) -> int:
        now = self._clock.now()
        handled = 0
        for registration_id in await self._store.due(now, self._batch):
            try:
                handled += await self._sweep(registration_id, now)
            except RetryableError as exc:
                log.warning("deadline.deferred", registration_id=registration_id, code=exc.code)
            except PermanentError as exc:  # a row in quarantine, a bug: the others still get swept
                log.error("deadline.failed", registration_id=registration_id, reason=failure_reason(exc))
        return handled

    async def _sweep(self, registration_id: str, now: datetime) -> int:
        stored = await self._store.load(registration_id)
        deadline = stored.registration.next_deadline() if stored else None
        if deadline is None or deadline > now:
            return 0
        event = DeadlineReached(
            type="registration.deadline_reached",
            event_id=derived_event_id(registration_id, "deadline", deadline.isoformat()),
            registration_id=registration_id,
            occurred_at=now,
            source="orchestrator",
            payload=DeadlineReachedPayload(deadline=deadline),
        )
        await self._orchestrator.handle(event)
        return 1

    async def purge_once(self) -> int:
        """Registrations that ended without activation, and facility events, past the retention."""
        before = self._clock.now() - self._retention
        purged = await self._store.purge_ended(before, self._batch)
        if purged:
            log.info("registrations.purged", count=purged)
        forgotten = await self._store.purge_feed(before, self._batch)
        if forgotten:
            log.info("facility_events.purged", count=forgotten)
        return purged

    async def run(self) -> None:
        while True:
            try:
                await self.sweep_once()
                await self.purge_once()
            except RetryableError as exc:
                log.warning("sweeper.failed", code=exc.code, reason=failure_reason(exc))
            await asyncio.sleep(self._interval)
