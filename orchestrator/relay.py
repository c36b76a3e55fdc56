"""The outbox relay: publishes what a commit wrote, marks it sent only once the bus took it.

Two paths. The direct one: the worker that committed hands the commit's messages over at once
(written leased to it, so other relays leave them alone) and they go out in the next batch, no
claim needed. The sweep: every `idle_seconds` (and after a restart) the outbox is claimed for
whatever the direct path did not finish — another worker's crash, a refused publish, a stop.

A registration's messages leave in commit order, whichever worker committed them. A commit takes
the direct path only when every earlier message of its registration still unsent is on this same
direct path (the store says which are unsent and whether all are leased to this worker, in the
commit's own transaction: `Committed`); otherwise its rows wait for a sweep, which claims none of
a registration behind an earlier message another worker holds or a deferral holds back. When the
direct path cannot finish a registration's chain (a refusal, the bus down), the rest of that
registration's messages leave the direct path for the sweep, which keeps them behind the one that
did not go. At a stop the worker gives its leases back, so that another worker need not wait for
them to run out.

A batch has its publisher confirms in flight together, across registrations; within one
registration messages go one after another in commit order, each only after the one before was
confirmed. The confirmed are marked sent in one transaction. Destinations are isolated: a message
the bus refuses holds back only the later messages of its own registration; everything else goes
on, and the refused ones are deferred and tried again later. A batch stops early only when several
publishes fail in a row, which means the bus itself is down rather than one destination.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog

from orchestrator.errors import RetryableError, failure_reason
from orchestrator.ports import Bus, BusMessage, Clock, OutboxLease, OutboxMessage, Store

log = structlog.get_logger("honnin.relay")


@dataclass
class _Batch:
    """What one batch's publishes came to; `stopped` once the bus looks down."""

    sent: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    streak: int = 0
    stopped: bool = False


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
        in_flight: int = 64,
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
        self._in_flight = in_flight  # registrations whose confirms are awaited at once
        self._fresh: deque[OutboxMessage] = deque()  # handed over by this worker's commits
        self._piped: dict[str, str] = {}  # on the direct path, not yet marked sent: id → registration
        self._sweep_soon = False  # a commit's messages wait for the sweep: do not wait for `idle`

    def lease(self) -> OutboxLease:
        """How this worker's commits write their messages: leased to it, for the direct path."""
        return OutboxLease(self._worker, self._clock.now() + timedelta(seconds=self._lease))

    def hand_over(self, messages: Sequence[OutboxMessage], behind: Sequence[str] = ()) -> bool:
        """A commit's messages, in commit order, for the next direct batch, if every message of
        their registration still unsent ahead of them (`behind`) is on this direct path too; else
        they stay leased to this worker and go with its next sweep, which comes at once."""
        if any(message_id not in self._piped for message_id in behind):
            self._sweep_soon = True
            return False
        self._fresh.extend(messages)
        self._piped.update((m.message_id, m.registration_id) for m in messages)
        return True

    async def release(self) -> None:
        """Give this worker's leases back (its relay has stopped): another worker's sweep takes
        what it left at once. A store that cannot be reached leaves them to run out."""
        try:
            released = await self._store.release_outbox(self._worker)
        except Exception as exc:  # a lost or closed store: the stop goes on
            log.warning("outbox.release_failed", reason=failure_reason(exc))
            return
        if released:
            log.info("outbox.released", messages=released)

    async def relay_once(self) -> int:
        """Claim one batch and publish it in order per registration; return how many the bus took."""
        claimed = await self._store.claim_outbox(self._worker, self._clock.now(), self._lease, self._batch)
        in_hand = {m.registration_id for m in self._fresh}  # the direct path has earlier ones
        return await self._publish([m for m in claimed if m.registration_id not in in_hand])

    async def relay_direct(self) -> int:
        """Publish what this worker's commits handed over, a batch at a time."""
        taken: list[OutboxMessage] = []
        while self._fresh and len(taken) < self._batch:
            taken.append(self._fresh.popleft())
        return await self._publish(taken)

    def _to_the_sweep(self, registration_id: str) -> None:
        """The registration's messages leave the direct path (those not yet taken stay leased to
        this worker): the sweep claims them in order, behind the message that did not go, and a
        later commit of the registration no longer joins them here."""
        if any(m.registration_id == registration_id for m in self._fresh):
            self._fresh = deque(m for m in self._fresh if m.registration_id != registration_id)
        self._piped = {m: r for m, r in self._piped.items() if r != registration_id}

    async def _publish(self, messages: Sequence[OutboxMessage]) -> int:
        """Confirms in flight across registrations, one at a time within one; then the bookkeeping."""
        chains: dict[str, list[OutboxMessage]] = {}
        for message in messages:
            chains.setdefault(message.registration_id, []).append(message)
        batch = _Batch()
        gate = asyncio.Semaphore(self._in_flight)
        try:
            await asyncio.gather(
                *(self._chain(chain, batch, gate, len(messages)) for chain in chains.values())
            )
        finally:
            try:
                if batch.sent:
                    await _finish(self._store.mark_sent(batch.sent, self._clock.now()))
                if batch.held:
                    await _finish(self._store.defer_outbox(batch.held, self._clock.now() + self._retry))
            finally:  # marked sent (a commit now finds nothing ahead) or the sweep's to retry
                for message in messages:
                    self._piped.pop(message.message_id, None)
        return len(batch.sent)

    async def _chain(
        self, chain: list[OutboxMessage], batch: _Batch, gate: asyncio.Semaphore, size: int
    ) -> None:
        """One registration's messages in order; a refused one holds back those after it."""
        async with gate:
            for i, message in enumerate(chain):
                if batch.stopped:
                    self._to_the_sweep(message.registration_id)
                    return  # the bus, not a destination: the rest stays leased, in order
                try:
                    await self._bus.publish(_to_bus(message))
                except RetryableError as exc:
                    batch.held += [m.message_id for m in chain[i:]]
                    self._to_the_sweep(message.registration_id)
                    batch.streak += 1
                    batch.stopped = batch.streak >= self._in_a_row
                    _log_refused(message, exc, size)
                    return
                batch.streak = 0
                batch.sent.append(message.message_id)

    async def run(self, wake: asyncio.Event) -> None:
        """Relay until cancelled; a commit sets `wake` so its messages leave without waiting, and
        the sweep runs at least every `idle_seconds`."""
        loop = asyncio.get_running_loop()
        swept = -self._idle
        while True:
            sent = 0
            try:
                if self._fresh:
                    sent = await self.relay_direct()
                if self._sweep_soon or loop.time() - swept >= self._idle:
                    self._sweep_soon = False
                    swept = loop.time()
                    if swept_now := await self.relay_once():
                        sent, swept = sent + swept_now, -self._idle  # a backlog: sweep on
            except RetryableError as exc:
                log.warning("outbox.relay_failed", code=exc.code, reason=failure_reason(exc))
                sent = 0
            if sent or self._fresh or self._sweep_soon:
                continue
            wake.clear()
            if self._fresh or self._sweep_soon:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, self._idle - (loop.time() - swept))):
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
