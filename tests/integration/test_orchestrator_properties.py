"""Property: whatever order, duplicates, cancels and deadlines the events come in, the orchestrator
on a real SQLite file keeps the state tables, ends a registration once, and re-applies nothing."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, event, given, settings

from adapters.clock import FakeClock
from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from orchestrator.errors import RetryLaterError
from orchestrator.service import Orchestrator
from orchestrator.sweeper import DeadlineSweeper
from tests import factory
from tests.flows import ACTION_LISTS, PROFILES, RID, check_history, check_outbox, check_registration, events

EVENTS = events()


async def _deliver(orchestrator: Orchestrator, store: SqliteStore, name: str, processed: set[str]) -> None:
    """One delivery; a processed event must come back a duplicate and change nothing."""
    sent = EVENTS[name]
    before = await store.load(RID)
    try:
        result = await orchestrator.handle(sent)
    except RetryLaterError:  # an early step: the bus would bring it again later
        assert str(sent.event_id) not in processed
        return
    if str(sent.event_id) in processed:
        after = await store.load(RID)
        assert result.status == "duplicate"
        assert (after.version, after.registration) == (before.version, before.registration)  # type: ignore[union-attr]
    else:
        assert result.status in ("applied", "rejected")
        processed.add(str(sent.event_id))


async def _run(folder: Path, actions: list[tuple[str, object]]) -> None:
    store = await SqliteStore.open(folder / "honnin.db", Sealer(bytes(range(32))))
    clock = FakeClock(factory.NOW)
    orchestrator = Orchestrator(store, clock, PROFILES)
    sweeper = DeadlineSweeper(orchestrator, store, clock, retention=timedelta(days=30))
    processed: set[str] = set()
    try:
        for kind, value in actions:
            if kind == "deliver":
                await _deliver(orchestrator, store, str(value), processed)
            elif kind == "advance":
                clock.advance(timedelta(minutes=int(str(value))))
            else:
                await sweeper.sweep_once()
            stored = await store.load(RID)
            history = await store.history(RID)
            check_history(history)
            check_registration(stored.registration if stored else None, history)
        event(f"sequence ends {stored.registration.state.value if stored else 'unstarted'}")
        for name in EVENTS:  # every event once more, late: nothing processed moves again
            await _deliver(orchestrator, store, name, processed)
        stored = await store.load(RID)
        check_history(await store.history(RID))
        claimed = await store.claim_outbox("property", clock.now(), 60.0, 10_000)
        heard = await store.feed(str(factory.PAYLOADS["registration.started"]["facility_id"]), 0, 10_000)
        check_outbox(  # what the bus carries and what the facility hears (its feed), together
            [m.routing_key for m in claimed] + [e.event_type for e in heard],
            [m.message_id for m in claimed] + [e.event_id for e in heard],
            stored.registration if stored else None,
        )
    finally:
        await store.close()


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(ACTION_LISTS)
async def test_any_sequence_keeps_the_tables_one_outcome_and_idempotence(
    actions: list[tuple[str, object]],
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        await _run(Path(folder), actions)
