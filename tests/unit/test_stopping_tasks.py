"""A stop that is itself cancelled must end cancelled: `cancel_and_wait` and the close()s using it.

Each case cancels the task running the stop while it waits for the background task to end, which
is when `with suppress(CancelledError): await task` swallowed the stopper's own cancellation."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiosqlite
import pytest

from adapters.bus.watchdog import ConsumerWatchdog
from adapters.store.sqlite_writer import GroupWriter
from orchestrator.tasks import cancel_and_wait, close_all


async def _slow_to_end(ended: asyncio.Event) -> None:
    """A background task that takes a few turns of the loop to wind down, as real ones do."""
    try:
        await asyncio.sleep(3600)
    finally:
        for _ in range(3):
            await asyncio.sleep(0)
        ended.set()


async def _cancelled_while_waiting(stop: Callable[[], Awaitable[None]]) -> asyncio.Task[None]:
    stopper = asyncio.create_task(stop())
    await asyncio.sleep(0)  # the stopper has cancelled the task and waits for it to end
    assert not stopper.done()
    stopper.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopper
    return stopper


async def test_the_stoppers_cancellation_goes_on_up_and_the_task_still_ends() -> None:
    ended = asyncio.Event()
    task = asyncio.create_task(_slow_to_end(ended))
    await asyncio.sleep(0)
    stopper = await _cancelled_while_waiting(lambda: cancel_and_wait(task))
    assert stopper.cancelled()
    await asyncio.wait_for(ended.wait(), 1)
    assert task.cancelled()


async def test_the_tasks_own_cancellation_is_the_expected_end() -> None:
    ended = asyncio.Event()
    task = asyncio.create_task(_slow_to_end(ended))
    await asyncio.sleep(0)
    await cancel_and_wait(task)  # returns normally
    assert ended.is_set()
    assert task.cancelled()
    await cancel_and_wait(task)  # an ended task, and no task, are nothing to stop
    await cancel_and_wait(None)


async def test_an_error_the_task_ended_with_is_raised() -> None:
    async def broken() -> None:
        raise RuntimeError("the background task failed")

    task = asyncio.create_task(broken())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="background task failed"):
        await cancel_and_wait(task)


async def test_a_task_that_swallows_its_cancellation_and_returns_is_stopped() -> None:
    async def stubborn() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            return

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert task.done()
    assert not task.cancelled()


async def test_a_cancelled_watchdog_stop_ends_cancelled() -> None:
    watchdog = ConsumerWatchdog(interval=3600)
    watchdog.start()
    await asyncio.sleep(0)
    await _cancelled_while_waiting(watchdog.stop)
    await watchdog.stop()  # nothing left to stop


async def test_a_cancelled_group_writer_close_ends_cancelled(tmp_path: Path) -> None:
    db = await aiosqlite.connect(tmp_path / "w.sqlite", isolation_level=None)
    try:
        writer = GroupWriter(db)
        async with writer.transaction() as conn:  # starts the writer task
            await conn.execute("CREATE TABLE t (x)")
        await _cancelled_while_waiting(writer.close)
        await writer.close()
    finally:
        await db.close()


async def test_close_all_runs_every_step_and_raises_the_first_failure() -> None:
    ran: list[str] = []

    async def step(name: str, error: BaseException | None = None) -> None:
        ran.append(name)
        if error is not None:
            raise error

    with pytest.raises(RuntimeError, match="first"):
        await close_all(
            lambda: step("a", RuntimeError("first")),
            lambda: step("b", ValueError("second")),
            lambda: step("c"),
        )
    assert ran == ["a", "b", "c"]


async def test_close_all_cancelled_while_a_step_waits_still_runs_the_rest_and_ends_cancelled() -> None:
    """A cancellation, then a part's error: the close ends cancelled (AsyncExitStack raised the error)."""
    waiting = asyncio.Event()
    ran: list[str] = []

    async def slow() -> None:
        ran.append("slow")
        waiting.set()
        await asyncio.sleep(3600)

    async def broken() -> None:
        ran.append("broken")
        raise RuntimeError("would not close")

    async def last() -> None:
        await asyncio.sleep(0)  # a step that awaits after the cancellation still completes
        ran.append("last")

    closing = asyncio.create_task(close_all(slow, broken, last))
    await waiting.wait()
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert ran == ["slow", "broken", "last"]
