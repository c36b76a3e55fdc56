"""What the loop tells the Metrics port, recorded by the fake beside the Prometheus adapter: every
outcome of an event, transitions, decisions and retries, and how a handler ended."""

from __future__ import annotations

from datetime import timedelta

import pytest

from adapters.clock import FakeClock
from adapters.metrics.fake import RecordingMetrics
from adapters.store.sqlite import SqliteStore
from orchestrator.errors import PoisonMessageError, RetryLaterError, StoreUnavailableError
from orchestrator.observations import timed
from orchestrator.service import Orchestrator
from orchestrator.sweeper import DeadlineSweeper
from tests import factory


def verdict(rid: str, attempt: int, outcome: str, code: str | None = None):
    payload = {"attempt": attempt, "outcome": outcome, "code": code}
    if outcome == "pass":
        payload = {"attempt": attempt, "outcome": "pass", "certificate_fingerprint": "a" * 64}
    return factory.event("verification.completed", rid, payload=payload)


async def test_each_outcome_of_an_event_is_counted_once(sqlite_store: SqliteStore, clock: FakeClock) -> None:
    metrics = RecordingMetrics()
    orchestrator = Orchestrator(sqlite_store, clock, factory.profiles(retry_limit=1), metrics=metrics)
    rid = "reg-obs-0001"
    with pytest.raises(RetryLaterError):  # overtook its registration.started
        await orchestrator.handle(factory.event("card.info_read", rid))
    for event in factory.flow(rid, upto=4):
        await orchestrator.handle(event)
    again = factory.event("registration.started", rid)
    await orchestrator.handle(again)
    await orchestrator.handle(again)
    await orchestrator.handle(verdict(rid, 1, "retry_later", "42"))
    clock.advance(timedelta(minutes=5))
    sweeper = DeadlineSweeper(orchestrator, sqlite_store, clock, retention=timedelta(days=1))
    assert await sweeper.sweep_once() == 1  # the retry's turn: the verifier is asked again
    await orchestrator.handle(verdict(rid, 1, "retry_later", "42"))  # the limit: parked

    assert metrics.events == [
        ("card.info_read", "deferred"),
        ("registration.started", "applied"),
        ("card.info_read", "applied"),
        ("registration.confirmed", "applied"),
        ("card.signature_submitted", "applied"),
        ("registration.started", "rejected"),
        ("registration.started", "duplicate"),
        ("verification.completed", "applied"),
        ("registration.deadline_reached", "applied"),
        ("verification.completed", "applied"),
    ]
    assert metrics.transitions == [
        ("new", "info_entered", "facility"),
        ("info_entered", "card_read", "facility"),
        ("card_read", "confirmed", "facility"),
    ]
    assert metrics.verifications == [("retrying", "42"), ("parked", "42")]
    assert metrics.retries == ["42"]
    history = await sqlite_store.history(rid)
    assert [(h.event_type, h.code) for h in history if h.code] == [
        ("registration.started", "event_not_accepted"),
        ("verification.completed", "42"),
        ("verification.completed", "42"),
    ], "a decision's code is kept with the event that made it"


async def test_a_handler_is_timed_with_how_it_ended() -> None:
    metrics = RecordingMetrics()
    async with timed(metrics, "q", attempt=1):
        pass
    with pytest.raises(StoreUnavailableError):
        async with timed(metrics, "q", attempt=2):
            raise StoreUnavailableError("later")
    with pytest.raises(PoisonMessageError):
        async with timed(metrics, "q", attempt=3):
            raise PoisonMessageError("not an event")
    with pytest.raises(ValueError, match="bug"):
        async with timed(metrics, "q", attempt=1):
            raise ValueError("bug")
    assert [(q, outcome) for q, outcome, _ in metrics.handled] == [
        ("q", "ok"),
        ("q", "retry"),
        ("q", "dead"),
        ("q", "error"),
    ]
    assert all(seconds >= 0 for _, _, seconds in metrics.handled)
    assert metrics.redeliveries == ["q", "q"]
