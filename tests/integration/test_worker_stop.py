"""A worker's stop ends its background tasks whatever they were doing when it came.

A stop is one `cancel()` per task. A task that catches that cancellation and goes on never ends:
`Runtime.stop` (and so `App.close` and an app fixture's teardown) then waits for it for ever in an
idle loop, with the store's connections still open. The delivery worker did exactly that when the
stop landed while it was tidying up after a commit had woken it. These tests deliver the
cancellation at every loop step after such a wake-up instead of hoping the timing finds the one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from adapters.clock import FakeClock
from adapters.store.sqlite import SqliteStore
from honnin.bootstrap import App
from orchestrator.delivery import _first
from tests.contract.buses import eventually
from tests.integration.harness import start

STEPS = 12
"""Loop steps after the wake-up at which the cancellation is delivered: the wake-up takes five or
six to reach the waiting task and tidy up, so these cover it and some to spare."""


async def _parked(ticket: asyncio.Event) -> None:
    """Until a task waits on `ticket` (the delivery worker, once its first claim came back)."""
    async with asyncio.timeout(10):
        while not vars(ticket)["_waiters"]:
            await asyncio.sleep(0.001)


async def test_a_cancelled_wait_for_a_wake_up_ends_cancelled_at_every_step() -> None:
    for step in range(STEPS):
        ticket, finished = asyncio.Event(), asyncio.Event()
        waiting = asyncio.create_task(_first(ticket, finished, 60.0))
        await _parked(ticket)
        ticket.set()
        for _ in range(step):
            await asyncio.sleep(0)
        if not waiting.cancel():
            assert waiting.result() is None  # it had returned already: a cancellation too late
            continue
        await asyncio.gather(waiting, return_exceptions=True)
        assert waiting.cancelled(), f"cancelled {step} steps after the wake-up, it returned instead"


async def test_a_stop_just_after_a_commit_woke_the_delivery_worker_ends_the_worker(
    tmp_path: Path, clock: FakeClock
) -> None:
    for step in range(STEPS):
        app = await start(tmp_path / str(step), clock, webhook_poll_seconds=60.0)
        try:
            delivery = next(t for t in app.runtime._tasks if t.get_name() == "webhook-delivery")
            await _parked(app.orchestrator.facility_heard.ticket())
            app.orchestrator.facility_heard.notify()  # what a commit with facility events does
            for _ in range(step):
                await asyncio.sleep(0)
            stopping = asyncio.create_task(app.runtime.stop())
            done, _ = await asyncio.wait([stopping], timeout=5)  # immediate; 5 s so a regression fails
            if not done:
                delivery.cancel()  # a second cancellation ends it, so the test can report and close
                await stopping
                pytest.fail(f"stopped {step} steps after a wake-up, the delivery worker went on")
            assert delivery.cancelled()
        finally:
            await app.close()


def _store_threads_alive(app: App) -> list[bool]:
    """Whether each of the SQLite store's aiosqlite connection threads still runs (any left
    running keeps the process from exiting: they are not daemon threads)."""
    store = app.store
    assert isinstance(store, SqliteStore)
    return [c._thread.is_alive() for c in (store._db, *store._readers.connections)]


async def test_a_part_that_fails_to_close_leaves_the_store_closed_all_the_same(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = await start(tmp_path, clock)
    assert all(_store_threads_alive(app))

    async def broken() -> None:
        raise RuntimeError("the bus would not close")

    app.bus.close = broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="would not close"):
        await app.close()
    # a closed connection's thread ends a moment after close() returns, one never closed not at all
    await eventually(lambda: not any(_store_threads_alive(app)), timeout=5)


async def test_a_close_cancelled_again_while_it_waits_still_closes_the_store(
    tmp_path: Path, clock: FakeClock
) -> None:
    app = await start(tmp_path, clock)
    closing_bus, release = asyncio.Event(), asyncio.Event()
    real_close = app.bus.close

    async def slow() -> None:  # a bus whose close takes its time (a broker far away)
        closing_bus.set()
        try:
            await release.wait()
        finally:
            await real_close()

    app.bus.close = slow  # type: ignore[method-assign]
    closing = asyncio.create_task(app.close())
    await asyncio.wait_for(closing_bus.wait(), 5)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    # a closed connection's thread ends a moment after close() returns, one never closed not at all
    await eventually(lambda: not any(_store_threads_alive(app)), timeout=5)
