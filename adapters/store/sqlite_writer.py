"""Group commit on SQLite's one writer, and the reader connections beside it.

Every write transaction of a process goes through one writer task that owns the writer
connection. Callers queue; the writer opens one BEGIN IMMEDIATE for as many queued callers as are
waiting (up to `batch`), runs each inside a SAVEPOINT of its own, and ends them all with one
COMMIT, so one fsync (synchronous=FULL) serves the lot. A caller whose body raises is rolled back
to its savepoint and told at once; the others are told only once the COMMIT is on disk, and all
of them learn of a COMMIT that failed. Reads go to reader connections (WAL: each read sees the
last commit, never a batch still open) without any lock of this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import sqlite3
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiosqlite

from orchestrator.errors import StoreUnavailableError, exception_kind

BATCH = 64
"""Callers one COMMIT serves at most: enough to share the fsync, few enough to keep latency low."""


def _unavailable(exc: BaseException) -> StoreUnavailableError:
    error = StoreUnavailableError(f"the SQLite store failed: {exception_kind(exc)}")
    error.__cause__ = exc
    return error


def _quiet(future: asyncio.Future[None]) -> None:
    """A caller cancelled before it heard the outcome must not leave 'never retrieved' noise."""
    if not future.cancelled():
        future.exception()


@dataclass(eq=False)
class _Slot:
    turn: asyncio.Future[None]  # writer → caller: its savepoint is open, the body may run
    done: asyncio.Future[bool]  # caller → writer: the body finished (False: roll it back)
    committed: asyncio.Future[None] = field(init=False)  # writer → caller: the COMMIT's outcome

    def __post_init__(self) -> None:
        self.committed = self.turn.get_loop().create_future()
        self.committed.add_done_callback(_quiet)


class GroupWriter:
    """The only path to the writer connection; `transaction()` is what SqliteStore's writes use."""

    def __init__(self, db: aiosqlite.Connection, *, batch: int = BATCH) -> None:
        self.db = db
        self._batch = batch
        self._queue: deque[_Slot] = deque()
        self._pending = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._busy = False
        self._drained = asyncio.Event()  # set while the writer waits with nothing queued
        self.commits = 0  # COMMITs issued; the bench and tests read them
        self.members = 0  # transactions they carried

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """Run the body inside this process's next group transaction; return once it committed."""
        loop = asyncio.get_running_loop()
        slot = _Slot(loop.create_future(), loop.create_future())
        self._enqueue(slot)
        try:
            await slot.turn
        except BaseException:
            if not slot.turn.done():
                slot.turn.cancel()  # the writer skips it
            elif not slot.turn.cancelled() and slot.turn.exception() is None:
                slot.done.set_result(False)  # its turn came as it was cancelled: nothing to keep
            raise
        try:
            yield self.db
        except BaseException as exc:
            slot.done.set_result(False)
            if isinstance(exc, sqlite3.OperationalError):  # locked, busy, I/O: may pass
                raise _unavailable(exc) from exc
            raise
        slot.done.set_result(True)
        await asyncio.shield(slot.committed)

    def _enqueue(self, slot: _Slot) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="sqlite-writer")
        self._queue.append(slot)
        self._pending.set()

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._drained.set()
                self._pending.clear()
                await self._pending.wait()
            self._busy = True
            try:
                await self._one_batch()
            finally:
                self._busy = False

    async def _one_batch(self) -> None:
        """BEGIN IMMEDIATE, every queued caller in its savepoint, COMMIT; each told its outcome."""
        first = self._next()
        if first is None:
            return
        try:
            await self.db.execute("BEGIN IMMEDIATE")
        except Exception as exc:  # a closed connection raises ValueError: the caller sees it as is
            first.turn.set_exception(_unavailable(exc) if isinstance(exc, sqlite3.Error) else exc)
            return
        kept: list[_Slot] = []
        slot: _Slot | None = first
        room = min(self._batch, len(self._queue) + 1)  # those queued now: the write lock, which
        # other processes wait for, is not held open for callers still to come
        try:
            while slot is not None:
                if await self._serve(slot):
                    kept.append(slot)
                room -= 1
                slot = self._next() if room > 0 else None
            await self.db.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await self.db.execute("ROLLBACK")
            for member in kept:
                member.committed.set_exception(_unavailable(exc))
            if not isinstance(exc, Exception):
                raise
            return
        self.commits += 1
        self.members += len(kept)
        for member in kept:
            member.committed.set_result(None)

    def _next(self) -> _Slot | None:
        """The next caller still waiting for its turn (a cancelled one has gone)."""
        while self._queue:
            slot = self._queue.popleft()
            if not slot.turn.done():
                return slot
        return None

    async def _serve(self, slot: _Slot) -> bool:
        """One caller's body inside its savepoint; False when it raised and was rolled back."""
        await self.db.execute("SAVEPOINT member")
        slot.turn.set_result(None)
        if not await asyncio.shield(slot.done):
            await self.db.execute("ROLLBACK TO member")
            await self.db.execute("RELEASE member")
            return False
        try:
            await self.db.execute("RELEASE member")
        except BaseException as exc:
            slot.committed.set_exception(_unavailable(exc))
            raise
        return True

    async def close(self) -> None:
        """Let the queued callers finish, then stop the writer task."""
        while (self._queue or self._busy) and self._task is not None and not self._task.done():
            self._drained.clear()
            await self._drained.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


class Readers:
    """Reader connections taken in turn; SQLite's WAL lets them read while the writer writes."""

    def __init__(self, connections: Sequence[aiosqlite.Connection]) -> None:
        self.connections = list(connections)
        self._turns = itertools.cycle(self.connections)

    async def fetch(self, sql: str, params: Sequence[object] = ()) -> list[sqlite3.Row]:
        try:
            return list(await next(self._turns).execute_fetchall(sql, params))  # one hop to its thread
        except sqlite3.OperationalError as exc:
            raise _unavailable(exc) from exc

    async def close(self) -> None:
        for connection in self.connections:
            with contextlib.suppress(sqlite3.Error, ValueError):
                await connection.close()
