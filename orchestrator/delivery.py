"""The delivery worker: sends due webhook deliveries from the store, at least once, on a schedule.

Deliveries are claimed with a lease (several workers send none twice in the normal case) and fairly:
the store gives each endpoint its share and never more than `per_endpoint` in flight, so a slow or
dead endpoint holds only its own slots. 2xx is delivered, 410 disables the endpoint, anything else is
tried again with exponential backoff and jitter from the persisted schedule, until the schedule's
window closes: then the endpoint is failing and its deliveries wait for an operator's replay.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from orchestrator.errors import RetryableError, failure_reason
from orchestrator.observations import NoMetrics
from orchestrator.ports import (
    Clock,
    DeliveryAttempt,
    Metrics,
    PendingDelivery,
    Store,
    WebhookRequest,
    WebhookResponse,
    WebhookSender,
)
from orchestrator.wakeup import Wakeup

log = structlog.get_logger("honnin.webhooks")


@dataclass(frozen=True)
class RetrySchedule:
    """Attempt n waits min(cap, base × 2ⁿ⁻¹) with equal jitter; none starts after `window`."""

    base: timedelta = timedelta(seconds=10)
    cap: timedelta = timedelta(hours=6)
    window: timedelta = timedelta(days=3)

    def next_attempt(
        self, attempts: int, scheduled_from: datetime, now: datetime, jitter: float
    ) -> datetime | None:
        """When to try again after `attempts` failed tries, or None when the schedule has run out."""
        ceiling = min(self.cap, self.base * 2 ** max(attempts - 1, 0))
        at = now + ceiling * (0.5 + 0.5 * jitter)
        return at if at <= scheduled_from + self.window else None


def decide(
    delivery: PendingDelivery,
    response: WebhookResponse,
    schedule: RetrySchedule,
    now: datetime,
    jitter: float,
) -> DeliveryAttempt:
    """What a receiver's answer means for the delivery and its endpoint."""
    status, error = response.status, response.error
    if status is not None and 200 <= status < 300:
        return DeliveryAttempt(delivery.event_id, now, "delivered", status, None)
    if status == 410:
        return DeliveryAttempt(
            delivery.event_id, now, "failed", status, "410 gone", endpoint_state="disabled"
        )
    error = error or f"HTTP {status}"
    later = schedule.next_attempt(delivery.attempts + 1, delivery.scheduled_from, now, jitter)
    if later is None:
        return DeliveryAttempt(delivery.event_id, now, "failed", status, error, endpoint_state="failing")
    return DeliveryAttempt(delivery.event_id, now, "pending", status, error, next_attempt_at=later)


class DeliveryWorker:
    """Runs in every worker beside the relay, each send a task of its own (at most `concurrency`)."""

    def __init__(
        self,
        store: Store,
        sender: WebhookSender,
        clock: Clock,
        *,
        worker: str,
        schedule: RetrySchedule,
        wakeup: Wakeup,
        concurrency: int = 32,
        per_endpoint: int = 4,
        lease_seconds: float = 60.0,
        poll_seconds: float = 1.0,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._sender = sender
        self._clock = clock
        self._worker = worker
        self._schedule = schedule
        self._wakeup = wakeup
        self._concurrency = concurrency
        self._per_endpoint = per_endpoint
        self._lease = lease_seconds
        self._poll = poll_seconds
        self._metrics: Metrics = metrics or NoMetrics()
        self._sending: set[asyncio.Task[None]] = set()
        self._finished = asyncio.Event()

    async def claim(self) -> list[PendingDelivery]:
        free = self._concurrency - len(self._sending)
        if free <= 0:
            return []
        now = self._clock.now()
        return await self._store.claim_deliveries(self._worker, now, self._lease, free, self._per_endpoint)

    async def send(self, delivery: PendingDelivery) -> None:
        """One attempt, its outcome written and logged (never the body, never a secret)."""
        now = self._clock.now()
        endpoint = delivery.endpoint
        secrets: tuple[str, ...] = (endpoint.secret,)
        if endpoint.previous_secret and endpoint.previous_until and endpoint.previous_until > now:
            secrets += (endpoint.previous_secret,)
        request = WebhookRequest(endpoint.url, delivery.event_id, now, delivery.body, secrets)
        response = await self._sender.send(request)
        jitter = random.random()  # noqa: S311 - jitter, not a secret
        attempt = decide(delivery, response, self._schedule, self._clock.now(), jitter)
        await self._store.record_attempt(self._worker, attempt)
        self._metrics.webhook_delivery(_outcome(attempt))
        _log(delivery, attempt)

    async def run(self) -> None:
        """Deliver until cancelled; a commit with facility events wakes it, else it polls."""
        try:
            while True:
                ticket = self._wakeup.ticket()
                self._finished.clear()
                try:
                    claimed = await self.claim()
                except RetryableError as exc:
                    log.warning("webhook.claim_failed", code=exc.code, reason=failure_reason(exc))
                    claimed = []
                for delivery in claimed:
                    task = asyncio.create_task(self._guarded(delivery), name=f"webhook:{delivery.event_id}")
                    self._sending.add(task)
                    task.add_done_callback(self._done)
                if claimed and len(self._sending) < self._concurrency:
                    continue  # there may be more due already
                await _first(ticket, self._finished, self._poll)
        finally:
            await self._cancel_sending()

    async def _guarded(self, delivery: PendingDelivery) -> None:
        """One delivery's failure is its own: the lease runs out and it is sent again."""
        try:
            await self.send(delivery)
        except Exception as exc:
            log.error("webhook.attempt_failed", event_id=delivery.event_id, error=failure_reason(exc))

    def _done(self, task: asyncio.Task[None]) -> None:
        self._sending.discard(task)
        self._finished.set()

    async def _cancel_sending(self) -> None:
        for task in self._sending:
            task.cancel()
        await asyncio.gather(*self._sending, return_exceptions=True)
        self._sending.clear()


async def _first(ticket: asyncio.Event, finished: asyncio.Event, seconds: float) -> None:
    """Wait for a commit, a finished send (a slot is free) or the poll interval.

    A cancellation that comes while the waiters are being tidied up is the worker's stop and goes
    on up: `return_exceptions=True` already keeps the waiters' own cancellations out of `gather`,
    so the only CancelledError it raises is this task's, and swallowing it left the worker looping
    after `Runtime.stop` had cancelled it once, and the stop waiting for it for ever."""
    waiters = [asyncio.ensure_future(ticket.wait()), asyncio.ensure_future(finished.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)


def _outcome(attempt: DeliveryAttempt) -> str:
    """delivered, retry, failed (the schedule ran out) or disabled (410)."""
    if attempt.state == "pending":
        return "retry"
    if attempt.endpoint_state == "disabled":
        return "disabled"
    return attempt.state


def _log(delivery: PendingDelivery, attempt: DeliveryAttempt) -> None:
    bound = log.bind(
        facility_id=delivery.facility_id,
        event_id=delivery.event_id,
        event_type=delivery.event_type,
        attempt=delivery.attempts + 1,
        status=attempt.status,
    )
    if attempt.state == "delivered":
        bound.info("webhook.delivered")
    elif attempt.state == "pending":
        bound.warning(
            "webhook.retry_scheduled", error=attempt.error, next_attempt_at=str(attempt.next_attempt_at)
        )
    elif attempt.endpoint_state == "disabled":
        bound.warning("webhook.endpoint_disabled", error=attempt.error)
    else:
        bound.error("webhook.endpoint_failing", error=attempt.error)
