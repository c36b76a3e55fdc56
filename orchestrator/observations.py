"""What the service loop tells the Metrics port, and what a scrape reads from the store.

Counters come from the moment something happens (an event applied, a verification decided, a
webhook answered); counts of what is standing (parked, dead-lettered, quarantined, the outbox) are
read from the store when someone asks, so every worker reports the same and none keeps a copy.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import get_args

from orchestrator.errors import PermanentError, RetryableError
from orchestrator.model import Outcome, Verification
from orchestrator.ports import Metrics, QuarantineKind, Store
from orchestrator.states.confirmed import CODE_UNANSWERED

DECIDED = frozenset({"passed", "failed", "retrying", "parked"})


class NoMetrics:
    """Counts nothing: what a loop built without a Metrics port (a test, a one-off command) uses."""

    def event_handled(self, event_type: str, outcome: str) -> None:
        return None

    def transition(self, from_state: str, to_state: str, profile: str) -> None:
        return None

    def verification(self, outcome: str, code: str) -> None:
        return None

    def verification_retry(self, code: str) -> None:
        return None

    def handler_seconds(self, queue: str, outcome: str, seconds: float) -> None:
        return None

    def redelivered(self, queue: str) -> None:
        return None

    def webhook_delivery(self, outcome: str) -> None:
        return None


def observe(metrics: Metrics, outcome: Outcome) -> None:
    """One committed outcome: the event, its transition, a verification it decided or retried."""
    event = outcome.event
    metrics.event_handled(event.type, "rejected" if outcome.rejection else "applied")
    if outcome.applied is None:
        return
    after = outcome.applied.registration
    if outcome.from_state != outcome.to_state:
        metrics.transition(outcome.from_state.value, outcome.to_state.value, after.profile)
    before = outcome.before.verification if outcome.before else None
    _verification(metrics, before, after.verification)


def _verification(metrics: Metrics, before: Verification | None, after: Verification | None) -> None:
    if after is None:
        return
    changed = before is None or (before.status, before.attempt) != (after.status, after.attempt)
    if changed and after.status in DECIDED:
        metrics.verification(after.status, "" if after.status == "passed" else after.code or "")
    if after.retries > (before.retries if before and before.attempt == after.attempt else 0):
        metrics.verification_retry((after.code or "") if after.status == "retrying" else CODE_UNANSWERED)


def _decision(outcome: Outcome) -> Verification | None:
    """The verification this outcome decided (failed, parked or retrying), if it decided one."""
    if outcome.applied is None:
        return None
    after = outcome.applied.registration.verification
    before = outcome.before.verification if outcome.before else None
    if after is None or after.status not in DECIDED - {"passed"}:
        return None
    if before is not None and (before.status, before.attempt) == (after.status, after.attempt):
        return None
    return after


def decided_code(outcome: Outcome) -> str | None:
    """History keeps the code of a decision with the event that made it (the console counts them)."""
    decision = _decision(outcome)
    return decision.code if decision else None


def decided_message(outcome: Outcome) -> str | None:
    decision = _decision(outcome)
    return decision.message if decision else None


@asynccontextmanager
async def timed(metrics: Metrics, queue: str, attempt: int) -> AsyncIterator[None]:
    """A consumer's handler, timed; the outcome says whether the bus acks, retries or gives up."""
    if attempt > 1:
        metrics.redelivered(queue)
    started = time.perf_counter()
    outcome = "error"
    try:
        yield
        outcome = "ok"
    except RetryableError:
        outcome = "retry"
        raise
    except PermanentError:
        outcome = "dead"
        raise
    finally:
        metrics.handler_seconds(queue, outcome, time.perf_counter() - started)


@dataclass(frozen=True)
class Standing:
    """What is standing in the store at one moment, for gauges."""

    outbox_backlog: int
    outbox_oldest_age: float  # seconds; 0 when nothing waits
    dead_letters: int
    quarantined: dict[str, int] = field(default_factory=dict)
    by_state: dict[str, int] = field(default_factory=dict)
    by_verification: dict[str, int] = field(default_factory=dict)

    @property
    def parked(self) -> int:
        return self.by_verification.get("parked", 0)


async def standing(store: Store, now: datetime) -> Standing:
    """Read the store's counts (a scrape of /metrics asks for them)."""
    oldest = await store.outbox_oldest_unsent()
    counts = await store.registration_counts()
    return Standing(
        outbox_backlog=await store.outbox_backlog(),
        outbox_oldest_age=max(0.0, (now - oldest).total_seconds()) if oldest else 0.0,
        dead_letters=await store.dead_letter_count(),
        quarantined={kind: await store.quarantine_count(kind) for kind in get_args(QuarantineKind)},
        by_state=dict(counts.by_state),
        by_verification=dict(counts.by_verification),
    )
