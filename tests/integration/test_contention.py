"""Conflicting writes on one registration: in one process they take turns (a lock per registration
in Orchestrator.handle); between processes a conflict is retried after a short random wait."""

from __future__ import annotations

import asyncio
from pathlib import Path

from adapters.clock import FakeClock
from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from orchestrator.model import State
from orchestrator.service import Orchestrator
from tests import factory

RID = "reg-contend-001"


async def test_two_processes_writing_one_registration_retry_their_conflicts_away(
    tmp_path: Path, sealer: Sealer, clock: FakeClock
) -> None:
    """Two stores on one file are two connections, as two workers have: sixty re-reads, thirty each."""
    stores = [await SqliteStore.open(tmp_path / "shared.db", sealer) for _ in range(2)]
    workers = [Orchestrator(store, clock, factory.profiles()) for store in stores]
    try:
        await workers[0].handle(factory.event("registration.started", RID))
        reads = [factory.event("card.info_read", RID) for _ in range(60)]
        results = await asyncio.gather(*(workers[n % 2].handle(e) for n, e in enumerate(reads)))
        assert [r.status for r in results] == ["applied"] * 60, "no VersionConflictError escaped"
        stored = await stores[1].load(RID)
        assert stored is not None
        assert (stored.registration.state, stored.version) == (State.CARD_READ, 61)
        assert workers[0]._turns == {} == workers[1]._turns, "a lock goes with its last user"
    finally:
        for store in stores:
            await store.close()


async def test_a_conflict_waits_a_little_longer_each_time_and_at_random(
    sealer: Sealer, clock: FakeClock
) -> None:
    worker = Orchestrator(None, clock, factory.profiles(), conflict_backoff=(0.01, 0.2))  # type: ignore[arg-type]
    for n in range(8):
        waits = [worker._conflict_wait(n) for _ in range(200)]
        ceiling = min(0.2, 0.01 * 2**n)
        assert all(0 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 150, "jittered: competing workers do not retry in lockstep"
