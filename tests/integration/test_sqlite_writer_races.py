"""The group writer when a caller is cancelled, or its SAVEPOINT fails, while the writer opens its turn.

A caller that is cancelled before its turn takes its slot back (`turn.cancel()`), and the writer
skips it. The writer used to look for that only when it took the slot off the queue, not after the
`SAVEPOINT` or `BEGIN IMMEDIATE` it then awaits: setting the turn of a caller that had gone in the
meantime raised InvalidStateError. After a SAVEPOINT, that failed the whole group, so callers whose
bodies had run were told the store was unavailable; after a failed BEGIN (the file locked by
another process for longer than the busy timeout), it killed the writer task, and every caller
queued behind waited for a turn nobody would give. The tests stop the writer at exactly that await
(a slot off the queue whose turn is not yet set) and cancel its caller there.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.store.codec import Sealer
from adapters.store.sqlite import SqliteStore
from adapters.store.sqlite_writer import GroupWriter, _Slot
from orchestrator.errors import StoreUnavailableError


async def _table(writer: GroupWriter) -> None:
    await writer.run(lambda db: db.execute("CREATE TABLE IF NOT EXISTS marks (name TEXT PRIMARY KEY)"))


async def _mark(writer: GroupWriter, name: str, hold: asyncio.Event | None = None) -> None:
    async with writer.transaction() as db:
        if hold is not None:
            await hold.wait()
        await db.execute("INSERT INTO marks (name) VALUES (?)", (name,))


async def _marks(store: SqliteStore) -> list[str]:
    return [r[0] for r in await store._fetch("SELECT name FROM marks ORDER BY name")]


async def _taken_not_started(writer: GroupWriter, slot: _Slot) -> None:
    """Until the writer has taken `slot` off the queue; it is then awaiting that slot's SAVEPOINT
    or BEGIN in the connection's thread, and has not yet given the caller its turn."""
    async with asyncio.timeout(10):
        while slot in writer._queue:
            await asyncio.sleep(0)
    assert not slot.turn.done(), "the writer went past the await this test aims at"


async def test_a_caller_cancelled_as_its_savepoint_opens_costs_its_group_nothing(
    sqlite_store: SqliteStore,
) -> None:
    writer = sqlite_store._writer
    await _table(writer)
    hold = asyncio.Event()
    first = asyncio.create_task(_mark(writer, "first", hold))
    gone = asyncio.create_task(_mark(writer, "gone"))
    last = asyncio.create_task(_mark(writer, "last"))
    async with asyncio.timeout(10):
        while len(writer._queue) != 2:  # the writer opened one group for all three, serves `first`
            await asyncio.sleep(0.001)
    slot = writer._queue[0]
    hold.set()
    await _taken_not_started(writer, slot)
    gone.cancel()
    async with asyncio.timeout(10):
        await first  # its body ran and the group committed: no StoreUnavailableError
        await last
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await _marks(sqlite_store) == ["first", "last"]


@pytest.fixture
async def impatient_store(tmp_path: Path, sealer: Sealer) -> AsyncIterator[SqliteStore]:
    store = await SqliteStore.open(tmp_path / "locked.db", sealer, busy_timeout_ms=300)
    yield store
    await store.close()


async def test_a_caller_cancelled_during_a_begin_that_fails_leaves_the_writer_serving(
    impatient_store: SqliteStore, tmp_path: Path
) -> None:
    writer = impatient_store._writer
    await _table(writer)
    other = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)  # another process's writer
    try:
        other.execute("BEGIN IMMEDIATE")
        gone = asyncio.create_task(_mark(writer, "gone"))
        async with asyncio.timeout(10):
            while not writer._queue:
                await asyncio.sleep(0)
        await _taken_not_started(writer, writer._queue[0])  # BEGIN waits for the lock
        gone.cancel()
        queued = asyncio.create_task(_mark(writer, "queued"))
        done, _ = await asyncio.wait([queued], timeout=5)  # two busy timeouts of 0.3 s at most
        if not done:
            queued.cancel()
            pytest.fail("the caller queued behind the cancelled one never got its turn")
        with pytest.raises(StoreUnavailableError):
            queued.result()  # the file is still locked: told so, as any caller is
    finally:
        other.execute("ROLLBACK")
        other.close()
    with pytest.raises(asyncio.CancelledError):
        await gone
    await _mark(writer, "after")  # the writer still serves
    assert await _marks(impatient_store) == ["after"]


async def test_a_savepoint_that_fails_tells_its_caller_and_the_group_before_it(
    sqlite_store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second caller of a group is off the queue when its SAVEPOINT fails (an I/O error, a
    connection lost): it is in no list the batch's failure reaches, and used to wait for its turn
    for ever. Both callers hear the store is unavailable, and the writer serves the next group."""
    writer = sqlite_store._writer
    await _table(writer)
    real = writer.db.execute
    savepoints = 0

    def execute(sql: str, *args: object) -> object:
        nonlocal savepoints
        if sql == "SAVEPOINT member":
            savepoints += 1
            if savepoints == 2:
                raise sqlite3.OperationalError("disk I/O error")
        return real(sql, *args)

    monkeypatch.setattr(writer.db, "execute", execute)
    hold = asyncio.Event()
    first = asyncio.create_task(_mark(writer, "first", hold))
    second = asyncio.create_task(_mark(writer, "second"))
    async with asyncio.timeout(10):
        while len(writer._queue) != 1:  # the group is open and serves `first`; `second` waits
            await asyncio.sleep(0.001)
    hold.set()
    done, _ = await asyncio.wait([first, second], timeout=5)
    for task in (first, second):
        if task not in done:
            task.cancel()
            pytest.fail("a caller of the failed group was never told")
        with pytest.raises(StoreUnavailableError):
            task.result()
    monkeypatch.setattr(writer.db, "execute", real)
    await _mark(writer, "after")
    assert await _marks(sqlite_store) == ["after"]
